"""``create_app``: the FastAPI application. The lifespan opens the database (refusing an
un-migrated one), builds the runtime (index, NLU, engine) once unless one is injected, and
wires the hub, event log and turn runner onto ``app.state.services``.

Run with ``uvicorn --factory web.app:create_app`` or ``klartext serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response

from bot.config import Settings, get_settings
from bot.conversation import ChatEngine
from bot.errors import KlartextError, StoreError
from bot.store import Database
from bot.store.migrate import current_revision_async, head_revision
from bot.webhooks.dispatcher import DispatchConfig, WebhookDispatcher
from web.api import install as install_api
from web.chat_ws import router as ws_router
from web.clientip import TrustedProxies
from web.deps import RuntimeLike, Services
from web.eventlog import EventLog
from web.handoff_flow import HandoffFlow, llm_of
from web.hub import Hub, InProcessHub
from web.limits import Guards, Limits, RateLimiter
from web.logging import configure_logging, request_id_var
from web.metrics import Metrics, MetricsMiddleware
from web.metrics_poll import DepthPoller
from web.protocol import SERVER_VERSION
from web.retention import RetentionSweep
from web.routes.health import router as health_router
from web.routes.help import install as install_help_pages
from web.routes.metrics import router as metrics_router
from web.routes.pages import router as pages_router
from web.scaleout import announce_reindex, start_scaleout, wait_reload
from web.tokens import signer_from_settings
from web.turns import TurnRunner

log = logging.getLogger("klartext.app")
RELOAD_INTERVAL_S = 10.0


async def check_migrated(db: Database) -> None:
    """Raise ``StoreError`` unless the database schema is at the newest migration."""
    try:
        current = await current_revision_async(db.url)
    except Exception as exc:
        raise StoreError(f"database unreachable ({type(exc).__name__}: {exc})") from exc
    head = head_revision()
    if current != head:
        raise StoreError(
            f"database schema is at {current or 'nothing'}, expected {head}: "
            "run `klartext db upgrade` first"
        )


async def _build_runtime(settings: Settings) -> RuntimeLike:
    """Index, NLU, LLM provider, engine — in a thread (model loading blocks). A missing index or
    NLU does not stop the server: ``/readyz`` reports it until ``klartext reindex`` runs (the
    reload loop then builds the runtime again)."""
    from bot.runtime import build_runtime

    return await asyncio.to_thread(
        build_runtime, settings, prepare=settings.prepare_on_start, allow_missing=True
    )


async def _reload_loop(services: Services) -> None:
    """Pick up ``klartext reindex`` while the server runs: swap a changed index in place, or
    build the runtime again once an index appears where there was none. An index that could
    not be served (e.g. a damaged adapter, KT304) is tried again only after its files change,
    not on every poll."""
    from bot.runtime import index_signature

    tried: tuple[object, ...] | None = None
    while True:
        notified = await wait_reload(services.hub, RELOAD_INTERVAL_S)  # Redis: another replica
        runtime: Any = services.runtime
        try:
            if runtime is None or not runtime.ready().get("index", True):
                signature = index_signature(services.settings)
                if signature is not None and signature != tried:
                    tried = signature
                    services.runtime = await _build_runtime(services.settings)
                    services.runtime_error = None
                    if not services.runtime.ready().get("index", True):
                        log.warning("index still not served; next try when its files change")
                        continue
                    log.info("runtime rebuilt: index found")
                    if not notified:
                        announce_reindex(services.hub)
            elif hasattr(runtime, "reload_if_changed"):
                result = await asyncio.to_thread(runtime.reload_if_changed)
                if inspect.isawaitable(result):
                    result = await result
                if result is True and not notified:
                    announce_reindex(services.hub)
        except Exception:
            log.exception("runtime reload failed")


def _engine_of(services_ref: list[Services]) -> ChatEngine:
    runtime = services_ref[0].runtime
    if runtime is None:  # guarded by chat_ws (`not_ready`)
        raise KlartextError("the assistant is not ready")
    return runtime.engine


def _observe(metrics: Metrics, services: Services) -> None:
    """Point the metrics at the live services (turns, the LLM circuit of the current runtime)."""
    services.turns.observer = metrics

    def breaker_state() -> str | None:
        engine = getattr(services.runtime, "engine", None)
        breaker = getattr(engine, "breaker", None)
        if breaker is None or getattr(engine, "provider", None) is None:
            return None
        return str(breaker.state)

    metrics.callbacks.in_flight = lambda: services.turns.in_flight
    metrics.callbacks.breaker_state = breaker_state


def _webhook_dispatcher(settings: Settings, db: Database) -> WebhookDispatcher | None:
    """The outbox dispatcher of this process (``webhook_dispatcher=false``: none here)."""
    if not settings.webhook_dispatcher:
        return None
    return WebhookDispatcher(db, DispatchConfig.from_settings(settings))


def create_app(
    settings: Settings | None = None, *, runtime: RuntimeLike | None = None, hub: Hub | None = None
) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(
        settings.log_level,
        json_logs=settings.log_json,
        log_pii=settings.log_pii,
        order_pattern=settings.order_number_pattern,
    )
    metrics = Metrics() if settings.metrics_enabled else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.effective_database_url)
        try:
            await check_migrated(db)
        except StoreError:
            await db.dispose()
            raise
        rt, rt_error = runtime, None
        if rt is None:
            try:
                rt = await _build_runtime(settings)
            except KlartextError as exc:  # start anyway: /readyz says why, messages → not_ready
                rt_error = str(exc)
                log.error("runtime not available: %s", exc)
        scale = await start_scaleout(settings) if hub is None else None
        the_hub = hub or (scale.hub if scale is not None else InProcessHub())
        events = EventLog(db, the_hub)
        ref: list[Services] = []
        turns = TurnRunner(
            events,
            lambda: _engine_of(ref),
            default_lang=settings.default_language,
            log_pii=settings.log_pii,
            lead_capture=settings.lead_capture,
        )
        services = Services(
            settings=settings,
            runtime=rt,
            runtime_error=rt_error,
            db=db,
            hub=the_hub,
            events=events,
            turns=turns,
            signer=signer_from_settings(settings),
            limits=Limits.from_settings(settings),
            rate=RateLimiter(settings.rate_limit_per_minute),
            single_process=isinstance(the_hub, InProcessHub),
            guards=Guards.from_settings(settings),
            proxies=TrustedProxies(settings.trusted_proxies),
            metrics=metrics,
        )
        ref.append(services)
        if scale is not None:
            turns.leases = scale.leases
        poller = DepthPoller(db, metrics) if metrics is not None else None
        if metrics is not None and poller is not None:
            _observe(metrics, services)
            poller.start()
        if runtime is None:  # an injected runtime (tests) is left alone
            services.reload_task = asyncio.create_task(_reload_loop(services))
        services.handoff = HandoffFlow(settings, db, events, lambda: llm_of(services.runtime))
        turns.handoff_hooks = services.handoff
        handoff_sweep = asyncio.create_task(services.handoff.run())
        services.retention = RetentionSweep(settings, db, events, turns)
        retention_sweep = (
            asyncio.create_task(services.retention.run())
            if settings.conversation_retention_days is not None
            else None
        )
        app.state.services = services
        webhooks = _webhook_dispatcher(settings, db)
        app.state.webhook_dispatcher = webhooks
        if webhooks is not None:
            await webhooks.start()
        log.info("ready", extra={"database": db.url.split("@")[-1], "runtime": rt is not None})
        try:
            yield
        finally:
            for sweep in (handoff_sweep, retention_sweep):
                if sweep is not None:
                    sweep.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sweep
            if services.reload_task is not None:
                services.reload_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await services.reload_task
            await turns.aclose(settings.shutdown_grace_s)
            if poller is not None:
                await poller.aclose()
            if webhooks is not None:
                await webhooks.aclose()
            if scale is not None:
                await scale.aclose()
            await db.dispose()

    app = FastAPI(title="Klartext", version=SERVER_VERSION, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    if metrics is not None:
        app.include_router(metrics_router)

    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        rid = request.headers.get("x-request-id", "")[:64] or uuid.uuid4().hex
        token = request_id_var.set(rid)
        try:
            response = await call_next(request)
        finally:
            request_id_var.reset(token)
        response.headers["X-Request-ID"] = rid
        return response

    app.dependency_overrides[get_settings] = lambda: settings
    app.include_router(health_router)
    app.include_router(ws_router)
    app.include_router(pages_router)
    install_help_pages(app, settings.knowledge_dir)
    install_api(app)
    if metrics is not None:  # outermost: counts what the API's input guard refuses too
        app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
