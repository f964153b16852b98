"""Out-of-scope detection without OOS training data, built from BANKING77.

10 of the 77 intents (random, ``--seed``) are held out: their rows are removed from
train.csv, and their test.csv rows become ``oos``. The model trains on the other 67 intents
exactly as the bot does (OOS threshold fitted on cross-validated training folds). Reports
OOS recall/precision and the in-scope accuracy with the rule vs. plain top-1 (the drop).
Data: BANKING77 (Casanueva et al. 2020, CC-BY-4.0). ``--split val`` uses a validation split
carved from train.csv instead of test.csv (for tuning).

    nice -n 10 .venv/bin/python bench/bench_nlu_oos.py --embedder minilm --split test
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: no spin-waiting

from _nlu_common import DATA, CachedEmbedder, ft_config, val_split


def _sweep(nlu: Any, embedder: Any, test: list[tuple[str, str]]) -> dict[str, Any]:
    """Recall / in-scope accuracy drop had training chosen another ``oos_quantile`` (the
    thresholds for those are fitted on the training folds too and stored in the stats)."""
    import numpy as np

    from bot.nlu.components import intent_component
    from bot.nlu.evaluate import OOS

    clf = intent_component(nlu.pipelines[nlu.default_language]).classifier
    if clf is None or clf.rule is None:
        return {}
    texts = [t for t, _ in test]
    vecs = embedder.embed(texts, kind="query")
    proba = clf.predict_proba(texts, vecs)
    score = clf.rule.score(clf.oos_signals(proba, vecs))
    far = clf.max_similarity(vecs) < clf.rule.far_threshold
    index = {label: i for i, label in enumerate(clf.labels)}
    gold = np.array([index.get(i, -1) for _, i in test])
    is_oos = np.array([i == OOS for _, i in test])
    right = (proba.argmax(axis=1) == gold)[~is_oos]
    out = {}
    for key, thr in sorted(clf.stats.items()):
        if key.startswith("score_q"):
            reject = (score < thr) | far
            drop = right.mean() - (right & ~reject[~is_oos]).mean()
            out[key.removeprefix("score_")] = {
                "oos_recall": round(float(reject[is_oos].mean()), 3),
                "drop_points": round(float(drop) * 100, 2),
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--split", choices=["val", "test"], default="val")
    ap.add_argument("--held-out", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--oos-quantile", type=float)
    ap.add_argument("--cache", type=Path, help="embedding cache dir (tuning only)")
    ap.add_argument("--finetune", action="store_true", help="fine-tune the encoder first")
    ap.add_argument("--ft-epochs", type=float, help="fine-tune epochs (default: FinetuneConfig)")
    ap.add_argument("--ft-lr", type=float, help="fine-tune learning rate")
    ap.add_argument("--ft-layers", type=int, help="top layers fine-tuned")
    args = ap.parse_args()

    from bot.nlu.classifier import ClassifierConfig
    from bot.nlu.embedding import local_embedder
    from bot.nlu.evaluate import OOS, predict_and_score, read_intent_csv, score, train_for_eval

    rows = read_intent_csv(DATA / "banking77" / "train.csv")
    if args.split == "val":
        train, test = val_split(rows)
    else:
        train, test = rows, read_intent_csv(DATA / "banking77" / "test.csv")
    intents = sorted({i for _, i in rows})
    held = set(random.Random(args.seed).sample(intents, args.held_out))
    train = [(t, i) for t, i in train if i not in held]
    test = [(t, OOS if i in held else i) for t, i in test]

    cfg = ClassifierConfig()
    if args.oos_quantile is not None:
        cfg.oos_quantile = args.oos_quantile
    embedder = local_embedder(args.embedder)
    if args.cache:
        embedder = CachedEmbedder(embedder, args.cache)
    with tempfile.TemporaryDirectory() as tmp:
        nlu, train_s = train_for_eval(
            train, embedder, Path(tmp) / "nlu", config=cfg, lang="en", finetune=ft_config(args)
        )
    with_rule = predict_and_score(nlu, test, lang="en")
    parsed = nlu.parse_many([t for t, _ in test], lang="en")
    top1 = score([i for _, i in test], [m.ranking[0][0] for m in parsed])
    out = {
        "dataset": "banking77-oos",
        "split": args.split,
        "held_out_intents": sorted(held),
        "embedder": embedder.name,
        "oos_quantile": cfg.oos_quantile,
        "n_test": len(test),
        "n_oos": sum(1 for _, i in test if i == OOS),
        "oos_recall": with_rule.oos_recall,
        "oos_precision": with_rule.oos_precision,
        "in_scope_accuracy": round(with_rule.accuracy, 4),
        "in_scope_accuracy_without_rule": round(top1.accuracy, 4),
        "accuracy_drop_points": round((top1.accuracy - with_rule.accuracy) * 100, 2),
        "train_s": round(train_s, 1),
        "thresholds": {k: round(v, 4) for k, v in nlu.manifest["report"]["stats"].items()},
    }
    out["finetune"] = nlu.manifest["report"].get("finetune", {})
    out["sweep"] = _sweep(nlu, nlu.embedder, test)
    out["load_avg_1m"] = round(os.getloadavg()[0], 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
