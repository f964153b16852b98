"""A real PostgreSQL stopped and restarted (``pg_ctl``) under a connected client: a turn in
flight gets an ``error`` ``KT800`` frame, a new message gets ``KT800`` and the socket closes with
1011 (the widget reconnects with backoff), ``/readyz`` says the database is down; once it is
back the client resumes, the interrupted turn is ended as partial, the message sent again is
answered, and nothing acknowledged before the outage is lost or duplicated."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _wsutil import Client, OpenClient, StartServer
from pg import PgCluster
from websockets.exceptions import ConnectionClosed

from bot.store import Database, repo


class _Restartable(PgCluster):
    def opts(self) -> str:
        return f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"

    def stop_server(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def start_server(self) -> None:
        log = str(self.dir / "log")
        self._run("pg_ctl", "-D", str(self.data), "-o", self.opts(), "-l", log, "-w", "start")


@pytest.fixture
def cluster() -> Iterator[_Restartable]:
    c = _Restartable()
    try:
        c.start()
        yield c
    finally:
        c.stop()


async def _closed(client: Client) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    with pytest.raises(ConnectionClosed):
        while True:
            frames.append(await client.recv(timeout=10))
    return frames


async def test_database_outage_and_recovery(
    cluster: _Restartable, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(database_url=cluster.create_database())
    client = await open_client(server.ws_url)
    await client.hello()
    cid, token = client.welcome["conversation_id"], client.welcome["token"]
    await client.send({"type": "message", "message_id": "m1", "text": "shipping?"})
    acknowledged = await client.until("done")
    await client.send({"type": "message", "message_id": "m2", "text": "slow one"})
    frames = await client.until("token")
    acknowledged += frames
    assert frames[0]["type"] == "user_message" and frames[0]["message_id"] == "m2"

    await asyncio.to_thread(cluster.stop_server)
    # the turn in flight cannot persist its next token: the socket is told at once
    error = (await client.until("error"))[-1]
    assert error["code"] == "KT800" and "seq" not in error
    await client.send({"type": "message", "message_id": "m3", "text": "anyone there?"})
    last = (await _closed(client))[-1]
    assert last["type"] == "error" and last["code"] == "KT800"
    assert client.ws.close_code == 1011
    async with httpx.AsyncClient(base_url=server.url) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] is False
        retry = await open_client(server.ws_url)  # reconnecting while it is down
        await retry.send({"type": "hello", "v": 1, "conversation_id": cid, "token": token})
        assert (await _closed(retry))[-1]["code"] == "KT800"

        await asyncio.to_thread(cluster.start_server)
        assert (await http.get("/readyz")).status_code == 200

    last_seq = max(int(f["seq"]) for f in acknowledged if "seq" in f)
    back = await open_client(server.ws_url)
    await back.hello(conversation_id=cid, token=token, last_seq=last_seq)
    assert back.welcome["resumed"] is True
    # the interrupted turn was ended for the reconnecting client
    assert back.history and back.history[-1]["type"] == "done" and back.history[-1]["partial"]
    await back.send({"type": "message", "message_id": "m3", "text": "anyone there?"})
    answer = await back.until("done")
    assert answer[0]["type"] == "user_message" and answer[0]["message_id"] == "m3"

    db = Database(server.settings.effective_database_url)
    try:
        async with db.session() as session:
            stored = [e.frame() for e in await repo.events_after(session, cid, 0)]
    finally:
        await db.dispose()
    by_seq = {int(e["seq"]): e for e in stored}
    assert sorted(by_seq) == list(range(1, len(stored) + 1))  # no gaps, no duplicates
    for frame in acknowledged:  # everything the client saw before the outage is still there
        if "seq" in frame:
            assert by_seq[int(frame["seq"])] == frame
    user_ids = [e["message_id"] for e in stored if e["type"] == "user_message"]
    assert user_ids == ["m1", "m2", "m3"]
