"""Study (issue 3): synthetic near-domain negatives for out-of-scope detection.

The semantic head learns an extra reject class ``__oos__`` from mixtures of two confusable
intents' embeddings (outlier exposure with synthetic near-domain negatives; ``oos_mixup``:
negatives per training example; ``oos_mixup_neighbours``: each intent mixes with its nearest
intents by centroid cosine; ``oos_mixup_lambda``: λ ~ U[λ, 1 − λ]); predicting it means out
of scope, and the product's threshold rule (fitted on the cross-validation folds, whose models
learn the class too) still applies. The lexical model never sees the synthetic class. The
training here mirrors ``bot.nlu.classifier.train_classifier`` with that one change (the
product does not carry it: docs/benchmarks.md, "Synthetic near-domain negatives").

Same protocol as ``bench_nlu_oos.py``: BANKING77, ``--held-out`` intents drawn with each
``--seeds`` value removed from training, their rows ``oos``; ``--split val`` (15% carved from
train.csv, for choosing) or ``test``. Each positional argument is a JSON object of
``ClassifierConfig`` overrides plus the three ``oos_mixup*`` keys (``{}`` = the product).
Per draw and configuration:

* ``closed_acc``: in-scope rows, top-1 over the intents (reject class ignored);
* ``product``: OOS recall / in-scope accuracy drop (points) of the decision as built;
* ``sweep``: the same with the thresholds other ``oos_quantile`` values give (training folds);
* ``argmax_only``: the reject class alone;
* ``oracle_1pt``: recall when the score threshold is set on these rows so that, together with
  the reject class, exactly 1% of the in-scope rows that were right are rejected (upper bound);
* ``oracle_1pt_score_only``: the same without the reject class's own rejections;
* ``oracle_1pt_4_signals``: the same for the rule's score with ``1 − p(reject)`` as a fourth
  z-value (standardised on these rows' right in-scope answers: an upper bound);
* ``auroc``: of the rule's score (reject-class rows forced lowest).

    nice -n 10 .venv/bin/python bench/study_nlu_mixup.py --split val --cache DIR '{}' \\
        '{"oos_mixup": 0.5}'
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: no spin-waiting

import numpy as np
import numpy.typing as npt
from _nlu_common import DATA, CachedEmbedder, val_split

Bools = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]


@dataclass
class Mixup:
    """The synthetic negatives: ``amount`` per training example (0 = off: the product's
    classifier), each intent mixed with its ``neighbours`` nearest intents (centroid cosine;
    ≥ intents − 1: any other intent), ``λ ~ U[lam, 1 − lam]``."""

    amount: float = 0.0
    neighbours: int = 3
    lam: float = 0.3


def mixup_negatives(vectors: Floats, y: Ints, n_classes: int, mix: Mixup, seed: int) -> Floats:
    """``mix.amount · len(y)`` vectors ``λ·a + (1 − λ)·b``, renormalised: ``a`` a random
    example of intent ``c``, ``b`` a random example of one of ``c``'s nearest intents."""
    from bot.nlu.oos import ExampleIndex

    n = round(mix.amount * len(y))
    index = ExampleIndex.build(vectors, y, n_classes)
    counts = np.diff(index.offsets)
    cent = np.zeros((n_classes, vectors.shape[1]), dtype=np.float32)
    for c in np.flatnonzero(counts):
        mean = index.vectors[index.offsets[c] : index.offsets[c + 1]].mean(axis=0)
        cent[c] = mean / max(float(np.linalg.norm(mean)), 1e-9)
    sims = cent @ cent.T
    sims[:, counts == 0] = -np.inf
    np.fill_diagonal(sims, -np.inf)
    m = max(1, min(mix.neighbours, int((counts > 0).sum()) - 1))
    near = np.argsort(-sims, axis=1, kind="stable")[:, :m]
    rng = np.random.default_rng(seed)
    first = rng.integers(len(y), size=n)
    other = near[y[first], rng.integers(m, size=n)]
    second = index.offsets[other] + (rng.random(n) * counts[other]).astype(np.int64)
    weight = rng.uniform(mix.lam, 1.0 - mix.lam, size=(n, 1)).astype(np.float32)
    mixed = weight * vectors[first] + (1.0 - weight) * index.vectors[second]
    mixed /= np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-9)
    return np.asarray(mixed, dtype=np.float32)


