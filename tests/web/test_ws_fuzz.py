"""Malformed websocket input against a real server (SQLite and PostgreSQL): oversize frames,
control characters, lone surrogates, invalid UTF-8, binary frames, deep nesting, wrong types
and seeded random mutations of valid frames. Every refusal is an ``error`` frame with a stable
protocol code (never ``internal`` or a store error), the server never closes with 1011, and a
following valid conversation works."""

from __future__ import annotations

import contextlib
import json
import random
from typing import Any

import pytest
from _wsutil import Client, OpenClient, ServerThread, StartServer
from pg import PgCluster
from websockets.exceptions import ConnectionClosed

PROTOCOL_CODES = {
    "bad_json",
    "binary_frame",
    "too_large",
    "unknown_type",
    "invalid_frame",
    "hello_required",
    "bad_token",
    "rate_limited",
    "message_too_long",
    "empty_message",
}
# 1007 invalid UTF-8 (websocket layer), 1008 too many protocol errors, 1009 frame over 1 MiB
EXPECTED_CLOSE = {1007, 1008, 1009}

_NASTY: list[Any] = [
    None,
    True,
    -1,
    2**70,
    1.5e308,
    "",
    " \t\n ",
    "\x00",
    "a\x00b\x1b[31m\x7f",
    "\ud800",
    "\udfff tail",
    "\u202e\u200b",
    "x" * 5000,
    [],
    {},
    [[[[["deep"]]]]],
    {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}},
]
_VALID: list[dict[str, Any]] = [
    {"type": "message", "message_id": "m", "text": "shipping?"},
    {"type": "feedback", "turn_id": "t", "rating": "up", "comment": "ok"},
    {"type": "request_human", "message_id": "h"},
    {"type": "typing"},
    {"type": "ping", "nonce": "n"},
    {"type": "hello", "v": 1},
]


def _mutations(rng: random.Random, n: int) -> list[str | bytes]:
    out: list[str | bytes] = []
    for i in range(n):
        base = dict(rng.choice(_VALID))
        kind = rng.randrange(7)
        if kind <= 2:  # replace or add a field with a nasty value (ids unique per frame)
            key = rng.choice([*base.keys(), "extra"])
            base[key] = rng.choice(_NASTY)
            if "message_id" in base and isinstance(base["message_id"], str):
                base["message_id"] += str(i)
            raw = json.dumps(base, ensure_ascii=rng.random() < 0.5)
            try:
                raw.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate travels as a JSON escape only
                raw = json.dumps(base)
            out.append(raw)
        elif kind == 3:  # truncated JSON
            raw = json.dumps(base)
            out.append(raw[: rng.randrange(1, len(raw))])
        elif kind == 4:  # random unicode, controls included
            out.append("".join(chr(rng.randrange(0, 0xD7FF)) for _ in range(rng.randrange(1, 64))))
        elif kind == 5:  # random bytes as a binary frame
            out.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))))
        else:  # the type as a nasty value
            base["type"] = rng.choice(_NASTY)
            out.append(json.dumps(base))
    return out


FIXED: list[str | bytes] = [
    "{not json",
    "[1,2,3]",
    '"just a string"',
    "null",
    "[" * 100_000 + "]" * 100_000,  # nesting Python's json module cannot parse
    '{"type":"message","message_id":"d","text":"x","n":' + "[" * 20 + "]" * 20 + "}",
    '{"type":"message","message_id":"c1","text":"\\u0000\\u0007\\u001b"}',  # only controls
    '{"type":"message","message_id":"c2","text":"hi\\u0000 there\\u007f"}',  # cleaned, answered
    '{"type":"message","message_id":"\\u0000","text":"hi"}',
    '{"type":"message","message_id":"s\\ud800","text":"hi \\udfff"}',
    '{"type":"feedback","turn_id":"\\u0000","rating":"up"}',
    '{"type":"feedback","turn_id":"t","rating":"up","comment":"\\u0000\\ud800"}',
    '{"type":"message","message_id":"w","text":42}',
    '{"type":"message","message_id":["x"],"text":"hi"}',
    '{"type":"ping","nonce":{"a":[1,{"b":null}]}}',
    '{"type":"message","message_id":"big","text":"' + "x" * 3000 + '"}',  # over the frame limit
    '{"type":"message","message_id":"long","text":"' + "x" * 501 + '"}',
    b"\x00\x01binary",
    "\x00\x01\x02",
]


