"""Load generator: N concurrent conversations over real websockets against real server processes.

Each conversation connects (``hello``), then asks questions from the demo answer set
(``tests/data/answers_demo.yaml``, cases that neither hand off nor look up orders) with an
exponential think time chosen so that all N together offer ``--rate`` turns/s; after the
``done`` of one turn it thinks, then asks the next. Measured over ``--duration`` seconds after a
warm-up: turns/s, time to first token (client side: ``message`` sent → first ``token``
received; and the servers' own ``/_bench/ttft``), turn latency (→ ``done``), errors (error
frames, turns without a token, timeouts, dropped sockets), server RSS and CPU.

Servers: ``uvicorn`` subprocesses of ``bench/_ws_server.py`` (``create_app``) on the real demo
index in extractive mode (``llm_provider=none``; ``--engine fake`` = scripted engine). One process
on SQLite (default) or PostgreSQL; ``--processes 2`` = two processes on PostgreSQL + Redis
(``KLARTEXT_REDIS_URL``), conversations spread round-robin as a load balancer would. The load
generator pins itself to ``--client-cpu`` (like ``taskset``) after starting the servers.

    .venv/bin/python bench/bench_load.py --conversations 500 [--rate 200] [--duration 30]
        [--processes 1|2] [--db sqlite|postgresql] [--profile /tmp/prof.txt]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ws_common import ROOT, cpu_s, prepare_real, raise_nofile, rss_mb, start_server, stop_server

sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "web"))

TURN_TIMEOUT_S = 30.0


def load_questions() -> list[str]:
    cases = yaml.safe_load((ROOT / "tests" / "data" / "answers_demo.yaml").read_text())["cases"]
    return [c["q"] for c in cases if c.get("expect") not in ("handoff", "action")]


@dataclass
class Stats:
    ttft_ms: list[float] = field(default_factory=list)
    turn_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    handoffs: int = 0
    measuring: bool = False

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1


def _kind(raw: str) -> str:
    """The frame's ``type`` without parsing the whole frame (the server writes it first)."""
    if raw.startswith('{"type":"'):
        return raw[9 : raw.index('"', 9)]
    kind = json.loads(raw).get("type")
    return str(kind)


async def _hello(url: str) -> ClientConnection:
    ws = await connect(
        url, compression=None, max_size=1 << 20, open_timeout=120, ping_interval=None
    )
    await ws.send(json.dumps({"type": "hello", "v": 1, "widget_version": "bench-load"}))
    while _kind(str(await ws.recv())) != "history":
        pass
    return ws


async def _turn(ws: ClientConnection, text: str, stats: Stats) -> bool:
    """One question → ``done``; True if the bot handed the conversation to a human (the bot
    then stays quiet in it, so the caller starts a new conversation)."""
    measuring = stats.measuring
    handed_off = False
    msg = {"type": "message", "message_id": uuid.uuid4().hex, "text": text}
    sent = time.perf_counter()
    await ws.send(json.dumps(msg))
    first: float | None = None
    while True:
        kind = _kind(str(await asyncio.wait_for(ws.recv(), TURN_TIMEOUT_S)))
        if kind == "token" and first is None:
            first = time.perf_counter()
        elif kind == "handoff":
            handed_off = True
        elif kind == "error":
            if measuring:
                stats.error("error_frame")
            return handed_off
        elif kind == "done":
            break
    if not measuring:
        return handed_off
    if first is None:
        stats.error("no_token")
        return handed_off
    stats.ttft_ms.append((first - sent) * 1000)
    stats.turn_ms.append((time.perf_counter() - sent) * 1000)
    stats.handoffs += handed_off
    return handed_off


async def _conversation(
    url: str,
    ws: ClientConnection,
    questions: list[str],
    think_mean: float,
    stop: asyncio.Event,
    stats: Stats,
) -> None:
    rng = random.Random()
    try:
        while not stop.is_set():
            await asyncio.sleep(rng.expovariate(1 / think_mean))
            if stop.is_set():
                break
            if await _turn(ws, rng.choice(questions), stats):
                await ws.close()
                ws = await _hello(url)
    except TimeoutError:
        stats.error("timeout")
    except Exception as exc:  # a dropped socket counts, the rest of the run goes on
        stats.error(type(exc).__name__)
    finally:
        with contextlib.suppress(Exception):
            await ws.close()


