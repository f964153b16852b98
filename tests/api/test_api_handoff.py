"""Handoff end to end over real sockets: the visitor asks for a human on the websocket, an
agent finds the conversation via REST, takes over, writes — the visitor sees it live — and
releases; the bot answers again. On SQLite and PostgreSQL."""

from __future__ import annotations

from _apiutil import Api
from _wsfakes import ANSWER
from _wsutil import OpenClient

BASE = "/api/v1/conversations"


async def test_handoff_end_to_end(api: Api, open_client: OpenClient) -> None:
    engine = api.server.runtime.engine
    c = await open_client(api.server.ws_url)
    cid = (await c.hello(lang="en"))["conversation_id"]
    await c.send({"type": "message", "message_id": "m1", "text": "Where is my order?"})
    assert (await c.until("done"))[-1]["mode"] == "extractive"
    calls = engine.calls

    await c.send({"type": "request_human", "message_id": "h1"})
    frames = await c.until("done")
    assert frames[0]["type"] == "handoff" and frames[0]["state"] == "pending_human"

    # while pending, the visitor's message is persisted and echoed but not answered by the bot
    await c.send({"type": "message", "message_id": "m2", "text": "Hello? Anyone?"})
    echoed = await c.roundtrip_ping()
    assert [f["type"] for f in echoed] == ["user_message"]

    pending = await api.call("GET", f"{BASE}?handoff_state=pending_human", "read")
    assert [x["id"] for x in pending.json()["items"]] == [cid]

    taken = await api.call("POST", f"{BASE}/{cid}/handoff", "agent", json={"agent_name": "Ana"})
    assert taken.status_code == 200, taken.text
    assert taken.json()["conversation"]["handoff_state"] == "human"
    live = (await c.until("handoff"))[-1]
    assert (live["state"], live["agent_name"]) == ("human", "Ana")
    again = await api.call("POST", f"{BASE}/{cid}/handoff", "agent")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "invalid_transition")

    posted = await api.call(
        "POST",
        f"{BASE}/{cid}/messages",
        "agent",
        json={"text": "  Hi, this is Ana — your parcel ships today.  ", "agent_name": "Ana"},
    )
    assert posted.status_code == 201, posted.text
    (event,) = posted.json()["events"]
    msg = (await c.until("agent_message"))[-1]
    assert msg == event
    assert (msg["text"], msg["agent_name"]) == ("Hi, this is Ana — your parcel ships today.", "Ana")

    await c.send({"type": "message", "message_id": "m3", "text": "Thanks Ana!"})
    assert [f["type"] for f in await c.roundtrip_ping()] == ["user_message"]
    assert engine.calls == calls  # the bot stayed quiet while the human had the conversation

    released = await api.call("POST", f"{BASE}/{cid}/release", "agent")
    assert released.status_code == 200
    assert released.json()["conversation"]["handoff_state"] == "bot"
    back = (await c.until("handoff"))[-1]
    assert (back["state"], back["reason"]) == ("bot", "agent_release")
    not_again = await api.call("POST", f"{BASE}/{cid}/release", "agent")
    assert (not_again.status_code, not_again.json()["error"]["code"]) == (409, "invalid_transition")

    await c.send({"type": "message", "message_id": "m4", "text": "How long is shipping?"})
    answer = await c.until("done")
    assert "".join(f["text"] for f in answer if f["type"] == "token") == ANSWER
    assert engine.calls == calls + 1
    # the bot saw the agent's message in its history
    assert any(t.role == "agent" for t in engine.contexts[-1].history)

    t = (await api.call("GET", f"{BASE}/{cid}", "read")).json()
    states = [e["state"] for e in t["entries"] if e["role"] == "system"]
    assert states == ["pending_human", "human", "bot"]
    seqs = [e["seq"] for e in t["entries"]]
    assert seqs == sorted(seqs)


async def test_agent_message_takes_over_directly_and_reconnect_sees_it(
    api: Api, open_client: OpenClient
) -> None:
    c = await open_client(api.server.ws_url)
    w = await c.hello()
    cid = w["conversation_id"]
    r = await api.call(
        "POST", f"{BASE}/{cid}/messages", "agent", json={"text": "Hi!", "agent_name": "Bo"}
    )
    assert r.status_code == 201
    assert [e["type"] for e in r.json()["events"]] == ["handoff", "agent_message"]
    assert [f["type"] for f in await c.until("agent_message")] == ["handoff", "agent_message"]
    # a visitor who reconnects gets the state and the message from history
    c2 = await open_client(api.server.ws_url)
    w2 = await c2.hello(conversation_id=cid, token=w["token"], last_seq=0)
    assert w2["handoff_state"] == "human"
    assert [e["type"] for e in c2.history] == ["handoff", "agent_message"]


async def test_queue_for_an_agent_and_bad_bodies(api: Api) -> None:
    cid = await api.seed()
    queued = await api.call(
        "POST", f"{BASE}/{cid}/handoff", "agent", json={"state": "pending_human", "reason": "vip"}
    )
    assert queued.status_code == 200
    assert queued.json()["events"][0]["reason"] == "vip"
    twice = await api.call(
        "POST", f"{BASE}/{cid}/handoff", "agent", json={"state": "pending_human"}
    )
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "invalid_transition")
    for body in (
        {"text": "", "agent_name": "A"},
        {"text": "x"},
        {"text": "x", "agent_name": ""},
        {"text": "x" * 8001, "agent_name": "A"},
    ):
        r = await api.call("POST", f"{BASE}/{cid}/messages", "agent", json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_request"), body
    bad_state = await api.call("POST", f"{BASE}/{cid}/handoff", "agent", json={"state": "bot"})
    assert bad_state.status_code == 422
    closed = await api.seed(status="closed", handoff_state="closed")
    attempts: list[tuple[str, dict[str, str] | None]] = [
        ("messages", {"text": "x", "agent_name": "A"}),
        ("handoff", None),
        ("release", None),
    ]
    for path, payload in attempts:
        r = await api.call("POST", f"{BASE}/{closed}/{path}", "agent", json=payload)
        assert (r.status_code, r.json()["error"]["code"]) == (409, "invalid_transition"), path
    missing = await api.call("POST", f"{BASE}/nope/release", "agent")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
