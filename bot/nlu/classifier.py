"""The intent classifier: an ensemble of two models, plus an out-of-scope rule.

* **semantic** — a one-hidden-layer MLP on sentence embeddings (any ``Embedder``); with fewer
  than ``mlp_min_examples`` training examples, multinomial logistic regression instead;
* **lexical** — multinomial logistic regression on word/char TF-IDF (:mod:`bot.nlu.lexical`);
* probabilities are averaged: ``p = w * p_semantic + (1 - w) * p_lexical``.

Out of scope (see docs/nlu.md): a message is out of scope when its top probability is below
``oos_threshold`` *or* its cosine similarity to the nearest intent centroid (mean embedding of
an intent's examples) is below ``sim_threshold``. Both thresholds are fitted on the training
data itself: K-fold cross-validated scores of the training examples are computed (centroids
from the training folds only), and each threshold is the ``oos_quantile / 2`` quantile of the
held-out examples that were classified *correctly* (so about ``oos_quantile`` of correct
in-scope answers is sacrificed). When the
intents file provides out-of-scope examples, they are also trained as a reject class
``__oos__`` and the threshold is raised (never lowered) to the value that best separates
them from in-scope held-out examples.

Weights are stored as ``.npy`` and settings as JSON — no pickles.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bot.nlu.heads import LinearHead, MLPHead, fit_linear, fit_mlp
from bot.nlu.lexical import LexicalFeatures

Matrix = npt.NDArray[np.float32]
OOS_LABEL = "__oos__"
_EMPIRICAL_MIN = 200


@dataclass
class ClassifierConfig:
    c_semantic: float = 20.0
    c_lexical: float = 30.0
    semantic_head: str = "mlp"  # "mlp" | "linear"
    mlp_hidden: int = 1024
    mlp_epochs: int = 30
    mlp_min_examples: int = 1000  # below this, the linear head (an MLP needs data)
    semantic_weight: float = 0.6
    use_lexical: bool = True
    oos_quantile: float = 0.01
    folds: int = 3
    max_iter: int = 300
    seed: int = 0


@dataclass
class IntentClassifier:
    labels: list[str]
    config: ClassifierConfig
    semantic: LinearHead | MLPHead
    lexical_model: LinearHead | None = None
    lexical: LexicalFeatures | None = None
    oos_threshold: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)
    centroids: Matrix | None = None  # (classes, dim), unit rows
    sim_threshold: float = -1.0

    def max_similarity(self, vectors: Matrix) -> Matrix:
        """Cosine similarity of each vector to its nearest intent centroid."""
        if self.centroids is None or not len(vectors):
            return np.ones(len(vectors), dtype=np.float32)
        sims: Matrix = (vectors @ self.centroids.T).max(axis=1).astype(np.float32)
        return sims

    def out_of_scope(self, proba: Matrix, vectors: Matrix) -> npt.NDArray[np.bool_]:
        """The out-of-scope rule for rows of :meth:`predict_proba` and their vectors."""
        top = proba[:, [i for i, lb in enumerate(self.labels) if lb != OOS_LABEL]].max(axis=1)
        reject = (top < self.oos_threshold) | (self.max_similarity(vectors) < self.sim_threshold)
        if OOS_LABEL in self.labels:
            reject |= proba.argmax(axis=1) == self.labels.index(OOS_LABEL)
        return np.asarray(reject, dtype=np.bool_)

    def predict_proba(self, texts: Sequence[str], vectors: Matrix) -> Matrix:
        """Ensemble probabilities, shape ``(len(texts), len(labels))``."""
        proba = self.semantic.proba(vectors)
        if self.lexical is not None and self.lexical_model is not None:
            w = self.config.semantic_weight
            proba = w * proba + (1 - w) * self.lexical_model.proba(self.lexical.transform(texts))
        return proba

    # ---- persistence --------------------------------------------------------------------
    def to_dir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "labels": self.labels,
            "config": asdict(self.config),
            "oos_threshold": self.oos_threshold,
            "sim_threshold": self.sim_threshold,
            "stats": self.stats,
            "has_lexical": self.lexical is not None,
            "semantic_head": "mlp" if isinstance(self.semantic, MLPHead) else "linear",
        }
        (path / "classifier.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1))
        for key, arr in self.semantic.arrays().items():
            np.save(path / f"semantic_{key}.npy", arr)
        if self.centroids is not None:
            np.save(path / "centroids.npy", self.centroids)
        if self.lexical is not None and self.lexical_model is not None:
            for key, arr in self.lexical_model.arrays().items():
                np.save(path / f"lexical_{key}.npy", arr)
            self.lexical.to_dir(path / "lexical")

    @classmethod
    def from_dir(cls, path: Path) -> IntentClassifier:
        meta = json.loads((path / "classifier.json").read_text())
        head = MLPHead if meta.get("semantic_head") == "mlp" else LinearHead
        semantic = head.from_arrays(_load_arrays(path, "semantic"))
        lexical_model, lexical = None, None
        if meta["has_lexical"]:
            lexical_model = LinearHead.from_arrays(_load_arrays(path, "lexical"))
            lexical = LexicalFeatures.from_dir(path / "lexical")
        return cls(
            labels=list(meta["labels"]),
            config=ClassifierConfig(**meta["config"]),
            semantic=semantic,
            lexical_model=lexical_model,
            lexical=lexical,
            oos_threshold=float(meta["oos_threshold"]),
            sim_threshold=float(meta.get("sim_threshold", -1.0)),
            centroids=np.load(path / "centroids.npy")
            if (path / "centroids.npy").is_file()
            else None,
            stats={k: float(v) for k, v in meta["stats"].items()},
        )


def _load_arrays(path: Path, prefix: str) -> dict[str, Matrix]:
    return {f.stem.removeprefix(prefix + "_"): np.load(f) for f in path.glob(f"{prefix}_*.npy")}


def _fit_semantic(
    vectors: Matrix, y: npt.NDArray[np.int64], n_classes: int, cfg: ClassifierConfig
) -> LinearHead | MLPHead:
    if cfg.semantic_head == "mlp" and len(y) >= cfg.mlp_min_examples:
        return fit_mlp(
            vectors, y, n_classes, hidden=cfg.mlp_hidden, epochs=cfg.mlp_epochs, seed=cfg.seed
        )
    return fit_linear(vectors, y, n_classes, cfg.c_semantic, cfg.max_iter)


def _fit_models(
    texts: Sequence[str],
    vectors: Matrix,
    y: npt.NDArray[np.int64],
    n_classes: int,
    cfg: ClassifierConfig,
) -> tuple[LinearHead | MLPHead, LinearHead | None, LexicalFeatures | None]:
    semantic = _fit_semantic(vectors, y, n_classes, cfg)
    if not cfg.use_lexical:
        return semantic, None, None
    lexical = LexicalFeatures.fit(texts)
    lexical_model = fit_linear(lexical.transform(texts), y, n_classes, cfg.c_lexical, cfg.max_iter)
    return semantic, lexical_model, lexical


def _centroids(vectors: Matrix, y: npt.NDArray[np.int64], n_classes: int) -> Matrix:
    out = np.zeros((n_classes, vectors.shape[1]), dtype=np.float32)
    for c in np.unique(y):
        mean = vectors[y == c].mean(axis=0)
        out[c] = mean / max(float(np.linalg.norm(mean)), 1e-9)
    return out


def _folds(y: npt.NDArray[np.int64], k: int, seed: int) -> list[npt.NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=np.int64)
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        fold_of[idx] = (np.arange(len(idx)) + int(rng.integers(k))) % k
    return [np.flatnonzero(fold_of == f) for f in range(k)]


def cross_val_scores(
    texts: Sequence[str],
    vectors: Matrix,
    y: npt.NDArray[np.int64],
    n_classes: int,
    cfg: ClassifierConfig,
) -> tuple[Matrix, Matrix]:
    """Out-of-fold ensemble probabilities and nearest-centroid similarities."""
    out = np.zeros((len(y), n_classes), dtype=np.float32)
    sims = np.zeros(len(y), dtype=np.float32)
    for held in _folds(y, cfg.folds, cfg.seed):
        train = np.setdiff1d(np.arange(len(y)), held)
        sem, lex_model, lex = _fit_models(
            [texts[i] for i in train], vectors[train], y[train], n_classes, cfg
        )
        clf = IntentClassifier([], cfg, sem, lex_model, lex)
        clf.centroids = _centroids(vectors[train], y[train], n_classes)
        out[held] = clf.predict_proba([texts[i] for i in held], vectors[held])
        sims[held] = clf.max_similarity(vectors[held])
    return out, sims


def _low_quantile(values: Matrix, q: float) -> float:
    """The ``q`` quantile; below 200 values a normal approximation (the empirical extreme
    quantile of a handful of examples is just their single worst outlier)."""
    if len(values) >= _EMPIRICAL_MIN:
        return float(np.quantile(values, q))
    from statistics import NormalDist

    z = NormalDist().inv_cdf(q)
    return float(values.mean() + z * values.std())


def _threshold(
    cv_proba: Matrix,
    cv_sims: Matrix,
    y: npt.NDArray[np.int64],
    oos_top: Matrix | None,
    cfg: ClassifierConfig,
) -> tuple[float, float, dict[str, float]]:
    top = cv_proba.max(axis=1)
    correct = cv_proba.argmax(axis=1) == y
    pool = top[correct] if correct.any() else top
    sim_pool = cv_sims[correct] if correct.any() else cv_sims
    threshold = _low_quantile(pool, cfg.oos_quantile / 2)
    sim_threshold = _low_quantile(sim_pool, cfg.oos_quantile / 2)
    stats = {
        "cv_accuracy": float(correct.mean()),
        "threshold_calibrated": threshold,
        "sim_threshold": sim_threshold,
    }
    if oos_top is not None and len(oos_top):
        candidates = np.unique(np.concatenate([top, oos_top]))
        best_t, best_j = threshold, -1.0
        for t in candidates:
            j = float((oos_top < t).mean() - (pool < t).mean())
            if j > best_j:
                best_t, best_j = float(t), j
        threshold = max(threshold, min(best_t, float(np.quantile(pool, 0.1))))
        stats["threshold_with_oos"] = threshold
    return threshold, sim_threshold, stats


def train_classifier(
    texts: Sequence[str],
    intents: Sequence[str],
    vectors: Matrix,
    *,
    oos_texts: Sequence[str] = (),
    oos_vectors: Matrix | None = None,
    config: ClassifierConfig | None = None,
) -> IntentClassifier:
    """Fit the ensemble and its out-of-scope threshold (see module docstring)."""
    cfg = config or ClassifierConfig()
    labels = sorted(set(intents))
    if len(labels) < 2:
        raise ValueError("intent training needs at least two intents")
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[i] for i in intents], dtype=np.int64)
    min_count = min(Counter(intents).values())
    cfg_cv = ClassifierConfig(**{**asdict(cfg), "folds": max(2, min(cfg.folds, min_count))})
    cv = cross_val_scores(texts, vectors, y, len(labels), cfg_cv) if min_count >= 2 else None

    all_texts, all_vectors, all_y, all_labels = list(texts), vectors, y, labels
    if len(oos_texts) and oos_vectors is not None:
        all_labels = [*labels, OOS_LABEL]
        all_texts += list(oos_texts)
        all_vectors = np.vstack([vectors, oos_vectors])
        all_y = np.concatenate([y, np.full(len(oos_texts), len(labels), dtype=np.int64)])
    sem, lex_model, lex = _fit_models(all_texts, all_vectors, all_y, len(all_labels), cfg)
    clf = IntentClassifier(all_labels, cfg, sem, lex_model, lex)
    clf.centroids = _centroids(vectors, y, len(labels))
    if cv is None:
        clf.oos_threshold = 0.0
        return clf
    oos_top = None
    if len(oos_texts) and oos_vectors is not None:
        oos_top = clf.predict_proba(oos_texts, oos_vectors)[:, : len(labels)].max(axis=1)
    clf.oos_threshold, clf.sim_threshold, clf.stats = _threshold(cv[0], cv[1], y, oos_top, cfg)
    return clf
