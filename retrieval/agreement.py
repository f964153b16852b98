"""Confidence from two encoders that agree: the second opinion's "agree" rule.

On the demo shop's English development questions written like customers write them
(``bench/data/retrieval_dev_demo*.csv``, 164 answerable + 47 unanswerable English rows), the
multilingual e5 ranks the right entry first for ~80 % but its cosine hardly tells right from
wrong, so the calibrated score answers only ~55 % of them; all-mpnet-base-v2 ranks ~90 % right
first and its calibrated score is sharper, but it is confidently wrong on near neighbours
("buy a gift card" / "use a gift card") often enough to answer ~9 % of the questions falsely.
Where the two encoders **agree** on the first entry, that entry is right far more often than
either encoder's score says.

So for a consulted query (:mod:`retrieval.ensemble`, English, every query) the candidates are
ranked by the ensemble with mpnet dominant (β ≫ 1) and each scored by mpnet's own calibration
(:data:`retrieval.calibration.CALIBRATIONS` ``["mpnet"]``, fitted on English development data)
with its logit lowered by ``agree_shift`` for the entry both encoders put first, and by
``disagree_shift`` for every other entry — high enough that no entry the encoders disagree on
reaches the answer threshold, so those questions get "Did you mean …?" suggestions instead.

Constants chosen on the development rows above, through the engine
(``bench/bench_engine_answers.py --cases`` with the English rows; docs/benchmarks.md, "Session 5").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from retrieval.calibration import Calibration

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class AgreementRule:
    """``score = sigmoid(base.logit(cos_2, coverage) − shift)`` with ``shift`` =
    ``agree_shift`` for the entry both encoders rank first, ``disagree_shift`` otherwise."""

    base: Calibration
    agree_shift: float
    disagree_shift: float
    min_first_score: float = 0.0  # the first encoder's own score the agreed entry needs

    def scores(self, cosine: Floats, coverage: Floats, agreed: npt.NDArray[np.bool_]) -> Floats:
        z = (
            self.base.cosine_weight * (cosine - self.base.cosine_mid)
            + self.base.coverage_weight * (coverage - 0.5)
            - np.where(agreed, self.agree_shift, self.disagree_shift)
        )
        out: Floats = 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))
        return out
