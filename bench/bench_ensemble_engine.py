"""The second opinion (``retrieval.ensemble``, all-mpnet-base-v2 for unsure English queries)
through the real engine, on development data only (``tests/data/answers_demo.yaml`` is never
read): ``bench/data/retrieval_dev_demo*.csv`` and 150 BANKING77 *train* questions as
should-refuse cases (the sets of ``bench/calibrate_head.py``).

    nice -n 10 .venv/bin/python bench/bench_ensemble_engine.py [--data-dir /tmp/h3s4/var]

Builds (or reuses) the demo index and NLU in ``--data-dir`` (default settings, extractive
mode), runs every case without and with ``SecondOpinion(MpnetEmbedder())`` set on the same
retriever (alternating per case, so both see the same load), and prints per set
correct_source / false answers, the cases whose outcome changed, the share of turns that
consulted mpnet and the process CPU per turn of each pass. Both passes of a case see the same
text, so the one that runs second may find e5's query embedding in the engine's cache; the
order alternates per case, so the difference of the two means is the second opinion's cost
(absolute values and percentiles mix cold and cached turns; with several ``--shifts`` only
the first is cold at all). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import calibrate_head as ch


def _cases(path: Path | None = None) -> list[tuple[str, Any]]:
    from bot.evaluate import AnswerCase, load_cases

    if path is not None:  # e.g. the lead's final run on a test file
        return [("cases", c) for c in load_cases(path)]
    dev, hard, neg = ch._dev_queries()
    out: list[tuple[str, Any]] = []
    for tag, qs in (("dev", dev), ("dev_hard", hard), ("negative", neg)):
        for text, expected, lang in qs:
            if expected:
                out.append((tag, AnswerCase(text, "answer", lang, tuple(sorted(expected)))))
            else:
                out.append((tag, AnswerCase(text, "refuse", lang)))
    return out


def _summary(rows: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tag in ("dev", "dev_hard", "negative", "cases", "all"):
        sel = [r for t, r in rows if tag in ("all", t)]
        if not sel:
            continue
        ans = [r for r in sel if r.expect == "answer"]
        out[tag] = {
            "n": len(sel),
            "correct_source": round(sum(r.correct for r in ans) / max(1, len(ans)), 3),
            "false_answer": round(sum(r.false_answer for r in sel) / max(1, len(sel)), 3),
            "right": sum(r.correct for r in ans),
            "false": sum(r.false_answer for r in sel),
        }
    return out


async def _run(
    runtime: Any, second: Any, cases: list[tuple[str, Any]], shift: float
) -> dict[str, Any]:
    """Both passes, alternating per case; ``shift`` (logit units) is subtracted from the
    ensemble calibration's bias (a stricter operating point for ``shift > 0``)."""
    from bot.evaluate import run_case

    retriever = runtime.retriever
    fitted = second.calibration
    second.calibration = replace(fitted, bias=fitted.bias - shift)
    res: dict[str, list[tuple[str, Any]]] = {"e5": [], "second": []}
    cpu: dict[str, list[float]] = {"e5": [], "second": []}
    for i, (tag, case) in enumerate(cases):
        order = [("e5", None), ("second", second)]
        for name, so in order if i % 2 == 0 else order[::-1]:
            retriever.second_opinion = so
            t0 = time.process_time()
            res[name].append((tag, await run_case(runtime.engine, case)))
            cpu[name].append(time.process_time() - t0)
    retriever.second_opinion = None
    second.calibration = fitted
    changed = [
        f"{t:8} {a.q[:60]!r}: {a.mode} {list(a.sources[:1])} -> {b.mode} {list(b.sources[:1])}"
        f" ({'right' if b.correct else 'FALSE' if b.false_answer else 'miss'})"
        for (t, a), (_t, b) in zip(res["e5"], res["second"], strict=True)
        if (a.mode, a.sources[:1]) != (b.mode, b.sources[:1])
    ]
    return {
        "e5": _summary(res["e5"]),
        "second": _summary(res["second"]),
        "changed": changed,
        "cpu_ms_per_turn": {k: round(1000 * sum(v) / len(cases), 2) for k, v in cpu.items()},
        "cpu_ms_p50_p90_p99": {
            k: [round(1000 * float(np.percentile(v, q)), 2) for q in (50, 90, 99)]
            for k, v in cpu.items()
        },
    }


