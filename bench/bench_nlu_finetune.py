"""Encoder fine-tune settings compared on the validation protocol (never test.csv).

BANKING77 train.csv → stratified 15% validation split (seed 0); 10 intents (seed 0, as in
``bench_nlu_oos.py``) are removed from training and their validation rows become ``oos``. The
frozen lower layers are cached once for training and validation texts; every configuration
(JSON arguments; ``{"base": 1}`` = the frozen encoder) restarts from the packaged weights,
fine-tunes the top layers (:mod:`bot.nlu.finetune`), fits the classifier + out-of-scope rule
exactly as training does (``train_classifier``), and reports closed-set accuracy, OOS recall /
in-scope drop (points) at the thresholds of several ``oos_quantile`` values (fitted on the
training folds), an oracle recall at a 1-point drop and the AUROC of the rule's score.
``--shots N`` keeps N training examples per intent (a small intents file).

    nice -n 10 .venv/bin/python bench/bench_nlu_finetune.py '{"base": 1}' '{"epochs": 1}'
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import time
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: no spin-waiting

import numpy as np
from _nlu_common import DATA, val_split

QUANTILES = (0.01, 0.015, 0.02, 0.03)


def _evaluate(
    train: list[tuple[str, str]],
    val: list[tuple[str, str]],
    tv: Any,
    vv: Any,
    fold_vectors: list[Any] | None = None,
) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    from bot.nlu.classifier import ClassifierConfig, train_classifier
    from bot.nlu.evaluate import OOS

    texts = [t for t, _ in train]
    clf = train_classifier(
        texts, [i for _, i in train], tv, config=ClassifierConfig(), fold_vectors=fold_vectors
    )
    assert clf.rule is not None
    val_texts = [t for t, _ in val]
    is_oos = np.array([i == OOS for _, i in val])
    proba = clf.predict_proba(val_texts, vv)
    gold = np.array([clf.labels.index(i) if i != OOS else -1 for _, i in val])
    right = (proba.argmax(1) == gold)[~is_oos]
    score = clf.rule.score(clf.oos_signals(proba, vv))
    far = clf.max_similarity(vv) < clf.rule.far_threshold
    out: dict[str, Any] = {
        "closed_acc": round(float(right.mean()) * 100, 2),
        "cv_acc": round(clf.stats["cv_accuracy"] * 100, 2),
    }
    for q in QUANTILES:
        reject = (score < clf.stats[f"score_q{q:g}"]) | far
        drop = right.mean() - (right & ~reject[~is_oos]).mean()
        out[f"q{q:g}"] = {
            "oos_recall": round(float(reject[is_oos].mean()), 3),
            "drop_points": round(float(drop) * 100, 2),
        }
    thr = np.quantile(score[~is_oos][right], 0.01 * len(right) / right.sum())
    out["oracle_recall_at_1pt"] = round(float((score[is_oos] < thr).mean()), 3)
    out["auroc"] = round(float(roc_auc_score(is_oos, -score)), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("configs", nargs="+", help='JSON FinetuneConfig fields, or {"base": 1}')
    ap.add_argument("--train-layers", type=int, default=2)
    ap.add_argument("--shots", type=int, help="keep only N training examples per intent (seed 0)")
    ap.add_argument(
        "--crossfit", action="store_true", help="fit the rule's folds on per-fold fine-tunes"
    )
    args = ap.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    from bot.nlu import finetune as ft
    from bot.nlu.evaluate import OOS, read_intent_csv

    rows = read_intent_csv(DATA / "banking77" / "train.csv")
    train, val = val_split(rows)
    held = set(random.Random(0).sample(sorted({i for _, i in rows}), 10))
    train = [(t, i) for t, i in train if i not in held]
    val = [(t, OOS if i in held else i) for t, i in val]
    if args.shots:
        by_intent: dict[str, list[tuple[str, str]]] = {}
        for item in train:
            by_intent.setdefault(item[1], []).append(item)
        rng = random.Random(0)
        train = [r for i in sorted(by_intent) for r in rng.sample(by_intent[i], args.shots)]
    labels = sorted({i for _, i in train})
    y = [labels.index(i) for _, i in train]

    cpu0 = time.process_time()
    model: Any = SentenceTransformer(ft._base_model_path(), device="cpu")
    layers = list(model[0].auto_model.encoder.layer)
    top = layers[len(layers) - args.train_layers :]
    initial = [copy.deepcopy(layer.state_dict()) for layer in top]
    frozen = len(layers) - len(top)
    cache_train = ft.FrozenCache(model, [t for t, _ in train], frozen, 128)
    cache_val = ft.FrozenCache(model, [t for t, _ in val], frozen, 128)
    results: list[dict[str, Any]] = []
    base = {"cache_cpu_s": round(time.process_time() - cpu0, 1), "n_train": len(train)}
    base["shots"] = args.shots
    for spec in map(json.loads, args.configs):
        for layer, state in zip(top, initial, strict=True):
            layer.load_state_dict(state)
        row: dict[str, Any] = {"config": spec}
        if not spec.get("base"):
            cfg = ft.FinetuneConfig(**{**spec, "train_layers": len(top)})
            torch.manual_seed(cfg.seed)
            for p in (p for layer in top for p in layer.parameters()):
                p.requires_grad_(True)
            c0 = time.process_time()
            losses = ft.train_top_layers(top, cache_train, y, cfg, cpu0=c0)
            row |= {"steps": len(losses), "train_cpu_s": round(time.process_time() - c0, 1)}
            row["loss_first_last"] = [round(losses[0], 3), round(losses[-1], 3)]
            for p in (p for layer in top for p in layer.parameters()):
                p.requires_grad_(False)
        fold_vectors = None
        if args.crossfit and not spec.get("base"):
            from bot.nlu.classifier import cv_folds

            c0 = time.process_time()
            folds = [list(map(int, f)) for f in cv_folds([i for _, i in train])]
            fold_vectors = ft.crossfit_vectors(
                [t for t, _ in train], [i for _, i in train], folds, cfg
            )
            row["crossfit_cpu_s"] = round(time.process_time() - c0, 1)
        row |= _evaluate(
            train,
            val,
            ft.embed_cached(top, cache_train),
            ft.embed_cached(top, cache_val),
            fold_vectors,
        )
        row["load_avg_1m"] = round(os.getloadavg()[0], 1)
        print(json.dumps(row), flush=True)
        results.append(row)
    print(json.dumps({"dataset": "banking77-val-oos", **base, "results": results}))


if __name__ == "__main__":
    main()
