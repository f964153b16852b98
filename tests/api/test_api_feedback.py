"""``GET /api/v1/feedback`` over real HTTP (SQLite and PostgreSQL): thumbs given in the widget
(real websocket) and seeded ones, filters, cursor pagination, turn texts, scopes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from functools import partial

from _apiutil import Api
from _scopes import check_scopes
from _wsfakes import ANSWER
from _wsutil import OpenClient
from sqlalchemy import update

from bot.store import NewEvent, repo, writes
from bot.store.listing import encode_cursor
from bot.store.models import Feedback

BASE = "/api/v1/feedback"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def _rated_turns(api: Api, cid: str, ratings: list[tuple[str, str, datetime]]) -> None:
    done = {"mode": "extractive", "answered": True, "confidence": 0.7}
    async with api.db.writing() as s:
        for tid, _, _ in ratings:
            await repo.append_events(
                s,
                cid,
                [
                    NewEvent("user_message", {"text": f"question {tid}", "message_id": tid}, tid),
                    NewEvent("token", {"text": "answer "}, tid),
                    NewEvent("token", {"text": tid}, tid),
                    NewEvent("done", done, tid),
                ],
            )
    for tid, rating, at in ratings:
        await api.db.write(
            partial(writes.put_feedback, conversation_id=cid, turn_id=tid, rating=rating)
        )
        async with api.db.writing() as s:
            await s.execute(update(Feedback).where(Feedback.turn_id == tid).values(created_at=at))


async def test_feedback_listing(api: Api, open_client: OpenClient) -> None:
    # one thumb from the widget, through a real websocket
    c = await open_client(api.server.ws_url)
    live_cid = (await c.hello(lang="en"))["conversation_id"]
    await c.send({"type": "message", "message_id": "q", "text": "shipping?"})
    turn_id = (await c.until("done"))[-1]["turn_id"]
    await c.send({"type": "feedback", "turn_id": turn_id, "rating": "down", "comment": "vague"})
    assert await c.roundtrip_ping() == []
    r = await api.call("GET", BASE, "read")
    assert r.status_code == 200, r.text
    (live,) = r.json()["items"]
    assert (live["conversation_id"], live["turn_id"], live["rating"], live["comment"]) == (
        live_cid, turn_id, "down", "vague",
    )  # fmt: skip
    assert live["question"] == "shipping?" and live["answer"] == ANSWER
    assert live["sources"] == [
        {"id": "faq-shipping", "title": "Shipping", "url": "/help/shipping", "score": 0.0}
    ]
    assert live["mode"] == "extractive" and live["confidence"] == 0.9

    cid = await api.seed(texts=())
    other = await api.seed(texts=())
    hour, day = timedelta(hours=1), timedelta(days=1)
    await _rated_turns(api, cid, [("a", "up", T0), ("b", "down", T0 + hour), ("c", "up", T0 + day)])
    await _rated_turns(api, other, [("d", "up", T0 + timedelta(hours=2))])

    async def turns(query: str, limit: int = 50) -> list[str]:
        out: list[str] = []
        cursor: str | None = None
        while True:
            q = f"{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            body = (await api.call("GET", f"{BASE}?{q}", "read")).json()
            out += [i["turn_id"] for i in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                return out

    before = "2026-03-05T00:00:00Z"
    assert await turns(f"created_before={before}", limit=1) == ["c", "d", "b", "a"]
    assert await turns(f"rating=up&created_before={before}") == ["c", "d", "a"]
    assert await turns(f"conversation_id={cid}", limit=2) == ["c", "b", "a"]
    assert await turns("created_after=2026-03-01T10:00:00&created_before=2026-03-02T00:00:00") == [
        "d", "b",
    ]  # fmt: skip
    assert await turns(f"conversation_id={live_cid}") == [turn_id]
    item = (await api.call("GET", f"{BASE}?conversation_id={other}", "read")).json()["items"][0]
    assert (item["question"], item["answer"], item["sources"]) == ("question d", "answer d", None)

    for bad in ("rating=meh", "limit=0", "created_after=soon"):
        r = await api.call("GET", f"{BASE}?{bad}", "read")
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_request"), bad
    huge = encode_cursor(T0, str(10**30))
    early = base64.urlsafe_b64encode(b'["0001-01-01T00:00:00+01:00", "1"]').decode()
    for cursor in ("xyz", huge, early):
        r = await api.call("GET", f"{BASE}?cursor={cursor}", "read")
        assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_cursor"), cursor
    r = await api.call("GET", f"{BASE}?created_after=0001-01-01T00:00:00%2B01:00", "read")
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_request")
    await check_scopes(api, "GET", BASE, "read", 200)
