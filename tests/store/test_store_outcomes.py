"""Turn outcomes (SQLite and PostgreSQL): every ``done`` event gets its typed row in the same
transaction, on both write paths, and migration 0007 fills the table from older events."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from bot.store import Database, NewEvent, repo, writes
from bot.store.migrate import upgrade_async
from bot.store.outcomes import TurnOutcome

DONE = [
    {"mode": "extractive", "answered": True, "confidence": 0.81},
    {"mode": "fallback", "answered": False, "confidence": 0},
    {"mode": "fallback", "answered": False, "partial": True},
    {"mode": "smalltalk", "answered": "yes", "confidence": "high"},  # not typed as we write
]
WANT = [
    ("extractive", True, False, 0.81),
    ("fallback", False, False, 0.0),
    ("fallback", False, True, None),
    ("smalltalk", False, False, None),
]


def _turns() -> list[NewEvent]:
    out: list[NewEvent] = []
    for i, done in enumerate(DONE):
        out += [
            NewEvent("user_message", {"text": f"q{i}"}, f"t{i}"),
            NewEvent("done", done, f"t{i}"),
        ]
    return out


async def _outcomes(
    db: Database, cid: str
) -> list[tuple[str | None, int, str, bool, bool, float | None]]:
    async with db.session() as s:
        rows = await s.execute(
            select(
                TurnOutcome.turn_id, TurnOutcome.seq, TurnOutcome.mode, TurnOutcome.answered,
                TurnOutcome.partial, TurnOutcome.confidence,
            ).where(TurnOutcome.conversation_id == cid).order_by(TurnOutcome.seq)
        )  # fmt: skip
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


@pytest.mark.parametrize("path", ["write", "writing"])
async def test_each_done_event_gets_its_outcome(db: Database, path: str) -> None:
    async with db.writing() as s:
        cid = (await repo.create_conversation(s, lang="en")).id
    if path == "write":  # on SQLite: the writer thread's plain-SQL fast path
        await db.write(lambda s: writes.append_events(s, cid, _turns()))
    else:
        async with db.writing() as s:
            await repo.append_events(s, cid, _turns())
    got = await _outcomes(db, cid)
    assert [(t, seq) for t, seq, *_ in got] == [("t0", 2), ("t1", 4), ("t2", 6), ("t3", 8)]
    assert [tuple(r[2:]) for r in got] == WANT


async def test_migration_fills_outcomes_from_older_events(db_url: str) -> None:
    await upgrade_async(db_url, "0006")
    db = Database(db_url)
    try:
        now = datetime(2026, 3, 1, 12, tzinfo=UTC)
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO conversations (id, created_at, updated_at, status, handoff_state,"
                    " last_seq) VALUES ('c1', :now, :now, 'open', 'bot', 8)"
                ),
                {"now": now},
            )
            for i, done in enumerate(DONE):
                for seq, kind, payload in ((2 * i + 1, "user_message", {"text": f"q{i}"}),
                                           (2 * i + 2, "done", done)):  # fmt: skip
                    await conn.execute(
                        text(
                            "INSERT INTO events (conversation_id, seq, type, turn_id, payload,"
                            " created_at) VALUES ('c1', :seq, :type, :turn, :payload, :now)"
                        ),
                        {"seq": seq, "type": kind, "turn": f"t{i}", "payload": json.dumps(payload),
                         "now": now},
                    )  # fmt: skip
        await upgrade_async(db_url)
        got = await _outcomes(db, "c1")
        assert [tuple(r[2:]) for r in got] == WANT
        async with db.session() as s:
            created = await s.scalar(select(TurnOutcome.created_at).limit(1))
        assert created is not None and created.replace(tzinfo=UTC) == now
    finally:
        await db.dispose()
