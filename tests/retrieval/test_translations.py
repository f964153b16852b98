"""Which entries exist in another language (``retrieval.translations``): answer vectors in the
build, reused for unchanged entries; ``Hit.translated`` and ``Hit.lang_first`` in searches.

The fake trigram embedder makes identical answers translations (cosine 1) and unrelated ones
not; its family gets a floor for these tests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from fakes import FakeEmbedder, faq, kb_of

from retrieval import store, translations
from retrieval.reindex import reindex
from retrieval.search import HybridRetriever

SAME = "Parcels arrive within two working days."
ENTRIES = [
    faq("ship-en", "How long does shipping take?", SAME, lang="en", line=1),
    faq("ship-de", "Wie lange dauert der Versand?", SAME, lang="de", line=5),
    faq("repair", "Do you repair broken tent poles?", "Send the pole to our workshop.", line=9),
    faq(
        "konto",
        "Wie lösche ich mein Kundenkonto?",
        "Schreiben Sie uns eine Mail.",
        lang="de",
        line=13,
    ),
]


@pytest.fixture(autouse=True)
def _floor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(translations.TRANSLATION_FLOORS, "fake", 0.9)


def _index(tmp_path: Path, entries: list = ENTRIES, emb: FakeEmbedder | None = None) -> Path:  # type: ignore[type-arg]
    reindex(kb_of(tmp_path, entries), tmp_path / "idx", emb or FakeEmbedder(),  # type: ignore[arg-type]
            hnsw_threshold=1000, duplicate_threshold=0.99)  # fmt: skip
    return tmp_path / "idx"


def test_bilingual_build_stores_answers_and_marks_translations(tmp_path: Path) -> None:
    idx = _index(tmp_path)
    build = store.current_build(idx)
    ids, vectors = translations.load(build) or ([], None)
    assert sorted(ids) == sorted(e.id for e in ENTRIES) and vectors is not None
    r = HybridRetriever(idx, FakeEmbedder())
    flags = {h.entry_id: h.translated for h in r.search("repair tent poles versand", k=4)}
    assert flags == {"ship-en": True, "ship-de": True, "repair": False, "konto": False}


def test_other_languages_first_candidate_comes_back_marked(tmp_path: Path) -> None:
    r = HybridRetriever(_index(tmp_path), FakeEmbedder(), cross_lang_margin=2.0)
    hits = r.search("repair broken tent poles", k=2, lang="de")
    assert [h.lang for h in hits] == ["de", "en"]
    assert all(h.lang_first for h in hits)  # the first German and the first English candidate
    assert hits[-1].entry_id == "repair" and hits[-1].translated is False
    hits = r.search("repair broken tent poles", k=4, lang="de")
    assert sum(h.lang_first for h in hits) == 2


def test_incremental_reindex_embeds_only_changed_answers(tmp_path: Path) -> None:
    _index(tmp_path)
    changed = faq("repair", "Do you repair broken tent poles?", "Yes, for free.", line=9)
    emb = FakeEmbedder()
    idx = _index(tmp_path, [*ENTRIES[:2], changed, ENTRIES[3]], emb)
    assert "Yes, for free." in emb.texts
    assert SAME not in emb.texts and "Schreiben Sie uns eine Mail." not in emb.texts
    ids, vectors = translations.load(store.current_build(idx)) or ([], None)
    assert vectors is not None
    fresh = FakeEmbedder().embed(["Yes, for free."])[0]
    assert float(vectors[ids.index("repair")] @ fresh) == pytest.approx(1.0, abs=1e-5)


def test_build_without_answers_gets_them_without_embedding_rows(tmp_path: Path) -> None:
    idx = _index(tmp_path)
    old = store.current_build(idx)
    for name in translations.FILES:  # as written before answer vectors existed
        (old / name).unlink()
    assert HybridRetriever(idx, FakeEmbedder()).search("repair", k=1)[0].translated is None
    emb = FakeEmbedder()
    report = reindex(kb_of(tmp_path, ENTRIES), idx, emb, hnsw_threshold=1000,  # type: ignore[arg-type]
                     duplicate_threshold=0.99)  # fmt: skip
    assert report.build is not None and report.embedded == 0
    assert sorted(emb.texts) == sorted(e.answer for e in ENTRIES)  # answers only
    assert HybridRetriever(idx, FakeEmbedder()).search("repair", k=1)[0].translated is False


def test_one_language_or_no_floor_means_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    english = [e for e in ENTRIES if e.lang == "en"]
    idx = _index(tmp_path / "en", english)
    assert not (store.current_build(idx) / translations.ANSWERS).exists()
    assert HybridRetriever(idx, FakeEmbedder()).search("repair", k=1)[0].translated is None
    monkeypatch.delitem(translations.TRANSLATION_FLOORS, "fake")
    idx = _index(tmp_path / "both")
    assert HybridRetriever(idx, FakeEmbedder()).search("repair", k=1)[0].translated is None


def test_moved_entries_keep_their_answer_vectors(tmp_path: Path) -> None:
    idx = _index(tmp_path)
    moved = [replace(e, line=e.line + 100) for e in ENTRIES]
    emb = FakeEmbedder()
    report = reindex(kb_of(tmp_path, moved), idx, emb, hnsw_threshold=1000,  # type: ignore[arg-type]
                     duplicate_threshold=0.99)  # fmt: skip
    assert report.build is not None and emb.calls == 0
    assert (store.current_build(idx) / translations.ANSWERS).is_file()


def test_damaged_answer_ids_are_an_index_error(tmp_path: Path) -> None:
    from retrieval.errors import IndexCorrupt

    idx = _index(tmp_path)
    build = store.current_build(idx)
    (build / translations.ANSWER_IDS).write_text('["ship-en"]')
    with pytest.raises(IndexCorrupt, match="answers"):
        HybridRetriever(idx, FakeEmbedder())


def test_main_language_is_the_one_with_most_entries(tmp_path: Path) -> None:
    extra = faq("jobs", "Are you hiring?", "See our jobs page.", line=20)
    r = HybridRetriever(_index(tmp_path / "a", [*ENTRIES, extra]), FakeEmbedder())
    assert r.main_language == "en"
    r = HybridRetriever(_index(tmp_path / "b"), FakeEmbedder())
    assert r.main_language == "de"  # a tie: alphabetical, so the choice is stable


def test_unreadable_answer_vectors_are_an_index_error(tmp_path: Path) -> None:
    from retrieval.errors import IndexCorrupt

    idx = _index(tmp_path)
    (store.current_build(idx) / translations.ANSWERS).write_bytes(b"not a numpy file")
    with pytest.raises(IndexCorrupt, match="answer vectors"):
        HybridRetriever(idx, FakeEmbedder())


def test_blocks_give_the_same_verdicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    idx = _index(tmp_path)
    build = store.current_build(idx)
    entries = store.read_entries(build)
    whole = translations.translated(build, entries, "fake:trigram")
    monkeypatch.setattr(translations, "_BLOCK", 1)
    assert whole is not None
    assert list(translations.translated(build, entries, "fake:trigram")) == list(whole)
