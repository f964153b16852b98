"""The server's per-turn path without sockets: ``TurnRunner`` + ``EventLog`` + ``Database`` on a
fresh SQLite file, an ``InProcessHub`` subscriber per conversation, and an engine shaped like
extractive mode (one worker-thread hop, then the answer's token chunks, ``sources`` and ``done``
with no suspension in between — as ``bot.engine`` streams an extractive answer). No retrieval,
no NLU: what it measures is the web + store cost of a turn, in CPU milliseconds per thread role
(event loop, SQLite writer), which does not depend on how busy the machine is.

    .venv/bin/python bench/bench_load_turns.py [--turns 3000] [--concurrency 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bot.conversation import ConversationContext
from bot.events import Done, Event, SourceRef, Sources, Token
from bot.extractive import chunk_words
from bot.store import Database
from bot.store.migrate import upgrade
from web.eventlog import EventLog
from web.hub import InProcessHub
from web.turns import TurnRunner

ANSWER = (
    "Standard delivery takes two to four working days within Germany and three to seven "
    "working days to other EU countries. Express delivery arrives the next working day if you "
    "order before 2 pm; you can track every parcel from the link in your shipping email."
)


class _ExtractiveShaped:
    async def turn(
        self, text: str, ctx: ConversationContext, *, turn_id: str
    ) -> AsyncIterator[Event]:
        await asyncio.to_thread(len, text)  # the engine's one hop to its worker thread
        for chunk in chunk_words(ANSWER, 4):
            yield Token(text=chunk)
        yield Sources(items=[SourceRef(id="shipping", title="Shipping", url="/help/shipping")])
        yield Done(
            turn_id=turn_id,
            mode="extractive",
            answered=True,
            confidence=0.9,
            lang="en",
            timing_ms={"nlu": 3.1, "retrieval": 1.2, "answer": 0.1, "total": 4.6},
        )


def _thread_cpu() -> dict[str, float]:
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for t in threading.enumerate():
        if t.native_id is None:
            continue
        fields = Path(f"/proc/self/task/{t.native_id}/stat").read_text().rsplit(")", 1)[1]
        secs = sum(int(x) for x in fields.split()[11:13]) / tick
        name = re.sub(r"[-_ ]?\d+", "", t.name)
        out[name] = out.get(name, 0.0) + secs
    return out


async def _conversation(
    runner: TurnRunner, hub: InProcessHub, turns: int, done: list[float]
) -> None:
    db = runner.db
    from bot.store import writes

    created = await db.write(lambda s: writes.create_conversation(s, lang="en"))
    runner.conversation_created(created.id, "en")
    async with hub.subscribe(created.id) as sub:
        for _ in range(turns):
            t0 = time.perf_counter()
            await runner.submit(created.id, uuid.uuid4().hex, "how long does shipping take?")
            while (await sub.get()).get("type") != "done":
                pass
            done.append(time.perf_counter() - t0)


async def run(turns: int, concurrency: int, db_path: Path) -> dict[str, object]:
    url = f"sqlite+aiosqlite:///{db_path}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    hub = InProcessHub()
    runner = TurnRunner(EventLog(db, hub), _ExtractiveShaped)
    warm: list[float] = []
    await asyncio.gather(*(_conversation(runner, hub, 3, warm) for _ in range(concurrency)))
    per_conv = max(1, turns // concurrency)
    latencies: list[float] = []
    before, t0 = _thread_cpu(), time.perf_counter()
    await asyncio.gather(
        *(_conversation(runner, hub, per_conv, latencies) for _ in range(concurrency))
    )
    wall, after = time.perf_counter() - t0, _thread_cpu()
    await db.dispose()
    n = len(latencies)
    cpu = {k: round((after[k] - before.get(k, 0.0)) * 1000 / n, 3) for k in after}
    return {
        "bench": "load_turns",
        "turns": n,
        "concurrency": concurrency,
        "turns_per_s": round(n / wall, 1),
        "cpu_ms_per_turn": cpu,
        "cpu_ms_per_turn_total": round(sum(cpu.values()), 3),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="klartext-turns-") as tmp:
        result = asyncio.run(run(args.turns, args.concurrency, Path(tmp) / "k.db"))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
