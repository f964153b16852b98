"""The out-of-scope rule: three signals turned into one score, thresholds fitted on training data.

For a message with ensemble probabilities ``p`` (in-scope intents only) and unit embedding ``v``:

* ``top``    — the top probability ``max p``;
* ``margin`` — top-1 minus top-2 probability;
* ``knn_z``  — cosine similarity of ``v`` to its nearest (``k`` = 1) *training example of the
  predicted intent*, standardised per intent: minus that intent's mean and divided by its
  standard deviation of the same similarity among its own training examples (leave-one-out,
  :meth:`ExampleIndex.knn_z`), so tight and loose intents are judged on their own scale.
  Models saved before (format 2) use ``knn`` instead: the raw mean cosine to the ``k`` = 3
  nearest examples of the predicted intent.

Each signal is standardised with its mean and standard deviation over the cross-validated
(held-out fold) training examples that were classified correctly, and the three z-values are
averaged. A message is out of scope when that score is below ``threshold`` (the ``quantile``
of the same held-out examples' scores), or when its cosine similarity to the nearest intent
centroid is below ``far_threshold`` (a guard for texts far from every intent). No
out-of-scope data is needed. The statistics are JSON (in the classifier's settings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]
SIGNALS = ("top", "margin", "knn_z")  # the rule's signals (format 3)
LEGACY_SIGNALS = ("top", "margin", "knn")  # models saved with format 2
_EMPIRICAL_MIN = 200
_STD_PRIOR = 10.0  # pseudo-examples of the pooled std mixed into an intent's own std


@dataclass
class ExampleIndex:
    """Training embeddings grouped by intent (rows of intent ``c`` are
    ``vectors[offsets[c]:offsets[c + 1]]``) for nearest-example similarities."""

    vectors: Matrix  # (examples, dim), unit rows, sorted by intent
    offsets: Labels  # (classes + 1,)
    loo: Matrix | None = None  # (2, classes): per-intent mean/std of leave-one-out kNN cosine
    loo_k: int = 1  # the k of ``loo``

    @classmethod
    def build(cls, vectors: Matrix, y: Labels, n_classes: int) -> ExampleIndex:
        order = np.argsort(y, kind="stable")
        counts = np.bincount(y, minlength=n_classes)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(np.ascontiguousarray(vectors[order], dtype=np.float32), offsets)

    def loo_stats(self, k: int = 1) -> Matrix:
        """Per intent, mean and standard deviation of each example's mean cosine to its ``k``
        nearest *other* examples of the same intent. An intent's std is shrunk towards the
        pooled std (``_STD_PRIOR`` pseudo-examples); intents with fewer than two examples get
        the pooled mean and std."""
        n_classes = len(self.offsets) - 1
        nearest: list[Matrix] = []
        for c in range(n_classes):
            lo, hi = int(self.offsets[c]), int(self.offsets[c + 1])
            if hi - lo < 2:
                nearest.append(np.zeros(0, dtype=np.float32))
                continue
            sims = self.vectors[lo:hi] @ self.vectors[lo:hi].T
            np.fill_diagonal(sims, -2.0)
            kk = min(k, hi - lo - 1)
            top = np.partition(sims, hi - lo - kk, axis=1)[:, hi - lo - kk :]
            nearest.append(top.mean(axis=1).astype(np.float32))
        pooled = np.concatenate(nearest) if any(len(n) for n in nearest) else np.ones(1)
        pool_mean, pool_std = float(pooled.mean()), max(float(pooled.std()), 1e-3)
        out = np.empty((2, n_classes), dtype=np.float32)
        for c, values in enumerate(nearest):
            n = len(values)
            if n == 0:
                out[:, c] = (pool_mean, pool_std)
                continue
            var = (n * float(values.var()) + _STD_PRIOR * pool_std**2) / (n + _STD_PRIOR)
            out[:, c] = (float(values.mean()), max(var**0.5, 1e-3))
        return out

    def knn_z(self, vectors: Matrix, classes: Labels, k: int = 1) -> Matrix:
        """:meth:`knn_similarity` standardised with the predicted intent's leave-one-out
        statistics (:meth:`loo_stats`, computed once per ``k`` and kept in ``loo``)."""
        if self.loo is None or self.loo_k != k:
            self.loo, self.loo_k = self.loo_stats(k), k
        raw = self.knn_similarity(vectors, classes, k)
        z = (raw - self.loo[0][classes]) / self.loo[1][classes]
        return np.asarray(z, dtype=np.float32)

    def knn_similarity(self, vectors: Matrix, classes: Labels, k: int) -> Matrix:
        """Mean cosine of each vector to its ``k`` most similar examples of ``classes[i]``
        (0 when that intent has no examples)."""
        out = np.zeros(len(vectors), dtype=np.float32)
        for c in np.unique(classes):
            rows = np.flatnonzero(classes == c)
            lo, hi = int(self.offsets[c]), int(self.offsets[c + 1])
            if hi <= lo:
                continue
            sims = vectors[rows] @ self.vectors[lo:hi].T
            kk = min(k, hi - lo)
            top = np.partition(sims, hi - lo - kk, axis=1)[:, hi - lo - kk :]
            out[rows] = top.mean(axis=1)
        return out


def signals(proba: Matrix, knn: Matrix, knn_name: str = "knn_z") -> dict[str, Matrix]:
    """The rule's raw signals from in-scope probabilities and the kNN signal (stored under
    ``knn_name``: ``knn_z`` or, for format-2 models, ``knn``)."""
    if proba.shape[1] >= 2:
        two = np.partition(proba, proba.shape[1] - 2, axis=1)[:, -2:]
        top, second = two.max(axis=1), two.min(axis=1)
    else:
        top, second = proba[:, 0], np.zeros(len(proba), dtype=np.float32)
    return {
        "top": np.asarray(top, dtype=np.float32),
        "margin": np.asarray(top - second, dtype=np.float32),
        knn_name: np.asarray(knn, dtype=np.float32),
    }


def low_quantile(values: Matrix, q: float) -> float:
    """The ``q`` quantile; below 200 values a normal approximation (the empirical extreme
    quantile of a handful of examples is just their single worst outlier)."""
    if len(values) >= _EMPIRICAL_MIN:
        return float(np.quantile(values, q))
    from statistics import NormalDist

    z = NormalDist().inv_cdf(q)
    return float(values.mean() + z * values.std())


@dataclass
class OOSRule:
    means: dict[str, float]  # signal → mean over correct held-out examples
    stds: dict[str, float]  # signal → standard deviation over the same examples
    threshold: float = -1e9  # combined score below this → out of scope
    far_threshold: float = -1.0  # nearest-centroid cosine below this → out of scope
    k: int = 1  # nearest examples for the kNN signal
    names: tuple[str, ...] = SIGNALS  # the signals combined (LEGACY_SIGNALS: format 2)

    @property
    def knn_name(self) -> str:
        """Which kNN signal the rule uses: ``knn_z`` or (format 2) ``knn``."""
        return "knn" if "knn" in self.names else "knn_z"

    def score(self, sig: dict[str, Matrix]) -> Matrix:
        """Mean over signals of the standardised value ``(s - mean) / std``."""
        total = np.zeros(len(next(iter(sig.values()))), dtype=np.float32)
        for name in self.names:
            total += (sig[name] - np.float32(self.means[name])) / np.float32(self.stds[name])
        return np.asarray(total / len(self.names), dtype=np.float32)

    def reject(self, sig: dict[str, Matrix], centroid_sim: Matrix) -> npt.NDArray[np.bool_]:
        low = (self.score(sig) < self.threshold) | (centroid_sim < self.far_threshold)
        return np.asarray(low, dtype=np.bool_)

    def as_dict(self) -> dict[str, object]:
        return {"means": self.means, "stds": self.stds, "k": self.k, "signals": list(self.names)}

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], threshold: float, far: float) -> OOSRule:
        """Inverse of :meth:`as_dict` (a spec without ``signals`` is a format-2 rule)."""
        names = tuple(str(n) for n in spec.get("signals") or LEGACY_SIGNALS)
        k = spec["k"]
        return cls(
            {n: float(spec["means"][n]) for n in names},
            {n: float(spec["stds"][n]) for n in names},
            threshold=threshold,
            far_threshold=far,
            k=int(k),
            names=names,
        )

    @classmethod
    def fit(
        cls,
        sig: dict[str, Matrix],
        centroid_sim: Matrix,
        correct: npt.NDArray[np.bool_],
        *,
        quantile: float,
        far_quantile: float,
        k: int,
    ) -> OOSRule:
        """Fit on held-out-fold signals of in-scope training examples (``correct``: their
        prediction was right; only those set the statistics and thresholds)."""
        pool = correct if correct.any() else np.ones_like(correct)
        names = tuple(sig)
        means = {n: float(sig[n][pool].mean()) for n in names}
        stds = {n: max(float(sig[n][pool].std()), 1e-6) for n in names}
        rule = cls(means, stds, k=k, names=names)
        rule.threshold = low_quantile(rule.score(sig)[pool], quantile)
        rule.far_threshold = low_quantile(centroid_sim[pool], far_quantile)
        return rule
