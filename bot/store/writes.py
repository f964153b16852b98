"""Write operations as plain functions of a sync ``Session``.

They run inside ``Database.write(fn)`` — on SQLite in the group-commit writer thread
(``bot.store.writer``), on PostgreSQL through the async session's ``run_sync`` — and the async
wrappers in ``bot.store.repo`` call them too, so each operation is written once. On the SQLite
writer thread the ones on a chat turn's path (create a conversation, claim a message id, append
events, set plain columns) run as plain SQL (``bot.store.sqlite_fast``), storing the same rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot.errors import StoreError
from bot.store import outbox, outcomes, sqlite_fast
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


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    id: str
    lang: str | None
    status: str
    handoff_state: str
    last_seq: int


def new_id() -> str:
    return uuid.uuid4().hex


def create_conversation(
    session: Session, *, lang: str | None = None, conversation_id: str | None = None
) -> ConversationInfo:
    cid = conversation_id or new_id()
    now = utcnow()
    raw = sqlite_fast.connection(session)
    if raw is not None:
        sqlite_fast.insert_conversation(raw, cid, lang, sqlite_fast.timestamp(now))
    else:
        _insert_conversation(session, cid, lang, now)
    outbox.conversation_created(session, cid, lang)
    return ConversationInfo(cid, lang, "open", "bot", 0)


def _insert_conversation(session: Session, cid: str, lang: str | None, now: datetime) -> None:
    session.execute(
        insert(Conversation).values(
            id=cid,
            lang=lang,
            created_at=now,
            updated_at=now,
            status="open",
            handoff_state="bot",
            last_seq=0,
        )
    )


def update_conversation(session: Session, conversation_id: str, **values: Any) -> None:
    """Set columns (``lang``, ``status``, ``handoff_state``, ``contact_id``) and touch it.
    Entering ``pending_human`` stamps ``handoff_requested_at`` (kept while it stays there)."""
    if values.get("handoff_state") == "pending_human" and "handoff_requested_at" not in values:
        values["handoff_requested_at"] = case(
            (Conversation.handoff_state == "pending_human", Conversation.handoff_requested_at),
            else_=utcnow(),
        )
    elif values.get("handoff_state") in ("bot", "closed"):
        values.setdefault("handoff_requested_at", None)
    raw = sqlite_fast.connection(session)
    if raw is not None and sqlite_fast.update_plain(
        raw, conversation_id, values, sqlite_fast.timestamp(utcnow())
    ):
        return
    session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(updated_at=utcnow(), **values)
    )


def append_events_with_state(
    session: Session, conversation_id: str, events: Sequence[NewEvent]
) -> tuple[list[StoredEvent], str]:
    """Append events with consecutive seqs, atomically; also returns the conversation's
    ``handoff_state`` (read by the same statement).

    One ``UPDATE … SET last_seq = last_seq + n RETURNING last_seq`` reserves the range: on
    PostgreSQL the row lock serialises writers of one conversation until commit; SQLite has a
    single writer. Raises ``StoreError`` for an unknown conversation id.
    """
    n = len(events)
    raw = sqlite_fast.connection(session)
    if raw is not None:
        return _append_sqlite(session, raw, conversation_id, events)
    row = session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(last_seq=Conversation.last_seq + n, updated_at=utcnow())
        .returning(Conversation.last_seq, Conversation.handoff_state)
    ).one_or_none()
    if row is None:
        raise StoreError(f"unknown conversation {conversation_id!r}")
    first = int(row[0]) - n + 1
    stored = [
        StoredEvent(seq=first + i, type=e.type, turn_id=e.turn_id, payload=e.payload)
        for i, e in enumerate(events)
    ]
    if stored:
        now = utcnow()
        session.execute(
            insert(EventRow),
            [
                {
                    "conversation_id": conversation_id,
                    "seq": e.seq,
                    "type": e.type,
                    "turn_id": e.turn_id,
                    "payload": e.payload,
                    "created_at": now,
                }
                for e in stored
            ],
        )
        outcomes.record(session, conversation_id, outcomes.outcome_rows(stored), now)
        outbox.events_appended(session, conversation_id, stored, str(row[1]))
    return stored, str(row[1])


def _append_sqlite(
    session: Session, raw: Any, conversation_id: str, events: Sequence[NewEvent]
) -> tuple[list[StoredEvent], str]:
    now = sqlite_fast.timestamp(utcnow())
    reserved = sqlite_fast.reserve_seqs(raw, conversation_id, len(events), now)
    if reserved is None:
        raise StoreError(f"unknown conversation {conversation_id!r}")
    last, state = reserved
    first = last - len(events) + 1
    stored = [
        StoredEvent(seq=first + i, type=e.type, turn_id=e.turn_id, payload=e.payload)
        for i, e in enumerate(events)
    ]
    if stored:
        rows = [(e.seq, e.type, e.turn_id, e.payload) for e in stored]
        sqlite_fast.insert_events(raw, conversation_id, rows, now)
        done = outcomes.outcome_rows(stored)
        if done:
            sqlite_fast.insert_outcomes(raw, conversation_id, done, now)
        outbox.events_appended(session, conversation_id, stored, state)
    return stored, state


def append_events(
    session: Session, conversation_id: str, events: Sequence[NewEvent]
) -> list[StoredEvent]:
    if not events:
        return []
    return append_events_with_state(session, conversation_id, events)[0]


def claim_message(
    session: Session, conversation_id: str, message_id: str, turn_id: str
) -> tuple[str, bool]:
    """Record ``message_id`` → ``turn_id``. Returns ``(turn_id, True)`` when new, or the turn
    it was first claimed for and ``False`` for an already-seen id (idempotent resend).
    Race-free: ``INSERT … ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL)."""
    raw = sqlite_fast.connection(session)
    if raw is not None:
        now = sqlite_fast.timestamp(utcnow())
        found = sqlite_fast.claim(raw, conversation_id, message_id, turn_id, now)
        if found is None:
            raise StoreError("message id claimed concurrently but not visible")
        return found
    dialect = session.get_bind().dialect.name
    values = {
        "conversation_id": conversation_id,
        "message_id": message_id,
        "turn_id": turn_id,
        "created_at": utcnow(),
    }
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(MessageKey).values(values)
    result = session.execute(
        stmt.on_conflict_do_nothing(index_elements=["conversation_id", "message_id"])
    )
    if getattr(result, "rowcount", 0) == 1:
        return turn_id, True
    existing = session.scalar(
        select(MessageKey.turn_id).where(
            MessageKey.conversation_id == conversation_id, MessageKey.message_id == message_id
        )
    )
    if existing is None:
        raise StoreError("message id claimed concurrently but not visible")
    return existing, False


def put_feedback(
    session: Session, conversation_id: str, turn_id: str, rating: str, comment: str | None = None
) -> None:
    """Store the rating of one turn; a later rating of the same turn replaces the earlier one."""
    session.execute(
        delete(Feedback).where(
            Feedback.conversation_id == conversation_id, Feedback.turn_id == turn_id
        )
    )
    session.execute(
        insert(Feedback).values(
            conversation_id=conversation_id,
            turn_id=turn_id,
            rating=rating,
            comment=comment,
            created_at=utcnow(),
        )
    )
    outbox.feedback_created(session, conversation_id, turn_id, rating, comment)


def turn_exists(session: Session, conversation_id: str, turn_id: str) -> bool:
    """Whether ``turn_id`` has any event in the conversation (for checks inside a write)."""
    found = session.scalar(
        select(EventRow.id)
        .where(EventRow.conversation_id == conversation_id, EventRow.turn_id == turn_id)
        .limit(1)
    )
    return found is not None


def last_turn_state(session: Session, conversation_id: str) -> tuple[str | None, str | None]:
    """``(type, turn_id)`` of the newest ``user_message`` / ``done`` / ``error`` event: a
    ``user_message`` there means the last turn has not finished."""
    row = session.execute(
        select(EventRow.type, EventRow.turn_id)
        .where(
            EventRow.conversation_id == conversation_id,
            EventRow.type.in_(["user_message", "done", "error"]),
        )
        .order_by(EventRow.seq.desc())
        .limit(1)
    ).one_or_none()
    return (row[0], row[1]) if row else (None, None)
