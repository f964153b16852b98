"""Engine overhead per turn without an LLM (NLU + retrieval + decision + event assembly).

Runs the demo shop's answer-quality questions through the extractive engine (real NLU, real
hybrid retriever, real demo orders) and reports per-turn wall time p50/p99 (all events
consumed). Goals (issue 7): p50 <= 25 ms, p99 <= 80 ms.

    .venv/bin/python bench/bench_engine_overhead.py [--turns 300] [--data-dir var]

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _run(turns: int, data_dir: Path) -> dict[str, object]:
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
    for case in cases[:10]:  # warm-up
        async for _ in engine.turn(case.q, ConversationContext("w", lang=case.lang), turn_id="w"):
            pass
    totals: list[float] = []
    parts: dict[str, list[float]] = {"nlu": [], "retrieval": []}
    modes: dict[str, int] = {}
    for i in range(turns):
        case = cases[i % len(cases)]
        ctx = ConversationContext(f"b{i}", lang=case.lang)
        clear = getattr(getattr(runtime.retriever, "embedder", None), "clear", None)
        if callable(clear):
            clear()  # every turn embeds its message once (NLU); no cross-turn cache hits
        start = time.perf_counter()
        done = None
        async for event in engine.turn(case.q, ctx, turn_id=str(i)):
            done = event
        totals.append((time.perf_counter() - start) * 1000)
        assert done is not None and done.type == "done"
        modes[done.mode] = modes.get(done.mode, 0) + 1
        for key in parts:
            if key in done.timing_ms:
                parts[key].append(done.timing_ms[key])
    return {
        "bench": "engine_overhead",
        "turns": turns,
        "p50_ms": round(statistics.median(totals), 2),
        "p99_ms": round(_pct(totals, 0.99), 2),
        "mean_ms": round(statistics.fmean(totals), 2),
        "nlu_p50_ms": round(statistics.median(parts["nlu"]), 2),
        "retrieval_p50_ms": round(statistics.median(parts["retrieval"]), 2)
        if parts["retrieval"]
        else None,
        "modes": modes,
        "load_s": round(load_s, 1),
        "goal_p50_ms": 25,
        "goal_p99_ms": 80,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=300)
    ap.add_argument("--data-dir", type=Path, default=ROOT / "var")
    args = ap.parse_args()
    print(json.dumps(asyncio.run(_run(args.turns, args.data_dir))))


if __name__ == "__main__":
    main()
