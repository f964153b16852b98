"""Contacts over real HTTP (SQLite and PostgreSQL): create / find / update / list / link /
delete with every scope refusal, and lead capture through a real websocket."""

from __future__ import annotations

import base64
from typing import Any

from _apiutil import Api
from _scopes import check_scopes
from _wsutil import OpenClient

from bot.leads import PROMPTS

BASE = "/api/v1/contacts"


async def _create(api: Api, **body: Any) -> dict[str, Any]:
    r = await api.call("POST", BASE, "agent", json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_contacts_crud_find_list_link(api: Api) -> None:
    anna = await _create(
        api,
        email=" Anna.Berg@Example.com",
        name="Anna Berg",
        external_id="crm-17",
        consent={"given": True, "source": "crm-form", "text": "We may email you."},
    )
    assert anna["email"] == "anna.berg@example.com" and anna["consent"] is True
    assert anna["consent_source"] == "crm-form" and anna["consent_at"] is not None
    bare = await _create(api, name="No Address")
    assert bare["email"] is None and bare["consent"] is False and bare["consent_at"] is None

    dup = await api.call("POST", BASE, "agent", json={"email": "ANNA.BERG@example.com"})
    assert (dup.status_code, dup.json()["error"]["code"]) == (409, "contact_exists")
    dup = await api.call("POST", BASE, "agent", json={"external_id": "crm-17"})
    assert dup.status_code == 409 and "external_id" in dup.json()["error"]["message"]
    bad = await api.call("POST", BASE, "agent", json={"email": "nope"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_request")

    got = await api.call("GET", f"{BASE}/{anna['id']}", "read")
    assert got.json() == anna
    missing = await api.call("GET", f"{BASE}/nope", "read")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    by_mail = await api.call("GET", f"{BASE}?email=anna.berg@EXAMPLE.com", "read")
    assert [c["id"] for c in by_mail.json()["items"]] == [anna["id"]]
    by_crm = await api.call("GET", f"{BASE}?external_id=crm-17", "read")
    assert [c["id"] for c in by_crm.json()["items"]] == [anna["id"]]
    none = await api.call("GET", f"{BASE}?email=not-an-address", "read")
    assert none.status_code == 200 and none.json()["items"] == []
    both = await api.call("GET", f"{BASE}?email=a@b.example&external_id=x", "read")
    assert both.status_code == 422

    patched = await api.call(
        "PATCH",
        f"{BASE}/{anna['id']}",
        "agent",
        json={"name": None, "phone": "+49 30 1234", "consent": {"given": False}},
    )
    assert patched.status_code == 200, patched.text
    p = patched.json()
    assert p["name"] is None and p["phone"] == "+49 30 1234" and p["email"] == anna["email"]
    assert p["consent"] is False and p["consent_source"] == "api"
    clash = await api.call("PATCH", f"{BASE}/{bare['id']}", "agent", json={"external_id": "crm-17"})
    assert clash.status_code == 409
    gone = await api.call("PATCH", f"{BASE}/nope", "agent", json={"name": "x"})
    assert gone.status_code == 404

    # listing: newest first, cursor pagination
    third = await _create(api, email="c@example.com")
    page1 = (await api.call("GET", f"{BASE}?limit=2", "read")).json()
    assert [c["id"] for c in page1["items"]] == [third["id"], bare["id"]]
    page2 = (await api.call("GET", f"{BASE}?limit=2&cursor={page1['next_cursor']}", "read")).json()
    assert [c["id"] for c in page2["items"]] == [anna["id"]] and page2["next_cursor"] is None
    early = base64.urlsafe_b64encode(b'["0001-01-01T00:00:00+01:00", "x"]').decode()
    for bogus in ("bogus", early):
        cur = await api.call("GET", f"{BASE}?cursor={bogus}", "read")
        assert (cur.status_code, cur.json()["error"]["code"]) == (400, "invalid_cursor")

    # link to a conversation: the conversations list filters by it, the transcript shows it
    cid = await api.seed(texts=("hello",))
    linked = await api.call(
        "POST", f"{BASE}/{anna['id']}/conversations", "agent", json={"conversation_id": cid}
    )
    assert linked.status_code == 200 and linked.json()["contact_id"] == anna["id"]
    listed = await api.call("GET", f"/api/v1/conversations?contact_id={anna['id']}", "read")
    assert [c["id"] for c in listed.json()["items"]] == [cid]
    entries = (await api.call("GET", f"/api/v1/conversations/{cid}", "read")).json()["entries"]
    system = [e for e in entries if e["role"] == "system"]
    assert [(e["event"], e["contact_id"], e["reason"]) for e in system] == [
        ("contact_linked", anna["id"], "api")
    ]
    for contact, conv in ((anna["id"], "nope"), ("nope", cid)):
        r = await api.call(
            "POST", f"{BASE}/{contact}/conversations", "agent", json={"conversation_id": conv}
        )
        assert r.status_code == 404

    # GDPR: the contact goes, its conversations stay unlinked
    assert (await api.call("DELETE", f"{BASE}/{anna['id']}", "admin")).status_code == 204
    assert (await api.call("DELETE", f"{BASE}/{anna['id']}", "admin")).status_code == 404
    conv = (await api.call("GET", f"/api/v1/conversations/{cid}", "read")).json()
    assert conv["conversation"]["contact_id"] is None


async def test_contacts_scopes(api: Api) -> None:
    made = await _create(api, email="s@example.com")
    cid = await api.seed()
    cases: list[tuple[str, str, str, dict[str, Any] | None, int]] = [
        ("GET", BASE, "read", None, 200),
        ("GET", f"{BASE}/{made['id']}", "read", None, 200),
        ("POST", BASE, "agent", {"name": "x"}, 201),
        ("PATCH", f"{BASE}/{made['id']}", "agent", {"name": "y"}, 200),
        ("POST", f"{BASE}/{made['id']}/conversations", "agent", {"conversation_id": cid}, 200),
        ("DELETE", f"{BASE}/{made['id']}", "admin", None, 204),
    ]
    for method, path, scope, body, ok in cases:
        await check_scopes(api, method, path, scope, ok, body)


async def test_lead_capture_over_websocket(api: Api, open_client: OpenClient) -> None:
    c = await open_client(api.server.ws_url)
    cid = (await c.hello(lang="en"))["conversation_id"]
    await c.send(
        {
            "type": "message",
            "message_id": "m1",
            "text": "Hi, my name is Anna Berg. Anna@Example.com — where is my parcel?",
        }
    )
    frames = await c.until("done")
    answer = "".join(f["text"] for f in frames if f["type"] == "token")
    prompt = PROMPTS["en"].format(email="anna@example.com")
    assert answer.endswith("\n\n" + prompt)

    await c.send({"type": "message", "message_id": "m2", "text": "yes, please"})
    frames = await c.until("done")
    kinds = [f["type"] for f in frames]
    assert kinds == ["user_message", "token", "contact_linked", "done"], kinds
    assert "action" not in kinds  # the address itself is never published as an action
    linked = frames[2]
    assert linked["source"] == "chat" and frames[-1]["mode"] == "action"

    found = (await api.call("GET", f"{BASE}?email=anna@example.com", "read")).json()["items"]
    assert len(found) == 1 and found[0]["id"] == linked["contact_id"]
    contact = found[0]
    assert contact["name"] == "Anna Berg" and contact["consent"] is True
    assert contact["consent_source"] == "chat:yes_to_prompt"
    assert contact["consent_text"] == f"{prompt}\n— yes, please"
    conv = (await api.call("GET", f"/api/v1/conversations/{cid}", "read")).json()
    assert conv["conversation"]["contact_id"] == contact["id"]
    assert any(e.get("event") == "contact_linked" for e in conv["entries"])

    # a visitor who says no: no contact
    d = await open_client(api.server.ws_url)
    await d.hello(lang="en")
    await d.send({"type": "message", "message_id": "n1", "text": "bob@example.com"})
    await d.until("done")
    await d.send({"type": "message", "message_id": "n2", "text": "No"})
    frames = await d.until("done")
    assert "contact_linked" not in [f["type"] for f in frames]
    found = (await api.call("GET", f"{BASE}?email=bob@example.com", "read")).json()["items"]
    assert found == []
