"""Single-message parse latency of a trained BANKING77 NLU, next to a bare MiniLM encode.

On a shared machine absolute latencies follow the other jobs, so each test message is timed
three ways back to back — ``NLU.parse`` (real MiniLM, one message), the embedder's one-message
``embed`` alone, and sentence-transformers' ``encode([text])`` — and the medians and the ratio
parse / encode are reported with the load average. ``--model DIR`` reuses a model folder
(written by a previous run with ``--keep DIR``); otherwise it trains on train.csv first
(``--cache`` speeds that up; training time is not what this measures).

    nice -n 15 .venv/bin/python bench/bench_nlu_parse.py --keep /tmp/b77-nlu --cache DIR
    nice -n 15 .venv/bin/python bench/bench_nlu_parse.py --model /tmp/b77-nlu
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: no spin-waiting

from _nlu_common import DATA, CachedEmbedder


def _ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, help="trained NLU folder to reuse")
    ap.add_argument("--keep", type=Path, help="train into this folder (kept)")
    ap.add_argument("--cache", type=Path, help="embedding cache dir for training")
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()

    from bot.nlu.embedding import MiniLMEmbedder
    from bot.nlu.evaluate import read_intent_csv
    from bot.nlu.pipeline import load_nlu
    from bot.nlu.training import train_nlu

    embedder = MiniLMEmbedder()
    model_dir = args.model
    if model_dir is None:
        model_dir = args.keep or Path("/tmp/klartext-bench-parse-nlu")
        rows = read_intent_csv(DATA / "banking77" / "train.csv")
        train_emb = CachedEmbedder(embedder, args.cache) if args.cache else embedder
        train_nlu([(t, i, "en") for t, i in rows], model_dir, embedder=train_emb)
    nlu = load_nlu(model_dir, embedder=embedder)
    texts = [t for t, _ in read_intent_csv(DATA / "banking77" / "test.csv")[: args.n]]
    model = embedder._model
    load0 = round(os.getloadavg()[0], 1)
    for text in texts[:10]:  # warm-up
        nlu.parse(text, lang="en")
        model.encode([text], show_progress_bar=False)
    batch = nlu.parse_many(texts, lang="en")  # float32 batch embeddings
    single = [nlu.parse(t, lang="en") for t in texts]  # the one-message path
    agree = sum(
        (a.intent, a.out_of_scope) == (b.intent, b.out_of_scope)
        for a, b in zip(batch, single, strict=True)
    )
    parse, embed, encode = [], [], []
    for text in texts:
        parse.append(_ms(lambda t=text: nlu.parse(t, lang="en")))  # type: ignore[misc]
        embed.append(_ms(lambda t=text: embedder.embed([t], kind="query")))  # type: ignore[misc]
        encode.append(_ms(lambda t=text: model.encode([t], show_progress_bar=False)))  # type: ignore[misc]
    p50 = {k: statistics.median(v) for k, v in (("p", parse), ("e", embed), ("s", encode))}
    out = {
        "dataset": "banking77",
        "n": len(texts),
        "parse_p50_ms": round(p50["p"], 2),
        "parse_p90_ms": round(sorted(parse)[int(len(parse) * 0.9)], 2),
        "embed_one_p50_ms": round(p50["e"], 2),
        "st_encode_one_p50_ms": round(p50["s"], 2),
        "parse_over_st_encode": round(p50["p"] / p50["s"], 2),
        "parse_minus_embed_p50_ms": round(
            statistics.median(p - e for p, e in zip(parse, embed, strict=True)), 2
        ),
        "single_vs_batch_agreement": round(agree / len(texts), 4),
        "load_avg_1m": [load0, round(os.getloadavg()[0], 1)],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
