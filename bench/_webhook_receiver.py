"""A fast webhook receiver for ``bench_api_webhooks.py`` (raw ASGI under uvicorn): verifies
each signature (secret from ``POST /_secret``), answers 200 and counts requests and unique
``Klartext-Delivery-Id`` values; ``GET /_stats`` reports them.

    uvicorn --app-dir bench _webhook_receiver:app --port 9000
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot.webhooks.signing import verify

_state: dict[str, Any] = {"secret": "", "requests": 0, "bad": 0, "first": 0.0, "last": 0.0}
_keys: set[str] = set()

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _reply(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":  # the sender died mid-request (kill -9)
            return
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    path = scope["path"]
    if path == "/_stats":
        stats = {**_state, "unique": len(_keys), "secret": None}
        await _reply(send, 200, json.dumps(stats).encode())
        return
    if path == "/_secret":
        _state["secret"] = json.loads(body)["secret"]
        await _reply(send, 200, b"{}")
        return
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    if not verify(_state["secret"], headers.get("klartext-signature", ""), body):
        _state["bad"] += 1
        await _reply(send, 400, b'{"error":"bad signature"}')
        return
    now = time.perf_counter()
    _state["requests"] += 1
    _state["first"] = _state["first"] or now
    _state["last"] = now
    _keys.add(headers["klartext-delivery-id"])
    await _reply(send, 200, b"{}")
