"""The hot writes of a chat turn as plain SQL on the SQLite writer thread's own connection.

A turn writes a handful of rows (claim the message id, reserve a ``seq`` range, insert the
events, touch the conversation); through SQLAlchemy's ORM bulk paths that costs ~1 ms of Python
per statement, on the one thread that holds the GIL. Here the same statements run on the
``sqlite3`` connection of the writer's transaction (``bot.store.writer`` puts it in
``session.info``), with the values SQLAlchemy would have stored: ``DateTime`` as
``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC), ``JSON`` as ``json.dumps``. They share the transaction and
its SAVEPOINTs, so atomicity and rollback are unchanged.

Used only while the session holds no ORM objects (nothing pending, nothing loaded), so no
identity-map state can go stale or be flushed out of order; otherwise, and on PostgreSQL, the
SQLAlchemy statements in ``bot.store.writes`` run as before.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

RAW_CONNECTION = "klartext.sqlite3"  # ``Session.info`` key, set by the SQLite writer thread

_UPDATABLE = frozenset({"lang", "status", "contact_id"})


def connection(session: Session) -> sqlite3.Connection | None:
    """The writer transaction's ``sqlite3`` connection, if the fast path may use it now."""
    raw = session.info.get(RAW_CONNECTION)
    if raw is None or session.identity_map or session.new or session.deleted:
        return None
    return raw  # type: ignore[no-any-return]


def timestamp(value: datetime) -> str:
    """What SQLAlchemy's SQLite ``DateTime`` stores (the UTC wall time, microseconds)."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def insert_conversation(
    raw: sqlite3.Connection, conversation_id: str, lang: str | None, now: str
) -> None:
    """A new open conversation, handled by the bot, no events yet."""
    raw.execute(
        "INSERT INTO conversations (id, lang, created_at, updated_at, status, handoff_state,"
        " last_seq) VALUES (?, ?, ?, ?, 'open', 'bot', 0)",
        (conversation_id, lang, now, now),
    )


def reserve_seqs(
    raw: sqlite3.Connection, conversation_id: str, n: int, now: str
) -> tuple[int, str] | None:
    """``last_seq += n`` and touch; returns ``(new last_seq, handoff_state)`` or ``None``."""
    row = raw.execute(
        "UPDATE conversations SET last_seq = last_seq + ?, updated_at = ? WHERE id = ? "
        "RETURNING last_seq, handoff_state",
        (n, now, conversation_id),
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def insert_events(
    raw: sqlite3.Connection,
    conversation_id: str,
    rows: Sequence[tuple[int, str, str | None, dict[str, Any]]],
    now: str,
) -> None:
    """``rows`` = ``(seq, type, turn_id, payload)``."""
    raw.executemany(
        "INSERT INTO events (conversation_id, seq, type, turn_id, payload, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (conversation_id, seq, kind, turn, json.dumps(payload), now)
            for seq, kind, turn, payload in rows
        ],
    )


def insert_outcomes(
    raw: sqlite3.Connection,
    conversation_id: str,
    rows: Sequence[tuple[int, str | None, str, bool, bool, float | None]],
    now: str,
) -> None:
    """``turn_outcomes`` rows (:func:`bot.store.outcomes.outcome_rows`)."""
    raw.executemany(
        "INSERT INTO turn_outcomes (conversation_id, turn_id, seq, created_at, mode, answered,"
        " partial, confidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (conversation_id, turn, seq, now, mode, int(answered), int(partial), conf)
            for seq, turn, mode, answered, partial, conf in rows
        ],
    )


def claim(
    raw: sqlite3.Connection, conversation_id: str, message_id: str, turn_id: str, now: str
) -> tuple[str, bool] | None:
    """``(turn_id, True)`` if the message id was new, else ``(the turn it was first claimed
    for, False)``; ``None`` if that is not visible (impossible with SQLite's single writer)."""
    cur = raw.execute(
        "INSERT INTO message_keys (conversation_id, message_id, turn_id, created_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (conversation_id, message_id) DO NOTHING",
        (conversation_id, message_id, turn_id, now),
    )
    if cur.rowcount == 1:
        return turn_id, True
    row = raw.execute(
        "SELECT turn_id FROM message_keys WHERE conversation_id = ? AND message_id = ?",
        (conversation_id, message_id),
    ).fetchone()
    return None if row is None else (str(row[0]), False)


def update_plain(
    raw: sqlite3.Connection, conversation_id: str, values: dict[str, Any], now: str
) -> bool:
    """Set plain columns (``lang``, ``status``, ``contact_id``) and touch; ``False`` (nothing
    done) for anything else, which the caller writes through SQLAlchemy."""
    if not values.keys() <= _UPDATABLE or not all(
        v is None or isinstance(v, str) for v in values.values()
    ):
        return False
    cols = sorted(values)
    sets = "".join(f"{c} = ?, " for c in cols)
    raw.execute(
        f"UPDATE conversations SET {sets}updated_at = ? WHERE id = ?",  # noqa: S608 — fixed names
        (*(values[c] for c in cols), now, conversation_id),
    )
    return True
