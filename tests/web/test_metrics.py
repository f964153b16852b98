"""``GET /metrics`` on a real server: HTTP counts by route template, websocket gauges, turn
latencies, answer modes, handoffs, errors; the LLM and webhook gauges; and switching it off."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from _wsutil import OpenClient, ServerThread, StartServer
from prometheus_client.parser import text_string_to_metric_families

from bot.events import Done, Error, Handoff
from web.metrics import Metrics, set_webhook_depth_source

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _get(server: ServerThread) -> Samples:
    r = httpx.get(f"{server.url}/metrics", timeout=5)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return _samples(r.text)


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def reset_webhook_source() -> Iterator[None]:
    yield
    set_webhook_depth_source(None)


async def test_http_websocket_and_turn_metrics(
    server: ServerThread, open_client: OpenClient
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/readyz")).status_code == 200
        assert (await http.get("/api/v1/conversations/abc123")).status_code == 401
        assert (await http.get("/no/such/page")).status_code == 404
        refused = await http.post("/api/v1/conversations/x/messages", content=b"\xff")
        assert refused.status_code == 422  # refused by the API's input guard, still counted
    client = await open_client(server.ws_url)
    await client.hello()
    await client.send({"type": "message", "message_id": "m1", "text": "shipping?"})
    await client.until("done")
    await client.send({"type": "message", "message_id": "m2", "text": "a human please"})
    await client.until("done")
    await client.ws.send("{not json")
    assert (await client.recv())["code"] == "bad_json"

    m = _get(server)
    rt = "klartext_http_requests_total"
    assert _value(m, rt, method="GET", route="/readyz", status="200") == 1
    # the route template, not the raw path (bounded label values)
    route = "/api/v1/conversations/{conversation_id}"
    assert _value(m, rt, method="GET", route=route, status="401") == 1
    assert _value(m, rt, method="GET", route="<unmatched>", status="404") == 1
    assert _value(m, rt, method="POST", route="<unmatched>", status="422") == 1
    latency = "klartext_http_request_duration_seconds_count"
    assert _value(m, latency, method="GET", route="/readyz") == 1
    assert _value(m, "klartext_ws_connections") == 1
    assert _value(m, "klartext_ws_connections_opened_total") == 1
    assert _value(m, "klartext_ws_protocol_errors_total", code="bad_json") == 1
    assert _value(m, "klartext_time_to_first_token_seconds_count") == 2
    assert _value(m, "klartext_turn_duration_seconds_count") == 2
    assert _value(m, "klartext_turn_duration_seconds_sum") > 0.05  # ~11 tokens 10 ms apart
    assert _value(m, "klartext_answers_total", mode="extractive", answered="true") == 1
    assert _value(m, "klartext_answers_total", mode="handoff", answered="true") == 1
    assert _value(m, "klartext_handoffs_total", reason="user_request") == 1
    assert _value(m, "klartext_fallbacks_total") == 0
    assert _value(m, "klartext_turns_in_flight") == 0
    # migrated database without pending deliveries: the poller reports 0
    assert ("klartext_webhook_queue_depth", ()) in m
    assert _value(m, "klartext_webhook_queue_depth") == 0

    await client.ws.close()
    for _ in range(50):
        if _value(_get(server), "klartext_ws_connections") == 0:
            break
        await asyncio.sleep(0.02)
    assert _value(_get(server), "klartext_ws_connections") == 0


async def test_turn_error_and_fallback_counters(
    server: ServerThread, open_client: OpenClient
) -> None:
    client = await open_client(server.ws_url)
    await client.hello()
    await client.send({"type": "message", "message_id": "e1", "text": "enginerror"})
    await client.until("error")
    await client.send({"type": "message", "message_id": "e2", "text": "boom"})
    await client.until("error")
    m = _get(server)
    assert _value(m, "klartext_turn_errors_total", code="KT500") == 1
    assert _value(m, "klartext_turn_errors_total", code="internal") == 1


def test_engine_done_events_feed_llm_and_stage_metrics() -> None:
    metrics = Metrics()
    timing = {"nlu": 2.0, "retrieval": 6.0, "llm": 900.0}
    usage = {"input_tokens": 300, "output_tokens": 42, "total_tokens": 342}
    metrics.turn_events(
        [
            Done(turn_id="t1", mode="generative", answered=True, timing_ms=timing, usage=usage),
            # the LLM failed before its first token: the engine answered extractively
            Done(turn_id="t2", mode="extractive", answered=True, timing_ms=timing),
            # ... or mid-answer (partial)
            Error(code="KT500", message="x"),
            Done(turn_id="t3", mode="generative", answered=True, partial=True, timing_ms=timing),
            Done(turn_id="t4", mode="fallback", answered=False, timing_ms={"retrieval": 5.0}),
            Handoff(reason="low_confidence"),
        ]
    )
    m = _samples(metrics.exposition()[0].decode())
    assert _value(m, "klartext_llm_tokens_total", kind="input") == 300
    assert _value(m, "klartext_llm_tokens_total", kind="output") == 42
    assert _value(m, "klartext_llm_requests_total", outcome="ok") == 1
    assert _value(m, "klartext_llm_requests_total", outcome="error") == 2
    assert _value(m, "klartext_turn_stage_seconds_count", stage="retrieval") == 4
    assert _value(m, "klartext_turn_stage_seconds_sum", stage="retrieval") == pytest.approx(0.023)
    assert _value(m, "klartext_fallbacks_total") == 1
    assert _value(m, "klartext_handoffs_total", reason="low_confidence") == 1
    assert _value(m, "klartext_turn_errors_total", code="KT500") == 1


def test_llm_circuit_and_registered_webhook_depth(reset_webhook_source: None) -> None:
    metrics = Metrics()
    states = iter(["closed", "open"])
    metrics.callbacks.breaker_state = lambda: next(states)
    set_webhook_depth_source(lambda: 7)
    first = _samples(metrics.exposition()[0].decode())
    assert _value(first, "klartext_llm_circuit_state") == 0
    assert _value(first, "klartext_webhook_queue_depth") == 7
    second = _samples(metrics.exposition()[0].decode())
    assert _value(second, "klartext_llm_circuit_state") == 2
    metrics.callbacks.breaker_state = lambda: None  # no LLM configured: the gauge is absent
    assert ("klartext_llm_circuit_state", ()) not in _samples(metrics.exposition()[0].decode())


def test_metrics_can_be_switched_off(start_server: StartServer) -> None:
    server = start_server(metrics_enabled=False)
    assert httpx.get(f"{server.url}/metrics", timeout=5).status_code == 404
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
