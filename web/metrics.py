"""Prometheus metrics (``GET /metrics``): one registry per app (so several apps in one test
process do not collide), HTTP and websocket counters from an ASGI middleware, turn metrics from
the turn runner's events, and callback gauges (turns in flight, LLM circuit, webhook queue).

Every metric is per process: with several replicas (or uvicorn workers) Prometheus scrapes each
one and sums (``docs/deployment.md``, Observability).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.events import Done, Error, Event, Handoff

# Latency buckets (seconds) from fast extractive answers to slow LLM turns.
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_UNMATCHED = "<unmatched>"
_BREAKER = {"closed": 0.0, "half_open": 1.0, "open": 2.0}

DepthSource = Callable[[], int | None]
_webhook_depth: list[DepthSource] = []


def set_webhook_depth_source(source: DepthSource | None) -> None:
    """Register a callable returning the number of pending webhook deliveries (``None`` when
    unknown), read at scrape time by every app's ``klartext_webhook_queue_depth``; it replaces
    the app's own poller (``web.metrics_poll``). Must be fast: it runs on the event loop."""
    _webhook_depth.clear()
    if source is not None:
        _webhook_depth.append(source)


def route_label(scope: Scope) -> str:
    """The route template (``/api/v1/conversations/{conversation_id}``), never the raw path, so
    the label set stays bounded."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else _UNMATCHED


class _Callbacks(Collector):
    """Gauges computed at scrape time from the live app."""

    def __init__(self) -> None:
        self.in_flight: Callable[[], int] | None = None
        self.breaker_state: Callable[[], str | None] | None = None
        self.webhook_depth: DepthSource | None = None  # this app's (``web.metrics_poll``)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        turns = GaugeMetricFamily("klartext_turns_in_flight", "Turns started and not finished.")
        turns.add_metric([], float(self.in_flight() if self.in_flight else 0))
        yield turns
        state = self.breaker_state() if self.breaker_state else None
        breaker = GaugeMetricFamily(
            "klartext_llm_circuit_state",
            "LLM circuit breaker: 0 closed, 1 half-open, 2 open (absent without an LLM).",
        )
        if state in _BREAKER:
            breaker.add_metric([], _BREAKER[state])
        yield breaker
        depth = GaugeMetricFamily(
            "klartext_webhook_queue_depth", "Webhook deliveries waiting to be sent."
        )
        source = _webhook_depth[0] if _webhook_depth else self.webhook_depth
        value = source() if source is not None else None
        if value is not None:
            depth.add_metric([], float(value))
        yield depth


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "klartext_http_requests", "HTTP requests.", ["method", "route", "status"], registry=r
        )
        self.http_latency = Histogram(
            "klartext_http_request_duration_seconds",
            "HTTP request latency.",
            ["method", "route"],
            buckets=_LATENCY,
            registry=r,
        )
        self.ws_open = Gauge("klartext_ws_connections", "Open websocket connections.", registry=r)
        self.ws_total = Counter(
            "klartext_ws_connections_opened", "Websocket connections accepted.", registry=r
        )
        self.ws_errors = Counter(
            "klartext_ws_protocol_errors",
            "Refused client frames by error code.",
            ["code"],
            registry=r,
        )
        self.rate_limited = Counter(
            "klartext_rate_limited",
            "Requests refused by a rate limit.",
            ["scope"],  # ws_ip_connect, ws_ip_message, ws_conversation, api_key
            registry=r,
        )
        self.ttft = Histogram(
            "klartext_time_to_first_token_seconds",
            "From receiving a message to its first answer token being persisted.",
            buckets=_LATENCY,
            registry=r,
        )
        self.turn_latency = Histogram(
            "klartext_turn_duration_seconds",
            "From receiving a message to its turn's last event being persisted.",
            buckets=_LATENCY,
            registry=r,
        )
        self.stage_latency = Histogram(
            "klartext_turn_stage_seconds",
            "Engine stage durations (stage: nlu, retrieval, llm, action).",
            ["stage"],
            buckets=_LATENCY,
            registry=r,
        )
        self.answers = Counter(
            "klartext_answers", "Finished turns by answer mode.", ["mode", "answered"], registry=r
        )
        self.fallbacks = Counter(
            "klartext_fallbacks",
            "Turns answered with the fallback (no confident answer).",
            registry=r,
        )
        self.handoffs = Counter(
            "klartext_handoffs", "Handoffs to a human by reason.", ["reason"], registry=r
        )
        self.turn_errors = Counter(
            "klartext_turn_errors", "Turn error events by code.", ["code"], registry=r
        )
        self.llm_tokens = Counter(
            "klartext_llm_tokens", "LLM tokens (kind: input, output).", ["kind"], registry=r
        )
        self.llm_requests = Counter(
            "klartext_llm_requests", "LLM answers attempted by outcome (ok, error).", ["outcome"],
            registry=r,
        )  # fmt: skip
        self.callbacks = _Callbacks()
        r.register(self.callbacks)

    # --- turns (a TurnObserver for ``web.turns.TurnRunner``) ---------------------------------
    def first_token(self, seconds: float) -> None:
        self.ttft.observe(seconds)

    def turn_finished(self, seconds: float) -> None:
        self.turn_latency.observe(seconds)

    def turn_events(self, events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, Done):
                self._done(ev)
            elif isinstance(ev, Handoff):
                self.handoffs.labels(ev.reason).inc()
            elif isinstance(ev, Error):
                self.turn_errors.labels(ev.code).inc()

    def _done(self, done: Done) -> None:
        self.answers.labels(done.mode, "true" if done.answered else "false").inc()
        if done.mode == "fallback":
            self.fallbacks.inc()
        for stage in ("nlu", "retrieval", "llm", "action"):
            if stage in done.timing_ms:
                self.stage_latency.labels(stage).observe(done.timing_ms[stage] / 1000)
        if "llm" in done.timing_ms:  # the LLM was called; it failed unless the answer is its own
            failed = done.mode != "generative" or done.partial
            self.llm_requests.labels("error" if failed else "ok").inc()
        for kind in ("input", "output"):
            n = done.usage.get(f"{kind}_tokens")
            if n:
                self.llm_tokens.labels(kind).inc(n)

    # --- exposition ----------------------------------------------------------------------------
    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware: HTTP counts/latency by route template and status; websocket
    connection gauge and total (a socket counts once it is accepted)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route, method = route_label(scope), str(scope.get("method", ""))
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_latency.labels(method, route).observe(time.perf_counter() - started)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        accepted = False

        async def send_wrapper(message: Message) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept" and not accepted:
                accepted = True
                self.metrics.ws_total.inc()
                self.metrics.ws_open.inc()
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if accepted:
                self.metrics.ws_open.dec()


def metrics_of(state: Any) -> Metrics | None:
    """The app's ``Metrics`` (``app.state.metrics``), if metrics are enabled."""
    m = getattr(state, "metrics", None)
    return m if isinstance(m, Metrics) else None
