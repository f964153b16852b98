"""Webhook delivery throughput to a local receiver, and zero loss across ``kill -9`` of the
server (issue 5 goal: >= 500 deliveries/s; nothing lost).

Processes: a receiver (``bench/_webhook_receiver.py`` under uvicorn, verifies every signature)
and the real app (``bench/_ws_server.py``, scripted engine) with its outbox dispatcher, on
SQLite (default) or PostgreSQL (``--postgres``: a throwaway cluster from ``tests/pg.py``).

1. Throughput: ``--n`` deliveries are queued (``enqueue_webhook``, 500 per transaction) while no
   server runs; a server starts and drains them. deliveries/s = n / (receiver's last - first
   accepted request).
2. Crash: ``--n`` more are queued, a server starts draining, is killed with SIGKILL half way, a
   new server finishes. Lost = queued keys never accepted by the receiver; duplicates = accepted
   requests beyond one per key (at-least-once allows them).

    nice -n 10 .venv/bin/python bench/bench_api_webhooks.py --n 5000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from bot.store import Database  # noqa: E402
from bot.store.apikeys import create_api_key  # noqa: E402
from bot.store.migrate import upgrade_async  # noqa: E402
from bot.store.outbox import enqueue_webhook  # noqa: E402
from bot.store.webhook_models import WebhookDelivery  # noqa: E402


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _uvicorn(target: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "uvicorn", *target, "--port", str(port)]
    cmd += ["--log-level", "warning", "--no-access-log", "--app-dir", str(ROOT / "bench")]
    return subprocess.Popen(cmd, env=env, cwd=ROOT)


async def _up(port: int, path: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            assert proc.poll() is None, "process died"
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"http://127.0.0.1:{port}{path}")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("did not come up")


async def _stats(port: int) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        out: dict[str, Any] = (await http.get(f"http://127.0.0.1:{port}/_stats")).json()
        return out


async def _enqueue(db: Database, n: int, tag: str) -> None:
    def batch(start: int, count: int) -> Any:
        def op(s: Session) -> None:
            for i in range(start, start + count):
                data = {"contact_id": f"{tag}-{i}", "email": f"user{i}@example.com"}
                enqueue_webhook(s, "contact.created", data)

        return op

    for start in range(0, n, 500):
        await db.write(batch(start, min(500, n - start)))


async def _wait_unique(port: int, n: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        st = await _stats(port)
        if st["unique"] >= n or time.monotonic() > deadline:
            return st
        await asyncio.sleep(0.05)


async def _settled(db: Database, timeout: float) -> float:
    """Seconds until no delivery is pending."""
    t0 = time.perf_counter()
    D = WebhookDelivery  # noqa: N806
    while time.perf_counter() - t0 < timeout:
        async with db.session() as s:
            q = select(func.count()).select_from(D).where(D.status == "pending")
            if not await s.scalar(q):
                break
        await asyncio.sleep(0.2)
    return time.perf_counter() - t0


@contextlib.contextmanager
def _database(postgres: bool, tmp: Path) -> Iterator[str]:
    if not postgres:
        yield f"sqlite+aiosqlite:///{tmp / 'klartext.db'}"
        return
    from pg import pg_cluster

    with pg_cluster() as cluster:
        yield cluster.create_database()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="klartext-bench-webhooks-"))
    with _database(args.postgres, tmp) as url:
        await upgrade_async(url)
        db = Database(url)
        async with db.writing() as s:
            key = (await create_api_key(s, name="bench", scopes="admin")).plaintext
        rport = _free_port()
        env = {
            **os.environ,
            "KLARTEXT_DATA_DIR": str(tmp),
            "KLARTEXT_DATABASE_URL": url,
            "KLARTEXT_LOG_LEVEL": "WARNING",
            "KLARTEXT_BENCH_ENGINE": "fake",
            "KLARTEXT_TOKEN_SECRET": "bench-secret-0123456789abcdef",
            "KLARTEXT_WEBHOOK_POLL_INTERVAL_S": "0.05",
            "KLARTEXT_WEBHOOK_CONCURRENCY": str(args.concurrency),
            "KLARTEXT_WEBHOOK_BATCH_SIZE": str(args.batch),
            "HF_HUB_OFFLINE": "1",
        }
        receiver = _uvicorn(["_webhook_receiver:app"], rport, env)
        servers: list[subprocess.Popen[bytes]] = []

        def server() -> tuple[subprocess.Popen[bytes], int]:
            port = _free_port()
            proc = _uvicorn(["--factory", "_ws_server:app"], port, env)
            servers.append(proc)
            return proc, port

        try:
            await _up(rport, "/_stats", receiver)
            # the subscription (through the API of a server that is then stopped)
            first, port = server()
            await _up(port, "/healthz", first)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}
            ) as http:
                hook = {"url": f"http://127.0.0.1:{rport}/hook", "event_types": ["contact.created"]}
                sub = (await http.post("/api/v1/webhooks", json=hook)).json()
            async with httpx.AsyncClient() as http:
                await http.post(f"http://127.0.0.1:{rport}/_secret", json={"secret": sub["secret"]})
            first.send_signal(signal.SIGTERM)
            first.wait(30)

            # 1. throughput: drain n queued deliveries
            t0 = time.perf_counter()
            await _enqueue(db, args.n, "a")
            enqueue_s = time.perf_counter() - t0
            proc, port = server()
            await _up(port, "/healthz", proc)
            cpu0, rcpu0 = _cpu_s(proc.pid), _cpu_s(receiver.pid)
            st = await _wait_unique(rport, args.n, args.timeout)
            server_cpu_ms = (_cpu_s(proc.pid) - cpu0) * 1000 / args.n
            receiver_cpu_ms = (_cpu_s(receiver.pid) - rcpu0) * 1000 / args.n
            elapsed = st["last"] - st["first"]
            throughput = (st["unique"] - 1) / elapsed if elapsed > 0 else 0.0
            load = os.getloadavg()[0]
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)

            # 2. kill -9 half way through a second drain
            await _enqueue(db, args.n, "b")
            total = 2 * args.n
            proc, port = server()
            mid = await _wait_unique(rport, args.n + args.n // 2, args.timeout)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            killed_at = mid["unique"] - args.n
            proc, port = server()
            t1 = time.perf_counter()
            end = await _wait_unique(rport, total, args.timeout + 60)
            recover_s = time.perf_counter() - t1
            # rows whose POST succeeded but whose result died with the killed server are sent
            # again once their lease ends (PostgreSQL; SQLite releases at start): wait for that
            settled = await _settled(db, args.timeout)
            end = await _stats(rport)
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            async with db.session() as s:
                D = WebhookDelivery  # noqa: N806
                rows = dict(
                    (await s.execute(select(D.status, func.count()).group_by(D.status))).all()
                )
                queued = int(await s.scalar(select(func.count()).select_from(D)) or 0)
        finally:
            for p in [*servers, receiver]:
                if p.poll() is None:
                    p.send_signal(signal.SIGKILL)
                    p.wait(30)
            await db.dispose()
    return {
        "bench": "api_webhooks",
        "database": "postgresql" if args.postgres else "sqlite",
        "n": args.n,
        "concurrency": args.concurrency,
        "batch": args.batch,
        "enqueue_per_s": round(args.n / enqueue_s, 1),
        "deliveries_per_s": round(throughput, 1),
        "goal_deliveries_per_s": 500,
        "server_cpu_ms_per_delivery": round(server_cpu_ms, 3),
        "receiver_cpu_ms_per_delivery": round(receiver_cpu_ms, 3),
        "load_avg_1m": round(load, 2),
        "cpus": os.cpu_count(),
        "kill9_after_delivered": killed_at,
        "queued_total": queued,
        "unique_delivered": end["unique"],
        "lost": queued - end["unique"],
        "duplicates": end["requests"] - end["unique"],
        "bad_signatures": end["bad"],
        "db_status": rows,
        "recovery_s": round(recover_s, 2),
        "settle_after_recovery_s": round(settled, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n", type=int, default=5000, help="deliveries per phase")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    ap.add_argument("--timeout", type=float, default=120.0)
    result = asyncio.run(run(ap.parse_args()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
