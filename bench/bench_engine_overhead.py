"""Engine overhead per turn without an LLM (NLU + retrieval + decision + event assembly).

Runs the demo shop's answer-quality questions through the extractive engine (real NLU, real
hybrid retriever, real demo orders) and reports per-turn wall time p50/p99 (all events
consumed). Goals (issue 7): p50 <= 25 ms, p99 <= 80 ms.

    .venv/bin/python bench/bench_engine_overhead.py [--turns 300] [--data-dir var]
        [--keep-cache [--repeat-share P]] [--query-threads N] [--concurrency N] [--breakdown]

By default the query-embedding cache is cleared before every turn (each turn pays one e5
embedding, the honest cold cost); ``--keep-cache`` keeps it (a support inbox where questions
repeat), and ``--repeat-share P`` with it repeats only that share of the messages, the rest new
(``new_*``: their latency). ``--concurrency N`` runs N conversations at once (as a server
would; then a tiny cache replaces the clearing). Besides wall-time percentiles it reports
throughput, the process CPU time per turn (what a turn costs, whatever else the machine does),
the bare query embedding (``embed_*``, the same questions embedded directly) and the 1-minute
load average before and after, since the machine is shared. ``--breakdown`` adds
``stages_cpu_ms``: the calling thread's CPU per question for each stage of a turn, each timed
alone over the same questions (bench/_engine_stages.py). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _stats(values: list[float], prefix: str) -> dict[str, float]:
    return {
        f"{prefix}p50_ms": round(statistics.median(values), 2),
        f"{prefix}p90_ms": round(_pct(values, 0.9), 2),
        f"{prefix}p99_ms": round(_pct(values, 0.99), 2),
    }


async def _run(
    turns: int,
    data_dir: Path,
    keep_cache: bool,
    query_threads: int | None,
    concurrency: int,
    breakdown: bool = False,
    repeat_share: float | None = None,
) -> dict[str, object]:
    from bot.config import Settings
    from bot.conversation import ConversationContext
    from bot.evaluate import load_cases
    from bot.runtime import build_runtime

    settings = Settings(data_dir=data_dir, llm_provider="none")
    t0 = time.perf_counter()
    runtime = build_runtime(settings, prepare=True)
    load_s = time.perf_counter() - t0
    cases = load_cases(ROOT / "tests" / "data" / "answers_demo.yaml")
    engine = runtime.engine
    embedder: Any = getattr(runtime.retriever, "embedder", None)
    clear = getattr(embedder, "clear", None)
    inner: Any = getattr(embedder, "inner", embedder)
    if query_threads is not None and hasattr(inner, "query_threads"):
        inner.query_threads = query_threads  # e5: OpenMP threads for one query
    if concurrency > 1 and not keep_cache and hasattr(embedder, "maxsize"):
        # clearing would hit the other conversations' in-flight turns; a cache this small
        # still shares a turn's embedding between NLU and retrieval but never across turns
        embedder.maxsize, clear = 2 * concurrency, None
    for case in cases[:10]:  # warm-up
        async for _ in engine.turn(case.q, ConversationContext("w", lang=case.lang), turn_id="w"):
            pass
    load_before = os.getloadavg()[0]
    totals: list[float] = []
    parts: dict[str, list[float]] = {"nlu": [], "retrieval": []}
    modes: dict[str, int] = {}

    rng = random.Random(7)
    new = [repeat_share is not None and rng.random() >= repeat_share for _ in range(turns)]
    lat_new: list[float] = []

    async def conversation(worker: int) -> None:
        for i in range(worker, turns, concurrency):
            case = cases[i % len(cases)]
            text = f"{case.q} #{i}" if new[i] else case.q  # a new message: never cached
            ctx = ConversationContext(f"b{i}", lang=case.lang)
            if callable(clear) and not keep_cache:
                clear()  # every turn embeds its message once (NLU); no cross-turn cache hits
            start = time.perf_counter()
            done = None
            async for event in engine.turn(text, ctx, turn_id=str(i)):
                done = event
            totals.append((time.perf_counter() - start) * 1000)
            if new[i]:
                lat_new.append(totals[-1])
            assert done is not None and done.type == "done"
            modes[done.mode] = modes.get(done.mode, 0) + 1
            for key in parts:
                if key in done.timing_ms:
                    parts[key].append(done.timing_ms[key])

    wall_start, cpu_start = time.perf_counter(), time.process_time()
    await asyncio.gather(*(conversation(w) for w in range(concurrency)))
    wall_s, cpu_s = time.perf_counter() - wall_start, time.process_time() - cpu_start
    load_after = os.getloadavg()[0]
    embeds: list[float] = []
    if inner is not None:
        for case in cases:
            start = time.perf_counter()
            inner.embed([case.q], kind="query")
            embeds.append((time.perf_counter() - start) * 1000)
    stages: dict[str, float] = {}
    if breakdown:
        from _engine_stages import stage_cpu_ms  # bench/ is on sys.path (the script dir)

        stages = stage_cpu_ms(engine, [(c.q, c.lang) for c in cases])
    return {
        "bench": "engine_overhead",
        "turns": turns,
        "concurrency": concurrency,
        "cache": "kept" if keep_cache else "no cross-turn hits",
        **(
            {"repeat_share": repeat_share, **_stats(lat_new, "new_")}
            if repeat_share is not None and lat_new
            else {}
        ),
        "p50_ms": round(statistics.median(totals), 2),
        "p99_ms": round(_pct(totals, 0.99), 2),
        "p90_ms": round(_pct(totals, 0.9), 2),
        "mean_ms": round(statistics.fmean(totals), 2),
        "turns_per_s": round(turns / wall_s, 1),
        "cpu_per_turn_ms": round(cpu_s * 1000 / turns, 2),
        **_stats(parts["nlu"], "nlu_"),
        **(_stats(parts["retrieval"], "retrieval_") if parts["retrieval"] else {}),
        **(_stats(embeds, "embed_") if embeds else {}),
        "embedder": getattr(embedder, "name", None),
        "query_threads": getattr(inner, "query_threads", None),
        "modes": modes,
        "load_before": round(load_before, 2),
        "load_after": round(load_after, 2),
        "load_s": round(load_s, 1),
        **({"stages_cpu_ms": stages} if stages else {}),
        "goal_p50_ms": 25,
        "goal_p99_ms": 80,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=300)
    ap.add_argument("--data-dir", type=Path, default=ROOT / "var")
    ap.add_argument("--keep-cache", action="store_true", help="keep query embeddings across turns")
    ap.add_argument(
        "--query-threads",
        type=int,
        help="e5 OpenMP threads per query (default 1)",
    )
    ap.add_argument("--concurrency", type=int, default=1, help="conversations at once")
    ap.add_argument("--breakdown", action="store_true", help="CPU per stage of a turn")
    ap.add_argument(
        "--repeat-share",
        type=float,
        help="with --keep-cache: this share of messages repeats a demo question, the rest are "
        "new (a numbered suffix); new_* reports their latency",
    )
    args = ap.parse_args()
    result = _run(
        args.turns,
        args.data_dir,
        args.keep_cache,
        args.query_threads,
        max(1, args.concurrency),
        args.breakdown,
        args.repeat_share,
    )
    print(json.dumps(asyncio.run(result)))


if __name__ == "__main__":
    main()
