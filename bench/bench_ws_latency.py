"""Websocket time-to-first-token under load.

A real uvicorn subprocess; N concurrent conversations (real websocket clients in this process),
each sending M messages with a think time between answers. Reports, per message, the time from
the ``message`` frame sent to the first ``token`` frame received (client side, includes the
client's own scheduling on the same 2 cores) and the server-side time from the frame received to
the first token persisted (``/_bench/ttft``).

Engine: the real runtime in extractive mode (``llm_provider=none``) on the demo knowledge base
indexed into a temp dir; ``--engine fake`` (or automatically when ``bot.runtime`` is missing) uses a
scripted extractive-like engine and says so in the output.

    .venv/bin/python bench/bench_ws_latency.py [--conversations 200] [--messages 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ws_common import (
    cpu_s,
    engine_label,
    pick_engine,
    prepare_real,
    raise_nofile,
    rss_mb,
    start_server,
    stop_server,
)

QUESTIONS = [
    "How long does shipping take?",
    "Can I return an item?",
    "Which payment methods do you accept?",
    "How do I track my order?",
    "Wie lange dauert der Versand?",
    "Kann ich meine Bestellung zurückgeben?",
    "Do you ship to Austria?",
    "What is your warranty?",
]


def _quantiles(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {}
    q = statistics.quantiles(xs, n=100, method="inclusive") if len(xs) > 1 else xs * 99
    return {"p50_ms": round(q[49], 2), "p99_ms": round(q[98], 2), "max_ms": round(max(xs), 2)}


async def _conversation(
    url: str,
    messages: int,
    think: tuple[float, float],
    out: list[float],
    errors: list[str],
    start: asyncio.Event,
    questions: list[str] | None = None,
) -> None:
    async with connect(url, compression=None, max_size=1 << 20, open_timeout=60) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1, "widget_version": "bench"}))
        while json.loads(await ws.recv())["type"] != "history":
            pass
        await start.wait()
        await asyncio.sleep(random.uniform(*think))
        for i in range(messages):
            sent = time.perf_counter()
            await ws.send(
                json.dumps(
                    {
                        "type": "message",
                        "message_id": uuid.uuid4().hex,
                        "text": questions[i % len(questions)]
                        if questions
                        else random.choice(QUESTIONS),
                    }
                )
            )
            first = True
            while True:
                frame = json.loads(await ws.recv())
                kind = frame["type"]
                if kind == "token" and first:
                    out.append((time.perf_counter() - sent) * 1000)
                    first = False
                if kind == "error":
                    errors.append(frame["code"])
                    break
                if kind == "done":
                    if first:
                        errors.append("no_token")
                    break
            await asyncio.sleep(random.uniform(*think))


async def _run(
    port: int, n: int, messages: int, think: tuple[float, float], pid: int
) -> dict[str, object]:
    url = f"ws://127.0.0.1:{port}/ws/chat"
    ttft: list[float] = []
    errors: list[str] = []
    start = asyncio.Event()
    tasks = [
        asyncio.create_task(_conversation(url, messages, think, ttft, errors, start))
        for _ in range(n)
    ]
    # warm-up (first turns load lazily initialised models), not measured
    warm = asyncio.Event()
    warm.set()
    await _conversation(url, 2 * len(QUESTIONS), (0.0, 0.0), [], [], warm, QUESTIONS)
    await asyncio.sleep(min(10.0, 0.02 * n))  # let all sockets connect and say hello
    async with httpx.AsyncClient() as http:
        await http.post(f"http://127.0.0.1:{port}/_bench/reset")
    t0 = time.perf_counter()
    cpu0 = cpu_s(pid)
    start.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    wall = time.perf_counter() - t0
    cpu = cpu_s(pid) - cpu0
    errors += [type(r).__name__ for r in results if isinstance(r, BaseException)]
    async with httpx.AsyncClient() as http:
        server = (await http.get(f"http://127.0.0.1:{port}/_bench/ttft")).json()
    return {
        "client_ttft": _quantiles(ttft),
        "server_ttft": server,
        "turns": len(ttft),
        "turns_per_s": round(len(ttft) / wall, 1),
        "server_cpu_ms_per_turn": round(cpu * 1000 / max(1, len(ttft)), 2),
        "server_cpu_util": round(cpu / wall, 2),
        "errors": len(errors),
        "error_codes": sorted(set(errors)),
        "wall_s": round(wall, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conversations", type=int, default=200)
    ap.add_argument("--messages", type=int, default=5)
    ap.add_argument("--think-min", type=float, default=0.5)
    ap.add_argument("--think-max", type=float, default=2.0)
    ap.add_argument("--engine", choices=["auto", "real", "fake"], default="auto")
    ap.add_argument(
        "--data-dir", help="reuse this data dir (index/NLU built once; fresh database each run)"
    )
    args = ap.parse_args()
    engine = pick_engine(args.engine)
    raise_nofile(args.conversations * 2 + 256)
    with tempfile.TemporaryDirectory(prefix="klartext-bench-ws-") as tmp:
        data_dir = Path(args.data_dir) if args.data_dir else Path(tmp)
        (data_dir / "klartext.db").unlink(missing_ok=True)
        if engine == "real":
            prepare_real(data_dir)
        proc, port = start_server(
            data_dir, engine=engine, extra_env={"KLARTEXT_LLM_PROVIDER": "none"}
        )
        try:
            result = asyncio.run(
                _run(
                    port,
                    args.conversations,
                    args.messages,
                    (args.think_min, args.think_max),
                    proc.pid,
                )
            )
            result["server_rss_mb"] = round(rss_mb(proc.pid), 1)
        finally:
            stop_server(proc)
    result.update(
        {
            "bench": "ws_latency",
            "engine": engine_label(engine),
            "conversations": args.conversations,
            "messages_per_conversation": args.messages,
            "think_s": [args.think_min, args.think_max],
            "goal": {"p50_ms": 30, "p99_ms": 120},
        }
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
