"""The answerability verifier: its features, its fitted decision, and its wiring into search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEmbedder, faq, kb_of

from bot.decide import judge
from retrieval.calibration import calibration_for
from retrieval.reindex import reindex
from retrieval.search import HybridRetriever
from retrieval.verifier import FEATURES, VERIFIERS, Verifier, candidate_features, verifier_for

BASE = calibration_for("e5:x")
COL = {name: i for i, name in enumerate(FEATURES)}


def _features(
    cosine: list[float],
    *,
    bm25: list[float] | None = None,
    logp: list[float] | None = None,
    langs: list[int] | None = None,
    same: list[bool] | None = None,
    coverage: float = 0.6,
) -> np.ndarray:
    n = len(cosine)
    cos = np.array(cosine)
    b = np.array(bm25 if bm25 is not None else [5.0] + [1.0] * (n - 1))
    lp = np.array(logp if logp is not None else [-0.5] + [-3.0] * (n - 1))
    return candidate_features(
        cosine=cos,
        coverage=np.full(n, coverage),
        bm25=b,
        fused=0.95 * cos + 0.05 * b / b.max() + 0.04 * lp,
        head_logp=lp,
        same_lang=np.array(same if same is not None else [True] * n),
        groups=np.array(langs if langs is not None else [0] * n),
        n_tokens=6,
        base=BASE,
    )


def test_margins_are_relative_to_the_best_other_candidate() -> None:
    f = _features([0.92, 0.88, 0.85])
    assert f[0, COL["dense_margin"]] == pytest.approx(0.04)
    assert f[1, COL["dense_margin"]] == pytest.approx(-0.04)
    assert f[2, COL["dense_margin"]] == pytest.approx(-0.07)
    assert f[0, COL["agree"]] == 3  # dense, BM25 and head all put it first
    assert f[1, COL["agree"]] == 0


def test_a_translation_is_not_a_rival() -> None:
    # the English twin of a German entry has nearly the same cosine: margins are per language
    twins = _features([0.92, 0.919, 0.85], langs=[0, 1, 0], same=[True, False, True])
    mixed = _features([0.92, 0.919, 0.85])
    assert twins[0, COL["dense_margin"]] == pytest.approx(0.07)
    assert mixed[0, COL["dense_margin"]] == pytest.approx(0.001)
    assert twins[0, COL["same_lang"]] == 1 and twins[1, COL["same_lang"]] == 0


def test_fitted_verifier_rewards_agreement_and_margin() -> None:
    verifier = VERIFIERS["e5"]
    plain = np.full(3, 0.9)
    clear = verifier.scores(_features([0.91, 0.87, 0.86]), plain)[0]
    close = verifier.scores(_features([0.91, 0.905, 0.86], bm25=[1, 5, 1]), plain)[0]
    split = verifier.scores(
        _features([0.91, 0.905, 0.86], bm25=[1, 5, 1], logp=[-3.0, -0.2, -4.0]), plain
    )[0]
    assert clear > 0.5 > split
    assert clear > close > split


def test_floor_keeps_an_unrelated_text_unrelated() -> None:
    verifier = Verifier(weights=(0.0,) * len(FEATURES), bias=10.0, floor=0.15)
    features = _features([0.5, 0.4])
    scores = verifier.scores(features, np.array([0.01, 0.9]))
    assert scores[0] == pytest.approx(0.01)  # below the floor: the embedding's word stands
    assert scores[1] > 0.99


def test_weights_must_match_the_features() -> None:
    with pytest.raises(ValueError, match="weights"):
        Verifier(weights=(1.0, 2.0), bias=0.0)
    assert verifier_for("e5:multilingual-e5-small-q4") is VERIFIERS["e5"]
    assert verifier_for("fake:trigram") is None


GIFT = [
    faq(
        "buy",
        "How do I buy a gift card?",
        alts=("Where can I purchase a voucher?", "Can I order a gift card online?"),
        line=1,
    ),
    faq(
        "use",
        "How do I use a gift card?",
        alts=("How do I redeem a voucher?", "Where do I enter my gift card code?"),
        line=9,
    ),
    faq(
        "ship",
        "How long does delivery take?",
        alts=("When will my parcel arrive?", "How many days until my order arrives?"),
        line=17,
    ),
]


def test_search_scores_with_the_verifier_and_refuses_nonsense(tmp_path: Path) -> None:
    embedder = FakeEmbedder(name="e5:fake-trigram")  # an e5-family name: fitted constants
    reindex(
        kb_of(tmp_path, GIFT),
        tmp_path / "idx",
        embedder,
        hnsw_threshold=1000,
        duplicate_threshold=0.99,
    )
    retriever = HybridRetriever(tmp_path / "idx", embedder, use_verifier=True)
    default = HybridRetriever(tmp_path / "idx", embedder)  # opt-in: off by default
    query = "Where do I enter my gift card code?"
    hits = retriever.search(query, k=3, lang="en")
    assert hits[0].entry_id == "use"
    plain = default.search(query, k=3, lang="en")
    assert [h.score for h in hits] != [h.score for h in plain]
    assert judge(hits, lang="en", threshold=0.5).confident
    nonsense = retriever.search("zxqv blorft wibble", k=3, lang="en")
    verdict = judge(nonsense, lang="en", threshold=0.5)
    assert not verdict.confident and verdict.confidence < 0.15
