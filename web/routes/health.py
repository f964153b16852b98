"""``/healthz`` (liveness: the process answers) and ``/readyz`` (index loaded, database
reachable and migrated, NLU trained; the LLM circuit and the order backend are reported in
``checks`` but do not make the replica unready)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from bot.store.migrate import is_up_to_date_async
from web.deps import ServicesDep

router = APIRouter(tags=["health"])

# Reported but not gating: without an LLM (or with its circuit open) and without an order
# backend the bot still answers from knowledge, so a replica must stay in rotation.
# Redis likewise: without it a replica still serves its own sockets (live events from other
# replicas then reach them on reconnect, from the database).
_INFORMATIONAL = frozenset({"llm", "actions", "redis"})


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    checks: dict[str, bool] = {}
    if services.runtime is not None:
        try:
            checks.update({k: bool(v) for k, v in services.runtime.ready().items()})
        except Exception:
            checks["runtime"] = False
    else:
        checks["runtime"] = False
    redis_ping = getattr(services.hub, "ping", None)
    if callable(redis_ping):  # several replicas (KLARTEXT_REDIS_URL)
        checks["redis"] = bool(await redis_ping())
    checks["database"] = await services.db.ping()
    if checks["database"]:
        try:
            checks["migrations"] = await is_up_to_date_async(services.db.url)
        except Exception:
            checks["migrations"] = False
    ok = all(v for k, v in checks.items() if k not in _INFORMATIONAL)
    body: dict[str, Any] = {"status": "ready" if ok else "not_ready", "checks": checks}
    if services.runtime_error:
        body["error"] = services.runtime_error
    return JSONResponse(body, status_code=200 if ok else 503)
