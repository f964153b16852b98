"""Idle websocket connections: open N (default 5,000) connections to a real uvicorn subprocess,
each says ``hello`` (so each has a conversation and a hub subscription), hold them, and report
the server's RSS. Per-message deflate is off (as ``klartext serve`` runs it); ``--deflate``
measures its cost.

    .venv/bin/python bench/bench_ws_idle.py [--connections 5000] [--deflate]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

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

BATCH = 100


async def _open(url: str, deflate: bool) -> ClientConnection:
    ws = await connect(
        url,
        compression="deflate" if deflate else None,
        open_timeout=120,
        ping_interval=None,
        max_size=1 << 20,
    )
    await ws.send(json.dumps({"type": "hello", "v": 1, "widget_version": "bench"}))
    while json.loads(await ws.recv())["type"] != "history":
        pass
    return ws


async def _run(port: int, n: int, deflate: bool, hold_s: float, pid: int) -> dict[str, object]:
    url = f"ws://127.0.0.1:{port}/ws/chat"
    base = rss_mb(pid)
    conns: list[ClientConnection] = []
    errors = 0
    t0 = time.perf_counter()
    for i in range(0, n, BATCH):
        batch = await asyncio.gather(
            *(_open(url, deflate) for _ in range(min(BATCH, n - i))), return_exceptions=True
        )
        for ws in batch:
            if isinstance(ws, BaseException):
                errors += 1
            else:
                conns.append(ws)
    connect_s = time.perf_counter() - t0
    cpu0 = cpu_s(pid)
    await asyncio.sleep(hold_s)
    idle_cpu = (cpu_s(pid) - cpu0) / hold_s
    peak = rss_mb(pid)
    # every held connection still answers
    probes = conns[:: max(1, len(conns) // 50)]
    alive = 0
    for ws in probes:
        await ws.send(json.dumps({"type": "ping", "nonce": "x"}))
        if json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "pong":
            alive += 1
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
    return {
        "connections": len(conns),
        "connect_errors": errors,
        "connect_s": round(connect_s, 1),
        "server_rss_mb_before": round(base, 1),
        "server_rss_mb_held": round(peak, 1),
        "rss_kb_per_connection": round((peak - base) * 1024 / max(1, len(conns)), 1),
        "idle_server_cpu": round(idle_cpu, 3),
        "probes_alive": f"{alive}/{len(probes)}",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=5000)
    ap.add_argument("--hold", type=float, default=30.0, help="seconds to hold them idle")
    ap.add_argument("--deflate", action="store_true")
    ap.add_argument("--engine", choices=["auto", "real", "fake"], default="auto")
    args = ap.parse_args()
    raise_nofile(args.connections * 2 + 512)
    engine = pick_engine(args.engine)
    with tempfile.TemporaryDirectory(prefix="klartext-bench-idle-") as tmp:
        if engine == "real":
            prepare_real(Path(tmp))
        proc, port = start_server(
            Path(tmp),
            engine=engine,
            deflate=args.deflate,
            extra_env={"KLARTEXT_IDLE_TIMEOUT_S": "3600"},
        )
        try:
            result = asyncio.run(_run(port, args.connections, args.deflate, args.hold, proc.pid))
        finally:
            stop_server(proc)
    result.update(
        {
            "bench": "ws_idle",
            "per_message_deflate": args.deflate,
            "engine": engine_label(engine),
            "goal": {"connections": 5000, "server_rss_mb": 1024},
        }
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
