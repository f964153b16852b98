"""Data retention through a real server (SQLite and PostgreSQL): its background sweep erases
the conversations idle for longer than ``conversation_retention_days``, and only those."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _apiutil import Api
from _wsutil import OpenClient
from sqlalchemy import update

from bot.store.models import Conversation

BASE = "/api/v1/conversations"


@pytest.fixture
def api_settings() -> dict[str, Any]:
    return {"conversation_retention_days": 30, "retention_sweep_interval_s": 0.2}


async def _idle_since(api: Api, text: str, days: float) -> str:
    """A conversation whose last activity was ``days`` ago (seeded, then set back)."""
    cid = await api.seed(texts=(text,))
    last = datetime.now(UTC) - timedelta(days=days)
    async with api.db.writing() as s:
        await s.execute(update(Conversation).where(Conversation.id == cid).values(updated_at=last))
    return cid


async def _gone(api: Api, cid: str, timeout: float = 10.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if (await api.call("GET", f"{BASE}/{cid}", "read")).status_code == 404:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_the_sweep_erases_idle_conversations_only(api: Api, open_client: OpenClient) -> None:
    idle = await _idle_since(api, "my email is a@example.com", 31)
    kept = await _idle_since(api, "still here", 29)
    c = await open_client(api.server.ws_url)
    live = (await c.hello(lang="en"))["conversation_id"]
    await c.send({"type": "message", "message_id": "m1", "text": "How long is shipping?"})
    await c.until("done")

    assert await _gone(api, idle)
    await asyncio.sleep(0.5)  # a few more sweeps
    for cid in (kept, live):
        assert (await api.call("GET", f"{BASE}/{cid}", "read")).status_code == 200
    listed = (await api.call("GET", BASE, "read", params={"limit": 50})).json()["items"]
    assert {x["id"] for x in listed} == {kept, live}
