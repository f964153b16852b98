"""The answerability verifier: how likely is *this* candidate the right answer to the query?

The calibration (:mod:`retrieval.calibration`) scores a hit from its own absolute signals
(best-phrasing cosine, query-term coverage, the entry head's log-probability). Those cannot
tell a right top hit from a wrong one when both look alike. The verifier adds *relational*
evidence, computed for every candidate of one search from signals the retriever already has:

* ``z`` — the embedding calibration's logit (cosine and coverage);
* ``dense_margin`` / ``fused_margin`` / ``head_margin`` — how far the candidate is ahead of
  the best *other* candidate in cosine, fused ranking score and head log-probability (negative
  when it is behind). Margins are taken among candidates in the same language: in a bilingual
  knowledge base an entry's translation is nearly as close as the entry itself and is not its
  rival;
* ``head_lang_logp`` — the head's log-probability renormalised over the candidates in the
  entry's language (clipped at −20);
* ``bm25`` — its BM25 score relative to the best candidate's;
* ``agree`` — how many of the three rankers (dense, BM25, head) put it first in its language;
* ``coverage``, ``same_lang`` (the entry is in the query's language) and ``log_len`` (log of
  1 + the query's content-word count).

``score = sigmoid(w · features + bias)``: a logistic regression of "this candidate is a
correct answer" over the top five candidates of development queries (held-out phrasings of
the demo KB, development paraphrases, out-of-domain negatives), fitted per embedder family by
``bench/calibrate_verifier.py``; ``bias`` is shifted so that 0.5 is the operating point chosen
there (default rule: false answers ≤ 2 % of all development queries, chosen inside each
cross-validation fold). A candidate whose embedding-only score is below ``floor`` keeps that
score: relational evidence cannot lift a text the embedding finds unrelated (a nonsense query
still has a "best" candidate, with a large margin over the others).

**Opt-in.** ``HybridRetriever(..., use_verifier=True)`` / ``load_retriever(...,
use_verifier=True)`` score hits with it (weighted fusion, a build with an entry head, a family
in :data:`VERIFIERS`). It is off by default: cross-validated on the development data it
answers more questions correctly at every false-answer rate, but the gain comes from the
knowledge base's own short phrasings; on user-style paraphrases (the dev sets and the demo
answer test set) it answered fewer questions than the calibration at the same false-answer
rate (docs/benchmarks.md, "Session 3: answerability verifier"). The stored e5 constants are the
strict operating point (answers only where the development data says ≤ 2 % are wrong).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from retrieval.calibration import Calibration
from retrieval.lexical import tokenize

if TYPE_CHECKING:
    from retrieval.candidates import Candidate, SearchState

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

FEATURES = (
    "z",
    "dense_margin",
    "fused_margin",
    "head_lang_logp",
    "head_margin",
    "bm25",
    "agree",
    "coverage",
    "same_lang",
    "log_len",
)
LOGP_FLOOR = -20.0
MARGIN_CLIP = 10.0


def _margin(x: Floats, groups: npt.NDArray[np.int64] | None = None) -> Floats:
    """``x[i] - max(x[j] for j != i in i's group)`` for every i (0 alone in its group)."""
    if groups is None:
        groups = np.zeros(len(x), np.int64)
    out: Floats = np.zeros_like(x)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        if len(idx) < 2:
            continue
        xs = x[idx]
        order = np.argsort(-xs, kind="stable")
        other = np.full_like(xs, xs[order[0]])
        other[order[0]] = xs[order[1]]
        out[idx] = xs - other
    return out


def _log_softmax_by_group(logp: Floats, groups: npt.NDArray[np.int64]) -> Floats:
    out: Floats = np.zeros_like(logp)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        x = logp[idx]
        m = x.max()
        out[idx] = x - (m + np.log(np.exp(x - m).sum()))
    return out


def candidate_features(
    *,
    cosine: Floats,
    coverage: Floats,
    bm25: Floats,
    fused: Floats,
    head_logp: Floats | None,
    same_lang: Bools,
    groups: npt.NDArray[np.int64],
    n_tokens: int,
    base: Calibration,
) -> Floats:
    """One row of :data:`FEATURES` per candidate (all arrays are over the same candidates;
    ``groups`` numbers the candidates' languages: margins are taken within a language, so an
    entry's translation in the other half of a bilingual knowledge base is not its rival)."""
    cosine = np.asarray(cosine, np.float64)
    coverage = np.asarray(coverage, np.float64)
    bm25 = np.asarray(bm25, np.float64)
    fused = np.asarray(fused, np.float64)
    groups = np.asarray(groups, np.int64)
    n = len(cosine)
    if n == 0:
        return np.zeros((0, len(FEATURES)))
    z = base.cosine_weight * (cosine - base.cosine_mid) + base.coverage_weight * (coverage - 0.5)
    top_bm25 = float(bm25.max())
    bm25_rel = bm25 / top_bm25 if top_bm25 > 0 else np.zeros(n)
    dense_margin = _margin(cosine, groups)
    agree = (dense_margin >= 0).astype(np.float64)
    if top_bm25 > 0:
        agree += ((_margin(bm25, groups) >= 0) & (bm25 > 0)).astype(np.float64)
    if head_logp is not None:
        logp = np.maximum(np.asarray(head_logp, np.float64), LOGP_FLOOR)
        lang_logp = np.maximum(_log_softmax_by_group(logp, groups), LOGP_FLOOR)
        head_margin = np.clip(_margin(logp, groups), -MARGIN_CLIP, MARGIN_CLIP)
        agree += (head_margin >= 0).astype(np.float64)
    else:
        lang_logp = head_margin = np.zeros(n)
    cols = {
        "z": z,
        "dense_margin": dense_margin,
        "fused_margin": _margin(fused, groups),
        "head_lang_logp": lang_logp,
        "head_margin": head_margin,
        "bm25": bm25_rel,
        "agree": agree,
        "coverage": coverage,
        "same_lang": np.asarray(same_lang, np.float64),
        "log_len": np.full(n, math.log1p(n_tokens)),
    }
    return np.stack([cols[name] for name in FEATURES], axis=1)


@dataclass(frozen=True, slots=True)
class Verifier:
    """``score = sigmoid(weights · features + bias)``; weights in :data:`FEATURES` order."""

    weights: tuple[float, ...]
    bias: float
    floor: float = 0.15

    def __post_init__(self) -> None:
        if len(self.weights) != len(FEATURES):
            raise ValueError(f"a verifier needs {len(FEATURES)} weights, got {len(self.weights)}")

    def score_pool(
        self,
        *,
        query: str,
        lang: str | None,
        entry_langs: list[str],
        cosine: Floats,
        coverage: Floats,
        bm25: Floats,
        fused: Floats,
        head_logp: Floats,
        base: Calibration,
    ) -> Floats:
        """Scores of one search's candidates (``lang`` None: every entry counts as the
        query's language)."""
        if not entry_langs:
            return np.zeros(0)
        groups = np.unique(np.asarray(entry_langs), return_inverse=True)[1].astype(np.int64)
        feats = candidate_features(
            cosine=cosine,
            coverage=coverage,
            bm25=bm25,
            fused=fused,
            head_logp=head_logp,
            same_lang=np.array([lang is None or lg == lang for lg in entry_langs]),
            groups=groups,
            n_tokens=len(tokenize(query)),
            base=base,
        )
        plain = 1.0 / (1.0 + np.exp(-np.clip(feats[:, 0], -60.0, 60.0)))
        return self.scores(feats, plain)

    def scores(self, features: Floats, plain: Floats) -> Floats:
        """Scores for feature rows; ``plain`` (the embedding-only scores) wins below ``floor``."""
        logits = np.clip(features @ np.asarray(self.weights) + self.bias, -60.0, 60.0)
        out: Floats = np.where(plain < self.floor, plain, 1.0 / (1.0 + np.exp(-logits)))
        return out


# Embedder family (prefix of the manifest name) -> verifier (used with use_verifier=True).
# e5: fitted by bench/calibrate_verifier.py (--rule false) on development data
# (docs/benchmarks.md, "Session 3: answerability verifier"); 0.5 = fitted P 0.82, where false
# answers are <= 2 % of all development queries.
VERIFIERS: dict[str, Verifier] = {
    "e5": Verifier(
        weights=(0.0714, 7.3042, 5.4444, -0.1129, 0.2907, 0.1566, 0.3607, 2.7397, 6.8602, -0.2853),
        bias=-10.7307,
    ),
}


def verifier_for(model: str) -> Verifier | None:
    return VERIFIERS.get(model.split(":", 1)[0])


def verify_candidates(
    cands: list[Candidate], state: SearchState, query: str, lang: str | None
) -> None:
    """Score every candidate of ``HybridRetriever.search`` with the state's verifier (sets
    ``score``; nothing when the embedder family has none)."""
    if state.verifier is None or not cands:
        return
    scores = state.verifier.score_pool(
        query=query,
        lang=lang,
        entry_langs=[state.snap.entries[c.entry].lang for c in cands],
        cosine=np.array([c.cosine for c in cands]),
        coverage=np.array([c.coverage for c in cands]),
        bm25=np.array([c.bm25 for c in cands]),
        fused=np.array([c.fused for c in cands]),
        head_logp=np.array([c.head_logp or 0.0 for c in cands]),
        base=state.calibration,
    )
    for c, score in zip(cands, scores.tolist(), strict=True):
        c.score = score
