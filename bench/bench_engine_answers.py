"""Answer quality of the extractive engine on the demo shop (tests/data/answers_demo.yaml).

Builds (or reuses) the demo index and NLU in ``--data-dir`` and runs every case through the
engine without an LLM. Goals (issue 7): correct_source >= 0.95, false_answer <= 0.02.

    .venv/bin/python bench/bench_engine_answers.py [--data-dir var] [--threshold 0.5]
        [--cases FILE ...]

``--cases`` takes a cases YAML or development CSVs (``query,expected_id,lang`` as in
``bench/data/``: ids → ``expect_sources``, no id → ``expect: refuse``), several files joined.
The last line is one JSON object (``correct_source``, ``correct_refusal``, ``false_answer``,
``n``, plus handoff/action accuracy, ``reachable``, the embedder and the threshold).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent


def _cases(paths: list[Path]) -> list[Any]:
    """Cases from YAML files and development CSVs, in order."""
    from bot.evaluate import AnswerCase, load_cases

    out: list[Any] = []
    for path in paths:
        if path.suffix != ".csv":
            out += load_cases(path)
            continue
        with path.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                ids = tuple(i for i in row["expected_id"].split("|") if i)
                lang = row.get("lang") or None
                if ids:
                    out.append(AnswerCase(row["query"], "answer", lang, ids))
                else:
                    out.append(AnswerCase(row["query"], "refuse", lang))
    return out


def main() -> None:
    from bot.config import Settings
    from bot.evaluate import evaluate_answers
    from bot.runtime import build_runtime

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT / "var")
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument(
        "--cases", type=Path, nargs="+", default=[ROOT / "tests" / "data" / "answers_demo.yaml"]
    )
    args = ap.parse_args()
    update: dict[str, object] = {"data_dir": args.data_dir, "llm_provider": "none"}
    if args.threshold is not None:
        update["answer_threshold"] = args.threshold
    settings = Settings().model_copy(update=update)
    runtime = build_runtime(settings, prepare=True)
    report = asyncio.run(evaluate_answers(runtime.engine, _cases(args.cases)))
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
        **({"kinds": report.by_kind()} if any(r.kind for r in report.results) else {}),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
