"""The app's services (built once in the lifespan, kept on ``app.state.services``) and the
``Annotated`` dependency aliases routes use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings, get_settings
from bot.conversation import ChatEngine
from bot.store import Database
from web.clientip import TrustedProxies
from web.eventlog import EventLog
from web.handoff_flow import HandoffFlow
from web.hub import Hub
from web.limits import Guards, Limits, RateLimiter
from web.metrics import Metrics
from web.retention import RetentionSweep
from web.tokens import TokenSigner
from web.turns import TurnRunner


class RuntimeLike(Protocol):
    """What the web layer needs of ``bot.runtime.Runtime``."""

    @property
    def engine(self) -> ChatEngine: ...

    def ready(self) -> dict[str, bool]: ...


@dataclass
class Services:
    settings: Settings
    runtime: RuntimeLike | None
    runtime_error: str | None
    db: Database
    hub: Hub
    events: EventLog
    turns: TurnRunner
    signer: TokenSigner
    limits: Limits
    rate: RateLimiter
    reload_task: asyncio.Task[None] | None = None
    single_process: bool = True  # InProcessHub: no other replica can be running a turn
    guards: Guards | None = None  # per-IP / per-API-key rate limits
    proxies: TrustedProxies | None = None  # whose X-Forwarded-For is believed
    metrics: Metrics | None = None  # None with metrics_enabled=false
    handoff: HandoffFlow | None = None  # summaries, no-agent fallback, timeout sweep
    retention: RetentionSweep | None = None  # erases expired conversations (when set)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_services(request).db.session() as session:
        yield session


def get_runtime(request: Request) -> RuntimeLike | None:
    return get_services(request).runtime


def get_app_settings(request: Request) -> Settings:
    """The settings this app was created with (``create_app(settings)``), else the global ones."""
    settings = getattr(request.app.state, "settings", None)
    return settings if isinstance(settings, Settings) else get_settings()


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ServicesDep = Annotated[Services, Depends(get_services)]
RuntimeDep = Annotated[RuntimeLike | None, Depends(get_runtime)]
DbDep = Annotated[AsyncSession, Depends(get_db_session)]
