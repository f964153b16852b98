"""BANKING77 intent accuracy, training time and parse latency, through the bot's NLU path.

Data: ../shared/data/banking77 (PolyAI, Casanueva et al. 2020, CC-BY-4.0). Trains on
train.csv and tests on test.csv with ``--split test``; ``--split val`` instead holds out a
stratified 15% of train.csv (seed 0) and tests on it — use that for tuning, never test.csv.

    nice -n 10 .venv/bin/python bench/bench_nlu_banking77.py --embedder minilm --split test
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: no spin-waiting

from _nlu_common import DATA, CachedEmbedder, ft_config, val_split


def _timed(fn: Callable[[str], object], texts: list[str]) -> list[float]:
    """Milliseconds per call, sorted (5 warm-up calls first)."""
    for text in texts[:5]:
        fn(text)
    out = []
    for text in texts:
        start = time.perf_counter()
        fn(text)
        out.append((time.perf_counter() - start) * 1000)
    return sorted(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--embedder", default="minilm", help="minilm | e5 | e5+minilm")
    ap.add_argument("--split", choices=["val", "test"], default="val")
    ap.add_argument("--latency-n", type=int, default=300)
    ap.add_argument("--c-semantic", type=float)
    ap.add_argument("--c-lexical", type=float)
    ap.add_argument("--semantic-weight", type=float)
    ap.add_argument("--no-lexical", action="store_true")
    ap.add_argument("--cache", type=Path, help="embedding cache dir (tuning only)")
    ap.add_argument("--finetune", action="store_true", help="fine-tune the encoder first")
    ap.add_argument("--ft-epochs", type=float, help="fine-tune epochs (default: FinetuneConfig)")
    ap.add_argument("--ft-lr", type=float, help="fine-tune learning rate")
    ap.add_argument("--ft-layers", type=int, help="top layers fine-tuned")
    args = ap.parse_args()

    from bot.nlu.classifier import ClassifierConfig
    from bot.nlu.embedding import local_embedder
    from bot.nlu.evaluate import predict_and_score, read_intent_csv, train_for_eval

    load0 = round(os.getloadavg()[0], 1)
    rows = read_intent_csv(DATA / "banking77" / "train.csv")
    if args.split == "val":
        train, test = val_split(rows)
    else:
        train, test = rows, read_intent_csv(DATA / "banking77" / "test.csv")
    cfg = ClassifierConfig()
    for field, value in (
        ("c_semantic", args.c_semantic),
        ("c_lexical", args.c_lexical),
        ("semantic_weight", args.semantic_weight),
    ):
        if value is not None:
            setattr(cfg, field, value)
    cfg.use_lexical = not args.no_lexical

    t0 = time.perf_counter()
    embedder = local_embedder(args.embedder)
    if args.cache:
        embedder = CachedEmbedder(embedder, args.cache)
    embedder.embed(["warm up"], kind="query")
    load_s = time.perf_counter() - t0
    cpu0 = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        nlu, train_s = train_for_eval(
            train, embedder, Path(tmp) / "nlu", config=cfg, lang="en", finetune=ft_config(args)
        )
    train_cpu_s = time.process_time() - cpu0
    result = predict_and_score(nlu, test, lang="en")
    result.train_s = train_s
    parsed = nlu.parse_many([t for t, _ in test], lang="en")
    top1 = sum(m.ranking[0][0] == gold for m, (_, gold) in zip(parsed, test, strict=True))
    tuned = bool(nlu.manifest.get("encoder"))  # parses use the fine-tuned encoder
    if isinstance(embedder, CachedEmbedder) and not tuned:  # time the real model, not the cache
        from bot.nlu.components import intent_component

        for nlp in nlu.pipelines.values():
            intent_component(nlp).embedder = embedder.inner
    sample = [t for t, _ in test[: args.latency_n]]
    real = embedder.inner if isinstance(embedder, CachedEmbedder) else embedder
    if tuned and nlu.embedder is not None:
        real = nlu.embedder
    latencies = _timed(lambda t: nlu.parse(t, lang="en"), sample)
    embed_ms = _timed(lambda t: real.embed([t], kind="query"), sample)
    model = getattr(real, "_model", None)
    encode_ms = (
        _timed(lambda t: model.encode([t], show_progress_bar=False), sample) if model else []
    )
    out = {
        "dataset": "banking77",
        "split": args.split,
        "embedder": embedder.name,
        "embedding_cache": bool(args.cache),
        "config": cfg.__dict__,
        "n_train": len(train),
        **result.summary(),
        "accuracy_top1_closed_set": round(top1 / len(test), 4),
        "train_cpu_s": round(train_cpu_s, 1),
        "model_load_s": round(load_s, 2),
        "parse_p50_ms": round(statistics.median(latencies), 2),
        "parse_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
        "embed_one_p50_ms": round(statistics.median(embed_ms), 2),
        "st_encode_one_p50_ms": round(statistics.median(encode_ms), 2) if encode_ms else None,
        "parse_over_st_encode": (
            round(statistics.median(latencies) / statistics.median(encode_ms), 2)
            if encode_ms
            else None
        ),
        "cv_accuracy": round(nlu.manifest["report"]["cv_accuracy"], 4),
        "parse_embedder": nlu.manifest["embedder"],
        "finetune": nlu.manifest["report"].get("finetune", {}),
    }
    out["load_avg_1m"] = [load0, round(os.getloadavg()[0], 1)]  # at start, at end
    print(json.dumps(out))


if __name__ == "__main__":
    main()
