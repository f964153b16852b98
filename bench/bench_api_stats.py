"""``GET /api/v1/stats`` latency on PostgreSQL with a month of traffic.

Starts a throwaway PostgreSQL cluster (``tests/pg.py``), migrates it and seeds, with
``generate_series`` (SQL, fast), ``--conversations`` conversations spread over the last 30 days,
``--turns`` turns each: the user's message, an answer token, a ``done`` (30 % fallback with a
``suggestions`` event, 5 % handoff with its ``handoff`` event, the rest extractive) — and after
half of the fallbacks the visitor clicks a suggestion (the next message is its text), so the
suggestion-picks query has work. Serves the real app with uvicorn on loopback (a scripted
engine: the knowledge-gap clustering then uses the hashing embedder; with the index's embedder
add its time for up to ``MAX_GAP_TEXTS`` distinct questions) and measures sequential requests
per range. Prints one JSON object last.

    nice -n 10 .venv/bin/python bench/bench_api_stats.py --conversations 100000 --turns 5
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

_PICK = "How do I track my order?"
_FALLBACK = "(i + t) % 10 < 3"  # turn t of conversation i fell back (and offered suggestions)
_SEED = [
    """INSERT INTO conversations
         (id, created_at, updated_at, lang, status, handoff_state, contact_id, last_seq)
       SELECT md5(i::text), now() - make_interval(days => i % 30, secs => i % 80000), now(),
              CASE WHEN i % 3 = 0 THEN 'de' ELSE 'en' END, 'open', 'bot', NULL, :t * 4
       FROM generate_series(1, :c) AS i""",
    f"""INSERT INTO events (conversation_id, seq, type, turn_id, payload, created_at)
       SELECT md5(i::text), t * 4 + k + 1,
              (ARRAY['user_message', 'token', 'suggestions', 'done'])[k + 1], 't' || t,
              CASE k
                WHEN 0 THEN json_build_object('text',
                  CASE WHEN t > 0 AND (i + t - 1) % 10 < 3 AND (i + t) % 2 = 0 THEN '{_PICK}'
                       ELSE 'question ' || ((i * 31 + t * 7) % 400) || ' about ' || (ARRAY[
                         'shipping', 'returns', 'payment', 'vouchers'])[1 + (i + t) % 4]
                  END)
                WHEN 1 THEN json_build_object('text', 'an answer from the knowledge base')
                WHEN 2 THEN json_build_object(
                  'items', json_build_array('{_PICK}', 'Where is my parcel?', 'Talk to a human'),
                  'ids', json_build_array('en-order-01', 'en-ship-02'))
                ELSE json_build_object(
                  'mode', CASE WHEN {_FALLBACK} THEN 'fallback'
                               WHEN (i + t) % 20 = 3 THEN 'handoff' ELSE 'extractive' END,
                  'answered', NOT ({_FALLBACK}) AND (i + t) % 20 <> 3,
                  'confidence', ((i * 7 + t) % 100) / 100.0)
              END,
              now() - make_interval(days => i % 30, secs => i % 80000) + make_interval(mins => t)
       FROM generate_series(1, :c) AS i, generate_series(0, :t - 1) AS t,
            generate_series(0, 3) AS k
       WHERE k <> 2 OR {_FALLBACK}""",
    # the handoff event of each turn that handed the conversation to a human
    """INSERT INTO events (conversation_id, seq, type, turn_id, payload, created_at)
       SELECT conversation_id, 1000 + seq, 'handoff', turn_id,
              json_build_object('reason', 'user_request', 'state', 'pending_human'), created_at
       FROM events WHERE type = 'done' AND payload ->> 'mode' = 'handoff'""",
    # the typed copy of each done event the app writes with it (bot.store.outcomes)
    """INSERT INTO turn_outcomes
         (conversation_id, turn_id, seq, created_at, mode, answered, partial, confidence)
       SELECT conversation_id, turn_id, seq, created_at, payload ->> 'mode',
              (payload ->> 'answered')::boolean, false, (payload ->> 'confidence')::float
       FROM events WHERE type = 'done'""",
    "ANALYZE",
]


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _seed(url: str, conversations: int, turns: int) -> tuple[str, int, float]:
    await upgrade_async(url)
    db = Database(url)
    started = time.perf_counter()
    try:
        async with db.writing() as s:
            for stmt in _SEED[:4]:
                await s.execute(text(stmt), {"c": conversations, "t": turns})
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(_SEED[4]))
            events = int((await conn.execute(text("SELECT count(*) FROM events"))).scalar_one())
        async with db.writing() as s:
            key = (await create_api_key(s, name="bench", scopes="read")).plaintext
    finally:
        await db.dispose()
    return key, events, time.perf_counter() - started


def _measure(
    base: str, key: str, requests: int
) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
    headers = {"Authorization": f"Bearer {key}"}
    out: dict[str, dict[str, float]] = {}
    seen: dict[str, int] = {}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
        for days in (1, 7, 30):
            http.get("/api/v1/stats", params={"days": days})  # warm-up
            samples = []
            for _ in range(requests):
                t = time.perf_counter()
                r = http.get("/api/v1/stats", params={"days": days})
                samples.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.text
            body = r.json()
            total = body["totals"]
            seen[f"days_{days}"] = total["turns"]
            seen[f"resolved_{days}"] = total["resolved"]
            picks = body.get("suggestion_picks") or []
            seen[f"top_picks_{days}"] = sum(p["count"] for p in picks)
            out[f"days_{days}"] = {
                "n": requests,
                "p50_ms": round(statistics.median(samples), 1),
                "p99_ms": round(_pct(samples, 0.99), 1),
            }
    return out, seen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conversations", type=int, default=100_000)
    ap.add_argument("--turns", type=int, default=5)
    ap.add_argument("--requests", type=int, default=10)
    args = ap.parse_args()
    with pg_cluster() as cluster, tempfile.TemporaryDirectory() as tmp:
        url = cluster.create_database()
        key, events, seed_s = asyncio.run(_seed(url, args.conversations, args.turns))
        settings = make_settings(
            Path(tmp), database_url=url, api_requests_per_minute_per_key=1_000_000
        )
        server = ServerThread(settings, FakeRuntime()).start()
        try:
            results, seen = _measure(server.url, key, args.requests)
        finally:
            server.stop()
    print(
        json.dumps(
            {
                "bench": "api_stats_postgresql",
                "conversations": args.conversations,
                "turns": args.conversations * args.turns,
                "events": events,
                "seed_s": round(seed_s, 1),
                "results": results,
                "report": seen,
            }
        )
    )


if __name__ == "__main__":
    main()
