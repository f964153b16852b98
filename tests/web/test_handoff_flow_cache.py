"""HandoffFlow's cheap reads: the agent-availability switch is reused for
``handoff_availability_cache_s`` (a change told through ``availability_changed`` applies at
once, a change by another replica once the copy expires), and the summary's inputs read by one
writer job equal what the async repository reads give."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.handoff_summary import SUMMARY_EVENT_TYPES
from bot.store import Database, NewEvent, repo, writes
from bot.store.handoff_reads import summary_inputs
from bot.store.handoff_timeout import Availability, get_availability, set_availability
from bot.store.migrate import upgrade
from web.eventlog import EventLog
from web.handoff_flow import HandoffFlow
from web.hub import InProcessHub


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    await asyncio.to_thread(upgrade, url)
    database = Database(url)
    yield database
    await database.dispose()


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


def _flow(db: Database, clock: _Clock | None = None, **settings: Any) -> HandoffFlow:
    return HandoffFlow(
        Settings(llm_provider="none", **settings),
        db,
        EventLog(db, InProcessHub()),
        clock=clock or _Clock(),
    )


def _count_reads(db: Database) -> list[int]:
    n = [0]

    def count(*_a: Any) -> None:
        n[0] += 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    return n


async def _switch(db: Database, available: bool) -> Availability:
    """Set the switch straight in the database, as another replica's API does."""
    return await db.write(lambda s: set_availability(s, available=available, updated_by="b"))


async def test_availability_is_reused_until_the_ttl_expires(db: Database, clock: _Clock) -> None:
    flow = _flow(db, clock, handoff_availability_cache_s=2.0)
    reads = _count_reads(db)
    assert (await flow.availability()).available is True
    assert await flow.closed_reason() is None
    first = reads[0]
    assert first > 0

    await _switch(db, False)  # another replica switched agents off
    clock.now += 1.9
    assert (await flow.availability()).available is True  # still the copy, no read
    assert reads[0] == first

    clock.now += 0.2  # 2.1 s after the read: expired
    assert await flow.closed_reason() == "no_agent_available"
    assert reads[0] > first
    again = reads[0]
    assert (await flow.availability()).available is False
    assert reads[0] == again


async def test_a_change_told_applies_at_once(db: Database, clock: _Clock) -> None:
    flow = _flow(db, clock, handoff_availability_cache_s=3600.0)
    assert (await flow.availability()).available is True
    off = await _switch(db, False)
    flow.availability_changed(off)
    assert await flow.closed_reason() == "no_agent_available"
    on = await _switch(db, True)
    flow.availability_changed(on)
    assert await flow.closed_reason() is None


async def test_a_read_overtaken_by_a_change_is_not_kept(
    db: Database, clock: _Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = _flow(db, clock, handoff_availability_cache_s=3600.0)
    started, release = asyncio.Event(), asyncio.Event()
    real = get_availability

    async def slow_read(session: Any) -> Availability:
        started.set()
        await release.wait()
        return await real(session)

    monkeypatch.setattr("web.handoff_flow.get_availability", slow_read)
    reading = asyncio.create_task(flow.availability())  # reads "available" (no row yet)…
    await started.wait()
    flow.availability_changed(Availability(available=False))  # …while a change is told
    release.set()
    assert (await reading).available is True
    monkeypatch.setattr("web.handoff_flow.get_availability", real)
    assert (await flow.availability()).available is False  # the told value, not the old read


async def test_ttl_zero_reads_every_time(db: Database, clock: _Clock) -> None:
    flow = _flow(db, clock, handoff_availability_cache_s=0.0)
    assert await flow.closed_reason() is None
    await _switch(db, False)
    assert await flow.closed_reason() == "no_agent_available"  # same instant, no copy kept
    flow.availability_changed(Availability(available=True))
    assert await flow.closed_reason() == "no_agent_available"


async def _conversation(db: Database, lang: str | None) -> str:
    conv = await db.write(lambda s: writes.create_conversation(s, lang=lang))
    events = [
        NewEvent("user_message", {"text": "Where is order NC-12345?"}, "t1"),
        NewEvent("token", {"text": "Let me check."}, "t1"),
        NewEvent("sources", {"items": [{"title": "Shipping"}]}, "t1"),
        NewEvent("done", {"answered": False, "lang": "de"}, "t1"),
        NewEvent("feedback_hint", {"x": 1}, "t1"),  # not a summary type
        NewEvent("user_message", {"text": "A human please"}, "t2"),
    ]
    await db.write(lambda s: writes.append_events(s, conv.id, events))
    return conv.id


@pytest.mark.parametrize("lang", ["fr", None])
async def test_summary_inputs_equal_the_repository_reads(db: Database, lang: str | None) -> None:
    cid = await _conversation(db, lang)
    async with db.session() as session:
        conv = await repo.get_conversation(session, cid)
        want = await repo.recent_events(session, cid, limit=3, types=SUMMARY_EVENT_TYPES)
    assert conv is not None and conv.lang == lang and len(want) == 3

    # the SQLite writer's plain-SQL path
    got = await db.write(lambda s: summary_inputs(s, cid, limit=3, types=SUMMARY_EVENT_TYPES))
    assert got == (lang, want)
    # SQLAlchemy Core on a plain session (PostgreSQL, or a batch holding ORM objects)
    sync = create_engine(db.url.replace("+aiosqlite", ""))
    try:
        with Session(sync) as s:
            assert summary_inputs(s, cid, limit=3, types=SUMMARY_EVENT_TYPES) == (lang, want)
            assert summary_inputs(s, "nope", limit=3, types=SUMMARY_EVENT_TYPES) == (None, [])
    finally:
        sync.dispose()
    assert await db.write(
        lambda s: summary_inputs(s, "nope", limit=3, types=SUMMARY_EVENT_TYPES)
    ) == (None, [])


async def test_summary_uses_the_conversation_language(db: Database) -> None:
    cid = await _conversation(db, "de")
    summary = await _flow(db).summary(cid, reason="complaint")
    assert summary is not None
    assert summary["questions"] == ["Where is order NC-12345?", "A human please"]
    assert summary["unanswered"] == ["Where is order NC-12345?"]
    assert summary["topics"] == ["Shipping"] and summary["order_numbers"] == ["NC-12345"]
    assert summary["text"].startswith("Anliegen des Besuchers")  # German labels
