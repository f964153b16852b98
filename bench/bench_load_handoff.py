"""What a handoff turn costs on the server: ``bench_load_turns``'s in-process turn path (no
sockets, extractive-shaped engine) with the real :class:`web.handoff_flow.HandoffFlow` hooked in.

Each conversation asks ``--turns-before`` ordinary questions, then one whose answer hands it to
a human (``Handoff(reason="complaint")``, as the engine does for damaged goods); then a new
conversation starts (the bench_load clients do the same). Two arms in one process, interleaved
``--rounds`` times: ``hooks`` (the HandoffFlow: summary read, availability check) and ``none``
(no hooks: the handoff turn writes only). Reported per arm: CPU ms per handoff conversation by
thread role, and SQL statements run through the read engine per handoff turn (round trips).

    .venv/bin/python bench/bench_load_handoff.py [--conversations 400] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_load_turns import ANSWER, _thread_cpu
from sqlalchemy import event

from bot.config import Settings
from bot.conversation import ConversationContext
from bot.events import Done, Event, Handoff, SourceRef, Sources, Token
from bot.extractive import chunk_words
from bot.store import Database, writes
from bot.store.migrate import upgrade
from web.eventlog import EventLog
from web.handoff_flow import HandoffFlow
from web.hub import InProcessHub
from web.turns import TurnRunner


class _Engine:
    async def turn(
        self, text: str, ctx: ConversationContext, *, turn_id: str
    ) -> AsyncIterator[Event]:
        await asyncio.to_thread(len, text)
        if "broken" in text:
            yield Token(text="I'm sorry to hear that. I'll pass you to a colleague.")
            yield Handoff(reason="complaint")
            yield Done(turn_id=turn_id, mode="handoff", answered=True, confidence=1.0, lang="en")
            return
        for chunk in chunk_words(ANSWER, 4):
            yield Token(text=chunk)
        yield Sources(items=[SourceRef(id="shipping", title="Shipping", url="/help/shipping")])
        yield Done(turn_id=turn_id, mode="extractive", answered=True, confidence=0.9, lang="en")


async def _conversation(
    runner: TurnRunner, hub: InProcessHub, before: int, count: list[int]
) -> None:
    created = await runner.db.write(lambda s: writes.create_conversation(s, lang="en"))
    runner.conversation_created(created.id, "en")
    async with hub.subscribe(created.id) as sub:
        for i in range(before + 1):
            text = "my parcel arrived broken" if i == before else "how long does shipping take?"
            await runner.submit(created.id, uuid.uuid4().hex, text)
            while (await sub.get()).get("type") != "done":
                pass
    while runner.in_flight:  # the turn task ends after its done (the `requested` hook)
        await asyncio.sleep(0.001)
    count[0] += 1


async def _arm(
    runner: TurnRunner, hub: InProcessHub, n: int, concurrency: int, before: int
) -> dict[str, float]:
    count = [0]
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            await _conversation(runner, hub, before, count)

    cpu0 = _thread_cpu()
    await asyncio.gather(*(one() for _ in range(n)))
    cpu1 = _thread_cpu()
    return {k: (cpu1[k] - cpu0.get(k, 0.0)) * 1000 for k in cpu1}


async def run(n: int, concurrency: int, before: int, rounds: int, db_path: Path) -> dict[str, Any]:
    url = f"sqlite+aiosqlite:///{db_path}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    hub = InProcessHub()
    events = EventLog(db, hub)
    runner = TurnRunner(events, _Engine)
    flow = HandoffFlow(Settings(llm_provider="none"), db, events)
    statements = [0]

    def _count(*_a: Any) -> None:
        statements[0] += 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", _count)
    await _arm(runner, hub, 20, concurrency, before)  # warm-up, both arms
    runner.handoff_hooks = flow
    await _arm(runner, hub, 20, concurrency, before)
    cpu: dict[str, dict[str, float]] = {"hooks": {}, "none": {}}
    sql: dict[str, int] = {"hooks": 0, "none": 0}
    t0 = time.perf_counter()
    for _ in range(rounds):
        for arm in ("none", "hooks"):
            runner.handoff_hooks = flow if arm == "hooks" else None
            s0 = statements[0]
            got = await _arm(runner, hub, n, concurrency, before)
            sql[arm] += statements[0] - s0
            for k, v in got.items():
                cpu[arm][k] = cpu[arm].get(k, 0.0) + v
    wall = time.perf_counter() - t0
    await db.dispose()
    convs = n * rounds

    def per(arm: str) -> dict[str, float]:
        return {k: round(v / convs, 3) for k, v in sorted(cpu[arm].items()) if v}

    total = {arm: round(sum(cpu[arm].values()) / convs, 3) for arm in cpu}
    return {
        "bench": "load_handoff",
        "conversations_per_arm": convs,
        "turns_per_conversation": before + 1,
        "concurrency": concurrency,
        "cpu_ms_per_handoff_conversation": {arm: per(arm) for arm in cpu},
        "cpu_ms_per_handoff_conversation_total": total,
        "handoff_hooks_cpu_ms_per_handoff_turn": round(total["hooks"] - total["none"], 3),
        "read_statements_per_handoff_turn": {arm: sql[arm] / convs for arm in sql},
        "wall_s": round(wall, 1),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conversations", type=int, default=400, help="per arm per round")
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--turns-before", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="klartext-handoff-") as tmp:
        result = asyncio.run(
            run(
                args.conversations,
                args.concurrency,
                args.turns_before,
                args.rounds,
                Path(tmp) / "k.db",
            )
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
