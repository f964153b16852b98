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

    def __call__(self, cosine: float, coverage: float) -> float:
        z = self.cosine_weight * (cosine - self.cosine_mid) + self.coverage_weight * (
            coverage - 0.5
        )
        return 1.0 / (1.0 + math.exp(-z))


# Embedder name prefix (before ":") -> calibration. minilm and e5: fitted by
# bench/calibrate_retrieval.py (see docs/benchmarks.md, Retrieval → Score calibration).
# use: not fitted (an estimate from its cosine range); other sentence-transformers models
# get the MiniLM constants — check them with `klartext eval retrieval`.
_MINILM = Calibration(cosine_mid=0.702, cosine_weight=16.4, coverage_weight=5.34)
CALIBRATIONS: dict[str, Calibration] = {
    "minilm": _MINILM,
    "sentence-transformers": _MINILM,
    "e5": Calibration(cosine_mid=0.892, cosine_weight=115.1, coverage_weight=4.44),
    "use": Calibration(cosine_mid=0.62, cosine_weight=16.0, coverage_weight=5.0),
}
DEFAULT_CALIBRATION = CALIBRATIONS["minilm"]


def calibration_for(model: str) -> Calibration:
    return CALIBRATIONS.get(model.split(":", 1)[0], DEFAULT_CALIBRATION)
