"""Incremental reindex, duplicate detection and crash safety."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from fakes import SHOP, FakeEmbedder, faq, kb_of

from retrieval import store
from retrieval.reindex import plan_reindex, reindex
from retrieval.search import HybridRetriever
from retrieval.types import Embedder

OPTS = {"hnsw_threshold": 1000, "duplicate_threshold": 0.9}


def _never() -> Embedder:
    raise AssertionError("the embedder must not be created when nothing changed")


def test_first_build_embeds_every_phrasing(tmp_path: Path) -> None:
    emb = FakeEmbedder()
    report = reindex(kb_of(tmp_path, SHOP), tmp_path / "idx", emb, **OPTS)
    rows = sum(len(store.row_texts(e)) for e in SHOP)
    assert (report.added, report.changed, report.removed, report.unchanged) == (len(SHOP), 0, 0, 0)
    assert report.embedded == rows == len(emb.texts)
    assert report.build is not None and store.current_build(tmp_path / "idx") == report.build
    manifest = store.read_manifest(report.build)
    assert manifest.model == emb.name and manifest.dim == emb.dim
    assert manifest.entry_hashes == {e.id: e.content_hash for e in SHOP}
    assert manifest.row_count == rows


def test_incremental_embeds_only_changes_and_drops_removed(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    reindex(kb_of(tmp_path, SHOP), idx, FakeEmbedder(), **OPTS)
    changed = faq("pay", "Can I pay by bank transfer?", "Yes, and by card.")
    added = faq("gift", "Do you sell gift cards?", "Yes, from 10 EUR.", alts=("Gift vouchers?",))
    entries = [e for e in SHOP if e.id not in {"pay", "return"}] + [changed, added]
    assert plan_reindex(kb_of(tmp_path, entries), idx).counts() == {
        "added": 1, "changed": 1, "removed": 1, "unchanged": len(SHOP) - 2,
    }  # fmt: skip
    emb = FakeEmbedder()
    report = reindex(kb_of(tmp_path, entries), idx, emb, **OPTS)
    assert (report.added, report.changed, report.removed) == (1, 1, 1)
    assert sorted(emb.texts) == sorted(["Can I pay by bank transfer?", *added.phrasings])
    retriever = HybridRetriever(idx, emb)
    assert "return" not in retriever.entries
    assert retriever.search("gift vouchers", k=1)[0].entry_id == "gift"
    assert retriever.search("bank transfer", k=1)[0].entry_id == "pay"
    assert retriever.search("parcel arrive", k=1)[0].entry_id == "ship"  # copied vector


def test_nothing_changed_never_creates_the_embedder(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    first = reindex(kb_of(tmp_path, SHOP), idx, FakeEmbedder(), **OPTS)
    report = reindex(kb_of(tmp_path, SHOP), idx, _never, model_name="fake:trigram", **OPTS)
    assert not report.written and report.unchanged == len(SHOP)
    assert store.current_build(idx) == first.build


def test_moved_entries_update_locations_without_embedding(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    reindex(kb_of(tmp_path, SHOP), idx, FakeEmbedder(), **OPTS)
    moved = [dataclasses.replace(e, line=e.line + 10) for e in SHOP]
    report = reindex(kb_of(tmp_path, moved), idx, _never, model_name="fake:trigram", **OPTS)
    assert report.written and report.embedded == 0
    hit = HybridRetriever(idx, FakeEmbedder()).search("reset my password", k=1)[0]
    assert hit.entry.line == 30


def test_changed_model_forces_full_rebuild(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    reindex(kb_of(tmp_path, SHOP), idx, FakeEmbedder(), **OPTS)
    other = FakeEmbedder(dim=128, name="fake:other")
    report = reindex(kb_of(tmp_path, SHOP), idx, other, **OPTS)
    assert report.full and report.embedded == sum(len(store.row_texts(e)) for e in SHOP)
    assert store.read_manifest(store.current_build(idx)).model == "fake:other"


def test_full_and_dry_run(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    dry = reindex(kb_of(tmp_path, SHOP), idx, _never, dry_run=True, **OPTS)
    assert dry.added == len(SHOP) and not dry.written and not idx.exists()
    reindex(kb_of(tmp_path, SHOP), idx, FakeEmbedder(), **OPTS)
    emb = FakeEmbedder()
    report = reindex(kb_of(tmp_path, SHOP), idx, emb, full=True, **OPTS)
    assert report.written and len(emb.texts) == report.embedded > 0


def test_duplicates_exact_and_near_with_both_locations(tmp_path: Path) -> None:
    entries = [
        *SHOP,
        faq("ship2", "How long does the delivery take?", source="more.yaml", line=4),
        faq("pw2", "how can I reset my password", source="more.yaml", line=9),
    ]
    report = reindex(kb_of(tmp_path, entries), tmp_path / "idx", FakeEmbedder(), **OPTS)
    pairs = {frozenset((d.a_id, d.b_id)): d for d in report.duplicates}
    assert set(pairs) == {frozenset(("ship", "ship2")), frozenset(("pw", "pw2"))}
    near = pairs[frozenset(("ship", "ship2"))]
    assert {near.a_location, near.b_location} == {"faq.yaml:1", "more.yaml:4"}
    assert 0.9 <= near.similarity < 1.0
    assert pairs[frozenset(("pw", "pw2"))].similarity == 1.0
    # carried over by an incremental run that touches neither entry
    extra = [
        *entries,
        faq("new", "Do you ship to Norway?"),
        faq("pay2", "which PAYMENT methods do you accept"),
    ]
    again = reindex(kb_of(tmp_path, extra), tmp_path / "idx", FakeEmbedder(), **OPTS)
    assert not again.full and again.added == 2
    expected = {*pairs, frozenset(("pay", "pay2"))}
    assert {frozenset((d.a_id, d.b_id)) for d in again.duplicates} == expected


def test_crash_mid_build_leaves_old_build_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    idx = tmp_path / "idx"
    first = reindex(kb_of(tmp_path, SHOP), idx, FakeEmbedder(), **OPTS)
    from retrieval import lexical

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(lexical.LexicalIndex, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        reindex(kb_of(tmp_path, [*SHOP, faq("x", "New question?")]), idx, FakeEmbedder(), **OPTS)
    assert store.current_build(idx) == first.build
    retriever = HybridRetriever(idx, FakeEmbedder())
    assert "x" not in retriever.entries
    assert retriever.search("reset password", k=1)[0].entry_id == "pw"


def test_hnsw_layout_incremental(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    opts = {"hnsw_threshold": 3, "duplicate_threshold": 0.99}
    reindex(kb_of(tmp_path, SHOP), idx, FakeEmbedder(), **opts)
    assert store.read_manifest(store.current_build(idx)).index_kind == "hnsw"
    changed = faq("pw", "I forgot my login credentials", "Use 'Forgot password'.")
    entries = [changed if e.id == "pw" else e for e in SHOP]
    emb = FakeEmbedder()
    report = reindex(kb_of(tmp_path, entries), idx, emb, **opts)
    assert report.embedded == 1
    hits = HybridRetriever(idx, emb).search("forgot login credentials", k=3)
    assert hits[0].entry_id == "pw"
    assert hits[0].matched == "I forgot my login credentials"


def test_emptying_the_knowledge_base(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    reindex(kb_of(tmp_path, SHOP), idx, FakeEmbedder(), **OPTS)
    report = reindex(kb_of(tmp_path, []), idx, FakeEmbedder(), **OPTS)
    assert report.removed == len(SHOP) and report.rows == 0
    assert HybridRetriever(idx, FakeEmbedder()).search("reset password") == []


def test_near_duplicates_ignore_translations_and_scale_per_model(tmp_path: Path) -> None:
    from retrieval.duplicates import duplicate_cosine

    assert duplicate_cosine(0.92, "minilm:all-MiniLM-L6-v2") == pytest.approx(0.92)
    assert duplicate_cosine(0.92, "e5:multilingual-e5-small-q4") == pytest.approx(0.9776)
    entries = [
        faq("en", "How long does the delivery take?"),
        faq("de", "How long does delivery take?", lang="de"),  # same words, other language
    ]
    report = reindex(kb_of(tmp_path, entries), tmp_path / "idx", FakeEmbedder(), **OPTS)
    assert report.duplicates == []


def test_incremental_bm25_reuses_tokens_and_equals_a_full_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrieval import lexical

    idx, full_idx = tmp_path / "idx", tmp_path / "full"
    reindex(kb_of(tmp_path, SHOP), idx, FakeEmbedder(), **OPTS)
    changed = faq("pay", "Can I pay by bank transfer?", "Yes, and by card.")
    entries = [e for e in SHOP if e.id not in {"pay", "return"}] + [changed]
    tokenised: list[str] = []
    real_tokenize = lexical.tokenize
    monkeypatch.setattr(lexical, "tokenize", lambda t: tokenised.append(t) or real_tokenize(t))
    report = reindex(kb_of(tmp_path, entries), idx, FakeEmbedder(), **OPTS)
    assert tokenised == [store.lexical_text(changed)]  # unchanged entries are not tokenised
    assert report.build is not None
    full = reindex(kb_of(tmp_path, entries), full_idx, FakeEmbedder(), full=True, **OPTS)
    assert full.build is not None
    a, b = lexical.LexicalIndex.load(report.build), lexical.LexicalIndex.load(full.build)
    for query in ("bank transfer card", "parcel arrive", "refund"):
        assert a.score(query)[0].tolist() == pytest.approx(b.score(query)[0].tolist())
        assert a.score(query)[1].tolist() == pytest.approx(b.score(query)[1].tolist())


def test_reindex_restores_the_garbage_collector(tmp_path: Path) -> None:
    import gc

    assert gc.isenabled()
    reindex(kb_of(tmp_path, SHOP), tmp_path / "idx", FakeEmbedder(), **OPTS)
    assert gc.isenabled()
    gc.disable()
    try:  # a caller that disabled it keeps it disabled
        reindex(kb_of(tmp_path, SHOP[:-1]), tmp_path / "idx", FakeEmbedder(), **OPTS)
        assert not gc.isenabled()
    finally:
        gc.enable()
