"""Answer quality of the extractive engine on the demo shop (tests/data/answers_demo.yaml).

Builds (or reuses) the demo index and NLU in ``--data-dir`` and runs every case through the
engine without an LLM. Goals (issue 7): correct_source >= 0.95, false_answer <= 0.02.

    .venv/bin/python bench/bench_engine_answers.py [--data-dir var] [--threshold 0.5]

The last line is one JSON object (``correct_source``, ``correct_refusal``, ``false_answer``,
``n``, plus handoff/action accuracy, the embedder and the threshold).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    from bot.config import Settings
    from bot.evaluate import evaluate_answers, load_cases
    from bot.runtime import build_runtime

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT / "var")
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--cases", type=Path, default=ROOT / "tests" / "data" / "answers_demo.yaml")
    args = ap.parse_args()
    update: dict[str, object] = {"data_dir": args.data_dir, "llm_provider": "none"}
    if args.threshold is not None:
        update["answer_threshold"] = args.threshold
    settings = Settings().model_copy(update=update)
    runtime = build_runtime(settings, prepare=True)
    report = asyncio.run(evaluate_answers(runtime.engine, load_cases(args.cases)))
    for r in report.results:
        if not r.correct:
            kind = "FALSE" if r.false_answer else "miss"
            print(f"{kind:5} {r.expect:7} {r.q[:70]!r} -> {r.mode} {list(r.sources[:1])}")
    embedder = getattr(runtime.retriever, "embedder", None)
    out = {
        **report.summary,
        **report.extra,
        "embedder": getattr(embedder, "name", None),
        "threshold": settings.answer_threshold,
        "goal_correct_source": 0.95,
        "goal_false_answer": 0.02,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
