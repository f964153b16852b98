"""Two real server processes (uvicorn subprocesses) sharing one PostgreSQL database, one real
``redis-server`` and one data directory: cross-replica delivery of agent messages, resume on the
other replica in the middle of an answer, reindex notifications, and a Redis restart."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from _redis import RedisServer, redis_server
from _wsfakes import ANSWER
from _wsutil import OpenClient, free_port
from pg import PgCluster

from bot.store import Database
from bot.store.apikeys import create_api_key
from bot.store.migrate import upgrade

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 5.0  # turn leases lapse this long after a replica's last refresh


@dataclass
class Replica:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/chat"

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.url}/_test/state", timeout=5).json()
        return data


@dataclass
class Cluster:
    a: Replica
    b: Replica
    redis: RedisServer
    data_dir: Path
    agent_key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.agent_key}"}


def _start_replica(env: dict[str, str]) -> Replica:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "--app-dir", str(ROOT / "tests" / "web")]
    cmd += ["_scaleout_app:app", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--log-level", "warning", "--no-access-log", "--ws-per-message-deflate", "false"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"replica exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return Replica(proc, port)
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("replica did not become ready")


def _stop(replica: Replica) -> None:
    replica.proc.terminate()
    try:
        replica.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        replica.proc.kill()
        replica.proc.wait()


async def _agent_key(url: str) -> str:
    db = Database(url)
    try:
        async with db.writing() as s:
            return (await create_api_key(s, name="agent", scopes="read,agent")).plaintext
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def cluster(web_pg: PgCluster) -> Iterator[Cluster]:
    db_url = web_pg.create_database()
    upgrade(db_url)
    key = asyncio.run(_agent_key(db_url))
    with redis_server() as rs, tempfile.TemporaryDirectory(prefix="klartext-scale-") as tmp:
        data_dir = Path(tmp)
        (data_dir / "index").mkdir()
        (data_dir / "index" / "CURRENT").write_text("build-1\n")
        env = {
            **os.environ,
            "KLARTEXT_DATA_DIR": str(data_dir),
            "KLARTEXT_DATABASE_URL": db_url,
            "KLARTEXT_REDIS_URL": rs.url,
            "KLARTEXT_REDIS_PREFIX": f"t{uuid.uuid4().hex[:8]}:",
            "KLARTEXT_TOKEN_SECRET": "scale-out-test-secret-0123456789",
            "KLARTEXT_LOG_LEVEL": "WARNING",
            "KLARTEXT_REDIS_TURN_LEASE_S": str(LEASE_S),
        }
        # A polls the shared index every 0.3 s; B only every 120 s (it must hear about it)
        a = _start_replica({**env, "KT_TEST_RELOAD_S": "0.3"})
        try:
            b = _start_replica({**env, "KT_TEST_RELOAD_S": "120"})
            try:
                yield Cluster(a, b, rs, data_dir, key)
            finally:
                _stop(b)
        finally:
            _stop(a)


async def _post(cluster: Cluster, replica: Replica, path: str, body: dict[str, Any]) -> Any:
    async with httpx.AsyncClient(base_url=replica.url, headers=cluster.auth, timeout=10) as http:
        r = await http.post(path, json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()


async def test_agent_message_posted_on_b_reaches_visitor_on_a(
    cluster: Cluster, open_client: OpenClient
) -> None:
    visitor = await open_client(cluster.a.ws_url)
    cid = (await visitor.hello())["conversation_id"]
    path = f"/api/v1/conversations/{cid}"
    await _post(
        cluster, cluster.b, f"{path}/messages", {"text": "Hi, Jana here.", "agent_name": "Jana"}
    )
    frames = await visitor.until("agent_message")
    assert [f["type"] for f in frames] == ["handoff", "agent_message"]
    assert frames[0]["state"] == "human"
    assert (frames[1]["text"], frames[1]["agent_name"]) == ("Hi, Jana here.", "Jana")
    await _post(cluster, cluster.b, f"{path}/release", {})
    released = await visitor.until("handoff")
    assert released[-1]["state"] == "bot"
    assert [f["seq"] for f in frames + released] == [1, 2, 3]


async def test_reconnect_to_b_resumes_an_answer_streaming_on_a(
    cluster: Cluster, open_client: OpenClient
) -> None:
    calls_a, calls_b = cluster.a.state()["engine_calls"], cluster.b.state()["engine_calls"]
    c = await open_client(cluster.a.ws_url)
    welcome = await c.hello()
    await c.send({"type": "message", "message_id": "m-1", "text": "slow question"})
    seen = [await c.recv(), await c.recv(), await c.recv()]  # user_message + 2 tokens
    await c.ws.close()
    c2 = await open_client(cluster.b.ws_url)
    await c2.hello(
        conversation_id=welcome["conversation_id"], token=welcome["token"], last_seq=seen[-1]["seq"]
    )
    live = [] if c2.history and c2.history[-1]["type"] == "done" else await c2.until("done")
    frames = seen + c2.history + live
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    assert "".join(f["text"] for f in frames if f["type"] == "token") == ANSWER
    done = [f for f in frames if f["type"] == "done"]
    assert len(done) == 1 and done[0]["partial"] is False  # B did not cut A's turn short
    assert any(f["type"] == "token" for f in live), "the rest must stream live from A via Redis"
    assert cluster.a.state()["engine_calls"] == calls_a + 1
    assert cluster.b.state()["engine_calls"] == calls_b
    # the same message re-sent to B is not answered again; a new one is answered by B
    await c2.send({"type": "message", "message_id": "m-1", "text": "slow question"})
    assert await c2.roundtrip_ping() == []
    await c2.send({"type": "message", "message_id": "m-2", "text": "and now?"})
    assert (await c2.until("done"))[-1]["partial"] is False
    assert cluster.b.state()["engine_calls"] == calls_b + 1


async def test_reindex_on_a_reaches_b_at_once(cluster: Cluster) -> None:
    before = cluster.b.state()
    assert before["build"] == cluster.a.state()["build"]
    build = f"build-{uuid.uuid4().hex[:6]}"
    tmp = cluster.data_dir / "index" / "CURRENT.tmp"
    tmp.write_text(build + "\n")
    tmp.replace(cluster.data_dir / "index" / "CURRENT")
    t0 = time.monotonic()
    while cluster.b.state()["build"] != build:
        assert time.monotonic() - t0 < 10, "B did not reload (its own poll is 120 s away)"
        await asyncio.sleep(0.05)
    after = cluster.b.state()
    assert after["reindex_received"] == before["reindex_received"] + 1
    assert cluster.a.state()["build"] == build
    for replica in (cluster.a, cluster.b):
        ready = httpx.get(f"{replica.url}/readyz", timeout=5).json()
        assert ready["checks"]["redis"] is True


async def _redis_ready(replica: Replica, want: bool, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(f"{replica.url}/readyz", timeout=5).json()
        if body["checks"]["redis"] is want:
            assert body["status"] == "ready"  # Redis is reported, never gating
            return
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.2)


async def test_redis_restart_loses_no_agent_message(
    cluster: Cluster, open_client: OpenClient
) -> None:
    visitor = await open_client(cluster.a.ws_url)
    cid = (await visitor.hello())["conversation_id"]
    path = f"/api/v1/conversations/{cid}/messages"
    cluster.redis.stop()
    await _redis_ready(cluster.b, False)
    await _post(cluster, cluster.b, path, {"text": "during the outage", "agent_name": "Jana"})
    cluster.redis.start()
    frames = await visitor.until("agent_message", timeout=30)
    assert frames[-1]["text"] == "during the outage"
    await _redis_ready(cluster.a, True)
    await _redis_ready(cluster.b, True)
    await _post(cluster, cluster.b, path, {"text": "after the restart", "agent_name": "Jana"})
    after = await visitor.until("agent_message", timeout=10)
    assert after[-1]["text"] == "after the restart"
    seqs = [f["seq"] for f in frames + after]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_replica_killed_mid_answer_the_other_ends_the_turn(
    cluster: Cluster, open_client: OpenClient
) -> None:
    """Last in this module: kills A. The visitor resumes on B, which sees A's lease, waits for
    it to lapse, then ends the turn with a partial ``done`` — nothing lost or duplicated."""
    c = await open_client(cluster.a.ws_url)
    welcome = await c.hello()
    await c.send({"type": "message", "message_id": "k-1", "text": "slow answer, then a crash"})
    seen = [await c.recv(), await c.recv()]  # user_message + first token
    cluster.a.proc.kill()
    cluster.a.proc.wait()
    c2 = await open_client(cluster.b.ws_url)
    await c2.hello(
        conversation_id=welcome["conversation_id"], token=welcome["token"], last_seq=seen[-1]["seq"]
    )
    t0 = time.monotonic()
    live = [] if c2.history and c2.history[-1]["type"] == "done" else await c2.until("done", 30)
    frames = seen + c2.history + live
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    assert ANSWER.startswith("".join(f["text"] for f in frames if f["type"] == "token"))
    assert frames[-1]["type"] == "done" and frames[-1]["partial"] is True
    assert time.monotonic() - t0 < LEASE_S + 8
