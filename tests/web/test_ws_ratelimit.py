"""Per-IP websocket limits on a real server: connections per minute (``rate_limited`` then close
1013), messages per minute across conversations, and ``X-Forwarded-For`` believed only from a
trusted proxy."""

from __future__ import annotations

import pytest
from _wsutil import Client, OpenClient, StartServer
from websockets.exceptions import ConnectionClosed

from web.clientip import TrustedProxies


async def _refused(client: Client) -> dict[str, object]:
    frame = await client.recv()
    assert frame["type"] == "error" and frame["code"] == "rate_limited"
    assert 0 < float(frame["retry_after"]) <= 60
    with pytest.raises(ConnectionClosed):
        await client.recv()
    assert client.ws.close_code == 1013
    return frame


async def test_connections_per_ip(start_server: StartServer, open_client: OpenClient) -> None:
    server = start_server(ws_connections_per_minute_per_ip=3)
    for _ in range(3):
        c = await open_client(server.ws_url)
        await c.hello()
    await _refused(await open_client(server.ws_url))
    # behind the (trusted, loopback) proxy every visitor has their own allowance
    other = await open_client(server.ws_url, additional_headers={"X-Forwarded-For": "203.0.113.7"})
    await other.hello()
    assert other.welcome["conversation_id"]


async def test_forwarded_for_is_ignored_unless_the_peer_is_trusted(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(ws_connections_per_minute_per_ip=2, trusted_proxies=[])
    for i in range(2):
        xff = {"X-Forwarded-For": f"198.51.100.{i}"}
        c = await open_client(server.ws_url, additional_headers=xff)
        await c.hello()
    # a client cannot escape its limit by inventing X-Forwarded-For values
    spoofed = await open_client(server.ws_url, additional_headers={"X-Forwarded-For": "192.0.2.9"})
    await _refused(spoofed)


async def test_messages_per_ip_across_conversations(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(ws_messages_per_minute_per_ip=3, rate_limit_per_minute=100)
    first, second = await open_client(server.ws_url), await open_client(server.ws_url)
    await first.hello()
    await second.hello()
    for i, client in enumerate([first, second, first]):
        await client.send({"type": "message", "message_id": f"m{i}", "text": "shipping?"})
        await client.until("done")
    await second.send({"type": "message", "message_id": "m9", "text": "shipping?"})
    frame = await second.recv()
    assert frame["code"] == "rate_limited" and frame["message_id"] == "m9"
    assert frame["retry_after"] > 0
    assert await second.roundtrip_ping() == []  # refused, not disconnected


def test_trusted_proxy_resolution() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "127.0.0.1"])
    assert proxies.client_ip("127.0.0.1", "203.0.113.5") == "203.0.113.5"
    # right-most untrusted hop; the client-controlled left part is ignored
    assert proxies.client_ip("10.1.2.3", "1.1.1.1, 203.0.113.5, 10.9.9.9") == "203.0.113.5"
    assert proxies.client_ip("198.51.100.1", "203.0.113.5") == "198.51.100.1"
    assert proxies.client_ip("10.1.2.3", "garbage, 10.0.0.2") == "10.0.0.2"
    assert proxies.client_ip("10.1.2.3", None) == "10.1.2.3"
    assert proxies.client_ip(None, "203.0.113.5") == "unknown"
    assert TrustedProxies([]).client_ip("127.0.0.1", "203.0.113.5") == "127.0.0.1"
    assert proxies.client_ip("10.1.2.3", "2001:db8::1") == "2001:db8::1"
