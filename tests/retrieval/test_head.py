"""The entry head: training, persistence in builds, and its effect on search."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from fakes import SHOP, FakeEmbedder, faq, kb_of

from retrieval import store
from retrieval.calibration import HeadCalibration, calibration_for
from retrieval.head import HEAD_FILES, EntryHead, should_train, train_head
from retrieval.reindex import reindex
from retrieval.search import HybridRetriever

OPTS = {"hnsw_threshold": 1000, "duplicate_threshold": 0.99}

GIFT = [
    faq(
        "buy",
        "How do I buy a gift card?",
        alts=(
            "Where can I purchase a voucher?",
            "Can I order a gift card online?",
            "I want to get a voucher as a present",
        ),
        line=1,
    ),
    faq(
        "use",
        "How do I use a gift card?",
        alts=(
            "How do I redeem a voucher?",
            "Where do I enter my gift card code?",
            "Can I pay with a voucher at checkout?",
        ),
        line=9,
    ),
    faq(
        "ship",
        "How long does delivery take?",
        alts=("When will my parcel arrive?", "How many days until my order arrives?"),
        line=17,
    ),
]


def test_train_head_separates_clusters_deterministically() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)).astype(np.float32)
    x = np.vstack([c + 0.1 * rng.normal(size=(5, 16)) for c in centres]).astype(np.float32)
    labels = [name for name in ("a", "b", "c") for _ in range(5)]
    head = train_head(x, labels)
    again = train_head(x, labels)
    assert head.entry_ids == ("a", "b", "c")
    assert np.array_equal(head.weights, again.weights)
    for centre, name in zip(centres, "abc", strict=True):
        logp = head.log_probs(centre)
        assert head.entry_ids[int(np.argmax(logp))] == name
        assert abs(float(np.exp(logp).sum()) - 1.0) < 1e-4


def test_should_train_needs_several_phrasings_per_entry() -> None:
    assert should_train(100, 300)
    assert not should_train(100, 120)  # mostly one phrasing each: nothing to learn
    assert not should_train(1, 10)
    assert not should_train(10_000, 100_000)  # too large to be cheap
    assert not should_train(1_500, 3_000)  # rows x entries above the training budget


def test_reindex_writes_a_head_that_knows_every_phrasing(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    report = reindex(kb_of(tmp_path, GIFT), tmp_path / "idx", embedder, **OPTS)
    assert report.build is not None
    head = EntryHead.load(report.build)
    assert head is not None and set(head.entry_ids) == {"buy", "use", "ship"}
    for entry in GIFT:
        for text in entry.phrasings:
            logp = head.log_probs(embedder.embed([text])[0])
            assert head.entry_ids[int(np.argmax(logp))] == entry.id, text


def test_no_head_when_entries_have_single_phrasings(tmp_path: Path) -> None:
    report = reindex(kb_of(tmp_path, SHOP), tmp_path / "idx", FakeEmbedder(), **OPTS)
    assert report.build is not None and EntryHead.load(report.build) is None
    hits = HybridRetriever(tmp_path / "idx", FakeEmbedder()).search("parcel arrive", k=1)
    assert hits[0].entry_id == "ship"  # search works without a head


def test_moved_entries_keep_their_head(tmp_path: Path) -> None:
    first = reindex(kb_of(tmp_path, GIFT), tmp_path / "idx", FakeEmbedder(), **OPTS)
    moved = [replace(e, line=e.line + 100) for e in reversed(GIFT)]
    second = reindex(kb_of(tmp_path, moved), tmp_path / "idx", FakeEmbedder(), **OPTS)
    assert first.build is not None and second.build is not None
    assert second.build != first.build and second.embedded == 0
    assert all((second.build / name).is_file() for name in HEAD_FILES)
    assert store.read_entries(second.build)[0].id == "ship"


def test_search_follows_the_head_for_ranking(tmp_path: Path) -> None:
    reindex(kb_of(tmp_path, GIFT), tmp_path / "idx", FakeEmbedder(), **OPTS)
    retriever = HybridRetriever(tmp_path / "idx", FakeEmbedder())
    plain = HybridRetriever(tmp_path / "idx", FakeEmbedder(), use_head=False)
    query = "How do I redeem a voucher?"
    assert retriever.search(query, k=1)[0].entry_id == "use"
    # a head that is certain of "ship" must pull it to the top (and into the candidates)
    snap = retriever._state.snap
    assert snap.head is not None
    biased = EntryHead(
        snap.head.weights * 0,
        np.where(np.array(snap.head.entry_ids) == "ship", 0.0, -1000.0).astype(np.float32),
        snap.head.entry_ids,
    )
    retriever._state = replace(retriever._state, snap=replace(snap, head=biased))
    assert retriever.search(query, k=1)[0].entry_id == "ship"
    assert plain.search(query, k=1)[0].entry_id == "use"
    # fake:* has no fitted head calibration: scores stay embedding-only
    same = HybridRetriever(tmp_path / "idx", FakeEmbedder()).search(query, k=3)
    assert [h.score for h in same] == [h.score for h in plain.search(query, k=3)]


def test_head_calibration_never_lifts_an_unrelated_text() -> None:
    base = calibration_for("e5:x")
    cal = HeadCalibration(z_weight=0.2, logp_weight=0.7, bias=1.2, floor=0.15)
    unrelated_cos = base.cosine_mid - 0.1  # far below the midpoint
    assert base(unrelated_cos, 0.0) < 0.15
    assert cal(base, unrelated_cos, 0.0, logp=0.0) == base(unrelated_cos, 0.0)
    near = base.cosine_mid - 0.005
    sure, unsure = cal(base, near, 0.5, logp=-0.01), cal(base, near, 0.5, logp=-4.0)
    assert sure > base(near, 0.5) > unsure
