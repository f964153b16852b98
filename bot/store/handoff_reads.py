"""What a handoff summary reads, as one sync operation for :meth:`Database.write`.

A handoff turn needs the conversation's language and its recent transcript events. Through the
async read engine that is a session, an ORM ``get`` and a ``SELECT`` — on SQLite each statement
several aiosqlite thread round trips driven by the event loop (≈ 2 ms of GIL-holding Python per
handoff). As a job of the SQLite writer thread the same two ``SELECT``\\ s run as plain SQL on
its ``sqlite3`` connection (``bot.store.sqlite_fast.connection``), inside the batch's
transaction: the loop awaits one future. Elsewhere (PostgreSQL, or a batch whose session holds
ORM objects) the same statements run through SQLAlchemy Core on the session. Nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.models import Conversation, EventRow
from bot.store.sqlite_fast import connection
from bot.store.writes import StoredEvent

_EVENTS_SQL = (
    "SELECT seq, type, turn_id, payload FROM events WHERE conversation_id = ? "
    "AND type IN ({marks}) ORDER BY seq DESC LIMIT ?"
)


def summary_inputs(
    s: Session, conversation_id: str, *, limit: int, types: Sequence[str]
) -> tuple[str | None, list[StoredEvent]]:
    """``(lang, events)``: the conversation's ``lang`` (``None`` if unknown or no such
    conversation) and its newest ``limit`` events of ``types``, oldest first (what
    ``repo.get_conversation`` + ``repo.recent_events`` give)."""
    kinds = list(types)
    raw = connection(s)
    if raw is not None:
        row = raw.execute("SELECT lang FROM conversations WHERE id = ?", (conversation_id,))
        found = row.fetchone()
        sql = _EVENTS_SQL.format(marks=", ".join("?" * len(kinds)))  # placeholders only
        rows = raw.execute(sql, (conversation_id, *kinds, limit)).fetchall()
        events = [
            StoredEvent(int(r[0]), r[1], r[2], dict(json.loads(r[3]))) for r in reversed(rows)
        ]
    else:
        found = s.execute(
            select(Conversation.lang).where(Conversation.id == conversation_id)
        ).one_or_none()
        stmt = (
            select(EventRow.seq, EventRow.type, EventRow.turn_id, EventRow.payload)
            .where(EventRow.conversation_id == conversation_id, EventRow.type.in_(kinds))
            .order_by(EventRow.seq.desc())
            .limit(limit)
        )
        events = [
            StoredEvent(int(r[0]), r[1], r[2], dict(r[3])) for r in reversed(s.execute(stmt).all())
        ]
    return (None if found is None else found[0]), events
