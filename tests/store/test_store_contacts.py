"""Contacts in the store (SQLite and PostgreSQL): normalisation, uniqueness, updates, consent,
linking, lead capture, listing, erasure; plus the feedback listing and the daily stats SQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import select, update

from bot.store import Database, NewEvent, repo, writes
from bot.store import contacts as c
from bot.store.feedback import FeedbackFilter, list_feedback_page
from bot.store.listing import BadCursorError, get_conversation_row
from bot.store.models import EventRow
from bot.store.outcomes import TurnOutcome
from bot.store.stats import daily_stats, unanswered_questions
from bot.store.webhook_models import WebhookDelivery
from bot.store.webhook_subs import create_subscription


async def test_create_normalises_and_enforces_uniqueness(db: Database) -> None:
    consent = c.Consent(True, "crm-form", "Newsletter and follow-ups")
    a = await db.write(
        lambda s: c.create_contact(
            s, email="  Anna.Berg@Example.COM ", name=" Anna ", external_id="crm-1", consent=consent
        )
    )
    assert a.email == "anna.berg@example.com" and a.name == "Anna" and a.external_id == "crm-1"
    assert a.consent and a.consent_source == "crm-form" and a.consent_at is not None
    assert a.consent_text == "Newsletter and follow-ups"
    # neither email nor external id: any number of such contacts
    b1 = await db.write(lambda s: c.create_contact(s, name="No Email"))
    b2 = await db.write(lambda s: c.create_contact(s, phone="+4930123"))
    assert b1.id != b2.id and not b1.consent and b1.consent_at is None
    with pytest.raises(c.ContactConflictError) as err:
        await db.write(lambda s: c.create_contact(s, email="ANNA.BERG@example.com"))
    assert err.value.field == "email"
    with pytest.raises(c.ContactConflictError) as err:
        await db.write(lambda s: c.create_contact(s, external_id="crm-1"))
    assert err.value.field == "external_id"
    with pytest.raises(ValueError):
        await db.write(lambda s: c.create_contact(s, email="not-an-email"))

    async with db.session() as s:
        assert (await c.find_contact(s, email="anna.BERG@example.com")) == a
        assert (await c.find_contact(s, external_id="crm-1")) == a
        assert await c.find_contact(s, external_id="crm-2") is None
        assert await c.get_contact(s, b1.id) == b1


async def test_update_sets_clears_and_checks(db: Database) -> None:
    a = await db.write(lambda s: c.create_contact(s, email="a@example.com", name="A"))
    b = await db.write(lambda s: c.create_contact(s, email="b@example.com"))
    upd = await db.write(
        lambda s: c.update_contact(
            s, a.id, name=None, phone=" +49 30 1 ", consent=c.Consent(False, "api", None)
        )
    )
    assert upd.name is None and upd.phone == "+49 30 1" and upd.email == "a@example.com"
    assert not upd.consent and upd.consent_source == "api" and upd.consent_at is not None
    assert upd.updated_at >= a.updated_at
    with pytest.raises(c.ContactConflictError):
        await db.write(lambda s: c.update_contact(s, b.id, email="A@example.com"))
    with pytest.raises(c.ContactNotFoundError):
        await db.write(lambda s: c.update_contact(s, "nope", name="x"))
    same = await db.write(lambda s: c.update_contact(s, a.id, email="A@EXAMPLE.com"))
    assert same.email == "a@example.com"


async def test_link_capture_and_delete(db: Database) -> None:
    async with db.writing() as s:
        conv = await repo.create_conversation(s, lang="en")
    a = await db.write(lambda s: c.create_contact(s, email="a@example.com"))
    stored = await db.write(lambda s: c.link_contact(s, conv.id, a.id, source="api"))
    assert [(e.type, e.payload) for e in stored] == [
        ("contact_linked", {"contact_id": a.id, "source": "api"})
    ]
    with pytest.raises(c.ConversationNotFoundError):
        await db.write(lambda s: c.link_contact(s, "nope", a.id, source="api"))
    with pytest.raises(c.ContactNotFoundError):
        await db.write(lambda s: c.link_contact(s, conv.id, "nope", source="api"))

    # lead capture: an existing contact gets the consent (and a name it lacked)
    consent = c.Consent(True, "chat:yes_to_prompt", "May we …? — yes")
    lead = await db.write(
        lambda s: c.capture_lead(s, conv.id, email="A@example.com", name="Ann", consent=consent)
    )
    assert not lead.created and lead.contact.id == a.id and lead.contact.name == "Ann"
    assert lead.contact.consent and lead.contact.consent_text == "May we …? — yes"
    assert lead.events[0].payload == {"contact_id": a.id, "source": "chat"}
    new = await db.write(
        lambda s: c.capture_lead(s, conv.id, email="new@example.com", name=None, consent=consent)
    )
    assert new.created and new.contact.email == "new@example.com"
    async with db.session() as s:
        row = await get_conversation_row(s, conv.id)
    assert row is not None and row.contact_id == new.contact.id

    assert await db.write(lambda s: c.delete_contact(s, new.contact.id))
    assert not await db.write(lambda s: c.delete_contact(s, new.contact.id))
    async with db.session() as s:
        row = await get_conversation_row(s, conv.id)
        assert await c.get_contact(s, new.contact.id) is None
    assert row is not None and row.contact_id is None


async def test_list_contacts_pages(db: Database) -> None:
    ids: list[str] = []
    for i in range(5):
        made = await db.write(partial(c.create_contact, email=f"p{i}@example.com"))
        ids.append(made.id)
    seen: list[str] = []
    cursor: str | None = None
    async with db.session() as s:
        while True:
            page = await c.list_contacts(s, limit=2, cursor=cursor)
            seen += [x.id for x in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        with pytest.raises(BadCursorError):
            await c.list_contacts(s, cursor="garbage!")
    assert sorted(seen) == sorted(ids) and len(seen) == 5


def _turn(turn_id: str, question: str, mode: str, answered: bool, conf: float) -> list[NewEvent]:
    return [
        NewEvent("user_message", {"text": question, "message_id": turn_id}, turn_id),
        NewEvent("token", {"text": f"answer to {question}"}, turn_id),
        NewEvent("done", {"mode": mode, "answered": answered, "confidence": conf}, turn_id),
    ]


async def test_feedback_listing_and_daily_stats(db: Database) -> None:
    day1 = datetime(2026, 3, 1, 10, tzinfo=UTC)
    async with db.writing() as s:
        conv = await repo.create_conversation(s, lang="en")
        events = [
            *_turn("t1", "how long is shipping", "extractive", True, 0.8),
            *_turn("t2", "do you sell unicorns", "fallback", False, 0.2),
            *_turn("t3", "talk to a person", "handoff", False, 0.0),
            NewEvent("handoff", {"reason": "user_request", "state": "pending_human"}, "t3"),
            # t4 was cut short (a crash): not a fallback
            NewEvent("user_message", {"text": "crash", "message_id": "t4"}, "t4"),
            NewEvent("done", {"mode": "fallback", "answered": False, "partial": True}, "t4"),
        ]
        await repo.append_events(s, conv.id, events)
        await s.execute(update(EventRow).values(created_at=day1))
        await s.execute(update(TurnOutcome).values(created_at=day1))
    await db.write(lambda s: writes.put_feedback(s, conv.id, "t1", "up"))
    await db.write(lambda s: writes.put_feedback(s, conv.id, "t2", "down", "useless"))

    async with db.session() as s:
        page = await list_feedback_page(s, FeedbackFilter(), limit=1)
        assert len(page.items) == 1 and page.next_cursor is not None
        rest = await list_feedback_page(s, FeedbackFilter(), limit=5, cursor=page.next_cursor)
        assert rest.next_cursor is None
        both = page.items + rest.items
        assert [i.turn_id for i in both] == ["t2", "t1"]
        down = both[0]
        assert down.question == "do you sell unicorns" and down.comment == "useless"
        assert down.answer == "answer to do you sell unicorns" and down.mode == "fallback"
        ups = await list_feedback_page(s, FeedbackFilter(rating="up"))
        assert [i.turn_id for i in ups.items] == ["t1"]

        days = await daily_stats(s, day1 - timedelta(hours=10), day1 + timedelta(days=1))
        assert [d.day.isoformat() for d in days] == ["2026-03-01", "2026-03-02"]
        d = days[0]
        assert (d.turns, d.answered, d.fallback, d.handoffs) == (4, 1, 1, 1)
        assert d.searched == 2 and d.avg_confidence == pytest.approx((0.8 + 0.2) / 2)
        assert days[1].turns == 0 and days[1].answered_rate is None
        gaps = await unanswered_questions(s, day1 - timedelta(hours=1), day1 + timedelta(hours=1))
        assert gaps == ["do you sell unicorns"]


async def test_contact_created_is_queued_as_a_webhook(db: Database) -> None:
    async with db.writing() as s:
        await create_subscription(s, url="http://127.0.0.1:9/hook", event_types=["contact.created"])
        conv = await repo.create_conversation(s, lang="en")
    made = await db.write(lambda s: c.create_contact(s, email="hook@example.com"))
    consent = c.Consent(True, "chat:yes_to_prompt", "q — yes")
    lead = await db.write(
        lambda s: c.capture_lead(s, conv.id, email="lead@example.com", name=None, consent=consent)
    )
    async with db.session() as s:
        rows = list(await s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
    assert [r.event_type for r in rows] == ["contact.created", "contact.created"]
    first, second = (json.loads(r.body) for r in rows)
    assert first["data"]["contact"]["id"] == made.id and first["conversation_id"] is None
    assert second["data"]["contact"]["email"] == "lead@example.com"
    assert second["conversation_id"] == conv.id and lead.created
