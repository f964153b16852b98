"""Fuzz a real server process: N malformed websocket frames (seeded mutations of valid frames,
truncated/garbage JSON, nasty values, control characters, lone surrogates, deep nesting,
binary and invalid-UTF-8 frames) and M REST requests generated from the app's OpenAPI schema
with hostile path/query/body values. Counts 5xx responses, ``internal``/store errors, 1011
closes and whether the process survived; a valid turn and API call must work at the end.

``.venv/bin/python bench/bench_fuzz.py [--frames 10000] [--requests 3000] [--seed 6]``
Prints one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ws_common import rss_mb, start_server

from bot.store import Database
from bot.store.apikeys import create_api_key

NASTY: list[Any] = [
    None, True, -1, 0, 2**70, 1.5e308, "", " ", "\x00", "a\x00b\x1b[31m\x7f", "\ud800",
    "\udfff x", "\u202e\u200b", "x" * 5000, [], {}, [[[["deep"]]]], {"a": {"b": {"c": {}}}},
    "'; DROP TABLE conversations; --", "../../etc/passwd", "%00", "${jndi:x}", "\\", "ünï😀",
]  # fmt: skip
VALID: list[dict[str, Any]] = [
    {"type": "message", "message_id": "m", "text": "How long does shipping take?"},
    {"type": "feedback", "turn_id": "t", "rating": "up", "comment": "ok"},
    {"type": "request_human", "message_id": "h"},
    {"type": "typing"},
    {"type": "ping", "nonce": "n"},
    {"type": "hello", "v": 1},
]
PROTOCOL_CODES = {
    "bad_json", "binary_frame", "too_large", "unknown_type", "invalid_frame", "hello_required",
    "bad_token", "rate_limited", "message_too_long", "empty_message",
}  # fmt: skip


def _json(value: Any, rng: random.Random) -> str:
    raw = json.dumps(value, ensure_ascii=rng.random() < 0.5)
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raw = json.dumps(value)
    return raw


def mutate(rng: random.Random, i: int) -> tuple[str | bytes, bool]:
    """One malformed frame; ``True`` if it must be sent as a text frame of raw bytes."""
    base = dict(rng.choice(VALID))
    kind = rng.randrange(10)
    if kind <= 3:
        base[rng.choice([*base, "extra"])] = rng.choice(NASTY)
        if isinstance(base.get("message_id"), str):
            base["message_id"] = f"{base['message_id']}{i}"
        return _json(base, rng), False
    if kind == 4:
        raw = json.dumps(base)
        return raw[: rng.randrange(1, len(raw))], False
    if kind == 5:
        return "".join(chr(rng.randrange(0, 0xD7FF)) for _ in range(rng.randrange(1, 80))), False
    if kind == 6:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80))), False
    if kind == 7:
        depth = rng.choice([9, 50, 5000, 100_000])
        return '{"type":"ping","x":' + "[" * depth + "]" * depth + "}", False
    if kind == 8:
        base["type"] = rng.choice(NASTY)
        return _json(base, rng), False
    # invalid UTF-8 in a text frame (closes the socket with 1007), rarely
    if rng.random() < 0.2:
        return b'{"type":"ping","nonce":"\xff\xfe"}', True
    return _json({**base, "text": rng.choice(NASTY)}, rng), False


async def _hello(ws_url: str) -> ClientConnection:
    ws = await connect(ws_url, compression=None, max_size=None)
    await ws.send(json.dumps({"type": "hello", "v": 1}))
    while json.loads(await ws.recv())["type"] != "history":
        pass
    return ws


async def fuzz_ws(ws_url: str, frames: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    codes: Counter[str] = Counter()
    closes: Counter[int] = Counter()
    bad: list[str] = []
    ws: ClientConnection | None = None
    for i in range(frames):
        if ws is None:
            ws = await _hello(ws_url)
        frame, raw_text = mutate(rng, i)
        try:
            if raw_text:
                assert isinstance(frame, bytes)
                await ws.send(frame, text=True)
            else:
                await ws.send(frame)
            await ws.send(json.dumps({"type": "ping", "nonce": i}))
            while True:
                f = json.loads(await asyncio.wait_for(ws.recv(), 15))
                if f.get("type") == "pong" and f.get("nonce") == i:
                    break
                if f.get("type") == "error":
                    code = str(f.get("code"))
                    codes[code] += 1
                    if "seq" in f or code not in PROTOCOL_CODES:
                        bad.append(f"{code}: {str(frame)[:60]!r}")
        except ConnectionClosed:
            code = ws.close_code or 0
            closes[code] += 1
            if code not in (1007, 1008, 1009):
                bad.append(f"close {code}: {str(frame)[:60]!r}")
            ws = None
    if ws is not None:
        await ws.close()
    return {"frames": frames, "error_codes": dict(codes), "closes": dict(closes), "bad": bad}


def _value(rng: random.Random) -> Any:
    return rng.choice([*NASTY, "abc", 1, "2026-01-01T00:00:00Z", "human", "up"])


_METHODS = ("get", "post", "put", "patch", "delete")
_FIELDS = (
    "text", "agent_name", "state", "reason", "url", "question", "answer", "lang", "events",
    "email", "name", "available",
)  # fmt: skip


def _pct(value: Any) -> str:
    """Percent-encoded (lone surrogates become the invalid UTF-8 bytes they would be)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = []
    for path, item in spec["paths"].items():
        if path.startswith("/api/") and path != "/api/v1/knowledge/reindex":  # bounded CPU
            ops += [(m.upper(), path, op) for m, op in item.items() if m in _METHODS]
    return ops


