"""Bad frames and limits: an ``error`` frame with the stable code, and the connection (and the
server) stays usable."""

from __future__ import annotations

import asyncio
import json

import pytest
from _wsutil import OpenClient, ServerThread, StartServer
from websockets.exceptions import ConnectionClosed


async def _expect_error(c, code: str) -> dict:  # type: ignore[no-untyped-def]
    frame = await c.recv()
    assert frame["type"] == "error" and frame["code"] == code, frame
    assert "seq" not in frame
    return frame


async def test_hello_required_then_hello_works(
    server: ServerThread, open_client: OpenClient
) -> None:
    c = await open_client(server.ws_url)
    await c.send({"type": "message", "message_id": "m", "text": "hi"})
    await _expect_error(c, "hello_required")
    await c.send({"type": "ping"})
    await _expect_error(c, "hello_required")
    welcome = await c.hello()
    assert welcome["resumed"] is False


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "bad_json"),
        ('"just a string"', "invalid_frame"),
        ('{"no": "type"}', "invalid_frame"),
        ('{"type": "launch_rockets"}', "unknown_type"),
        ('{"type": "message", "text": "no id"}', "invalid_frame"),
        ('{"type": "feedback", "turn_id": "t", "rating": "meh"}', "invalid_frame"),
        ('{"type": "hello"}', "invalid_frame"),  # hello twice
        ('{"type": "ping", "nonce": ' + "[" * 50 + "]" * 50 + "}", "invalid_frame"),
        ('{"type": "message", "message_id": "m", "text": "' + "x" * 30_000 + '"}', "too_large"),
    ],
)
async def test_bad_frames_get_stable_codes_and_connection_survives(
    server: ServerThread, open_client: OpenClient, raw: str, code: str
) -> None:
    c = await open_client(server.ws_url)
    await c.hello()
    await c.ws.send(raw)
    await _expect_error(c, code)
    assert await c.roundtrip_ping() == []


async def test_binary_frame_is_refused(server: ServerThread, open_client: OpenClient) -> None:
    c = await open_client(server.ws_url)
    await c.hello()
    await c.ws.send(b"\x00\x01binary")
    await _expect_error(c, "binary_frame")
    assert await c.roundtrip_ping() == []


async def test_message_limits(server: ServerThread, open_client: OpenClient) -> None:
    c = await open_client(server.ws_url)
    await c.hello()
    await c.send({"type": "message", "message_id": "long", "text": "x" * 501})
    err = await _expect_error(c, "message_too_long")
    assert err["message_id"] == "long"
    await c.send({"type": "message", "message_id": "empty", "text": " \u0000\u0007 \n"})
    assert (await _expect_error(c, "empty_message"))["message_id"] == "empty"
    await c.send({"type": "message", "message_id": "ok", "text": "x" * 500})
    frames = await c.until("done")
    assert frames[0]["type"] == "user_message" and frames[0]["seq"] == 1


async def test_rate_limit_has_retry_after(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(rate_limit_per_minute=2)
    c = await open_client(server.ws_url)
    await c.hello()
    for i in range(2):
        await c.send({"type": "message", "message_id": f"m{i}", "text": f"q{i}"})
        await c.until("done")
    await c.send({"type": "message", "message_id": "m2", "text": "q2"})
    err = await _expect_error(c, "rate_limited")
    assert err["message_id"] == "m2" and 0 < err["retry_after"] <= 60
    assert await c.roundtrip_ping() == []


async def test_idle_timeout_closes_with_4000(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(idle_timeout_s=0.5)
    c = await open_client(server.ws_url)
    await c.hello()
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(c.ws.recv(), 5)
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4000, "idle_timeout")


async def test_wrong_origin_is_refused_with_1008(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(allowed_origins=["https://shop.example"])
    bad = await open_client(server.ws_url, origin="https://evil.example")
    await _expect_error(bad, "origin_not_allowed")
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(bad.ws.recv(), 5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    good = await open_client(server.ws_url, origin="https://shop.example")
    assert (await good.hello())["resumed"] is False


async def test_repeated_abuse_closes_the_connection(
    server: ServerThread, open_client: OpenClient
) -> None:
    c = await open_client(server.ws_url)
    await c.hello()
    codes: list[str] = []
    with pytest.raises(ConnectionClosed) as info:
        for _ in range(100):
            await c.ws.send("{nope")
            codes.append((await c.recv())["code"])
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    assert set(codes) == {"bad_json"} and 20 <= len(codes) <= 40
    fresh = await open_client(server.ws_url)  # the server is fine
    assert (await fresh.hello())["resumed"] is False


async def test_engine_failure_is_an_error_event_of_the_turn(
    server: ServerThread, open_client: OpenClient
) -> None:
    c = await open_client(server.ws_url)
    await c.hello()
    await c.send({"type": "message", "message_id": "b", "text": "boom"})
    frames = await c.until("error")
    assert [f["type"] for f in frames] == ["user_message", "token", "error"]
    assert frames[-1]["code"] == "internal" and frames[-1]["seq"] == 3
    assert frames[-1]["turn_id"] == frames[0]["turn_id"]
    await c.send({"type": "message", "message_id": "e", "text": "enginerror"})
    frames = await c.until("error")
    assert frames[-1]["code"] == "KT500"
    await c.send({"type": "message", "message_id": "ok", "text": "fine"})
    assert (await c.until("done"))[-1]["answered"] is True


async def test_frames_are_json_objects_with_type(
    server: ServerThread, open_client: OpenClient
) -> None:
    c = await open_client(server.ws_url)
    await c.hello()
    await c.ws.send(json.dumps({"type": "typing"}))
    assert await c.roundtrip_ping() == []


async def test_database_failure_is_a_clear_error_and_the_server_recovers(
    server: ServerThread, open_client: OpenClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    services = server.config.app.state.services  # type: ignore[attr-defined]

    async def down(*_: object, **__: object) -> None:
        raise OperationalError("INSERT", {}, Exception("database is down"))

    c = await open_client(server.ws_url)
    await c.hello()
    monkeypatch.setattr(services.events, "write", down)
    await c.send({"type": "message", "message_id": "lost?", "text": "hello"})
    err = await c.recv()
    assert (err["type"], err["code"]) == ("error", "KT800")
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(c.ws.recv(), 5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1011
    monkeypatch.undo()  # the database is back
    again = await open_client(server.ws_url)
    await again.hello()
    await again.send({"type": "message", "message_id": "m", "text": "hello"})
    assert (await again.until("done"))[0]["type"] == "user_message"
