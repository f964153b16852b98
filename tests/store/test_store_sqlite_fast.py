"""The SQLite writer's plain-SQL fast path (``bot.store.sqlite_fast``) stores exactly what the
SQLAlchemy statements store, runs inside the job's SAVEPOINT, and steps aside while the
session holds ORM objects."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.errors import StoreError
from bot.store import Database, NewEvent, repo, sqlite_fast, writes
from bot.store.migrate import upgrade_async
from bot.store.models import Conversation, MessageKey

EVENTS = [
    NewEvent("user_message", {"message_id": "m1", "text": 'Grüße "x" 😀'}, "t1"),
    NewEvent("token", {"text": "a b"}, "t1"),
    NewEvent("done", {"mode": "extractive", "answered": True, "timing_ms": {"nlu": 1.5}}, "t1"),
]


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> Any:
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    await upgrade_async(url)
    database = Database(url)
    yield database
    await database.dispose()


def _turn(s: Session, cid: str, message_id: str) -> tuple[str, bool]:
    claimed = writes.claim_message(s, cid, message_id, "t1")
    writes.append_events(s, cid, EVENTS)
    writes.update_conversation(s, cid, lang="fr")
    return claimed


def _rows(path: Path, cid: str) -> dict[str, list[tuple[Any, ...]]]:
    con = sqlite3.connect(path)
    try:
        return {
            "conversations": con.execute(
                "SELECT lang, status, handoff_state, last_seq, length(updated_at),"
                " length(created_at), contact_id, handoff_requested_at"
                " FROM conversations WHERE id = ?",
                (cid,),
            ).fetchall(),
            "events": con.execute(
                "SELECT seq, type, turn_id, payload, length(created_at) FROM events"
                " WHERE conversation_id = ? ORDER BY seq",
                (cid,),
            ).fetchall(),
            "message_keys": con.execute(
                "SELECT message_id, turn_id, length(created_at) FROM message_keys"
                " WHERE conversation_id = ?",
                (cid,),
            ).fetchall(),
        }
    finally:
        con.close()


async def test_fast_path_stores_what_sqlalchemy_stores(sqlite_db: Database, tmp_path: Path) -> None:
    fast_cid = (await sqlite_db.write(lambda s: writes.create_conversation(s, lang="de"))).id
    used = await sqlite_db.write(lambda s: sqlite_fast.connection(s) is not None)
    assert used  # the writer thread's jobs take the fast path
    assert await sqlite_db.write(lambda s: _turn(s, fast_cid, "m1")) == ("t1", True)
    async with sqlite_db.writing() as s:  # an AsyncSession: the SQLAlchemy statements
        slow_cid = (await repo.create_conversation(s, lang="de")).id
        assert await s.run_sync(lambda ss: sqlite_fast.connection(ss)) is None
        assert await s.run_sync(lambda ss: _turn(ss, slow_cid, "m1")) == ("t1", True)
    fast, slow = _rows(tmp_path / "k.db", fast_cid), _rows(tmp_path / "k.db", slow_cid)
    assert fast == slow
    assert fast["conversations"][0][:4] == ("fr", "open", "bot", 3)
    async with sqlite_db.session() as s:  # read back through the ORM types
        conv = await repo.get_conversation(s, fast_cid)
        events = await repo.events_after(s, fast_cid, 0)
    assert conv is not None and conv.last_seq == 3
    assert [(e.seq, e.type, e.payload) for e in events] == [
        (i + 1, e.type, e.payload) for i, e in enumerate(EVENTS)
    ]


async def test_fast_claim_is_idempotent_and_timestamps_parse(sqlite_db: Database) -> None:
    cid = (await sqlite_db.write(lambda s: writes.create_conversation(s))).id
    first = await sqlite_db.write(lambda s: writes.claim_message(s, cid, "m", "turn-a"))
    again = await sqlite_db.write(lambda s: writes.claim_message(s, cid, "m", "turn-b"))
    assert (first, again) == (("turn-a", True), ("turn-a", False))
    await sqlite_db.write(lambda s: writes.append_events(s, cid, EVENTS[:1]))
    async with sqlite_db.session() as s:
        conv = await s.get(Conversation, cid)
    assert conv is not None and conv.updated_at >= conv.created_at


async def test_fast_append_to_unknown_conversation_raises(sqlite_db: Database) -> None:
    with pytest.raises(StoreError):
        await sqlite_db.write(lambda s: writes.append_events(s, "nope", EVENTS[:1]))


async def test_fast_writes_roll_back_with_the_job(sqlite_db: Database) -> None:
    cid = (await sqlite_db.write(lambda s: writes.create_conversation(s))).id

    def failing(s: Session) -> None:
        writes.append_events(s, cid, EVENTS)
        writes.claim_message(s, cid, "lost", "t9")
        raise ValueError("rolled back")

    with pytest.raises(ValueError):
        await sqlite_db.write(failing)
    assert await sqlite_db.write(lambda s: writes.claim_message(s, cid, "lost", "t2")) == (
        "t2",
        True,
    )
    stored = await sqlite_db.write(lambda s: writes.append_events(s, cid, EVENTS[:1]))
    assert [e.seq for e in stored] == [1]


async def test_orm_objects_in_the_session_switch_the_fast_path_off(sqlite_db: Database) -> None:
    cid = (await sqlite_db.write(lambda s: writes.create_conversation(s))).id

    def op(s: Session) -> tuple[bool, int, str]:
        conv = s.get(Conversation, cid)
        assert conv is not None
        off = sqlite_fast.connection(s) is None
        writes.append_events(s, cid, EVENTS)  # SQLAlchemy's bulk UPDATE keeps `conv` in sync
        writes.update_conversation(s, cid, handoff_state="pending_human")
        return off, conv.last_seq, conv.handoff_state

    assert await sqlite_db.write(op) == (True, 3, "pending_human")


def test_update_plain_only_takes_plain_columns() -> None:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE conversations (id TEXT, lang TEXT, status TEXT, updated_at TEXT)")
    con.execute("INSERT INTO conversations VALUES ('c', NULL, 'open', '')")
    assert not sqlite_fast.update_plain(con, "c", {"handoff_state": "human"}, "now")
    assert not sqlite_fast.update_plain(con, "c", {"lang": 3}, "now")
    assert sqlite_fast.update_plain(con, "c", {"lang": "de", "status": "closed"}, "now")
    assert con.execute("SELECT lang, status, updated_at FROM conversations").fetchall() == [
        ("de", "closed", "now")
    ]


async def test_a_failing_orm_flush_sinks_only_its_own_job(sqlite_db: Database) -> None:
    cid = (await sqlite_db.write(lambda s: writes.create_conversation(s))).id
    await sqlite_db.write(lambda s: writes.claim_message(s, cid, "dup", "t0"))

    def orm_duplicate(s: Session) -> None:
        writes.append_events(s, cid, EVENTS[:1])  # plain SQL first, then the ORM
        s.add(MessageKey(conversation_id=cid, message_id="dup", turn_id="tx"))
        s.flush()  # IntegrityError: the (conversation_id, message_id) pair exists

    def orm_ok(i: int) -> Callable[[Session], int]:
        def fn(s: Session) -> int:
            s.add(MessageKey(conversation_id=cid, message_id=f"orm-{i}", turn_id=f"t{i}"))
            return writes.append_events(s, cid, EVENTS[1:2])[0].seq

        return fn

    def plain(s: Session) -> int:
        return writes.append_events(s, cid, EVENTS[2:])[0].seq

    jobs: list[Callable[[Session], Any]] = [plain, orm_ok(1), orm_duplicate, plain, orm_ok(2)]
    gate = threading.Event()
    blocker = asyncio.ensure_future(sqlite_db.write(lambda s: gate.wait(10)))
    await asyncio.sleep(0.05)  # the writer thread now waits inside the blocker's batch
    pending = [asyncio.ensure_future(sqlite_db.write(j)) for j in jobs]
    await asyncio.sleep(0.05)  # all five queued: they run as one batch
    gate.set()
    await blocker
    results = await asyncio.gather(*pending, return_exceptions=True)
    assert isinstance(results[2], IntegrityError)
    assert sorted(r for r in results if isinstance(r, int)) == [1, 2, 3, 4]
    async with sqlite_db.session() as s:
        keys = (await s.execute(select(MessageKey.message_id))).scalars().all()
        events = await repo.events_after(s, cid, 0)
        conv = await repo.get_conversation(s, cid)
    assert sorted(keys) == ["dup", "orm-1", "orm-2"]
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert conv is not None and conv.last_seq == 4
