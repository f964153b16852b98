"""``GET /api/v1/conversations`` latency on PostgreSQL with many conversations and messages
(issue 5 goal: p99 <= 50 ms with 100k conversations / 2M messages).

Starts a throwaway PostgreSQL cluster (``tests/pg.py``), migrates it, seeds conversations and
events with ``generate_series`` (SQL, fast), creates a read key and serves the real app with
uvicorn on loopback (a scripted engine: no model is needed for listing). Then measures
sequential requests per scenario over HTTP (httpx, keep-alive). Prints one JSON object last.

    nice -n 10 .venv/bin/python bench/bench_api_list.py --conversations 100000 --events-per 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "web"))

from _wsfakes import FakeRuntime  # noqa: E402
from _wsutil import ServerThread, make_settings  # noqa: E402
from pg import pg_cluster  # noqa: E402

from bot.store import Database  # noqa: E402
from bot.store.apikeys import create_api_key  # noqa: E402
from bot.store.migrate import upgrade_async  # noqa: E402

_SEED = [
    """INSERT INTO conversations
         (id, created_at, updated_at, lang, status, handoff_state, contact_id, last_seq)
       SELECT md5(i::text), now() - make_interval(secs => i), now(),
              CASE WHEN i % 3 = 0 THEN 'de' ELSE 'en' END,
              CASE WHEN i % 10 = 0 THEN 'closed' ELSE 'open' END,
              CASE WHEN i % 10 = 0 THEN 'closed' WHEN i % 50 = 1 THEN 'pending_human'
                   ELSE 'bot' END,
              NULL, :n
       FROM generate_series(1, :c) AS i""",
    """INSERT INTO events (conversation_id, seq, type, turn_id, payload, created_at)
       SELECT md5(i::text), s, CASE WHEN s % 2 = 1 THEN 'user_message' ELSE 'token' END,
              't' || (s / 2),
              json_build_object('text', 'message ' || s || ' about order ' || (i * 7919 % 1000003)),
              now()
       FROM generate_series(1, :c) AS i, generate_series(1, :n) AS s""",
    "ANALYZE",
]


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _seed(url: str, conversations: int, per: int, *, text_index: bool) -> tuple[str, float]:
    await upgrade_async(url)
    db = Database(url)
    started = time.perf_counter()
    try:
        async with db.writing() as s:
            if not text_index:  # the search as it was before migration 0006
                await s.execute(text("DROP INDEX IF EXISTS ix_events_text_trgm"))
            for stmt in _SEED[:2]:
                await s.execute(text(stmt), {"c": conversations, "n": per})
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(_SEED[2]))
        async with db.writing() as s:
            key = (await create_api_key(s, name="bench", scopes="read")).plaintext
    finally:
        await db.dispose()
    return key, time.perf_counter() - started


def _measure(base: str, key: str, requests: int) -> dict[str, dict[str, float]]:
    headers = {"Authorization": f"Bearer {key}"}
    out: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        first = http.get("/api/v1/conversations", params={"limit": 50}).json()
        deep: Any = first
        for _ in range(20):  # the 21st page
            deep = http.get(
                "/api/v1/conversations", params={"limit": 50, "cursor": deep["next_cursor"]}
            ).json()
        scenarios: dict[str, dict[str, Any]] = {
            "first_page": {"limit": 50},
            "page_21_by_cursor": {"limit": 50, "cursor": deep["next_cursor"]},
            "handoff_pending": {"limit": 50, "handoff_state": "pending_human"},
            "lang_de_open": {"limit": 50, "lang": "de", "status": "open"},
            "created_range": {
                "limit": 50,
                "created_after": "2000-01-01T00:00:00Z",
                "created_before": "2100-01-01T00:00:00Z",
            },
            "text_search": {"limit": 50, "q": "order 4242"},
        }
        for name, params in scenarios.items():
            n = requests if name != "text_search" else max(5, requests // 20)
            for _ in range(3):
                http.get("/api/v1/conversations", params=params)  # warm-up
            samples = []
            for _ in range(n):
                t = time.perf_counter()
                r = http.get("/api/v1/conversations", params=params)
                samples.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.text
            out[name] = {
                "n": n,
                "p50_ms": round(statistics.median(samples), 2),
                "p99_ms": round(_pct(samples, 0.99), 2),
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conversations", type=int, default=100_000)
    ap.add_argument("--events-per", type=int, default=20)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument(
        "--no-text-index",
        action="store_true",
        help="drop the trigram index of migration 0006 first (the text search before it)",
    )
    args = ap.parse_args()
    with pg_cluster() as cluster, tempfile.TemporaryDirectory() as tmp:
        url = cluster.create_database()
        key, seed_s = asyncio.run(
            _seed(url, args.conversations, args.events_per, text_index=not args.no_text_index)
        )
        settings = make_settings(
            Path(tmp), database_url=url, api_requests_per_minute_per_key=1_000_000
        )
        server = ServerThread(settings, FakeRuntime()).start()
        try:
            results = _measure(server.url, key, args.requests)
        finally:
            server.stop()
    goal = results["first_page"]["p99_ms"] <= 50
    print(
        json.dumps(
            {
                "bench": "api_list_postgresql",
                "conversations": args.conversations,
                "events": args.conversations * args.events_per,
                "seed_s": round(seed_s, 1),
                "text_index": not args.no_text_index,
                "results": results,
                "goal_first_page_p99_le_50ms": goal,
            }
        )
    )


if __name__ == "__main__":
    main()
