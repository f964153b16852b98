from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from bot.errors import StoreError
from bot.store import Database, NewEvent, repo, writes


async def _new_conversation(db: Database) -> str:
    async with db.writing() as s:
        conv = await repo.create_conversation(s, lang="de")
        return conv.id


async def test_append_assigns_consecutive_seqs_and_reads_back(db: Database) -> None:
    cid = await _new_conversation(db)
    async with db.writing() as s:
        first = await repo.append_event(s, cid, "user_message", {"text": "hi"}, turn_id="t1")
        batch = await repo.append_events(
            s, cid, [NewEvent("token", {"text": w}, "t1") for w in ("a", "b", "c")]
        )
    assert first.seq == 1
    assert [e.seq for e in batch] == [2, 3, 4]
    async with db.session() as s:
        after = await repo.events_after(s, cid, 2)
        conv = await repo.get_conversation(s, cid)
    assert [(e.seq, e.payload["text"]) for e in after] == [(3, "b"), (4, "c")]
    assert after[0].frame() == {"type": "token", "seq": 3, "text": "b", "turn_id": "t1"}
    assert conv is not None and conv.last_seq == 4 and conv.lang == "de"
    assert conv.status == "open" and conv.handoff_state == "bot"


async def test_concurrent_appends_never_share_a_seq(db: Database) -> None:
    cid = await _new_conversation(db)

    async def writer(i: int) -> list[int]:
        seqs: list[int] = []
        for j in range(5):
            async with db.writing() as s:
                ev = await repo.append_event(s, cid, "token", {"text": f"{i}-{j}"})
                seqs.append(ev.seq)
        return seqs

    results = await asyncio.gather(*(writer(i) for i in range(8)))
    all_seqs = sorted(s for r in results for s in r)
    assert all_seqs == list(range(1, 41))
    async with db.session() as s:
        stored = await repo.events_after(s, cid, 0)
    assert [e.seq for e in stored] == list(range(1, 41))


async def test_sequences_are_per_conversation(db: Database) -> None:
    a, b = await _new_conversation(db), await _new_conversation(db)
    async with db.writing() as s:
        await repo.append_event(s, a, "token", {"text": "x"})
        await repo.append_event(s, a, "token", {"text": "y"})
        eb = await repo.append_event(s, b, "token", {"text": "z"})
    assert eb.seq == 1
    async with db.session() as s:
        assert [e.payload["text"] for e in await repo.events_after(s, b, 0)] == ["z"]


async def test_append_to_unknown_conversation_raises_store_error(db: Database) -> None:
    with pytest.raises(StoreError):
        async with db.writing() as s:
            await repo.append_event(s, "nope", "token", {"text": "x"})


async def test_failed_transaction_rolls_back_seq(db: Database) -> None:
    cid = await _new_conversation(db)
    with pytest.raises(RuntimeError):
        async with db.writing() as s:
            await repo.append_event(s, cid, "token", {"text": "lost"})
            raise RuntimeError("boom")
    async with db.writing() as s:
        ev = await repo.append_event(s, cid, "token", {"text": "kept"})
    assert ev.seq == 1


async def test_claim_message_is_idempotent(db: Database) -> None:
    cid = await _new_conversation(db)
    async with db.writing() as s:
        first = await repo.claim_message(s, cid, "m-1", "turn-a")
    async with db.writing() as s:
        again = await repo.claim_message(s, cid, "m-1", "turn-b")
        other = await repo.claim_message(s, cid, "m-2", "turn-c")
    assert first == ("turn-a", True)
    assert again == ("turn-a", False)
    assert other == ("turn-c", True)


async def test_write_runs_sync_operations_with_group_commit(db: Database) -> None:
    cid = await _new_conversation(db)

    def append(i: int) -> Callable[[Session], int]:
        def fn(s: Session) -> int:
            return writes.append_events(s, cid, [NewEvent("token", {"i": i})])[0].seq

        return fn

    def failing(s: Session) -> None:
        writes.append_events(s, cid, [NewEvent("token", {"i": -1})])
        raise ValueError("this job fails alone")

    jobs = [db.write(append(i)) for i in range(30)]
    jobs.insert(10, db.write(failing))
    results = await asyncio.gather(*jobs, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    seqs = sorted(r for r in results if isinstance(r, int))
    assert [type(e) for e in errors] == [ValueError]
    assert seqs == list(range(1, 31))
    async with db.session() as s:
        stored = await repo.events_after(s, cid, 0)
    assert sorted(e.payload["i"] for e in stored) == list(range(30))


async def test_feedback_latest_rating_wins(db: Database) -> None:
    cid = await _new_conversation(db)
    async with db.writing() as s:
        await repo.put_feedback(s, cid, "t1", "up")
    async with db.writing() as s:
        await repo.put_feedback(s, cid, "t1", "down", "wrong page")
    async with db.session() as s:
        rows = await repo.list_feedback(s, cid)
    assert [(r.turn_id, r.rating, r.comment) for r in rows] == [("t1", "down", "wrong page")]


async def test_update_conversation_and_recent_events(db: Database) -> None:
    cid = await _new_conversation(db)
    async with db.writing() as s:
        await repo.update_conversation(s, cid, handoff_state="pending_human", lang="en")
        for i in range(6):
            await repo.append_event(s, cid, "user_message" if i % 2 else "token", {"i": i})
    async with db.session() as s:
        conv = await repo.get_conversation(s, cid)
        recent = await repo.recent_events(s, cid, limit=2, types=["user_message"])
        tail = await repo.events_after(s, cid, 0, limit=2, types=["token"])
    assert conv is not None and conv.handoff_state == "pending_human" and conv.lang == "en"
    assert [e.payload["i"] for e in recent] == [3, 5]
    assert [e.payload["i"] for e in tail] == [0, 2]
