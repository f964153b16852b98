"""The second opinion's "agree" rule (retrieval/agreement.py): the second encoder ranks, and
only the entry both encoders put first can score as confident."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEmbedder
from test_ensemble import QUERY, SecondFake, _index

from retrieval.agreement import AgreementRule
from retrieval.calibration import Calibration
from retrieval.ensemble import SecondOpinion
from retrieval.ensemble_pairs import AGREEMENT_PAIRS, PAIRS
from retrieval.search import HybridRetriever

BASE = Calibration(cosine_mid=0.5, cosine_weight=10.0, coverage_weight=0.0)
RULE = AgreementRule(BASE, agree_shift=1.0, disagree_shift=6.0)


def _agreeing(**kw: object) -> SecondOpinion:
    rule = kw.pop("rule", RULE)
    return SecondOpinion(
        SecondFake(),
        first_family="fake",
        beta=1000.0,
        band=(0.0, 1.0),
        agreement=rule,  # type: ignore[arg-type]
    )


def test_scores_shift_the_base_logit_by_agreement() -> None:
    cos, cov = np.array([0.9, 0.9]), np.array([0.2, 0.2])
    got = RULE.scores(cos, cov, np.array([True, False]))
    z = 10.0 * (0.9 - 0.5)
    assert got[0] == pytest.approx(1 / (1 + np.exp(-(z - 1.0))))
    assert got[1] == pytest.approx(1 / (1 + np.exp(-(z - 6.0))))
    assert got[0] > 0.5 > got[1]


def test_agreed_first_entry_is_scored_by_the_second_encoder(tmp_path: Path) -> None:
    idx = _index(tmp_path)
    so = _agreeing()
    hits = HybridRetriever(idx, FakeEmbedder(), second_opinion=so).search(
        "How long does delivery take?", k=3, lang="en"
    )
    assert so.runs == 1 and hits[0].entry.id == "ship"
    # identical text for both encoders: second cosine ≈ 1, so sigmoid(10 · 0.5 − 1)
    assert hits[0].score == pytest.approx(1 / (1 + np.exp(-4.0)), abs=1e-2)
    assert all(h.score < 0.5 for h in hits[1:])


def test_disagreement_ranks_by_the_second_encoder_but_is_not_confident(tmp_path: Path) -> None:
    idx = _index(tmp_path)
    plain = HybridRetriever(idx, FakeEmbedder()).search(QUERY, k=3, lang="en")
    so = _agreeing()
    hits = HybridRetriever(idx, FakeEmbedder(), second_opinion=so).search(QUERY, k=3, lang="en")
    assert plain[0].entry.id != "buy"  # the first encoder puts another entry first
    assert hits[0].entry.id == "buy"  # the second encoder's favourite leads the ranking
    assert max(h.score for h in hits) < 0.5  # but they disagree: nothing is confident


def test_first_encoder_score_floor_blocks_agreement(tmp_path: Path) -> None:
    idx = _index(tmp_path)
    strict = AgreementRule(BASE, agree_shift=1.0, disagree_shift=6.0, min_first_score=1.01)
    so = _agreeing(rule=strict)
    hits = HybridRetriever(idx, FakeEmbedder(), second_opinion=so).search(
        "How long does delivery take?", k=3, lang="en"
    )
    assert hits[0].entry.id == "ship" and hits[0].score < 0.5


def test_agreement_constants_exist_for_e5_next_to_the_cascade() -> None:
    agree = AGREEMENT_PAIRS["e5+mpnet"]
    assert agree.agreement is not None and agree.band == (0.0, 1.0)
    assert agree.agreement.disagree_shift > agree.agreement.agree_shift
    assert PAIRS["e5+mpnet"].agreement is None  # the default rule stays the cascade
