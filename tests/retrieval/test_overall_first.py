"""The language preference keeps the overall favourite in another language as the last hit,
marked ``overall_first`` (the engine suggests it when it cannot answer)."""

from __future__ import annotations

from pathlib import Path

from fakes import FakeEmbedder, faq, kb_of

from retrieval.reindex import reindex
from retrieval.search import HybridRetriever

ENTRIES = [
    faq("repair", "Do you repair broken tent poles?", lang="en", line=1),
    faq("versand", "Wie lange dauert der Versand?", lang="de", line=5),
    faq("zahlung", "Welche Zahlungsarten gibt es?", lang="de", line=9),
    faq("konto", "Wie lösche ich mein Kundenkonto?", lang="de", line=13),
]
QUERY = "repair broken tent poles bitte"


def _retriever(tmp_path: Path) -> HybridRetriever:
    kb = kb_of(tmp_path, ENTRIES)
    reindex(kb, tmp_path / "idx", FakeEmbedder(), hnsw_threshold=1000, duplicate_threshold=0.99)  # type: ignore[arg-type]
    # a margin no score reaches: the English favourite never outranks the German hits
    return HybridRetriever(tmp_path / "idx", FakeEmbedder(), cross_lang_margin=2.0)


def test_other_language_favourite_is_kept_last_and_marked(tmp_path: Path) -> None:
    r = _retriever(tmp_path)
    plain = r.search(QUERY, k=2)
    assert plain[0].entry_id == "repair" and plain[0].overall_first
    hits = r.search(QUERY, k=2, lang="de")
    assert len(hits) == 2
    assert hits[0].lang == "de" and not hits[0].overall_first
    assert hits[-1].entry_id == "repair" and hits[-1].overall_first


def test_nothing_is_marked_twice_or_moved_when_it_already_fits(tmp_path: Path) -> None:
    r = _retriever(tmp_path)
    hits = r.search(QUERY, k=4, lang="de")
    assert [h.entry_id for h in hits].count("repair") == 1
    assert sum(h.overall_first for h in hits) == 1
    assert hits[-1].entry_id == "repair"  # the preference still puts it after German hits


def test_a_single_hit_stays_in_the_users_language(tmp_path: Path) -> None:
    (hit,) = _retriever(tmp_path).search(QUERY, k=1, lang="de")
    assert hit.lang == "de" and not hit.overall_first