async def _timed(runtime: Any, second: Any, cases: list[tuple[str, Any]]) -> dict[str, Any]:
    """Wall and process-CPU milliseconds per turn (cold: every text is new to this process),
    also split by whether the turn consulted the second encoder."""
    from bot.evaluate import run_case

    wall, cpu, used = [], [], []
    for _tag, case in cases:
        runs = second.runs
        t0, c0 = time.perf_counter(), time.process_time()
        await run_case(runtime.engine, case)
        wall.append(1000 * (time.perf_counter() - t0))
        cpu.append(1000 * (time.process_time() - c0))
        used.append(second.runs > runs)
    pct = {f"p{q}": q for q in (50, 90, 99)}
    out: dict[str, Any] = {
        "wall_ms": {k: round(float(np.percentile(wall, q)), 2) for k, q in pct.items()},
        "cpu_ms": {k: round(float(np.percentile(cpu, q)), 2) for k, q in pct.items()},
        "cpu_ms_mean": round(float(np.mean(cpu)), 2),
    }
    for name, flag in (("with_mpnet", True), ("without_mpnet", False)):
        sel = [c for c, u in zip(cpu, used, strict=True) if u == flag]
        if sel:
            out[f"cpu_ms_p50_{name}"] = round(float(np.median(sel)), 2)
    return out


def main() -> None:
    from bot.config import Settings
    from bot.runtime import build_runtime
    from retrieval.ensemble import SecondOpinion
    from retrieval.mpnet import MpnetEmbedder

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/h3s4/var"))
    ap.add_argument("--shifts", default="0", help="bias shifts to try, e.g. 0,0.5,1")
    ap.add_argument("--cases", type=Path, default=None, help="a cases YAML instead of dev data")
    ap.add_argument(
        "--only",
        choices=("e5", "second"),
        default=None,
        help="timing: one cold pass in this process (run e5 and second alternately)",
    )
    args = ap.parse_args()
    settings = Settings().model_copy(update={"data_dir": args.data_dir, "llm_provider": "none"})
    runtime = build_runtime(settings, prepare=True)
    second = SecondOpinion(MpnetEmbedder())
    retriever = runtime.retriever
    t0, c0 = time.time(), time.process_time()
    second.row_vectors(retriever.index_dir, retriever._state.snap)
    second.embedder.embed(["warm-up"], kind="query")
    prep = {"wall_s": round(time.time() - t0, 1), "cpu_s": round(time.process_time() - c0, 1)}
    print(f"# mpnet row vectors + warm-up: {prep}", file=sys.stderr, flush=True)
    cases = _cases(args.cases)
    english = sum(1 for _t, c in cases if c.lang == "en")
    report: dict[str, Any] = {"prepare": prep, "english_cases": english, "cases": len(cases)}
    if args.only is not None:
        retriever.second_opinion = second if args.only == "second" else None
        report |= {"only": args.only, **asyncio.run(_timed(runtime, second, cases)),
                   "mpnet_runs": second.runs, "load": os.getloadavg()}  # fmt: skip
        print(json.dumps(report))
        return
    for shift in (float(x) for x in args.shifts.split(",")):
        runs = second.runs
        out = asyncio.run(_run(runtime, second, cases, shift))
        print(f"## bias shift {shift}")
        for line in out["changed"]:
            print(line)
        for name in ("e5", "second"):
            for tag, val in out[name].items():
                print(f"{name:6} {tag:8} {val}")
        out |= {"mpnet_runs": second.runs - runs, "load": os.getloadavg()}
        print(f"mpnet consulted for {out['mpnet_runs']} of {english} English turns; "
              f"cpu/turn {out['cpu_ms_per_turn']} p50/p90/p99 {out['cpu_ms_p50_p90_p99']}; "
              f"load {os.getloadavg()}")  # fmt: skip
        report[f"shift {shift}"] = out
    print(json.dumps(report))


if __name__ == "__main__":
    main()
