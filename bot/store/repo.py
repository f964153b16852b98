"""Repository functions over an ``AsyncSession``. Callers own the transaction
(``Database.writing()``); every function here works on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import StoreError
from bot.store.models import Conversation, EventRow, Feedback, MessageKey, utcnow


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    type: str
    turn_id: str | None
    payload: dict[str, Any]

    def frame(self) -> dict[str, Any]:
        """The websocket frame: payload plus ``type``, ``seq`` and ``turn_id`` (if any)."""
        out: dict[str, Any] = {"type": self.type, "seq": self.seq, **self.payload}
        if self.turn_id is not None:
            out["turn_id"] = self.turn_id
        return out


@dataclass(frozen=True, slots=True)
class NewEvent:
    type: str
    payload: dict[str, Any]
    turn_id: str | None = None


def new_id() -> str:
    return uuid.uuid4().hex


async def create_conversation(
    session: AsyncSession, *, lang: str | None = None, conversation_id: str | None = None
) -> Conversation:
    conv = Conversation(id=conversation_id or new_id(), lang=lang, last_seq=0)
    session.add(conv)
    await session.flush()
    return conv


async def get_conversation(session: AsyncSession, conversation_id: str) -> Conversation | None:
    return await session.get(Conversation, conversation_id)


async def update_conversation(session: AsyncSession, conversation_id: str, **values: Any) -> None:
    """Set columns (``lang``, ``status``, ``handoff_state``, ``contact_id``) and touch it."""
    await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(updated_at=utcnow(), **values)
    )


async def append_events(
    session: AsyncSession, conversation_id: str, events: Sequence[NewEvent]
) -> list[StoredEvent]:
    """Append events with consecutive seqs, atomically.

    One ``UPDATE … SET last_seq = last_seq + n RETURNING last_seq`` reserves the range: on
    PostgreSQL the row lock serialises concurrent writers of one conversation until commit; on
    SQLite the whole database has a single writer. Raises ``StoreError`` for an unknown id.
    """
    if not events:
        return []
    n = len(events)
    result = await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(last_seq=Conversation.last_seq + n, updated_at=utcnow())
        .returning(Conversation.last_seq)
    )
    last = result.scalar_one_or_none()
    if last is None:
        raise StoreError(f"unknown conversation {conversation_id!r}")
    first = int(last) - n + 1
    stored = [
        StoredEvent(seq=first + i, type=e.type, turn_id=e.turn_id, payload=e.payload)
        for i, e in enumerate(events)
    ]
    now = utcnow()
    session.add_all(
        EventRow(
            conversation_id=conversation_id,
            seq=s.seq,
            type=s.type,
            turn_id=s.turn_id,
            payload=s.payload,
            created_at=now,
        )
        for s in stored
    )
    await session.flush()
    return stored


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
    rows = (await session.execute(stmt)).all()
    return [StoredEvent(int(r[0]), r[1], r[2], dict(r[3])) for r in rows]


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
    rows = (await session.execute(stmt)).all()
    return [StoredEvent(int(r[0]), r[1], r[2], dict(r[3])) for r in reversed(rows)]


async def claim_message(
    session: AsyncSession, conversation_id: str, message_id: str, turn_id: str
) -> tuple[str, bool]:
    """Record ``message_id`` → ``turn_id``. Returns ``(turn_id, True)`` when new, or the turn
    it was first claimed for and ``False`` when the id was already seen (idempotent resend)."""
    existing = await session.scalar(
        select(MessageKey.turn_id).where(
            MessageKey.conversation_id == conversation_id, MessageKey.message_id == message_id
        )
    )
    if existing is not None:
        return existing, False
    try:
        async with session.begin_nested():
            session.add(
                MessageKey(conversation_id=conversation_id, message_id=message_id, turn_id=turn_id)
            )
    except IntegrityError:  # a concurrent writer (another replica) won the race
        won = await session.scalar(
            select(MessageKey.turn_id).where(
                MessageKey.conversation_id == conversation_id,
                MessageKey.message_id == message_id,
            )
        )
        if won is None:
            raise
        return won, False
    return turn_id, True


async def turn_exists(session: AsyncSession, conversation_id: str, turn_id: str) -> bool:
    found = await session.scalar(
        select(func.count())
        .select_from(EventRow)
        .where(EventRow.conversation_id == conversation_id, EventRow.turn_id == turn_id)
    )
    return bool(found)


async def put_feedback(
    session: AsyncSession,
    conversation_id: str,
    turn_id: str,
    rating: str,
    comment: str | None = None,
) -> Feedback:
    """Store the rating of one turn; a later rating of the same turn replaces the earlier one."""
    await session.execute(
        delete(Feedback).where(
            Feedback.conversation_id == conversation_id, Feedback.turn_id == turn_id
        )
    )
    fb = Feedback(conversation_id=conversation_id, turn_id=turn_id, rating=rating, comment=comment)
    session.add(fb)
    await session.flush()
    return fb


async def list_feedback(session: AsyncSession, conversation_id: str) -> list[Feedback]:
    rows = await session.scalars(
        select(Feedback).where(Feedback.conversation_id == conversation_id).order_by(Feedback.id)
    )
    return list(rows)
