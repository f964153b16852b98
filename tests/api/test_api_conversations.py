"""Conversations over real HTTP: listing (filters, cursor pagination), transcript, exports,
close/reopen, GDPR delete — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from _apiutil import Api
from _wsfakes import ANSWER
from _wsutil import OpenClient
from sqlalchemy import func, select

from bot.store.models import EventRow, Feedback, MessageKey

BASE = "/api/v1/conversations"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def _all_pages(api: Api, query: str, limit: int) -> tuple[list[str], int]:
    ids: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = f"{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        r = await api.call("GET", f"{BASE}?{params}", "read")
        assert r.status_code == 200, r.text
        body = r.json()
        ids += [c["id"] for c in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages


async def test_list_filters_and_pagination(api: Api) -> None:
    a = await api.seed(lang="de", texts=("Wo ist mein Paket?",), created_at=T0)
    b = await api.seed(lang="en", texts=("refund please",), created_at=T0 + timedelta(hours=1))
    c = await api.seed(
        lang="en", texts=("Where is my parcel",), created_at=T0 + timedelta(hours=2),
        handoff_state="pending_human",
    )  # fmt: skip
    d = await api.seed(
        lang="de", texts=("Rechnung",), created_at=T0 + timedelta(hours=2),
        status="closed", handoff_state="closed",
    )  # fmt: skip
    e = await api.seed(lang="en", texts=("PARCEL lost",), created_at=T0 + timedelta(hours=3))
    newest_first = [e, *sorted([c, d], reverse=True), b, a]  # c and d tie on created_at

    ids, pages = await _all_pages(api, "", limit=2)
    assert ids == newest_first and pages == 3
    ids, _ = await _all_pages(api, "", limit=200)
    assert ids == newest_first

    async def query(q: str) -> list[str]:
        return (await _all_pages(api, q, limit=50))[0]

    assert await query("lang=de") == [d, a]
    assert await query("status=closed") == [d]
    assert await query("status=open&lang=en") == [e, c, b]
    assert await query("handoff_state=pending_human") == [c]
    assert await query("q=parcel") == [e, c]
    assert await query("q=Paket") == [a]
    assert await query("q=%25") == []  # a literal "%" matches nothing here
    after = (T0 + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    before = (T0 + timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    assert await query(f"created_after={after}&created_before={before}") == newest_first[1:4]
    # without an offset a timestamp is UTC
    assert await query("created_after=2026-03-01T11:00:00") == newest_first[:3]
    # a page's cursor keeps the filter's order
    ids, pages = await _all_pages(api, "lang=en", limit=1)
    assert ids == [e, c, b] and pages == 3


async def test_list_refuses_bad_input(api: Api) -> None:
    r = await api.call("GET", f"{BASE}?cursor=not-a-cursor", "read")
    assert r.status_code == 400
    assert r.json() == {"error": {"code": "invalid_cursor", "message": "the cursor is malformed"}}
    for bad in ("limit=0", "limit=201", "status=maybe", "handoff_state=x", "created_after=soon"):
        r = await api.call("GET", f"{BASE}?{bad}", "read")
        assert r.status_code == 422, bad
        assert r.json()["error"]["code"] == "invalid_request"
        assert bad.split("=")[0] in r.json()["error"]["message"]


async def _chat(api: Api, open_client: OpenClient) -> tuple[str, str]:
    """A real widget conversation: a bot answer, feedback on it, a request for a human."""
    c = await open_client(api.server.ws_url)
    w = await c.hello(lang="en")
    await c.send({"type": "message", "message_id": "u1", "text": "How long does shipping take?"})
    frames = await c.until("done")
    turn_id = frames[-1]["turn_id"]
    await c.send({"type": "feedback", "turn_id": turn_id, "rating": "up"})
    await c.send({"type": "request_human", "message_id": "h1"})
    await c.until("done")
    return w["conversation_id"], turn_id


async def test_transcript_and_exports(api: Api, open_client: OpenClient) -> None:
    cid, turn_id = await _chat(api, open_client)
    posted = await api.call(
        "POST", f"{BASE}/{cid}/messages", "agent", json={"text": "Ana here.", "agent_name": "Ana"}
    )
    assert posted.status_code == 201
    r = await api.call("GET", f"{BASE}/{cid}", "read")
    assert r.status_code == 200
    t = r.json()
    assert t["conversation"]["id"] == cid and t["conversation"]["handoff_state"] == "human"
    entries = t["entries"]
    assert [e["role"] for e in entries] == ["user", "bot", "system", "system", "agent"]
    user, bot, requested, taken, agent = entries
    assert user["text"] == "How long does shipping take?" and user["message_id"] == "u1"
    assert bot["text"] == ANSWER and bot["turn_id"] == turn_id
    assert bot["sources"][0]["id"] == "faq-shipping" and bot["mode"] == "extractive"
    assert bot["answered"] is True and bot["confidence"] == 0.9
    assert (requested["state"], requested["reason"]) == ("pending_human", "user_request")
    assert (taken["state"], taken["agent_name"]) == ("human", "Ana")
    assert (agent["text"], agent["agent_name"]) == ("Ana here.", "Ana")
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)

    as_json = await api.call("GET", f"{BASE}/{cid}/export?format=json", "read")
    assert as_json.status_code == 200
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.headers["content-disposition"].startswith(
        f'attachment; filename="conversation-{cid}-'
    )
    exported = json.loads(as_json.content)
    assert [e["role"] for e in exported["entries"]] == [e["role"] for e in entries]
    assert exported["entries"][1]["text"] == ANSWER
    assert (await api.call("GET", f"{BASE}/{cid}/export", "read")).json() == exported

    md = await api.call("GET", f"{BASE}/{cid}/export?format=md", "read")
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    text = md.text
    assert text.startswith(f"# Conversation {cid}")
    assert "> How long does shipping take?" in text and f"> {ANSWER}" in text
    assert "[Shipping](/help/shipping)" in text and "**Agent Ana**" in text
    assert "handoff → pending_human (user_request)" in text
    assert text.index("**User**") < text.index("**Bot**") < text.index("**Agent Ana**")

    bad = await api.call("GET", f"{BASE}/{cid}/export?format=pdf", "read")
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_request")
    for path in (f"{BASE}/nope", f"{BASE}/nope/export?format=md"):
        missing = await api.call("GET", path, "read")
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")


async def test_close_and_reopen_reach_the_widget(api: Api, open_client: OpenClient) -> None:
    c = await open_client(api.server.ws_url)
    cid = (await c.hello())["conversation_id"]
    closed = await api.call("POST", f"{BASE}/{cid}/close", "agent")
    assert closed.status_code == 200
    assert (closed.json()["status"], closed.json()["handoff_state"]) == ("closed", "closed")
    frame = (await c.until("handoff"))[-1]
    assert (frame["state"], frame["reason"]) == ("closed", "closed")
    again = await api.call("POST", f"{BASE}/{cid}/close", "agent")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "invalid_transition")
    reopened = await api.call("POST", f"{BASE}/{cid}/reopen", "agent")
    assert (reopened.json()["status"], reopened.json()["handoff_state"]) == ("open", "bot")
    assert (await c.until("handoff"))[-1]["state"] == "bot"
    twice = await api.call("POST", f"{BASE}/{cid}/reopen", "agent")
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "invalid_transition")
    listed = await api.call("GET", f"{BASE}?status=open", "read")
    assert cid in [x["id"] for x in listed.json()["items"]]
    unknown = await api.call("POST", f"{BASE}/nope/close", "agent")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")


async def test_delete_erases_the_conversation_and_everything_recorded(
    api: Api, open_client: OpenClient
) -> None:
    cid, _ = await _chat(api, open_client)
    other, _ = await _chat(api, open_client)

    async def counts(conversation_id: str) -> list[int]:
        async with api.db.session() as s:
            return [
                int(
                    await s.scalar(
                        select(func.count())
                        .select_from(model)
                        .where(model.conversation_id == conversation_id)
                    )
                    or 0
                )
                for model in (EventRow, MessageKey, Feedback)
            ]

    assert all(n > 0 for n in await counts(cid))
    turns = api.server.config.app.state.services.turns
    assert cid in turns._history  # the bot's cached context of the conversation
    other_before = await counts(other)
    r = await api.call("DELETE", f"{BASE}/{cid}", "admin")
    assert r.status_code == 204 and r.content == b""
    assert await counts(cid) == [0, 0, 0]
    assert cid not in turns._history and other in turns._history
    assert await counts(other) == other_before
    gone = await api.call("GET", f"{BASE}/{cid}", "read")
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "not_found")
    again = await api.call("DELETE", f"{BASE}/{cid}", "admin")
    assert (again.status_code, again.json()["error"]["code"]) == (404, "not_found")
    assert cid not in [x["id"] for x in (await api.call("GET", BASE, "read")).json()["items"]]