async def _send_and_sync(client: Client, frame: str | bytes, nonce: int) -> list[dict[str, Any]]:
    """Send one frame, then a ping; the frames received before its pong."""
    await client.ws.send(frame)
    await client.send({"type": "ping", "nonce": nonce})
    got: list[dict[str, Any]] = []
    while True:
        f = await client.recv(timeout=10)
        if f["type"] == "pong" and f.get("nonce") == nonce:
            return got
        got.append(f)


async def _fuzz(server: ServerThread, open_client: OpenClient, frames: list[str | bytes]) -> int:
    client: Client | None = None
    errors = 0
    for nonce, frame in enumerate(frames):
        if client is None:
            client = await open_client(server.ws_url)
            await client.hello()
        try:
            got = await _send_and_sync(client, frame, nonce)
        except ConnectionClosed:
            assert client.ws.close_code in EXPECTED_CLOSE, (client.ws.close_code, frame[:80])
            client = None
            continue
        for f in got:
            if f["type"] == "error" and "seq" not in f:
                assert f["code"] in PROTOCOL_CODES, (f, frame[:80])
                errors += 1
            else:  # events of accepted messages; a turn error would be the server's fault
                assert f["type"] != "error", (f, frame[:80])
    return errors


async def _assert_still_serving(server: ServerThread, open_client: OpenClient) -> None:
    client = await open_client(server.ws_url)
    await client.hello()
    await client.send({"type": "message", "message_id": "final", "text": "shipping?"})
    frames = await client.until("done")
    assert frames[0]["type"] == "user_message" and frames[0]["text"] == "shipping?"


@pytest.fixture(params=["sqlite", "postgresql"])
def fuzz_server(request: pytest.FixtureRequest, start_server: StartServer) -> ServerThread:
    overrides: dict[str, Any] = {"ws_messages_per_minute_per_ip": 10_000}
    if request.param == "postgresql":
        cluster: PgCluster = request.getfixturevalue("web_pg")
        overrides["database_url"] = cluster.create_database()
    return start_server(**overrides)


async def test_fixed_malformed_frames(fuzz_server: ServerThread, open_client: OpenClient) -> None:
    errors = await _fuzz(fuzz_server, open_client, FIXED)
    assert errors >= 12
    await _assert_still_serving(fuzz_server, open_client)


async def test_seeded_random_frames(fuzz_server: ServerThread, open_client: OpenClient) -> None:
    errors = await _fuzz(fuzz_server, open_client, _mutations(random.Random(6), 250))
    assert errors >= 60
    await _assert_still_serving(fuzz_server, open_client)


async def test_invalid_utf8_and_giant_frames_close_only_that_socket(
    server: ServerThread, open_client: OpenClient
) -> None:
    bad = await open_client(server.ws_url)
    await bad.hello()
    await bad.ws.send(b'{"type":"ping","nonce":"\xff\xfe"}', text=True)  # not UTF-8
    with pytest.raises(ConnectionClosed):
        await bad.recv()
    assert bad.ws.close_code == 1007
    giant = await open_client(server.ws_url, max_size=None)
    await giant.hello()
    with contextlib.suppress(ConnectionClosed):  # the server may close before the write ends
        await giant.ws.send("x" * ((1 << 20) + 1))
    with pytest.raises(ConnectionClosed):
        await giant.recv()
    assert giant.ws.close_code == 1009
    await _assert_still_serving(server, open_client)
