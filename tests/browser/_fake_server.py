"""A tiny throwaway server speaking websocket protocol v1 with a scripted engine.

Only for developing the widget without loading models; the browser tests run against the real
app. Run: ``.venv/bin/python -m tests.browser._fake_server 8765``, or the suite with
``KLARTEXT_BROWSER_FAKE=1``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

_WIDGET = Path(__file__).resolve().parents[2] / "web" / "widget"
_STATE = Path(os.environ.get("KLARTEXT_DATA_DIR", "/tmp")) / "fake-events.json"
_CONVS: dict[str, list[dict[str, Any]]] = json.loads(_STATE.read_text()) if _STATE.exists() else {}
_SEEN: dict[str, set[str]] = {
    cid: {e["message_id"] for e in evs if "message_id" in e} for cid, evs in _CONVS.items()
}

_ANSWERS = {
    "en": (
        "Delivery to **Austria** takes **2–4 working days** after dispatch.\n\n"
        "- Germany: 1–3 days\n- Switzerland: 3–6 days\n\n"
        "See [shipping](/help/shipping) for details.",
        [
            {
                "id": "page-shipping",
                "title": "Shipping & delivery",
                "url": "/help/shipping",
                "score": 0.9,
            }
        ],
    ),
    "de": (
        "Der Versand nach **Österreich** dauert **2–4 Werktage** nach Versand.",
        [
            {
                "id": "page-versand",
                "title": "Versand & Lieferung",
                "url": "/hilfe/versand",
                "score": 0.9,
            }
        ],
    ),
}


async def _page(request: Request) -> Response:
    name = {"/": "demo/index.html", "/demo/theming": "demo/theming.html"}.get(request.url.path)
    if name is None:
        name = request.url.path.removeprefix("/static/").removeprefix("/")
    path = (_WIDGET / name).resolve()
    if not path.is_file() or _WIDGET not in path.parents:
        return Response("not found", status_code=404)
    return FileResponse(path)


async def _chat(ws: WebSocket) -> None:
    await ws.accept()
    hello = json.loads(await ws.receive_text())
    cid = hello.get("conversation_id") or uuid.uuid4().hex
    events = _CONVS.setdefault(cid, [])
    seen = _SEEN.setdefault(cid, set())
    lang = hello.get("lang", "en")
    await ws.send_json(
        {
            "type": "welcome",
            "conversation_id": cid,
            "token": f"{cid}.0.x",
            "resumed": bool(hello.get("conversation_id")),
            "bot_name": "Klartext",
            "lang": lang,
            "handoff_state": "bot",
            "server_version": "fake",
            "limits": {"max_message_chars": 2000, "messages_per_minute": 20},
        }
    )
    last = int(hello.get("last_seq") or 0)
    await ws.send_json({"type": "history", "events": [e for e in events if e["seq"] > last]})

    async def emit(frame: dict[str, Any]) -> None:
        frame["seq"] = len(events) + 1
        events.append(frame)
        _STATE.write_text(json.dumps(_CONVS))
        await ws.send_json(frame)

    try:
        while True:
            frame = json.loads(await ws.receive_text())
            kind = frame.get("type")
            if kind == "ping":
                await ws.send_json({"type": "pong"})
            elif kind == "request_human":
                await emit({"type": "handoff", "reason": "user_request", "state": "pending_human"})
                await asyncio.sleep(0.3)
                await emit(
                    {
                        "type": "agent_message",
                        "text": "Hi, I'm Lena. How can I help?",
                        "agent_name": "Lena",
                    }
                )
            elif kind == "message" and frame["message_id"] not in seen:
                seen.add(frame["message_id"])
                turn = uuid.uuid4().hex[:12]
                text = frame["text"]
                await emit(
                    {
                        "type": "user_message",
                        "message_id": frame["message_id"],
                        "text": text,
                        "turn_id": turn,
                    }
                )
                lang_ = "de" if any(w in text.lower() for w in ("wie", "versand", "ö")) else "en"
                answer, sources = _ANSWERS[lang_]
                if "inject" in text:
                    answer = "Look: <img src=x onerror=alert(1)> [x](javascript:alert(1))"
                await asyncio.sleep(0.4)
                for word in answer.split(" "):
                    await emit({"type": "token", "turn_id": turn, "text": word + " "})
                    await asyncio.sleep(0.02)
                await emit({"type": "sources", "turn_id": turn, "items": sources})
                await emit(
                    {
                        "type": "suggestions",
                        "turn_id": turn,
                        "items": ["How much is shipping?", "Can I return an item?"],
                    }
                )
                await emit(
                    {
                        "type": "done",
                        "turn_id": turn,
                        "mode": "extractive",
                        "answered": True,
                        "confidence": 0.9,
                        "lang": lang_,
                        "timing_ms": {},
                        "partial": False,
                    }
                )
    except WebSocketDisconnect:
        return


app = Starlette(routes=[WebSocketRoute("/ws/chat", _chat), Route("/{path:path}", _page)])

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]) if len(sys.argv) > 1 else 8765)
