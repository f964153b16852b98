"""A search's candidates and what they are scored against (:mod:`retrieval.search`).

:class:`Candidate` is one entry considered for a query, with its signals (best-phrasing
cosine, BM25, coverage, ranks, fused ranking score, the entry head's log-probability);
:class:`SearchState` is what a search needs, swapped as one reference on reload;
:func:`candidate_score` is a candidate's calibrated ``Hit.score``. The verifier
(:mod:`retrieval.verifier`) and the second opinion (:mod:`retrieval.ensemble`) work on them too.
"""

from __future__ import annotations

from dataclasses import dataclass

from retrieval.calibration import Calibration, HeadCalibration
from retrieval.snapshot import Snapshot
from retrieval.types import Embedder
from retrieval.verifier import Verifier


def candidate_score(c: Candidate, state: SearchState) -> float:
    """The calibrated ``Hit.score`` of a candidate: the verifier's where it ran, else the
    calibration (with the entry head where fitted). Computed once per candidate (the language
    preference and the hit both ask for it)."""
    if c.score is not None:
        return c.score
    if state.head_calibration is not None and c.head_logp is not None:
        score = state.head_calibration(state.calibration, c.cosine, c.coverage, c.head_logp)
    else:
        score = state.calibration(c.cosine, c.coverage)
    c.score = score
    return score


@dataclass(slots=True)
class Candidate:
    entry: int
    cosine: float = -1.0
    phrase: int = 0
    bm25: float = 0.0
    coverage: float = 0.0
    dense_rank: int = 0
    lexical_rank: int = 0
    fused: float = 0.0
    head_logp: float | None = None
    score: float | None = None  # the verifier's, else the calibration's (see candidate_score)


@dataclass(frozen=True, slots=True)
class SearchState:
    """What a search needs, swapped as one reference (no torn reads during a reload)."""

    snap: Snapshot
    embedder: Embedder
    calibration: Calibration
    head_calibration: HeadCalibration | None = None
    verifier: Verifier | None = None