def _request(
    rng: random.Random, method: str, path: str, op: dict[str, Any], cid: str
) -> dict[str, Any]:
    url = path
    query: list[str] = []
    for p in op.get("parameters", []):
        text = _pct(_value(rng))
        if p["in"] == "path":
            url = url.replace("{" + p["name"] + "}", cid if rng.random() < 0.4 else text)
        elif p["in"] == "query" and rng.random() < 0.6:
            query.append(f"{p['name']}={text}")
    if query:
        url += "?" + "&".join(query)
    req: dict[str, Any] = {"method": method, "url": url}
    if method in ("POST", "PUT", "PATCH"):
        if rng.random() < 0.15:
            req["content"] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
            req["headers"] = {"Content-Type": "application/json"}
        else:
            body = {k: _value(rng) for k in _FIELDS if rng.random() < 0.6}
            raw = json.dumps(body)  # ASCII escapes: surrogates travel as \\udxxx
            req["content"] = raw.encode()
            req["headers"] = {"Content-Type": "application/json"}
    return req


async def fuzz_rest(base: str, key: str, requests: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    statuses: Counter[int] = Counter()
    bad: list[str] = []
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        spec = (await http.get("/openapi.json")).json()
        ops = _operations(spec)
        created = await http.post(
            "/api/v1/conversations/x/messages", headers=auth, json={"text": "x", "agent_name": "a"}
        )
        cid = "0" * 32 if created.status_code != 201 else "x"
        for _ in range(requests):
            method, path, op = rng.choice(ops)
            req = _request(rng, method, path, op, cid)
            headers = {**auth, **req.pop("headers", {})}
            try:
                r = await http.request(headers=headers, **req)
            except httpx.TransportError as exc:
                bad.append(f"transport {type(exc).__name__}: {method} {req['url'][:60]}")
                continue
            statuses[r.status_code] += 1
            if r.status_code >= 500 and r.status_code != 503:
                bad.append(f"{r.status_code} {method} {req['url'][:60]}: {r.text[:120]}")
    return {
        "requests": requests,
        "operations": len(ops),
        "statuses": dict(sorted(statuses.items())),
        "bad": bad,
    }


async def final_checks(ws_url: str, base: str, key: str) -> bool:
    ws = await _hello(ws_url)
    await ws.send(json.dumps({"type": "message", "message_id": "final", "text": "shipping?"}))
    while json.loads(await asyncio.wait_for(ws.recv(), 15))["type"] != "done":
        pass
    await ws.close()
    async with httpx.AsyncClient(base_url=base) as http:
        r = await http.get("/api/v1/conversations", headers={"Authorization": f"Bearer {key}"})
    return r.status_code == 200


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        knowledge = data / "knowledge"  # the knowledge API writes here, never into the repo
        shutil.copytree(Path(__file__).resolve().parent.parent / "knowledge" / "demo", knowledge)
        env = {
            "KLARTEXT_KNOWLEDGE_DIR": str(knowledge),
            "KLARTEXT_WS_CONNECTIONS_PER_MINUTE_PER_IP": "100000",
            "KLARTEXT_WS_MESSAGES_PER_MINUTE_PER_IP": "100000",
            "KLARTEXT_API_REQUESTS_PER_MINUTE_PER_KEY": "100000",
        }
        proc, port = start_server(data, engine="fake", extra_env=env)
        try:
            db = Database(f"sqlite+aiosqlite:///{data / 'klartext.db'}")
            async with db.writing() as s:
                key = (await create_api_key(s, name="fuzz", scopes="read,agent,admin")).plaintext
            await db.dispose()
            base, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws/chat"
            t0 = time.monotonic()
            ws = await fuzz_ws(ws_url, args.frames, args.seed)
            t1 = time.monotonic()
            rest = await fuzz_rest(base, key, args.requests, args.seed)
            t2 = time.monotonic()
            ok = await final_checks(ws_url, base, key)
            alive = proc.poll() is None
            rss = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
    return {
        "bench": "fuzz",
        "ws": {**ws, "seconds": round(t1 - t0, 1)},
        "rest": {**rest, "seconds": round(t2 - t1, 1)},
        "server_alive": alive,
        "final_turn_and_api_ok": ok,
        "server_rss_mb": round(rss, 1),
        "failures": len(ws["bad"]) + len(rest["bad"]) + (not alive) + (not ok),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=6)
    result = asyncio.run(main_async(parser.parse_args()))
    for section in ("ws", "rest"):
        for line in result[section]["bad"][:20]:
            print(f"{section}: {line}", file=sys.stderr)
        result[section]["bad"] = len(result[section]["bad"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