def _q(xs: list[float]) -> dict[str, float]:
    if len(xs) < 2:
        return {"n": len(xs)}
    q = statistics.quantiles(xs, n=100, method="inclusive")
    return {"p50_ms": round(q[49], 1), "p99_ms": round(q[98], 1), "max_ms": round(max(xs), 1)}


async def _server_ttft(ports: list[int], path: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(timeout=30) as http:
        out = []
        for port in ports:
            r = await (http.post if path == "reset" else http.get)(
                f"http://127.0.0.1:{port}/_bench/{path}"
            )
            out.append(r.json())
        return out


async def _thread_cpu(ports: list[int]) -> dict[str, float]:
    """The servers' CPU seconds per thread role (``/_bench/threads``), summed over servers."""
    out: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=30) as http:
        for port in ports:
            r = await http.get(f"http://127.0.0.1:{port}/_bench/threads")
            for role, secs in r.json().items():
                out[role] = out.get(role, 0.0) + float(secs)
    return out


def _per_turn_ms(before: dict[str, float], after: dict[str, float], turns: int) -> dict[str, float]:
    out = {
        role: round((after[role] - before.get(role, 0.0)) * 1000 / max(turns, 1), 2)
        for role in after
        if not role.startswith("writer_")
    }
    batches = after.get("writer_batches", 0.0) - before.get("writer_batches", 0.0)
    if batches:
        jobs = after.get("writer_jobs", 0.0) - before.get("writer_jobs", 0.0)
        out["writer_jobs_per_commit"] = round(jobs / batches, 2)
    return out


async def run_load(
    ports: list[int], pids: list[int], n: int, rate: float, duration: float, warmup: float
) -> dict[str, object]:
    questions = load_questions()
    urls = [f"ws://127.0.0.1:{p}/ws/chat" for p in ports]
    for url in urls:  # lazily loaded models and caches: every question once, not measured
        ws = await _hello(url)
        for q in questions:
            if await _turn(ws, q, Stats()):
                await ws.close()
                ws = await _hello(url)
        await ws.close()
    t0 = time.perf_counter()
    socks: list[ClientConnection] = []
    for i in range(0, n, 100):  # connect in batches, round-robin over the servers
        batch = range(i, min(n, i + 100))
        socks += await asyncio.gather(*(_hello(urls[j % len(urls)]) for j in batch))
    connect_s = time.perf_counter() - t0
    stats, stop = Stats(), asyncio.Event()
    tasks = [
        asyncio.create_task(
            _conversation(urls[i % len(urls)], ws, questions, n / rate, stop, stats)
        )
        for i, ws in enumerate(socks)
    ]
    await asyncio.sleep(warmup)
    await _server_ttft(ports, "reset")
    rss_peak = [rss_mb(p) for p in pids]
    threads0 = await _thread_cpu(ports)
    cpu0, self0, w0 = (
        [cpu_s(p) for p in pids],
        resource.getrusage(resource.RUSAGE_SELF),
        time.perf_counter(),
    )
    stats.measuring = True
    while time.perf_counter() - w0 < duration:
        await asyncio.sleep(1.0)
        rss_peak = [max(a, rss_mb(p)) for a, p in zip(rss_peak, pids, strict=True)]
    stats.measuring = False
    wall = time.perf_counter() - w0
    cpu = [round((cpu_s(p) - c) / wall, 2) for p, c in zip(pids, cpu0, strict=True)]
    threads1 = await _thread_cpu(ports)
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = (self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime) / wall
    server_ttft = await _server_ttft(ports, "ttft")
    stop.set()
    await asyncio.wait(tasks, timeout=TURN_TIMEOUT_S)
    turns = len(stats.ttft_ms)
    served = sum(int(str(t.get("n", 0))) for t in server_ttft)
    return {
        "turns": turns,
        "turns_per_s": round(turns / wall, 1),
        "ttft_client": _q(stats.ttft_ms),
        "turn_latency_client": _q(stats.turn_ms),
        "ttft_server": server_ttft,
        "handoffs": stats.handoffs,
        "errors": sum(stats.errors.values()),
        "error_codes": stats.errors,
        "server_rss_mb": [round(x, 1) for x in rss_peak],
        "server_cpu_util": cpu,
        "server_cpu_ms_per_turn": _per_turn_ms(threads0, threads1, served),
        "client_cpu_util": round(client_cpu, 2),
        "connect_s": round(connect_s, 1),
        "measured_s": round(wall, 1),
    }


