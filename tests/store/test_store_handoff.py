from __future__ import annotations

import asyncio

import pytest

from bot.store import Database, repo
from bot.store import handoff as hf


async def _conv(db: Database) -> str:
    async with db.writing() as s:
        return (await repo.create_conversation(s, lang="en")).id


async def _state(db: Database, cid: str) -> tuple[str, str]:
    async with db.session() as s:
        conv = await repo.get_conversation(s, cid)
    assert conv is not None
    return conv.status, conv.handoff_state


async def test_full_cycle_appends_a_handoff_event_per_transition(db: Database) -> None:
    cid = await _conv(db)
    queued = await db.write(lambda s: hf.take_over(s, cid, target="pending_human", reason="api"))
    assert queued.handoff_state == "pending_human"
    msg = await db.write(lambda s: hf.agent_message(s, cid, text="Hallo", agent_name="Ana"))
    assert [e.type for e in msg.events] == ["handoff", "agent_message"]
    assert msg.events[0].payload == {
        "reason": "agent_message",
        "state": "human",
        "agent_name": "Ana",
    }
    assert msg.events[1].payload == {"text": "Hallo", "agent_name": "Ana"}
    more = await db.write(lambda s: hf.agent_message(s, cid, text="Noch da?", agent_name="Ana"))
    assert [e.type for e in more.events] == ["agent_message"]  # already human: no transition
    back = await db.write(lambda s: hf.release(s, cid))
    assert back.handoff_state == "bot" and back.events[0].payload["state"] == "bot"
    closed = await db.write(lambda s: hf.close(s, cid))
    assert await _state(db, cid) == ("closed", "closed") and closed.events[0].seq == 6
    await db.write(lambda s: hf.reopen(s, cid))
    assert await _state(db, cid) == ("open", "bot")
    async with db.session() as s:
        evs = await repo.events_after(s, cid, 0)
    assert [(e.type, e.payload.get("state")) for e in evs] == [
        ("handoff", "pending_human"),
        ("handoff", "human"),
        ("agent_message", None),
        ("agent_message", None),
        ("handoff", "bot"),
        ("handoff", "closed"),
        ("handoff", "bot"),
    ]


@pytest.mark.parametrize(
    ("setup", "action"),
    [
        ([], "release"),
        (["human"], "take_over"),
        (["close"], "message"),
        (["close"], "take_over"),
        (["close"], "close"),
        ([], "reopen"),
    ],
)
async def test_invalid_transitions_change_nothing(
    db: Database, setup: list[str], action: str
) -> None:
    cid = await _conv(db)
    for step in setup:
        if step == "human":
            await db.write(lambda s: hf.take_over(s, cid))
        else:
            await db.write(lambda s: hf.close(s, cid))
    before = await _state(db, cid)
    ops = {
        "release": lambda s: hf.release(s, cid),
        "take_over": lambda s: hf.take_over(s, cid),
        "message": lambda s: hf.agent_message(s, cid, text="x", agent_name="A"),
        "close": lambda s: hf.close(s, cid),
        "reopen": lambda s: hf.reopen(s, cid),
    }
    with pytest.raises(hf.InvalidTransitionError):
        await db.write(ops[action])
    assert await _state(db, cid) == before
    async with db.session() as s:
        conv = await repo.get_conversation(s, cid)
    assert conv is not None and conv.last_seq == len(setup)


async def test_unknown_conversation(db: Database) -> None:
    with pytest.raises(hf.UnknownConversationError):
        await db.write(lambda s: hf.release(s, "missing"))


async def test_concurrent_takeovers_only_one_wins(db: Database) -> None:
    cid = await _conv(db)
    results = await asyncio.gather(
        *(db.write(lambda s: hf.take_over(s, cid)) for _ in range(5)), return_exceptions=True
    )
    wins = [r for r in results if isinstance(r, hf.Transition)]
    assert len(wins) == 1
    assert all(isinstance(r, hf.InvalidTransitionError) for r in results if r not in wins)