def _fit_heads(texts: list[str], vectors: Floats, y: Ints, n: int, cfg: Any, mix: Mixup) -> Any:
    """The product's two heads with ``n + 1`` outputs; only the semantic head sees the
    synthetic negatives (class ``n``), the lexical model never predicts it."""
    from bot.nlu.classifier import IntentClassifier, _fit_semantic
    from bot.nlu.heads import fit_linear
    from bot.nlu.lexical import LexicalFeatures

    neg = mixup_negatives(vectors, y, n, mix, cfg.seed)
    sem = _fit_semantic(
        np.vstack([vectors, neg]).astype(np.float32),
        np.concatenate([y, np.full(len(neg), n, dtype=np.int64)]),
        n + 1,
        cfg,
    )
    lex = LexicalFeatures.fit(texts)
    lex_model = fit_linear(lex.transform(texts), y, n + 1, cfg.c_lexical, cfg.max_iter)
    return IntentClassifier([], cfg, sem, lex_model, lex)


def train_with_mixup(
    texts: list[str], intents: list[str], vectors: Floats, cfg: Any, mix: Mixup
) -> Any:
    """``train_classifier`` (no out-of-scope examples) with the reject class ``__oos__``
    learnt from synthetic negatives by the fold models and the final model; the rule's
    signals use the in-scope columns (not renormalised). ``mix.amount`` 0: the product's."""
    from bot.nlu.classifier import OOS_LABEL, _centroids, _fit_rule, _folds, train_classifier
    from bot.nlu.oos import ExampleIndex

    if mix.amount <= 0:
        return train_classifier(texts, intents, vectors, config=cfg)
    labels = sorted(set(intents))
    n = len(labels)
    y = np.array([labels.index(i) for i in intents], dtype=np.int64)
    proba = np.zeros((len(y), n), dtype=np.float32)
    sims, knn = np.zeros(len(y), dtype=np.float32), np.zeros(len(y), dtype=np.float32)
    for held in _folds(y, cfg.folds, cfg.seed):
        train = np.setdiff1d(np.arange(len(y)), held)
        fold = _fit_heads([texts[i] for i in train], vectors[train], y[train], n, cfg, mix)
        fold.centroids = _centroids(vectors[train], y[train], n)
        fold.examples = ExampleIndex.build(vectors[train], y[train], n)
        proba[held] = fold.predict_proba([texts[i] for i in held], vectors[held])[:, :n]
        sims[held] = fold.max_similarity(vectors[held])
        knn[held] = fold.examples.knn_z(vectors[held], proba[held].argmax(1), cfg.oos_knn)
    clf = _fit_heads(texts, vectors, y, n, cfg, mix)
    clf.labels = [*labels, OOS_LABEL]
    clf.centroids = _centroids(vectors, y, n)
    clf.examples = ExampleIndex.build(vectors, y, n)
    clf.examples.loo, clf.examples.loo_k = clf.examples.loo_stats(cfg.oos_knn), cfg.oos_knn
    clf.rule, clf.stats = _fit_rule((proba, sims, knn), y, None, cfg)
    clf.oos_threshold, clf.sim_threshold = clf.rule.threshold, clf.rule.far_threshold
    return clf


def _auroc(s_in: Floats, s_oos: Floats) -> float:
    """P(in-scope score > out-of-scope score) (ties broken by position)."""
    ranks = np.concatenate([s_in, s_oos]).argsort(kind="stable").argsort() + 1.0
    n1, n0 = len(s_in), len(s_oos)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _oracle(score: Floats, forced: Bools, right: Bools, is_oos: Bools) -> float | None:
    """Recall of ``forced | score < t`` with ``t`` rejecting 1% of in-scope rows that were
    right in total (None: ``forced`` alone is over that budget)."""
    budget = int(np.floor(0.01 * int((~is_oos).sum()))) - int((forced & right & ~is_oos).sum())
    if budget < 0:
        return None
    pool = np.sort(score[~is_oos & right & ~forced])
    t = pool[budget] if budget < len(pool) else np.inf
    return float((forced | (score < t))[is_oos].mean())


def _rates(reject: Bools, right: Bools, is_oos: Bools) -> dict[str, float]:
    drop = float((right & reject)[~is_oos].mean()) * 100
    return {"oos_recall": round(float(reject[is_oos].mean()), 3), "drop_points": round(drop, 2)}


