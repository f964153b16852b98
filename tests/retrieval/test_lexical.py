"""Tokeniser and BM25 index."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from retrieval.lexical import LexicalIndex, stem, tokenize


def test_tokenize_lowercases_drops_stopwords_and_folds_umlauts() -> None:
    assert tokenize("How do I RETURN the Jacket?") == [stem("return"), stem("jacket")]
    assert tokenize("Rücksendung") == tokenize("rucksendung")
    assert "der" not in tokenize("Wie lange dauert der Versand?")


def test_stemming_meets_inflections() -> None:
    assert len({stem(w) for w in ("delivered", "delivery", "deliver", "deliveries")}) == 1
    assert len({stem(w) for w in ("shipping", "shipped", "ships")}) == 1
    assert stem("lieferung") == stem("liefern")
    assert stem("12345") == "12345"


def test_bm25_ranks_and_coverage() -> None:
    docs = [
        "How long does delivery take? Parcels arrive in 3 days.",
        "How do I reset my password? Use the login page.",
        "Which payment methods are accepted? PayPal and card.",
    ]
    index = LexicalIndex.build(docs)
    scores, coverage = index.score("password reset")
    assert int(np.argmax(scores)) == 1
    assert coverage[1] == 1.0
    assert coverage[0] == 0.0
    _, partial = index.score("password pizza")
    assert 0.0 < partial[1] < 1.0


def test_empty_query_and_empty_index() -> None:
    index = LexicalIndex.build(["alpha beta"])
    scores, coverage = index.score("the and of")
    assert scores.tolist() == [0.0] and coverage.tolist() == [0.0]
    empty = LexicalIndex.build([])
    assert empty.score("anything")[0].shape == (0,)


def test_save_load_round_trip(tmp_path: Path) -> None:
    index = LexicalIndex.build(["Versand nach Österreich", "returns within 30 days"])
    index.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path)
    for query in ("versand österreich", "return days"):
        a, b = index.score(query), loaded.score(query)
        assert np.allclose(a[0], b[0]) and np.allclose(a[1], b[1])
    assert not list(tmp_path.glob("*.pkl"))


def test_weights_match_bm25s() -> None:
    import bm25s

    docs = [
        "How long does delivery take? Parcels arrive in 3 days, delivery is tracked.",
        "How do I reset my password? Use the login page.",
        "Which payment methods are accepted? PayPal and card. Card payment is instant.",
        "",
        "Wie lange dauert die Lieferung? Die Lieferung dauert drei Tage.",
    ]
    ours = LexicalIndex.build(docs)
    ref = bm25s.BM25(k1=1.2, b=0.75)
    ref.index([tokenize(d) for d in docs], show_progress=False)
    for query in ("delivery days", "card payment", "lieferung dauert", "password"):
        expected = ref.get_scores([t for t in tokenize(query) if t in ref.vocab_dict])
        assert np.allclose(ours.score(query)[0], expected, atol=1e-5)


def test_update_reuses_stored_tokens_and_matches_a_full_build(tmp_path: Path) -> None:
    docs = ["Versand nach Österreich", "returns within 30 days", "gift cards never expire"]
    LexicalIndex.build(docs).save(tmp_path)
    old = LexicalIndex.load(tmp_path, tokens=True)
    assert old.doc_terms is not None
    new_docs = ["gift cards expire after 3 years", "Versand in die Schweiz"]
    # keep "returns" (old 1) and "Versand" (old 0), tokenise two new documents
    updated = LexicalIndex.update(old, [1, new_docs[0], 0, new_docs[1]])
    full = LexicalIndex.build([docs[1], new_docs[0], docs[0], new_docs[1]])
    for query in ("versand", "gift cards expire", "return days", "schweiz österreich", "xyz"):
        a, b = updated.score(query), full.score(query)
        assert np.allclose(a[0], b[0]) and np.allclose(a[1], b[1])


def test_tokens_are_not_loaded_for_search(tmp_path: Path) -> None:
    LexicalIndex.build(["alpha beta"]).save(tmp_path)
    assert LexicalIndex.load(tmp_path).doc_terms is None
