"""Knowledge admin over real HTTP: FAQ entries CRUD in the managed file (hand-written files
stay read-only), validation, scopes, and the background reindex — with a fake embedder, and
once with the real runtime (MiniLM), where the running bot answers from the new entry, and once
adapted to the knowledge base (e5), where the edit trains a new adapter the bot follows."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from _apiutil import Api
from _wsutil import OpenClient, StartServer

import bot.reindex_job as reindex_job
from bot.config import Settings
from bot.knowledge_admin import MANAGED_SOURCE
from knowledge.loaders import load_knowledge
from retrieval.search import load_retriever
from retrieval.types import Embedder
from tests.retrieval.fakes import FakeEmbedder

BASE = "/api/v1/knowledge"
FAQ = """\
lang: en
entries:
  - id: ship
    question: How long does delivery take?
    answer: Orders arrive in one to three working days.
  - id: pay
    question: Which payment methods do you accept?
    answer: We accept credit cards, PayPal and invoice.
"""
FAQ_DE = """\
entries:
  - id: de-ship
    question: Wie lange dauert die Lieferung?
    answer: Bestellungen kommen in ein bis drei Werktagen an.
"""
PAGE = """\
# Returns

## Return window

You can return any item within 30 days of delivery.
"""
GIFT = {
    "question": "Do you sell gift cards?",
    "answer": "Yes: gift cards from 10 to 200 euros, delivered by email within minutes.",
    "alt_questions": ["Can I buy a voucher?"],
    "tags": ["gifts"],
}


def _kb(root: Path) -> Path:
    (root / "pages").mkdir(parents=True)
    (root / "faq.yaml").write_text(FAQ)
    (root / "faq.de.yaml").write_text(FAQ_DE)
    (root / "pages" / "returns.md").write_text(PAGE)
    return root


@pytest.fixture
def api_settings(tmp_path: Path) -> dict[str, Any]:
    return {"knowledge_dir": _kb(tmp_path / "kb")}


def _ids(resp: httpx.Response) -> list[str]:
    return [e["id"] for e in resp.json()["items"]]


async def test_entries_crud_validation_and_scopes(api: Api) -> None:
    root = api.server.settings.knowledge_dir
    listed = await api.call("GET", f"{BASE}/entries", "read")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["total"] == 4 and body["next_offset"] is None
    assert _ids(listed)[:3] == ["de-ship", "ship", "pay"]
    assert not any(e["editable"] for e in body["items"])
    passage = body["items"][3]
    assert passage["kind"] == "passage" and passage["source"] == "pages/returns.md"

    # filters and pagination
    assert _ids(await api.call("GET", f"{BASE}/entries?lang=de", "read")) == ["de-ship"]
    assert _ids(await api.call("GET", f"{BASE}/entries?q=PAYPAL", "read")) == ["pay"]
    assert _ids(await api.call("GET", f"{BASE}/entries?source=pages/", "read")) == [passage["id"]]
    assert _ids(await api.call("GET", f"{BASE}/entries?kind=faq&source=faq.yaml", "read")) == [
        "ship",
        "pay",
    ]
    page = (await api.call("GET", f"{BASE}/entries?limit=2&offset=1", "read")).json()
    assert [e["id"] for e in page["items"]] == ["ship", "pay"] and page["next_offset"] == 3
    one = await api.call("GET", f"{BASE}/entries/{quote(passage['id'], safe='')}", "read")
    assert one.status_code == 200 and one.json()["id"] == passage["id"]

    # scopes
    assert (await api.call("GET", f"{BASE}/entries", None)).status_code == 401
    refused = await api.call("POST", f"{BASE}/entries", "read", json=GIFT)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "insufficient_scope")
    assert (await api.call("POST", f"{BASE}/reindex", "agent")).status_code == 403

    # create
    created = await api.call("POST", f"{BASE}/entries", "admin", json=GIFT)
    assert created.status_code == 201, created.text
    entry = created.json()
    new_id = entry["id"]
    assert new_id.startswith("api-") and entry["editable"] is True
    assert (entry["source"], entry["lang"], entry["kind"]) == (MANAGED_SOURCE, "en", "faq")
    assert entry["alt_questions"] == ["Can I buy a voucher?"] and entry["tags"] == ["gifts"]
    assert created.headers["location"] == f"{BASE}/entries/{new_id}"
    # the knowledge loader (what `klartext reindex` reads) agrees with the API
    on_disk = load_knowledge(root).by_id()[new_id]
    assert (on_disk.question, on_disk.answer) == (GIFT["question"], GIFT["answer"])
    assert on_disk.content_hash == entry["content_hash"]
    got = await api.call("GET", f"{BASE}/entries/{new_id}", "read")
    assert got.json() == entry
    editable = await api.call("GET", f"{BASE}/entries?editable=true", "read")
    assert _ids(editable) == [new_id]

    given = await api.call(
        "POST", f"{BASE}/entries", "admin", json={**GIFT, "id": "gift-de", "lang": "de"}
    )
    assert given.status_code == 201 and given.json()["lang"] == "de"
    dup = await api.call("POST", f"{BASE}/entries", "admin", json={**GIFT, "id": "ship"})
    assert (dup.status_code, dup.json()["error"]["code"]) == (409, "duplicate_id")
    assert "faq.yaml" in dup.json()["error"]["message"]

    # validation: 422 naming the field
    for bad, field in (
        ({"question": "Only a question?"}, "answer"),
        ({**GIFT, "lang": "english"}, "lang"),
        ({**GIFT, "id": "has space"}, "id"),
        ({**GIFT, "question": "   "}, "question"),
        ({**GIFT, "url": "not a url"}, "url"),
        ({**GIFT, "alt_questions": ["ok", ""]}, "alt_questions"),
    ):
        resp = await api.call("POST", f"{BASE}/entries", "admin", json=bad)
        assert resp.status_code == 422, (bad, resp.text)
        err = resp.json()["error"]
        assert err["code"] == "invalid_request" and field in err["message"], err

    # update: PATCH some fields, PUT all
    patched = await api.call(
        "PATCH", f"{BASE}/entries/{new_id}", "admin", json={"answer": "Yes, from 5 euros."}
    )
    assert patched.status_code == 200, patched.text
    p = patched.json()
    assert (p["question"], p["answer"], p["tags"]) == (
        GIFT["question"],
        "Yes, from 5 euros.",
        ["gifts"],
    )
    assert p["content_hash"] != entry["content_hash"]
    nulled = await api.call("PATCH", f"{BASE}/entries/{new_id}", "admin", json={"answer": None})
    assert nulled.status_code == 422 and "answer" in nulled.json()["error"]["message"]
    put = await api.call(
        "PUT",
        f"{BASE}/entries/{new_id}",
        "admin",
        json={"question": "Are there gift cards?", "answer": "Yes.", "lang": "en"},
    )
    assert put.status_code == 200 and put.json()["alt_questions"] == [] and put.json()["tags"] == []
    assert load_knowledge(root).by_id()[new_id].question == "Are there gift cards?"

    # hand-written entries are read-only; unknown ids are 404
    for method, kw in (
        ("PUT", {"json": GIFT}),
        ("PATCH", {"json": {"answer": "x"}}),
        ("DELETE", {}),
    ):
        resp = await api.call(method, f"{BASE}/entries/ship", "admin", **kw)
        assert (resp.status_code, resp.json()["error"]["code"]) == (409, "read_only_entry"), method
    missing = await api.call("DELETE", f"{BASE}/entries/nope", "admin")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    assert (await api.call("GET", f"{BASE}/entries/nope", "read")).status_code == 404
    assert "ship" in load_knowledge(root).by_id()  # untouched

    # delete
    assert (await api.call("DELETE", f"{BASE}/entries/{new_id}", "admin")).status_code == 204
    assert (await api.call("GET", f"{BASE}/entries/{new_id}", "read")).status_code == 404
    assert set(load_knowledge(root).by_id()) == {"ship", "pay", "de-ship", "gift-de", passage["id"]}
    assert not [p for p in (root / "_api").iterdir() if p.name.endswith(".tmp")]


async def test_concurrent_creates_are_all_kept(api_sqlite: Api) -> None:
    api = api_sqlite
    results = await asyncio.gather(
        *(
            api.call(
                "POST", f"{BASE}/entries", "admin", json={**GIFT, "question": f"Question {i}?"}
            )
            for i in range(8)
        )
    )
    assert [r.status_code for r in results] == [201] * 8
    kb = load_knowledge(api.server.settings.knowledge_dir)
    assert {r.json()["id"] for r in results} <= set(kb.by_id())


class _GatedEmbedder:
    """make_embedder replacement: a FakeEmbedder, handed out once ``gate`` is set."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, settings: Settings, languages: Iterable[str]) -> Embedder:
        assert self.gate.wait(30)
        return FakeEmbedder()


