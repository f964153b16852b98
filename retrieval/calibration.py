"""Calibrated retrieval scores: one threshold means "confident" across knowledge bases.

``Hit.score = sigmoid(cosine_weight·(cosine − cosine_mid) + coverage_weight·(coverage − 0.5))``
where ``cosine`` is the query's cosine with the entry's best-matching phrasing and ``coverage``
the IDF-weighted share of the query's terms found in the entry (:mod:`retrieval.lexical`). Both
inputs are absolute — not relative to the other hits or to the knowledge base's size — so the
same ``answer_threshold`` (default 0.5) works on any knowledge base.

Cosine ranges differ a lot between models (e5 puts unrelated sentences at ~0.75, MiniLM at
~0.1), so the constants are per embedder family (the part of ``Embedder.name`` before ``:``).
They are fitted by ``bench/calibrate_retrieval.py``: a logistic regression of "the top hit is
a correct answer" on development queries only (the demo KB's calibration queries, the German
COVID FAQ's dev split and cross-domain negatives; never a test split). Results and the
precision/recall at 0.5 are in docs/benchmarks.md (*Retrieval → Score calibration*).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Calibration:
    """``score = sigmoid(cosine_weight·(cosine - cosine_mid) + coverage_weight·(coverage - 0.5))``.

    ``cosine_mid`` is the cosine that gives 0.5 at half coverage; the weights set how fast
    confidence rises. Fitted by logistic regression of "top hit is correct" on development
    queries (never test splits) for each embedder family.
    """

    cosine_mid: float
    cosine_weight: float
    coverage_weight: float

    def logit(self, cosine: float, coverage: float) -> float:
        return self.cosine_weight * (cosine - self.cosine_mid) + self.coverage_weight * (
            coverage - 0.5
        )

    def __call__(self, cosine: float, coverage: float) -> float:
        return _sigmoid(self.logit(cosine, coverage))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


@dataclass(frozen=True, slots=True)
class HeadCalibration:
    """Confidence with the entry head (:mod:`retrieval.head`):
    ``score = sigmoid(z_weight·z + logp_weight·log P_head(entry) + bias)`` where ``z`` is the
    embedding calibration's logit. A hit whose embedding-only score is below ``floor`` keeps
    that score (a confident head cannot lift a text the embedding finds unrelated).

    Fitted by ``bench/calibrate_head.py`` (logistic regression of "top hit correct" on the demo
    KB's development queries, held-out phrasings and out-of-domain negatives); ``bias`` is
    shifted so that 0.5 sits where the fit says 0.7 — the operating point whose false-answer
    rate on that data matches the embedding-only calibration at 0.5.
    """

    z_weight: float
    logp_weight: float
    bias: float
    floor: float = 0.15

    def __call__(self, base: Calibration, cosine: float, coverage: float, logp: float) -> float:
        z = base.logit(cosine, coverage)
        plain = _sigmoid(z)
        if plain < self.floor:
            return plain
        return _sigmoid(self.z_weight * z + self.logp_weight * logp + self.bias)


# Embedder name prefix (before ":") -> calibration. minilm, mpnet and e5: fitted by
# bench/calibrate_retrieval.py (see docs/benchmarks.md, Retrieval → Score calibration); mpnet
# on the English development data (demo KB English part, StackFAQ dev half, cross-domain
# negatives), as an English-only model.
# use: not fitted (an estimate from its cosine range); other sentence-transformers models
# get the MiniLM constants — check them with `klartext eval retrieval`.
_MINILM = Calibration(cosine_mid=0.702, cosine_weight=16.4, coverage_weight=5.34)
CALIBRATIONS: dict[str, Calibration] = {
    "minilm": _MINILM,
    "sentence-transformers": _MINILM,
    "mpnet": Calibration(cosine_mid=0.509, cosine_weight=17.98, coverage_weight=3.05),
    "e5": Calibration(cosine_mid=0.892, cosine_weight=115.1, coverage_weight=4.44),
    "use": Calibration(cosine_mid=0.62, cosine_weight=16.0, coverage_weight=5.0),
    # e5 adapted to the knowledge base (retrieval.adapt): fitted by bench/calibrate_adapted.py
    # on the demo shop's three development files + BANKING77 train negatives
    "e5kb": Calibration(cosine_mid=0.7411, cosine_weight=4.44, coverage_weight=4.34),
}
DEFAULT_CALIBRATION = CALIBRATIONS["minilm"]

# Embedder family -> confidence with the entry head; families without one use the head for
# ranking only. Fitted by bench/calibrate_head.py (docs/benchmarks.md).
HEAD_CALIBRATIONS: dict[str, HeadCalibration] = {
    "e5": HeadCalibration(z_weight=0.224, logp_weight=0.818, bias=1.388),
    # bench/calibrate_adapted.py --point 0.654: 0.5 sits where the engine check on the
    # development files gave the most right answers with at most 1 % false (docs/benchmarks.md)
    "e5kb": HeadCalibration(z_weight=0.986, logp_weight=1.327, bias=0.849),
}
# Weight of the head's log-probability in the fused ranking score, per family. e5: chosen on
# the development paraphrases (bench/calibrate_head.py --rank-weight sweep, docs/benchmarks.md);
# others: scaled by the spread of their fused scores (MiniLM's ~0.2 vs e5's ~0.05), not fitted
# (mpnet's cosines spread like MiniLM's). Families without a head calibration or a verifier
# (all but e5) score hits with the embedding calibration alone.
HEAD_RANK_WEIGHTS = {
    "e5": 0.04,
    "e5kb": 0.04,  # e5 adapted to the knowledge base (retrieval.adapt): e5's weight
    "minilm": 0.08,
    "mpnet": 0.08,
    "sentence-transformers": 0.08,
    "use": 0.08,
}


def head_calibration_for(model: str) -> HeadCalibration | None:
    return HEAD_CALIBRATIONS.get(model.split(":", 1)[0])


def head_rank_weight_for(model: str) -> float:
    return HEAD_RANK_WEIGHTS.get(model.split(":", 1)[0], 0.08)


def calibration_for(model: str) -> Calibration:
    return CALIBRATIONS.get(model.split(":", 1)[0], DEFAULT_CALIBRATION)


# The engine's floor for "Did you mean …?" buttons when it cannot answer (bot setting
# suggest_min_score), per family: e5's 0.01 from the session 5 sweep; e5 adapted scores weak
# candidates higher, so at 0.01 it offered 1.16 buttons per refused unanswerable development
# question (e5: 0.13) — 0.12 is the knee of its sweep (docs/benchmarks.md, session 7).
SUGGEST_FLOORS = {"e5kb": 0.12}
DEFAULT_SUGGEST_FLOOR = 0.01


def suggest_floor_for(model: str) -> float:
    return SUGGEST_FLOORS.get(model.split(":", 1)[0], DEFAULT_SUGGEST_FLOOR)