@contextlib.contextmanager
def _backends(processes: int, db: str) -> Iterator[dict[str, str]]:
    """PostgreSQL (``tests/pg.py``) and Redis (``tests/web/_redis.py``) as needed."""
    env: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        if db == "postgresql" or processes > 1:
            from pg import pg_cluster

            from bot.store.migrate import upgrade

            cluster = stack.enter_context(pg_cluster())
            env["KLARTEXT_DATABASE_URL"] = cluster.create_database()
            upgrade(env["KLARTEXT_DATABASE_URL"])
        if processes > 1:
            from _redis import redis_server

            env["KLARTEXT_REDIS_URL"] = stack.enter_context(redis_server()).url
        yield env


def _data_dir(tmp: Path, engine: str) -> Path:
    """A fresh data dir whose index and NLU are the repo's ``var/`` build (``make index``)."""
    var = ROOT / "var"
    if engine == "real" and (var / "index" / "CURRENT").is_file() and (var / "nlu").is_dir():
        (tmp / "index").symlink_to(var / "index")
        (tmp / "nlu").symlink_to(var / "nlu")
    elif engine == "real":
        prepare_real(tmp)
    return tmp


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conversations", type=int, default=500)
    ap.add_argument("--rate", type=float, default=200.0, help="offered turns/s, all together")
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=8.0)
    ap.add_argument("--processes", type=int, choices=[1, 2], default=1)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--engine", choices=["real", "fake"], default="real")
    ap.add_argument("--client-cpu", type=int, default=1 if (os.cpu_count() or 1) > 1 else -1)
    ap.add_argument("--profile", type=Path, help="py-spy raw samples of server 1 while measured")
    ap.add_argument("--profile-gil", action="store_true", help="sample only the GIL holder")
    ap.add_argument("--profile-rate", type=int, default=50, help="py-spy samples per second")
    args = ap.parse_args()
    raise_nofile(args.conversations * 2 + 512)
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="klartext-load-") as tmp,
        _backends(args.processes, args.db) as env,
    ):
        data_dir = _data_dir(Path(tmp), args.engine)
        extra = {
            **env,
            "KLARTEXT_LLM_PROVIDER": "none",
            "KLARTEXT_TOKEN_SECRET": "bench-load-secret-0123456789abcdef",
            "KLARTEXT_WS_CONNECTIONS_PER_MINUTE_PER_IP": "1000000",
            "KLARTEXT_WS_MESSAGES_PER_MINUTE_PER_IP": "100000000",
        }
        servers = [start_server(data_dir, engine=args.engine, extra_env=extra)]
        for _ in range(args.processes - 1):
            servers.append(start_server(data_dir, engine=args.engine, extra_env=extra))
        pids, ports = [p.pid for p, _ in servers], [port for _, port in servers]
        prof = None
        try:
            if args.client_cpu >= 0:
                os.sched_setaffinity(0, {args.client_cpu})
            if args.profile:  # py-spy (pip) on server 1, roughly over the measured window
                delay = args.warmup + args.conversations / 150
                spy = Path(sys.executable).parent / "py-spy"
                script = (
                    f"sleep {delay:.0f}; exec {spy} record -p {pids[0]} -r {args.profile_rate} "
                )
                script += f"-d {int(args.duration)} --format raw --nonblocking -o {args.profile}"
                script += " --gil" if args.profile_gil else ""
                prof = subprocess.Popen(["sh", "-c", script], stdout=subprocess.DEVNULL)
            result = asyncio.run(
                run_load(ports, pids, args.conversations, args.rate, args.duration, args.warmup)
            )
        finally:
            for proc, _ in servers:
                stop_server(proc)
            if prof is not None:
                prof.wait(timeout=60)
    result.update(
        {
            "bench": "load",
            "engine": "real, extractive, demo index" if args.engine == "real" else "FAKE engine",
            "processes": args.processes,
            "db": "postgresql" if args.processes > 1 else args.db,
            "redis": args.processes > 1,
            "conversations": args.conversations,
            "offered_rate": args.rate,
            "client_cpu": args.client_cpu,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "goal": "1 process: >= 200 turns/s at 500 conversations, p99 TTFT <= 250 ms",
        }
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
