"""Data retention in the store (SQLite and PostgreSQL): which conversations are expired, and the
erasure that re-checks the cutoff in its own transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from bot.store import Database, NewEvent, repo
from bot.store.listing import delete_conversation_sync
from bot.store.models import Conversation, EventRow, Feedback
from bot.store.outcomes import TurnOutcome
from bot.store.retention import (
    count_expired,
    erase_if_expired_sync,
    expired_conversations,
    retention_cutoff,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def _conversation(db: Database, days_idle: float) -> str:
    async with db.writing() as s:
        conv = await repo.create_conversation(s, lang="de")
        await repo.append_events(
            s,
            conv.id,
            [
                NewEvent("user_message", {"text": "Meine Adresse ist ..."}, "t"),
                NewEvent("done", {"mode": "fallback", "answered": False}, "t"),
            ],
        )
        last = NOW - timedelta(days=days_idle)
        await s.execute(
            update(Conversation).where(Conversation.id == conv.id).values(updated_at=last)
        )
    return conv.id


async def _count(
    db: Database, model: type[EventRow] | type[Conversation] | type[TurnOutcome], cid: str
) -> int:
    column = Conversation.id if model is Conversation else model.conversation_id  # type: ignore[union-attr]
    async with db.session() as s:
        return int(
            await s.scalar(select(func.count()).select_from(model).where(column == cid)) or 0
        )


def test_cutoff() -> None:
    assert retention_cutoff(30, now=NOW) == NOW - timedelta(days=30)
    with pytest.raises(ValueError, match="positive"):
        retention_cutoff(0)


async def test_expired_oldest_first_and_erased_with_their_rows(db: Database) -> None:
    old = await _conversation(db, 90)
    older = await _conversation(db, 400)
    recent = await _conversation(db, 5)
    async with db.writing() as s:
        s.add(Feedback(conversation_id=old, turn_id="t", rating="down"))
    cutoff = retention_cutoff(30, now=NOW)
    async with db.session() as s:
        assert await expired_conversations(s, cutoff) == [older, old]
        assert await expired_conversations(s, cutoff, limit=1) == [older]
        assert await count_expired(s, cutoff) == 2

    assert await db.write(lambda s: erase_if_expired_sync(s, old, cutoff)) is True
    assert await _count(db, Conversation, old) == 0 and await _count(db, EventRow, old) == 0
    assert await _count(db, TurnOutcome, old) == 0 and await _count(db, TurnOutcome, recent) == 1
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Feedback)) == 0
    # not expired, or already gone: nothing happens
    assert await db.write(lambda s: erase_if_expired_sync(s, recent, cutoff)) is False
    assert await db.write(lambda s: erase_if_expired_sync(s, old, cutoff)) is False
    assert await _count(db, EventRow, recent) == 2


async def test_a_conversation_active_again_after_the_read_is_kept(db: Database) -> None:
    cid = await _conversation(db, 90)
    cutoff = retention_cutoff(30, now=NOW)
    async with db.session() as s:
        assert await expired_conversations(s, cutoff) == [cid]
    async with db.writing() as s:  # the visitor comes back before the erasure runs
        await repo.append_events(s, cid, [NewEvent("user_message", {"text": "noch da?"}, "t2")])
    assert await db.write(lambda s: erase_if_expired_sync(s, cid, cutoff)) is False
    assert await _count(db, EventRow, cid) == 3
    assert await db.write(lambda s: delete_conversation_sync(s, cid)) is True  # the API still can
