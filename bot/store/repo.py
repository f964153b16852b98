"""Repository: async reads, and async wrappers of the sync write operations in
``bot.store.writes`` (for code holding an ``AsyncSession`` from ``Database.writing()``).
Hot paths use ``await db.write(fn)`` with the sync functions directly. Every function works on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store import writes
from bot.store.models import Conversation, EventRow, Feedback
from bot.store.writes import ConversationInfo, NewEvent, StoredEvent, new_id

__all__ = [
    "ConversationInfo",
    "NewEvent",
    "StoredEvent",
    "append_event",
    "append_events",
    "claim_message",
    "create_conversation",
    "events_after",
    "get_conversation",
    "list_feedback",
    "new_id",
    "put_feedback",
    "recent_events",
    "turn_exists",
    "update_conversation",
]


# --- writes (wrappers) -------------------------------------------------------------------
async def create_conversation(
    session: AsyncSession, *, lang: str | None = None, conversation_id: str | None = None
) -> ConversationInfo:
    return await session.run_sync(
        lambda s: writes.create_conversation(s, lang=lang, conversation_id=conversation_id)
    )


async def update_conversation(session: AsyncSession, conversation_id: str, **values: Any) -> None:
    await session.run_sync(lambda s: writes.update_conversation(s, conversation_id, **values))


async def append_events(
    session: AsyncSession, conversation_id: str, events: Sequence[NewEvent]
) -> list[StoredEvent]:
    return await session.run_sync(lambda s: writes.append_events(s, conversation_id, events))


async def append_event(
    session: AsyncSession,
    conversation_id: str,
    type: str,
    payload: dict[str, Any],
    *,
    turn_id: str | None = None,
) -> StoredEvent:
    (stored,) = await append_events(session, conversation_id, [NewEvent(type, payload, turn_id)])
    return stored


async def claim_message(
    session: AsyncSession, conversation_id: str, message_id: str, turn_id: str
) -> tuple[str, bool]:
    return await session.run_sync(
        lambda s: writes.claim_message(s, conversation_id, message_id, turn_id)
    )


async def put_feedback(
    session: AsyncSession,
    conversation_id: str,
    turn_id: str,
    rating: str,
    comment: str | None = None,
) -> None:
    await session.run_sync(
        lambda s: writes.put_feedback(s, conversation_id, turn_id, rating, comment)
    )


# --- reads -------------------------------------------------------------------------------
async def get_conversation(session: AsyncSession, conversation_id: str) -> Conversation | None:
    return await session.get(Conversation, conversation_id)


def _rows(rows: Sequence[Any]) -> list[StoredEvent]:
    return [StoredEvent(int(r[0]), r[1], r[2], dict(r[3])) for r in rows]


async def events_after(
    session: AsyncSession,
    conversation_id: str,
    seq: int,
    *,
    limit: int | None = None,
    types: Sequence[str] | None = None,
) -> list[StoredEvent]:
    """Events with ``seq > seq``, oldest first."""
    stmt = (
        select(EventRow.seq, EventRow.type, EventRow.turn_id, EventRow.payload)
        .where(EventRow.conversation_id == conversation_id, EventRow.seq > seq)
        .order_by(EventRow.seq)
    )
    if types is not None:
        stmt = stmt.where(EventRow.type.in_(list(types)))
    if limit is not None:
        stmt = stmt.limit(limit)
    return _rows((await session.execute(stmt)).all())


async def recent_events(
    session: AsyncSession, conversation_id: str, *, limit: int, types: Sequence[str]
) -> list[StoredEvent]:
    """The newest ``limit`` events of the given types, oldest first."""
    stmt = (
        select(EventRow.seq, EventRow.type, EventRow.turn_id, EventRow.payload)
        .where(EventRow.conversation_id == conversation_id, EventRow.type.in_(list(types)))
        .order_by(EventRow.seq.desc())
        .limit(limit)
    )
    return list(reversed(_rows((await session.execute(stmt)).all())))


async def turn_exists(session: AsyncSession, conversation_id: str, turn_id: str) -> bool:
    found = await session.scalar(
        select(func.count())
        .select_from(EventRow)
        .where(EventRow.conversation_id == conversation_id, EventRow.turn_id == turn_id)
    )
    return bool(found)


async def list_feedback(session: AsyncSession, conversation_id: str) -> list[Feedback]:
    rows = await session.scalars(
        select(Feedback).where(Feedback.conversation_id == conversation_id).order_by(Feedback.id)
    )
    return list(rows)