async def _wait_done(api: Api, timeout: float = 60.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        status: dict[str, Any] = (await api.call("GET", f"{BASE}/reindex", "read")).json()
        if status["state"] in ("succeeded", "failed"):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError("reindex did not finish")


async def test_reindex_in_background_then_search_finds_the_new_entry(
    api_sqlite: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = api_sqlite
    gated = _GatedEmbedder()
    monkeypatch.setattr(reindex_job, "make_embedder", gated)
    idle = (await api.call("GET", f"{BASE}/reindex", "read")).json()
    assert idle["state"] == "idle" and idle["started_at"] is None

    gated.gate.clear()
    started = await api.call("POST", f"{BASE}/reindex", "admin")
    assert started.status_code == 202 and started.json()["state"] == "running"
    busy = await api.call("POST", f"{BASE}/reindex", "admin")
    assert (busy.status_code, busy.json()["error"]["code"]) == (409, "reindex_running")
    gated.gate.set()
    first = await _wait_done(api)
    assert first["state"] == "succeeded", first
    assert (first["added"], first["removed"], first["entries"]) == (4, 0, 4)
    assert first["index_written"] is True and first["finished_at"] >= first["started_at"]

    created = await api.call("POST", f"{BASE}/entries", "admin", json=GIFT)
    new_id = created.json()["id"]
    assert (await api.call("POST", f"{BASE}/reindex", "admin")).status_code == 202
    second = await _wait_done(api)
    assert (second["state"], second["added"], second["changed"], second["unchanged"]) == (
        "succeeded",
        1,
        0,
        4,
    )
    retriever = load_retriever(api.server.settings.index_dir, embedder=FakeEmbedder())
    hits = retriever.search("Do you sell gift cards?", k=3, lang="en")
    assert hits and hits[0].entry_id == new_id

    await api.call("DELETE", f"{BASE}/entries/{new_id}", "admin")
    await api.call("POST", f"{BASE}/reindex", "admin")
    third = await _wait_done(api)
    assert (third["state"], third["removed"], third["entries"]) == ("succeeded", 1, 4)

    # a broken hand-written file fails the run with the loader's file:line problems
    (api.server.settings.knowledge_dir / "broken.yaml").write_text("entries:\n  - question: x\n")
    await api.call("POST", f"{BASE}/reindex", "admin")
    failed = await _wait_done(api)
    assert failed["state"] == "failed" and "problem" in failed["error"]
    assert any(i.startswith("broken.yaml:2:") for i in failed["issues"]), failed["issues"]


async def _add_gift_and_reindex(server: Any, wait_s: float) -> tuple[dict[str, Any], Any]:
    """As an admin API client of a real server: create the GIFT entry, start a reindex and
    wait up to ``wait_s`` for it to finish; the created entry and the final status."""
    from bot.store import Database
    from bot.store.apikeys import create_api_key

    db = Database(server.settings.effective_database_url)
    async with db.writing() as s:
        key = (await create_api_key(s, name="admin", scopes="read,admin")).plaintext
    await db.dispose()
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        created = await http.post(f"{BASE}/entries", json=GIFT)
        assert created.status_code == 201
        assert (await http.post(f"{BASE}/reindex")).status_code == 202
        for _ in range(int(wait_s * 10)):
            status = (await http.get(f"{BASE}/reindex")).json()
            if status["state"] != "running":
                break
            await asyncio.sleep(0.1)
    return created.json(), status


async def test_api_reindex_reaches_the_running_bot(
    start_server: StartServer, open_client: OpenClient, tmp_path: Path
) -> None:
    """Real runtime (MiniLM): after an API reindex the bot answers from the new entry at once."""
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "faq.yaml").write_text(FAQ)
    server = start_server(
        real=True,
        data_dir=tmp_path / "data",
        knowledge_dir=kb,
        prepare_on_start=True,
        embedding_backend="minilm",
        llm_provider="none",
    )
    created, status = await _add_gift_and_reindex(server, wait_s=60)
    assert status["state"] == "succeeded" and status["added"] == 1, status
    assert status["runtime_reloaded"] is True

    c = await open_client(server.ws_url)
    await c.hello(lang="en")
    await c.send({"type": "message", "message_id": "g1", "text": "Do you sell gift cards?"})
    frames = await c.until("done", timeout=60)
    sources = next(f for f in frames if f["type"] == "sources")
    assert sources["items"][0]["id"] == created["id"]
    assert frames[-1]["answered"] is True


async def test_unwritable_knowledge_folder_is_503(api_sqlite: Api) -> None:
    (api_sqlite.server.settings.knowledge_dir / "_api").write_text("not a folder")
    resp = await api_sqlite.call("POST", f"{BASE}/entries", "admin", json=GIFT)
    assert (resp.status_code, resp.json()["error"]["code"]) == (503, "knowledge_not_writable")
    listed = await api_sqlite.call("GET", f"{BASE}/entries", "read")
    assert listed.status_code == 200 and listed.json()["total"] == 4


async def test_api_reindex_re_adapts_and_the_running_bot_follows(
    start_server: StartServer, open_client: OpenClient, tmp_path: Path
) -> None:
    """Real runtime with e5 adapted to the knowledge base: an FAQ edit through the API trains
    a new adapter (a new model, e5kb:<key>) and the running bot answers from it at once."""
    from retrieval import store
    from tests.retrieval.test_adapt import GROUPS, _faq

    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "faq.yaml").write_text(_faq(GROUPS))
    server = start_server(
        real=True,
        data_dir=tmp_path / "data",
        knowledge_dir=kb,
        prepare_on_start=True,
        embedding_backend="e5",
        adapt_embeddings=True,
        llm_provider="none",
    )
    index_dir = server.settings.index_dir
    before = store.read_manifest(store.current_build(index_dir)).model
    assert before.startswith("e5kb:")
    created, status = await _add_gift_and_reindex(server, wait_s=300)
    assert status["state"] == "succeeded" and status["runtime_reloaded"] is True, status
    after = store.read_manifest(store.current_build(index_dir)).model
    assert after.startswith("e5kb:") and after != before

    c = await open_client(server.ws_url)
    await c.hello(lang="en")
    await c.send({"type": "message", "message_id": "g1", "text": "Can I buy a voucher?"})
    frames = await c.until("done", timeout=60)
    sources = next(f for f in frames if f["type"] == "sources")
    assert sources["items"][0]["id"] == created["id"]
