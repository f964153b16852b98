"""HybridRetriever: FAQ-native matching, fusion, calibration, language, hot reload."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import SHOP, FakeEmbedder, faq, kb_of

from retrieval.calibration import Calibration, calibration_for
from retrieval.errors import IndexMissing, IndexModelMismatch
from retrieval.reindex import reindex
from retrieval.search import HybridRetriever, load_retriever
from retrieval.types import Hit, Retriever

OPTS = {"hnsw_threshold": 1000, "duplicate_threshold": 0.95}


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    reindex(kb_of(tmp_path, SHOP), tmp_path / "idx", FakeEmbedder(), **OPTS)
    return tmp_path / "idx"


def test_alt_question_returns_canonical_entry(index_dir: Path) -> None:
    retriever = HybridRetriever(index_dir, FakeEmbedder())
    assert isinstance(retriever, Retriever)
    hit = retriever.search("When will my parcel arrive", k=3)[0]
    assert hit.entry_id == "ship"
    assert hit.matched == "When will my parcel arrive?"
    assert hit.entry.answer == "Orders arrive in 1-3 working days."
    assert hit.source == "faq.yaml" and hit.lang == "en" and hit.rank == 1


def test_passage_hit_shows_passage_text(index_dir: Path) -> None:
    hit = HybridRetriever(index_dir, FakeEmbedder()).search("tent seam warranty", k=1)[0]
    assert hit.entry_id == "help#warranty"
    assert hit.matched.startswith("All tents carry")


def test_scores_are_calibrated(index_dir: Path) -> None:
    retriever = HybridRetriever(index_dir, FakeEmbedder())
    good = retriever.search("How can I reset my password?", k=5)
    assert all(0.0 <= h.score <= 1.0 for h in good)
    assert good[0].score >= 0.5
    off_topic = retriever.search("best pizza recipe with anchovies", k=5)
    assert all(h.score < 0.5 for h in off_topic)


def test_calibration_is_monotone() -> None:
    cal = Calibration(cosine_mid=0.6, cosine_weight=10.0, coverage_weight=2.0)
    assert cal(0.6, 0.5) == pytest.approx(0.5)
    assert cal(0.8, 0.5) > cal(0.6, 0.5) > cal(0.4, 0.5)
    assert cal(0.6, 1.0) > cal(0.6, 0.0)
    assert calibration_for("unknown:model") == calibration_for("minilm:x")


def test_hybrid_beats_dense_on_a_lexical_case(tmp_path: Path) -> None:
    entries = [
        faq("carrier", "Which carriers do you use?", "We ship all orders with DHL."),
        faq("dpd", "Do you work with DPD?", "No, only with our own partner."),
        faq("cost", "How much does shipping cost?", "Shipping is free above 50 EUR."),
    ]
    reindex(kb_of(tmp_path, entries), tmp_path / "idx", FakeEmbedder(), **OPTS)
    retriever = HybridRetriever(tmp_path / "idx", FakeEmbedder())
    query = "Do you ship with DHL?"
    assert retriever.search(query, k=1, fusion="dense")[0].entry_id == "dpd"
    assert retriever.search(query, k=1, fusion="rrf")[0].entry_id == "carrier"
    retriever.weight = 0.5  # the per-family default (0.9) trusts the dense ranker more
    assert retriever.search(query, k=1, fusion="weighted")[0].entry_id == "carrier"
    assert retriever.search(query, k=1, fusion="lexical")[0].entry_id == "carrier"


def test_language_preference_and_strong_cross_language_hit(index_dir: Path) -> None:
    retriever = HybridRetriever(index_dir, FakeEmbedder())
    # weak query: the German entry comes first for lang=de
    hits = retriever.search("dauert delivery", k=3, lang="de")
    assert hits[0].lang == "de"
    # strong English hit beats weak German ones even for lang=de
    hits = retriever.search("How can I reset my password?", k=3, lang="de")
    assert hits[0].entry_id == "pw"


def test_reranker_hook(index_dir: Path) -> None:
    class Reverse:
        def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
            return list(reversed(hits))

    plain = HybridRetriever(index_dir, FakeEmbedder()).search("reset password", k=20)
    reranked = HybridRetriever(index_dir, FakeEmbedder(), reranker=Reverse()).search(
        "reset password", k=20
    )
    assert [h.entry_id for h in reranked] == [h.entry_id for h in reversed(plain)]
    assert [h.rank for h in reranked] == list(range(1, len(reranked) + 1))


def test_reload_if_changed_picks_up_new_build(tmp_path: Path, index_dir: Path) -> None:
    retriever = HybridRetriever(index_dir, FakeEmbedder())
    assert retriever.reload_if_changed() is False
    old_build = retriever.build
    entries = [*SHOP, faq("gift", "Do you sell gift cards?", "Yes.")]
    reindex(kb_of(tmp_path, entries), index_dir, FakeEmbedder(), **OPTS)
    assert "gift" not in retriever.entries
    assert retriever.reload_if_changed() is True
    assert retriever.build != old_build
    assert retriever.search("gift cards", k=1)[0].entry_id == "gift"
    assert retriever.manifest.entry_count == len(entries)


def test_model_mismatch_and_missing_index(tmp_path: Path, index_dir: Path) -> None:
    with pytest.raises(IndexModelMismatch, match="fake:trigram"):
        load_retriever(index_dir, embedder=FakeEmbedder(name="fake:other"))
    with pytest.raises(IndexMissing, match="klartext reindex"):
        load_retriever(tmp_path / "empty", embedder=FakeEmbedder())


def test_empty_query_returns_nothing(index_dir: Path) -> None:
    assert HybridRetriever(index_dir, FakeEmbedder()).search("   ") == []


def test_auto_reload_swaps_in_background(tmp_path: Path, index_dir: Path) -> None:
    retriever = HybridRetriever(index_dir, FakeEmbedder(), auto_reload_s=0.0)
    entries = [*SHOP, faq("gift", "Do you sell gift cards?", "Yes.")]
    reindex(kb_of(tmp_path, entries), index_dir, FakeEmbedder(), **OPTS)
    retriever.search("gift cards")  # notices the new build, reloads in a thread
    assert retriever._reloading is not None
    retriever._reloading.join(timeout=10)
    assert retriever.search("gift cards", k=1)[0].entry_id == "gift"


def test_reload_follows_a_new_model_only_when_asked(
    tmp_path: Path, index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import retrieval.embedders

    monkeypatch.setattr(
        retrieval.embedders,
        "embedder_from_name",
        lambda name, index_dir=None: FakeEmbedder(dim=64, name=name),
    )
    fixed = HybridRetriever(index_dir, FakeEmbedder())
    following = load_retriever(index_dir, auto_reload_s=None)
    reindex(kb_of(tmp_path, SHOP), index_dir, FakeEmbedder(dim=64, name="fake:small"), **OPTS)
    with pytest.raises(IndexModelMismatch):
        fixed.reload_if_changed()
    assert fixed.search("reset password", k=1)[0].entry_id == "pw"  # old build still serves
    assert following.reload_if_changed() is True
    assert following.embedder.name == "fake:small"
    assert following.search("reset password", k=1)[0].entry_id == "pw"


def test_default_fusion_is_weighted_with_family_weight(index_dir: Path) -> None:
    from retrieval.search import fusion_weight_for

    retriever = HybridRetriever(index_dir, FakeEmbedder())
    assert retriever.fusion == "weighted"
    assert fusion_weight_for("minilm:all-MiniLM-L6-v2") == 0.9
    assert fusion_weight_for("e5:multilingual-e5-small-q4") == 0.95
