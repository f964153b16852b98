"""``GET /api/v1/stats`` over real HTTP (SQLite and PostgreSQL): daily rates, confidence,
feedback, knowledge gaps (clustered by the runtime's embedder, or by wording without one),
input validation and scopes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from _apiutil import Api
from _scopes import check_scopes
from sqlalchemy import update

from bot.store import NewEvent, repo, writes
from bot.store.models import EventRow, Feedback
from bot.store.outcomes import TurnOutcome

BASE = "/api/v1/stats"
DAY1 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


class TopicEmbedder:
    """A deterministic stand-in for a semantic model: parcel/package/delivery share an axis."""

    name = "topic:test"
    dim = 3
    topics = (("parcel", "package", "delivery"), ("unicorn",))

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            hit = [a for a, words in enumerate(self.topics) if any(w in t.lower() for w in words)]
            out[i, hit[0] if hit else 2] = 1.0
        return out


def _turn(
    tid: str, text: str, mode: str, answered: bool, conf: float, handoff: str | None = None
) -> list[NewEvent]:
    events = [
        NewEvent("user_message", {"text": text, "message_id": tid}, tid),
        NewEvent("token", {"text": "…"}, tid),
    ]
    if handoff:
        events.append(NewEvent("handoff", {"reason": handoff, "state": "pending_human"}, tid))
    done = {"mode": mode, "answered": answered, "confidence": conf, "lang": "en"}
    return [*events, NewEvent("done", done, tid)]


async def _seed_day(api: Api, at: datetime, turns: list[list[NewEvent]]) -> str:
    cid = await api.seed(texts=(), created_at=at)
    async with api.db.writing() as s:
        await repo.append_events(s, cid, [e for t in turns for e in t])
        for row in (EventRow, TurnOutcome):  # the turns' typed outcomes are dated too
            await s.execute(update(row).where(row.conversation_id == cid).values(created_at=at))
    return cid


async def _rate(api: Api, cid: str, tid: str, rating: str, at: datetime) -> None:
    await api.db.write(lambda s: writes.put_feedback(s, cid, tid, rating))
    async with api.db.writing() as s:
        await s.execute(update(Feedback).where(Feedback.turn_id == tid).values(created_at=at))


async def test_stats(api: Api) -> None:
    a = await _seed_day(
        api,
        DAY1,
        [
            _turn("t1", "how long does shipping take", "extractive", True, 0.8),
            _turn("t2", "Where is my parcel?", "fallback", False, 0.2),
            _turn("t3", "where is my  parcel?", "fallback", False, 0.1),
            _turn("t4", "talk to a human", "handoff", False, 0.0, handoff="user_request"),
        ],
    )
    await _seed_day(
        api,
        DAY2,
        [
            _turn("t5", "My package never arrived, mail me at x@y.example", "fallback", False, 0.3),
            _turn("t6", "refund?", "generative", True, 0.9, handoff="low_confidence"),
            _turn("t7", "do you sell unicorns", "fallback", False, 0.0),
        ],
    )
    await _rate(api, a, "t1", "up", DAY1)
    await _rate(api, a, "t2", "down", DAY1)
    await _seed_day(api, DAY2 + timedelta(days=3), [_turn("t8", "x", "fallback", False, 0.5)])

    r = await api.call("GET", f"{BASE}?start=2026-03-01&end=2026-03-02", "read")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert (body["start"], body["end"]) == ("2026-03-01T00:00:00Z", "2026-03-03T00:00:00Z")
    d1, d2 = body["days"]
    assert d1["date"] == "2026-03-01" and d2["date"] == "2026-03-02"
    assert [d1[k] for k in ("conversations", "turns", "answered", "fallback", "handoffs")] == [
        1, 4, 1, 2, 1,
    ]  # fmt: skip
    assert (d1["answered_rate"], d1["fallback_rate"], d1["handoff_rate"]) == (0.25, 0.5, 0.25)
    assert d1["avg_confidence"] == pytest.approx((0.8 + 0.2 + 0.1) / 3, abs=1e-4)
    assert (d1["feedback_up"], d1["feedback_down"], d1["feedback_up_ratio"]) == (1, 1, 0.5)
    assert [d2[k] for k in ("turns", "answered", "fallback", "handoffs")] == [3, 1, 2, 1]
    assert d2["feedback_up_ratio"] is None
    t = body["totals"]
    assert [t[k] for k in ("conversations", "turns", "answered", "fallback", "handoffs")] == [
        2, 7, 2, 4, 2,
    ]  # fmt: skip
    assert t["avg_confidence"] == pytest.approx((0.8 + 0.2 + 0.1 + 0.3 + 0.9 + 0.0) / 6, abs=1e-4)

    # without an embedding model (the fake runtime has no retriever): grouped by wording
    assert body["embedder"] == "hashing:v1" and body["unanswered"] == 4
    gaps = body["knowledge_gaps"]
    assert sum(g["count"] for g in gaps) == 4
    assert gaps[0]["count"] >= 2 and gaps[0]["representative"].lower() == "where is my parcel?"
    assert not any("x@y.example" in ex for g in gaps for ex in g["examples"])  # redacted

    # with the runtime's embedder: grouped by meaning
    api.server.runtime.retriever = SimpleNamespace(embedder=TopicEmbedder())
    r = await api.call("GET", f"{BASE}?start=2026-03-01&end=2026-03-02&top=5", "read")
    body = r.json()
    assert body["embedder"] == "topic:test"
    assert [(g["count"], g["representative"]) for g in body["knowledge_gaps"]][1:] == [
        (1, "do you sell unicorns")
    ]
    parcel = body["knowledge_gaps"][0]
    assert parcel["count"] == 3 and parcel["examples"][0].lower() == "where is my parcel?"
    assert "My package never arrived, mail me at <email>" in parcel["examples"]

    one_day = (await api.call("GET", f"{BASE}?start=2026-03-02&end=2026-03-02", "read")).json()
    assert [d["date"] for d in one_day["days"]] == ["2026-03-02"] and one_day["unanswered"] == 2
    recent = (await api.call("GET", f"{BASE}?days=3", "read")).json()
    assert len(recent["days"]) == 3 and recent["totals"]["turns"] == 0

    for bad in ("start=2026-03-05&end=2026-03-01", "start=2025-01-01&end=2026-03-01", "days=0",
                "top=0", "start=yesterday", "end=9999-12-31", "end=0001-01-01"):  # fmt: skip
        r = await api.call("GET", f"{BASE}?{bad}", "read")
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_request"), bad
    await check_scopes(api, "GET", BASE, "read", 200)


def _refused(tid: str, text: str, offered: list[tuple[str, str | None]]) -> list[NewEvent]:
    """An unanswered turn offering ``offered`` suggestions ((button text, entry id or None))."""
    items = [t for t, _ in offered]
    ids = [i for _, i in offered if i is not None]
    turn = _turn(tid, text, "fallback", False, 0.1)
    return [*turn[:-1], NewEvent("suggestions", {"items": items, "ids": ids}, tid), turn[-1]]


async def test_stats_suggestion_picks(api: Api) -> None:
    cancel = "Wie storniere ich meine Bestellung?"
    offer = [(cancel, "de-bestellung-04"), ("Kann ich sie ändern?", "de-bestellung-03"),
             ("Mit einem Menschen sprechen", None)]  # fmt: skip
    day = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    await _seed_day(
        api,
        day,
        [
            _refused("p1", "Bestellung stornieren", offer),
            _turn("p2", cancel, "extractive", True, 0.9),  # the button's text: a pick
            _refused("p3", "bestellung   stornieren", offer),
            _turn("p4", cancel, "extractive", True, 0.9),
            _refused("p5", "Bestellung stornieren", offer),
            _turn("p6", f"  {cancel} ", "extractive", True, 0.9),
            _refused("p7", "Bestellung stornieren", offer),
            _turn("p8", "Mit einem Menschen sprechen", "handoff", False, 0.0),  # no entry
        ],
    )
    await _seed_day(
        api,
        day,
        [
            _refused("q1", "my parcel is gone, write to x@y.example", [("Parcel lost?", "en-o-7")]),
            _turn("q2", "Parcel lost?", "extractive", True, 0.8),
            _refused("q3", "hello??", [("Parcel lost?", "en-o-7")]),
            _turn("q4", "no, something else", "fallback", False, 0.0),  # typed on: no pick
            _refused("q5", "Parcel lost?", [("Parcel lost?", "en-o-7")]),
            _turn("q6", "Parcel lost?", "extractive", True, 0.8),  # the same text: nothing learnt
        ],
    )
    r = await api.call("GET", f"{BASE}?start=2026-04-01&end=2026-04-01", "read")
    assert r.status_code == 200, r.text
    assert r.json()["suggestion_picks"] == [
        {"count": 3, "asked": "Bestellung stornieren", "entry_id": "de-bestellung-04",
         "picked": cancel},
        {"count": 1, "asked": "my parcel is gone, write to <email>", "entry_id": "en-o-7",
         "picked": "Parcel lost?"},
    ]  # fmt: skip
    r = await api.call("GET", f"{BASE}?start=2026-04-01&end=2026-04-01&top=1", "read")
    assert [p["count"] for p in r.json()["suggestion_picks"]] == [3]


async def test_stats_bot_resolution_per_conversation(api: Api) -> None:
    day = datetime(2026, 5, 2, 9, 0, tzinfo=UTC)
    before = day - timedelta(days=1)
    answered = _turn("t1", "how long is shipping", "extractive", True, 0.8)
    closed = NewEvent("handoff", {"reason": "closed", "state": "closed"}, None)
    taken = NewEvent("handoff", {"reason": "agent_message", "state": "human"}, None)
    cases = {
        "answered": [answered],
        "answered, then a human": [answered, _turn("t2", "human!", "handoff", False, 0.0, "user")],
        "never answered": [_turn("t1", "unicorns?", "fallback", False, 0.1)],
        "order lookup": [_turn("t1", "where is NC-12345", "action", True, 0.0)],
        "answered, then closed by the CRM": [answered, [closed]],
        "taken over by an agent": [answered, [taken]],
    }
    for turns in cases.values():
        await _seed_day(api, day, turns)
    # started the day before, answered on the day: the day before's conversation
    late = await api.seed(texts=(), created_at=before)
    async with api.db.writing() as s:
        await repo.append_events(s, late, answered)
        for row in (EventRow, TurnOutcome):
            await s.execute(update(row).where(row.conversation_id == late).values(created_at=day))

    body = (await api.call("GET", f"{BASE}?start=2026-05-01&end=2026-05-02", "read")).json()
    first, second = body["days"]
    assert (first["conversations"], first["resolved"], first["resolution_rate"]) == (1, 1, 1.0)
    assert (second["conversations"], second["resolved"], second["resolution_rate"]) == (6, 3, 0.5)
    assert (body["totals"]["conversations"], body["totals"]["resolved"]) == (7, 4)