def evaluate(clf: Any, test: list[tuple[str, str]], vectors: Floats) -> dict[str, Any]:
    """The figures listed in the module docstring for one trained classifier."""
    from bot.nlu.classifier import OOS_LABEL
    from bot.nlu.evaluate import OOS

    texts = [t for t, _ in test]
    proba = clf.predict_proba(texts, vectors)
    n_in = len([lb for lb in clf.labels if lb != OOS_LABEL])
    index = {label: i for i, label in enumerate(clf.labels[:n_in])}
    gold = np.array([index.get(i, -1) for _, i in test])
    is_oos = np.array([i == OOS for _, i in test])
    right = proba[:, :n_in].argmax(axis=1) == gold
    forced = proba.argmax(axis=1) == n_in if OOS_LABEL in clf.labels else np.zeros(len(test), bool)
    if not is_oos.any():  # --held-out 0: closed-set accuracy and the rule's in-scope cost only
        reject = clf.out_of_scope(proba, vectors)
        return {
            "closed_acc": round(float(right.mean()), 4),
            "drop_points": round(float((right & reject).mean()) * 100, 2),
        }
    score = clf.rule.score(clf.oos_signals(proba, vectors))
    far = clf.max_similarity(vectors) < clf.rule.far_threshold
    sweep = {
        key.removeprefix("score_"): _rates((score < thr) | far | forced, right, is_oos)
        for key, thr in sorted(clf.stats.items())
        if key.startswith("score_q")
    }
    ranked = np.where(forced | far, -np.inf, score)
    oracle = _oracle(np.where(far, -np.inf, score), forced, right, is_oos)
    none = np.zeros(len(test), dtype=bool)
    out: dict[str, Any] = {
        "closed_acc": round(float(right[~is_oos].mean()), 4),
        "product": _rates(clf.out_of_scope(proba, vectors), right, is_oos),
        "argmax_only": _rates(forced, right, is_oos),
        "oracle_1pt": None if oracle is None else round(oracle, 3),
        "auroc": round(_auroc(ranked[~is_oos], ranked[is_oos]), 4),
        "oracle_1pt_score_only": round(
            float(_oracle(_ranked_far(score, far), none, right, is_oos) or 0), 3
        ),
        "sweep": sweep,
    }
    if OOS_LABEL in clf.labels:  # 1 - p(reject) as a 4th z-value (standardised on these rows)
        p_in = 1.0 - proba[:, n_in]
        ref = p_in[~is_oos & right]
        four = (3 * score + (p_in - ref.mean()) / max(float(ref.std()), 1e-6)) / 4
        out["oracle_1pt_4_signals"] = _oracle(_ranked_far(four, far), none, right, is_oos)
        out["auroc_4_signals"] = round(_auroc(four[~is_oos], four[is_oos]), 4)
    return out


def _ranked_far(score: Floats, far: Bools) -> Floats:
    """``score`` with the far guard's rejections ranked lowest."""
    return np.asarray(np.where(far, -np.inf, score), dtype=np.float32)


def _data(split: str, seed: int, held_out: int) -> tuple[list[Any], list[Any], list[str]]:
    from bot.nlu.evaluate import OOS, read_intent_csv

    rows = read_intent_csv(DATA / "banking77" / "train.csv")
    if split == "val":
        train, test = val_split(rows)
    else:
        train, test = rows, read_intent_csv(DATA / "banking77" / "test.csv")
    intents = sorted({i for _, i in rows})
    held = sorted(random.Random(seed).sample(intents, held_out))
    train = [(t, i) for t, i in train if i not in held]
    test = [(t, OOS if i in held else i) for t, i in test]
    return train, test, held


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("configs", nargs="*", default=["{}"], help="ClassifierConfig overrides")
    ap.add_argument("--split", choices=["val", "test"], default="val")
    ap.add_argument("--seeds", default="0", help="held-out draws, comma-separated")
    ap.add_argument("--held-out", type=int, default=10)
    ap.add_argument("--cache", type=Path, help="embedding cache dir")
    args = ap.parse_args()

    from bot.nlu.classifier import ClassifierConfig
    from bot.nlu.embedding import local_embedder

    embedder: Any = local_embedder("minilm")
    if args.cache:
        embedder = CachedEmbedder(embedder, args.cache)
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        train, test, held = _data(args.split, seed, args.held_out)
        x_train = embedder.embed([t for t, _ in train], kind="query")
        x_test = embedder.embed([t for t, _ in test], kind="query")
        for spec in args.configs:
            overrides = json.loads(spec)
            mix = Mixup(
                overrides.pop("oos_mixup", 0.0),
                overrides.pop("oos_mixup_neighbours", 3),
                overrides.pop("oos_mixup_lambda", 0.3),
            )
            cfg = ClassifierConfig(**overrides)
            wall, cpu = time.perf_counter(), time.process_time()
            clf = train_with_mixup([t for t, _ in train], [i for _, i in train], x_train, cfg, mix)
            row = {
                "split": args.split,
                "seed": seed,
                "config": json.loads(spec),
                "n_test": len(test),
                "n_oos": sum(1 for _, i in test if i == "oos"),
                "train_wall_s": round(time.perf_counter() - wall, 1),
                "train_cpu_s": round(time.process_time() - cpu, 1),
                "load_avg_1m": round(os.getloadavg()[0], 1),
                **evaluate(clf, test, x_test),
            }
            if spec == args.configs[0]:
                row["held_out_intents"] = held
            results.append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps({"study": "nlu_mixup", "results": results}))


if __name__ == "__main__":
    main()
