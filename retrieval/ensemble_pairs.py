"""The second opinion's fitted constants per encoder pair (:mod:`retrieval.ensemble`).

:class:`EnsembleCalibration` scores a consulted query's candidates; :data:`PAIRS` (rule
``"cascade"``) and :data:`AGREEMENT_PAIRS` (rule ``"agree"``) say how the bot runs each pair
(:class:`PairOptions`: β, trigger, calibration or agreement rule). All constants were chosen on
development data only (bench/bench_ensemble*.py; docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from retrieval.agreement import AgreementRule
from retrieval.calibration import CALIBRATIONS

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class EnsembleCalibration:
    """``score = sigmoid(cosine_weight·cos_ens + coverage_weight·coverage +
    logp_weight·log P_head + bias)``; ``bias`` is shifted so that 0.5 is the operating point
    (English development queries: no more false answers than the e5 calibration)."""

    cosine_weight: float
    coverage_weight: float
    logp_weight: float
    bias: float

    def __call__(self, cosine: Floats, coverage: Floats, logp: Floats) -> Floats:
        z = (
            self.cosine_weight * cosine
            + self.coverage_weight * coverage
            + self.logp_weight * logp
            + self.bias
        )
        out: Floats = 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))
        return out


# "<first family>+<second family>" -> constants (bench/bench_ensemble.py, β 1, band 0.2–0.8,
# fitted on the English rows of bench/data/retrieval_dev_demo*.csv + 150 BANKING77 train
# negatives, bias −14.3321 at the e5 calibration's false-answer rate; then made 0.5 logit
# stricter after the engine check on the same development cases, bench/bench_ensemble_engine.py:
# as many right answers as e5 alone with 12 instead of 15 false ones; docs/benchmarks.md).
# "minilm+mpnet": bench/bench_ensemble_minilm_fit.py (β 4, gap < 0.12; the consulted queries of
# the StackFAQ dev half, the English rows of bench/data/retrieval_dev_demo*.csv and 150 BANKING77
# train negatives; no head term; bias −8.6669 at MiniLM's false answers on those rows), then
# 0.25 logit stricter: the least strict step at which no development set (StackFAQ dev, demo
# dev, demo hard, negatives on either index) has more false answers than MiniLM alone through
# the retriever (bench_ensemble_minilm*.py; docs/benchmarks.md).
ENSEMBLE_CALIBRATIONS: dict[str, EnsembleCalibration] = {
    "e5+mpnet": EnsembleCalibration(
        cosine_weight=18.9333, coverage_weight=2.4135, logp_weight=0.6501, bias=-14.8321
    ),
    "minilm+mpnet": EnsembleCalibration(
        cosine_weight=12.2276, coverage_weight=0.4503, logp_weight=0.0, bias=-8.9169
    ),
}


@dataclass(frozen=True, slots=True)
class PairOptions:
    """How the bot runs a pair (:func:`second_opinion_for`): β, the trigger (``band`` on the
    first encoder's calibrated top score, or ``margin`` on its fused top-1 − top-2 gap when
    set), and the decision's calibration (None: keep the first encoder's scores)."""

    beta: float = 1.0
    band: tuple[float, float] = (0.2, 0.8)
    margin: float | None = None
    calibration: EnsembleCalibration | None = None
    agreement: AgreementRule | None = None  # scores by agreement (retrieval/agreement.py)


# "minilm+mpnet": β and margin chosen on StackFAQ's dev half (bench/bench_ensemble_minilm.py;
# MiniLM's calibrated scores there are too low for a 0.2–0.8 band); consulted queries are
# scored by the pair's constants (docs/benchmarks.md, "Second opinion with MiniLM first").
PAIRS: dict[str, PairOptions] = {
    "e5+mpnet": PairOptions(calibration=ENSEMBLE_CALIBRATIONS["e5+mpnet"]),
    "minilm+mpnet": PairOptions(
        beta=4.0, margin=0.12, calibration=ENSEMBLE_CALIBRATIONS["minilm+mpnet"]
    ),
}
# Rule "agree" (setting ``second_opinion_rule``): every English query; mpnet ranks (β 1000)
# and the answer needs both encoders' first entry to agree (retrieval/agreement.py; constants
# chosen on the English development rows, docs/benchmarks.md "Session 5").
AGREEMENT_PAIRS: dict[str, PairOptions] = {
    "e5+mpnet": PairOptions(
        beta=1000.0,
        band=(0.0, 1.0),
        agreement=AgreementRule(
            CALIBRATIONS["mpnet"], agree_shift=0.847, disagree_shift=6.0, min_first_score=0.05
        ),
    ),
}
