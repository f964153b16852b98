"""The webhook outbox on SQLite and PostgreSQL: transcript writes queue deliveries in their own
transaction, only for active subscriptions to the event type; claims, leases and outcomes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.store import Database, NewEvent, writes
from bot.store import handoff as hf
from bot.store import webhook_queue as q
from bot.store import webhook_subs as subs
from bot.store.models import utcnow
from bot.store.outbox import enqueue_webhook
from bot.store.webhook_models import EVENT_TYPES, WebhookDelivery

ALL = list(EVENT_TYPES)


async def _subscribe(db: Database, types: list[str], *, active: bool = True) -> str:
    async with db.writing() as s:
        sub = await subs.create_subscription(
            s, url="http://127.0.0.1:9/hook", event_types=types, active=active
        )
        return sub.id


async def _bodies(db: Database, sub_id: str | None = None) -> list[dict[str, Any]]:
    async with db.session() as s:
        stmt = select(WebhookDelivery).order_by(WebhookDelivery.id)
        if sub_id is not None:
            stmt = stmt.where(WebhookDelivery.subscription_id == sub_id)
        rows = list(await s.scalars(stmt))
    return [json.loads(r.body) | {"_key": r.idempotency_key} for r in rows]


async def _count(db: Database) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(WebhookDelivery)) or 0)


def _turn(s: Session, cid: str) -> None:
    writes.append_events(
        s,
        cid,
        [
            NewEvent("user_message", {"text": "Wo ist mein Paket?", "message_id": "m1"}, "t1"),
            NewEvent("token", {"text": "Es ist "}, "t1"),
        ],
    )
    writes.append_events(
        s,
        cid,
        [
            NewEvent("token", {"text": "unterwegs."}, "t1"),
            NewEvent("done", {"mode": "extractive", "answered": True, "lang": "de"}, "t1"),
        ],
    )


async def test_no_subscription_queues_nothing(db: Database) -> None:
    cid = (await db.write(lambda s: writes.create_conversation(s, lang="de"))).id
    await db.write(lambda s: _turn(s, cid))
    await _subscribe(db, ALL, active=False)
    await db.write(lambda s: hf.close(s, cid))
    assert await _count(db) == 0


async def test_transcript_writes_queue_their_events(db: Database) -> None:
    sub_id = await _subscribe(db, ALL)
    other = await _subscribe(db, ["conversation.closed"])
    cid = (await db.write(lambda s: writes.create_conversation(s, lang="de"))).id
    await db.write(lambda s: _turn(s, cid))
    await db.write(lambda s: hf.take_over(s, cid, target="pending_human", reason="api"))
    await db.write(lambda s: hf.agent_message(s, cid, text="Hallo", agent_name="Ana"))
    await db.write(lambda s: hf.release(s, cid))
    await db.write(lambda s: writes.put_feedback(s, cid, "t1", "up", None))
    await db.write(lambda s: hf.close(s, cid))
    await db.write(lambda s: hf.reopen(s, cid))
    await db.write(
        lambda s: enqueue_webhook(s, "contact.created", {"contact_id": "c1", "email": "a@b.de"})
    )

    got = await _bodies(db, sub_id)
    assert [b["type"] for b in got] == [
        "conversation.created",
        "message.created",
        "message.created",
        "handoff.requested",
        "message.created",
        "handoff.released",
        "feedback.created",
        "conversation.closed",
        "contact.created",
    ]
    user, bot, agent = got[1]["data"], got[2]["data"], got[4]["data"]
    assert (user["role"], user["text"], user["message_id"]) == ("user", "Wo ist mein Paket?", "m1")
    assert (bot["role"], bot["text"], bot["mode"]) == ("bot", "Es ist unterwegs.", "extractive")
    assert (agent["role"], agent["agent_name"]) == ("agent", "Ana")
    assert got[3]["data"]["previous_state"] == "bot" and got[3]["data"]["state"] == "pending_human"
    assert got[5]["data"]["state"] == "bot"
    assert got[6]["data"] == {
        "conversation_id": cid,
        "turn_id": "t1",
        "rating": "up",
        "comment": None,
    }
    assert all(b["conversation_id"] == cid for b in got[:-1])
    assert got[-1]["conversation_id"] is None and got[-1]["data"]["email"] == "a@b.de"
    assert len({b["id"] for b in got}) == len(got)
    assert all(b["_key"] == f"{b['id']}.{sub_id}" for b in got)

    (closed,) = await _bodies(db, other)
    assert closed["type"] == "conversation.closed"
    assert closed["id"] == got[7]["id"]  # one event, one delivery per subscription


async def test_a_failed_write_queues_nothing(db: Database) -> None:
    await _subscribe(db, ALL)

    def failing(s: Session) -> None:
        writes.create_conversation(s, conversation_id="c-fail")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await db.write(failing)
    assert await _count(db) == 0


async def test_claim_lease_outcomes_and_release(db: Database) -> None:
    await _subscribe(db, ["conversation.created"])
    for _ in range(5):
        await db.write(lambda s: writes.create_conversation(s))
    first = await db.write(lambda s: q.claim_due(s, limit=3, lease_s=60, worker="w1"))
    second = await db.write(lambda s: q.claim_due(s, limit=10, lease_s=60, worker="w2"))
    assert len(first) == 3 and len(second) == 2
    assert not {c.id for c in first} & {c.id for c in second}
    assert await db.write(lambda s: q.claim_due(s, limit=10, lease_s=60, worker="w3")) == []

    now = utcnow()
    outcomes = [
        q.Outcome(first[0].id, "delivered", now, now, 200, None),
        q.Outcome(first[1].id, "pending", now - timedelta(seconds=1), now, 500, "HTTP 500"),
        q.Outcome(first[2].id, "failed", now, now, None, "ConnectError"),
    ]
    await db.write(lambda s: q.record_outcomes(s, outcomes))
    again = await db.write(lambda s: q.claim_due(s, limit=10, lease_s=60, worker="w1"))
    assert [c.id for c in again] == [first[1].id] and again[0].attempts == 1

    assert await db.write(lambda s: q.release_claims(s, "w2")) == 2
    back = await db.write(lambda s: q.claim_due(s, limit=10, lease_s=60, worker="w4"))
    assert sorted(c.id for c in back) == sorted(c.id for c in second)
    async with db.session() as s:
        rows = {r.id: r for r in await s.scalars(select(WebhookDelivery))}
    assert rows[first[0].id].status == "delivered" and rows[first[0].id].delivered_at
    assert (rows[first[2].id].status, rows[first[2].id].last_error) == ("failed", "ConnectError")


async def test_inactive_subscription_holds_its_deliveries(db: Database) -> None:
    sub_id = await _subscribe(db, ["conversation.created"])
    await db.write(lambda s: writes.create_conversation(s))
    async with db.writing() as s:
        await subs.update_subscription(s, sub_id, active=False)
    assert await db.write(lambda s: q.claim_due(s, limit=10, lease_s=60, worker="w")) == []
    async with db.writing() as s:
        await subs.update_subscription(s, sub_id, active=True)
    assert len(await db.write(lambda s: q.claim_due(s, limit=10, lease_s=60, worker="w"))) == 1


async def test_prune_and_gdpr_delete_remove_deliveries(db: Database) -> None:
    await _subscribe(db, ["conversation.created", "conversation.closed"])
    cid = (await db.write(lambda s: writes.create_conversation(s))).id
    keep = (await db.write(lambda s: writes.create_conversation(s))).id
    async with db.writing() as s:
        await s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.conversation_id == keep)
            .values(status="delivered", created_at=utcnow() - timedelta(days=40))
        )
    pruned = await db.write(lambda s: q.prune(s, older_than=utcnow() - timedelta(days=30)))
    assert pruned == 1
    from bot.store.listing import delete_conversation_sync

    await db.write(lambda s: delete_conversation_sync(s, cid))
    assert await _count(db) == 0


async def test_postgres_claims_skip_rows_locked_by_another_dispatcher(pg: Any) -> None:
    from bot.store.migrate import upgrade_async

    url = pg.create_database()
    await upgrade_async(url)
    db = Database(url)
    try:
        await _subscribe(db, ["conversation.created"])
        for _ in range(4):
            await db.write(lambda s: writes.create_conversation(s))
        async with db.sessions() as a, a.begin():  # replica A holds its claim uncommitted
            mine = await a.run_sync(lambda s: q.claim_due(s, limit=2, lease_s=60, worker="A"))
            theirs = await db.write(lambda s: q.claim_due(s, limit=10, lease_s=60, worker="B"))
        assert len(mine) == 2 and len(theirs) == 2
        assert not {c.id for c in mine} & {c.id for c in theirs}
    finally:
        await db.dispose()
