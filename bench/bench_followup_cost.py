"""Engine time of follow-up turns, with and without the search in context (bot.followup).

Each conversation of ``--cases`` (default: bench/data/followups_dev_demo.yaml) is replayed as
its first question plus the follow-up; the follow-up turn's ``Done.timing_ms.total`` is
recorded, ``--repeat`` times per conversation, once with ``followup_context`` off and once on.

    .venv/bin/python bench/bench_followup_cost.py [--data-dir var] [--repeat 2]

Set ``KLARTEXT_ADAPT_EMBEDDINGS=true`` for ``make run``'s adapted index. The last line is one
JSON object: p50/p99 in ms per setting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.conversation import ChatEngine
    from bot.evaluate import AnswerCase

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def _times(engine: ChatEngine, cases: list[AnswerCase], repeat: int) -> list[float]:
    from bot.conversation import ConversationContext, Turn
    from bot.events import Done

    out: list[float] = []
    for _ in range(repeat):
        for c in cases:
            history = [Turn("user", c.history[0]), Turn("bot", "…")]
            ctx = ConversationContext("bench", history=history, lang=c.lang)
            events = [e async for e in engine.turn(c.q, ctx, turn_id="t")]
            done = events[-1]
            assert isinstance(done, Done)
            out.append(done.timing_ms["total"])
    return out


def main() -> None:
    from bot.config import Settings
    from bot.evaluate import load_cases
    from bot.runtime import build_runtime

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT / "var")
    ap.add_argument("--cases", type=Path, default=ROOT / "bench/data/followups_dev_demo.yaml")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    cases = [c for c in load_cases(args.cases) if c.history]
    out: dict[str, object] = {"n": len(cases) * args.repeat}
    for on in (False, True):
        update = {"data_dir": args.data_dir, "llm_provider": "none", "followup_context": on}
        runtime = build_runtime(Settings().model_copy(update=update), prepare=True)
        times = asyncio.run(_times(runtime.engine, cases, args.repeat))
        out["context_on" if on else "context_off"] = {
            "p50_ms": _pct(times, 0.5),
            "p99_ms": _pct(times, 0.99),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
