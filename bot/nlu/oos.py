"""The out-of-scope rule: three signals turned into one score, thresholds fitted on training data.

For a message with ensemble probabilities ``p`` (in-scope intents only) and unit embedding ``v``:

* ``top``    — the top probability ``max p``;
* ``margin`` — top-1 minus top-2 probability;
* ``knn``    — mean cosine similarity of ``v`` to its ``k`` nearest *training examples of the
  predicted intent* (:class:`ExampleIndex`).

Each signal is standardised with its mean and standard deviation over the cross-validated
(held-out fold) training examples that were classified correctly, and the three z-values are
averaged. A message is out of scope when that score is below ``threshold`` (the ``quantile``
of the same held-out examples' scores), or when its cosine similarity to the nearest intent
centroid is below ``far_threshold`` (a guard for texts far from every intent). No
out-of-scope data is needed. The statistics are JSON (in the classifier's settings).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]
SIGNALS = ("top", "margin", "knn")
_EMPIRICAL_MIN = 200


@dataclass
class ExampleIndex:
    """Training embeddings grouped by intent (rows of intent ``c`` are
    ``vectors[offsets[c]:offsets[c + 1]]``) for nearest-example similarities."""

    vectors: Matrix  # (examples, dim), unit rows, sorted by intent
    offsets: Labels  # (classes + 1,)

    @classmethod
    def build(cls, vectors: Matrix, y: Labels, n_classes: int) -> ExampleIndex:
        order = np.argsort(y, kind="stable")
        counts = np.bincount(y, minlength=n_classes)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(np.ascontiguousarray(vectors[order], dtype=np.float32), offsets)

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


def signals(proba: Matrix, knn: Matrix) -> dict[str, Matrix]:
    """The rule's raw signals from in-scope probabilities and kNN similarities."""
    if proba.shape[1] >= 2:
        two = np.partition(proba, proba.shape[1] - 2, axis=1)[:, -2:]
        top, second = two.max(axis=1), two.min(axis=1)
    else:
        top, second = proba[:, 0], np.zeros(len(proba), dtype=np.float32)
    return {
        "top": np.asarray(top, dtype=np.float32),
        "margin": np.asarray(top - second, dtype=np.float32),
        "knn": np.asarray(knn, dtype=np.float32),
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
    k: int = 3

    def score(self, sig: dict[str, Matrix]) -> Matrix:
        """Mean over signals of the standardised value ``(s - mean) / std``."""
        total = np.zeros(len(next(iter(sig.values()))), dtype=np.float32)
        for name in SIGNALS:
            total += (sig[name] - np.float32(self.means[name])) / np.float32(self.stds[name])
        return np.asarray(total / len(SIGNALS), dtype=np.float32)

    def reject(self, sig: dict[str, Matrix], centroid_sim: Matrix) -> npt.NDArray[np.bool_]:
        low = (self.score(sig) < self.threshold) | (centroid_sim < self.far_threshold)
        return np.asarray(low, dtype=np.bool_)

    def as_dict(self) -> dict[str, object]:
        return {"means": self.means, "stds": self.stds, "k": self.k}

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
        means = {n: float(sig[n][pool].mean()) for n in SIGNALS}
        stds = {n: max(float(sig[n][pool].std()), 1e-6) for n in SIGNALS}
        rule = cls(means, stds, k=k)
        rule.threshold = low_quantile(rule.score(sig)[pool], quantile)
        rule.far_threshold = low_quantile(centroid_sim[pool], far_quantile)
        return rule
