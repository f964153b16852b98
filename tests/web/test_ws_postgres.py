"""The websocket path on PostgreSQL: streaming, resume mid-answer, idempotent resend."""

from __future__ import annotations

import asyncio

from _wsfakes import ANSWER, FakeRuntime
from _wsutil import OpenClient, StartServer
from pg import PgCluster


async def test_stream_resume_and_resend_on_postgresql(
    start_server: StartServer, open_client: OpenClient, web_pg: PgCluster
) -> None:
    runtime = FakeRuntime()
    server = start_server(runtime=runtime, database_url=web_pg.create_database())
    c = await open_client(server.ws_url)
    welcome = await c.hello()
    await c.send({"type": "message", "message_id": "p-1", "text": "slow on postgres"})
    seen = [await c.recv(), await c.recv(), await c.recv()]
    await c.ws.close()
    await asyncio.sleep(0.3)
    c2 = await open_client(server.ws_url)
    await c2.hello(
        conversation_id=welcome["conversation_id"], token=welcome["token"], last_seq=seen[-1]["seq"]
    )
    rest = list(c2.history)
    if not rest or rest[-1]["type"] != "done":
        rest += await c2.until("done")
    frames = seen + rest
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    assert "".join(f["text"] for f in frames if f["type"] == "token") == ANSWER
    await c2.send({"type": "message", "message_id": "p-1", "text": "slow on postgres"})
    assert await c2.roundtrip_ping() == []
    assert runtime.engine.calls == 1
