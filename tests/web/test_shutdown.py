"""Graceful shutdown of a real server process (uvicorn in its main thread) on SIGTERM: it stops
accepting, closes open sockets with 1012 (the widget reconnects, elsewhere behind a load
balancer), and lets the in-flight turn finish — or, past ``shutdown_grace_s``, ends it as
partial — before exiting; everything is in the database. The same run checks the JSON logs:
ids present, message text and entities (email, phone, order number) redacted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _wsutil import Client, OpenClient, free_port
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bot.store import Database, repo
from bot.store.migrate import upgrade

LAUNCHER = Path(__file__).resolve().parent / "_serve_fake.py"
ROOT = Path(__file__).resolve().parents[2]
PII = "jane.doe@example.com", "+49 30 1234567", "AB-12345"
# uvicorn re-raises the SIGTERM after its clean shutdown (systemd/Kubernetes count it as clean)
CLEAN_EXIT = (0, -signal.SIGTERM)


class Proc:
    def __init__(self, tmp: Path, **settings: Any) -> None:
        self.port = free_port()
        self.db_url = f"sqlite+aiosqlite:///{tmp / 'klartext.db'}"
        upgrade(self.db_url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KLARTEXT_")}
        env.update(
            KLARTEXT_DATA_DIR=str(tmp),
            KLARTEXT_PORT=str(self.port),
            KLARTEXT_TOKEN_SECRET="test-secret-0123456789abcdef",
            KLARTEXT_LOG_LEVEL="INFO",
        )
        env.update({f"KLARTEXT_{k.upper()}": str(v) for k, v in settings.items()})
        self.stderr = tmp / "stderr.log"
        with self.stderr.open("wb") as err:
            self.popen = subprocess.Popen(
                [sys.executable, str(LAUNCHER)], cwd=ROOT, env=env, stderr=err
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert self.popen.poll() is None, self.stderr.read_text()[-2000:]
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/chat"

    def log_lines(self) -> list[dict[str, Any]]:
        lines = self.stderr.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    async def events(self, cid: str) -> list[dict[str, Any]]:
        db = Database(self.db_url)
        try:
            async with db.session() as session:
                return [e.frame() for e in await repo.events_after(session, cid, 0)]
        finally:
            await db.dispose()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in started:
        if p.popen.poll() is None:
            p.popen.kill()
            p.popen.wait()


async def _mid_answer(proc: Proc, open_client: OpenClient, text: str) -> Client:
    client = await open_client(proc.ws_url)
    await client.hello()
    await client.send({"type": "message", "message_id": "m1", "text": text})
    await client.until("token")
    return client


async def _closed_code(client: Client) -> int | None:
    with pytest.raises(ConnectionClosed):
        while True:
            await client.recv(timeout=10)
    return client.ws.close_code


async def test_sigterm_finishes_the_turn_and_tells_widgets_to_reconnect(
    tmp_path: Path, open_client: OpenClient, procs: list[Proc]
) -> None:
    proc = Proc(tmp_path)
    procs.append(proc)
    text = f"slow: mail {PII[0]}, call {PII[1]}, order {PII[2]}"
    client = await _mid_answer(proc, open_client, text)
    cid = client.welcome["conversation_id"]
    proc.popen.send_signal(signal.SIGTERM)
    assert await _closed_code(client) == 1012  # "service restart": reconnect and resume
    with pytest.raises(OSError):  # no longer accepting
        await connect(proc.ws_url, open_timeout=2)
    assert await asyncio.to_thread(proc.popen.wait, 20) in CLEAN_EXIT
    events = await proc.events(cid)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "user_message" and kinds[-1] == "done"
    assert events[-1]["partial"] is False and events[-1]["mode"] == "extractive"
    assert kinds.count("token") >= 1 and "sources" in kinds

    lines = proc.log_lines()
    raw = proc.stderr.read_text()
    for secret in PII:
        assert secret not in raw, f"{secret!r} leaked into the logs"
    message = next(line for line in lines if line["msg"] == "message")
    assert message["conversation_id"] == cid and message["text"] == f"<{len(text)} chars>"
    careless = next(line for line in lines if line["logger"] == "klartext.fake_engine")
    assert "<email>" in careless["msg"] and "<phone>" in careless["msg"]
    assert "<order>" in careless["msg"] and careless["conversation_id"] == cid


async def test_turn_past_the_grace_period_is_ended_as_partial(
    tmp_path: Path, open_client: OpenClient, procs: list[Proc]
) -> None:
    proc = Proc(tmp_path, shutdown_grace_s=0.3)
    procs.append(proc)
    client = await _mid_answer(proc, open_client, "slow please")
    cid = client.welcome["conversation_id"]
    proc.popen.send_signal(signal.SIGTERM)
    assert await _closed_code(client) == 1012
    assert await asyncio.to_thread(proc.popen.wait, 20) in CLEAN_EXIT
    events = await proc.events(cid)
    done = events[-1]
    assert done["type"] == "done" and done["partial"] is True and done["answered"] is False
    tokens = [e for e in events if e["type"] == "token"]
    assert 1 <= len(tokens) < 11  # what was said before the cut stays
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
