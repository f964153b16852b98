"""Handoff summary, timeout and the "no agent available" fallback over real sockets, on SQLite
and PostgreSQL: a visitor left waiting in ``pending_human`` is told (in their language) that
nobody is available and asked for an email, the conversation goes back to the bot; the
summary rides on the handoff event; concurrent sweeps never double the fallback."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from _apiutil import Api
from _wsutil import OpenClient

from bot import texts
from bot.handoff_fallback import fallback_op
from bot.store import Database

BASE = "/api/v1/conversations"
AVAILABILITY = "/api/v1/agents/availability"


@pytest.fixture
def api_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    extra: dict[str, Any] = getattr(request, "param", {})
    return {"handoff_timeout_s": 1.0, "handoff_sweep_interval_s": 0.2, **extra}


def _closed_now() -> str:
    """Office hours that are certainly not now: one hour, three days from today (UTC)."""
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(datetime.now(UTC).weekday() + 3) % 7]
    return f"{day} 10:00-11:00"


async def test_timeout_falls_back_with_summary_on_the_handoff(
    api: Api, open_client: OpenClient
) -> None:
    engine = api.server.runtime.engine
    c = await open_client(api.server.ws_url)
    cid = (await c.hello(lang="en"))["conversation_id"]
    await c.send({"type": "message", "message_id": "m1", "text": "Where is order NC-12345?"})
    await c.until("done")
    await c.send({"type": "message", "message_id": "m2", "text": "I want a human please"})
    frames = await c.until("done")
    handoff = next(f for f in frames if f["type"] == "handoff")
    assert handoff["state"] == "pending_human"
    summary = handoff["summary"]
    assert summary["method"] == "extractive" and summary["reason"] == "user_request"
    assert summary["order_numbers"] == ["NC-12345"]
    assert summary["questions"] == ["Where is order NC-12345?", "I want a human please"]
    assert "NC-12345" in summary["text"]

    calls = engine.calls
    fallback = await c.until("done", timeout=10)  # after handoff_timeout_s = 1 s
    kinds = [f["type"] for f in fallback]
    assert kinds == ["handoff", "token", "done"], kinds
    assert (fallback[0]["state"], fallback[0]["reason"]) == ("bot", "handoff_timeout")
    assert fallback[1]["text"] == texts.text("no_agent", "en")
    assert "email" in fallback[1]["text"]
    assert fallback[2]["mode"] == "handoff" and fallback[2]["answered"] is False
    assert "turn_id" not in fallback[0] and fallback[1]["turn_id"] == fallback[2]["turn_id"]

    t = (await api.call("GET", f"{BASE}/{cid}", "read")).json()
    assert t["conversation"]["handoff_state"] == "bot"
    system = [e for e in t["entries"] if e["role"] == "system"]
    assert [(e["state"], e["reason"]) for e in system] == [
        ("pending_human", "user_request"),
        ("bot", "handoff_timeout"),
    ]
    assert system[0]["summary"] == summary
    assert t["entries"][-1]["role"] == "bot" and "email" in t["entries"][-1]["text"]
    md = (await api.call("GET", f"{BASE}/{cid}/export?format=md", "read")).text
    assert "Summary:" in md and "NC-12345" in md

    # the bot answers again
    await c.send({"type": "message", "message_id": "m3", "text": "How long is shipping?"})
    assert (await c.until("done"))[-1]["mode"] == "extractive"
    assert engine.calls == calls + 1


async def test_agent_in_time_means_no_fallback_and_api_handoff_has_summary(
    api_sqlite: Api, open_client: OpenClient
) -> None:
    api = api_sqlite
    c = await open_client(api.server.ws_url)
    cid = (await c.hello(lang="en"))["conversation_id"]
    await c.send({"type": "message", "message_id": "m1", "text": "My parcel NC-55555 is late"})
    await c.until("done")
    queued = await api.call(
        "POST", f"{BASE}/{cid}/handoff", "agent", json={"state": "pending_human", "reason": "crm"}
    )
    assert queued.status_code == 200, queued.text
    (event,) = queued.json()["events"]
    assert event["summary"]["order_numbers"] == ["NC-55555"]
    taken = await api.call("POST", f"{BASE}/{cid}/handoff", "agent", json={"agent_name": "Ana"})
    assert taken.status_code == 200
    await asyncio.sleep(1.6)  # past the timeout: a human has it, nothing happens
    t = (await api.call("GET", f"{BASE}/{cid}", "read")).json()
    assert t["conversation"]["handoff_state"] == "human"
    assert [e["state"] for e in t["entries"] if e["role"] == "system"] == [
        "pending_human",
        "human",
    ]


async def test_agents_off_immediate_fallback_in_german(api: Api, open_client: OpenClient) -> None:
    # a conversation already waiting gets the fallback when agents switch off
    waiting = await api.seed(texts=("Hallo",), lang="de")
    queued = await api.call(
        "POST", f"{BASE}/{waiting}/handoff", "agent", json={"state": "pending_human"}
    )
    assert queued.status_code == 200

    refused = await api.call("POST", AVAILABILITY, "read", json={"available": False})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "insufficient_scope")
    off = await api.call(
        "POST", AVAILABILITY, "agent", json={"available": False, "note": "back at 9"}
    )
    assert off.status_code == 200, off.text
    assert (off.json()["available"], off.json()["note"], off.json()["updated_by"]) == (
        False,
        "back at 9",
        "agent",
    )
    got = (await api.call("GET", AVAILABILITY, "read")).json()
    assert got["available"] is False and got["handoff_timeout_s"] == 1.0
    t = (await api.call("GET", f"{BASE}/{waiting}", "read")).json()
    assert t["conversation"]["handoff_state"] == "bot"
    assert t["entries"][-1]["text"] == texts.text("no_agent", "de")

    # a visitor asking for a human now hears at once that nobody is there
    c = await open_client(api.server.ws_url)
    cid = (await c.hello(lang="de"))["conversation_id"]
    await c.send({"type": "request_human", "message_id": "h1"})
    first = await c.until("done")
    assert first[0]["type"] == "handoff" and first[0]["state"] == "pending_human"
    fallback = await c.until("done", timeout=5)
    assert (fallback[0]["state"], fallback[0]["reason"]) == ("bot", "no_agent_available")
    assert fallback[1]["text"] == texts.text("no_agent", "de")
    conv = (await api.call("GET", f"{BASE}/{cid}", "read")).json()["conversation"]
    assert conv["handoff_state"] == "bot"

    on = await api.call("POST", AVAILABILITY, "agent", json={"available": True})
    assert on.status_code == 200 and on.json()["available"] is True


async def test_concurrent_sweeps_fall_back_once(api: Api) -> None:
    cid = await api.seed(texts=("help",))
    queued = await api.call(
        "POST", f"{BASE}/{cid}/handoff", "agent", json={"state": "pending_human"}
    )
    assert queued.status_code == 200
    url = api.server.settings.effective_database_url
    replicas = [Database(url), Database(url)]
    try:
        op = fallback_op(cid, reason="no_agent_available", older_than=None, default_lang="en")
        results = await asyncio.gather(*(db.write(op) for db in replicas))
    finally:
        for db in replicas:
            await db.dispose()
    # at most one of them claims it (the server's own sweep may win, on a slow machine)
    assert [claimed for _events, claimed in results].count(True) <= 1
    t = (await api.call("GET", f"{BASE}/{cid}", "read")).json()
    texts_seen = [e["text"] for e in t["entries"] if e["role"] == "bot"]
    assert texts_seen == [texts.text("no_agent", "en")]


@pytest.mark.parametrize(
    "api_settings",
    [{"handoff_office_hours": _closed_now(), "handoff_timezone": "Europe/Berlin"}],
    indirect=True,
)
async def test_outside_office_hours_falls_back_at_once(
    api_settings: dict[str, Any], api_sqlite: Api, open_client: OpenClient
) -> None:
    api = api_sqlite
    got = (await api.call("GET", AVAILABILITY, "read")).json()
    assert got["available"] is True and got["accepting_handoffs"] is False
    assert got["office_hours"] == api_settings["handoff_office_hours"]
    c = await open_client(api.server.ws_url)
    await c.hello(lang="en")
    await c.send({"type": "message", "message_id": "m1", "text": "human please"})
    await c.until("done")  # the engine's handoff turn
    fallback = await c.until("done", timeout=5)
    assert (fallback[0]["state"], fallback[0]["reason"]) == ("bot", "outside_office_hours")
    assert fallback[1]["text"] == texts.text("no_agent", "en")
