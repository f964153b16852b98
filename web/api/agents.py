"""``/api/v1/agents/availability``: whether human agents take handoffs right now.

While agents are off (or outside ``handoff_office_hours``), a visitor who asks for a human (or
whom the engine hands off) is told at once that nobody is available and asked for an email
address, and conversations already waiting in ``pending_human`` get the same fallback at the
next sweep (reason ``no_agent_available`` / ``outside_office_hours``). While they are on, a
handoff waits up to ``handoff_timeout_s``. Stored in the database, so every replica sees the
same switch (a replica other than the one that was told reads it again within
``handoff_availability_cache_s``, default 2 s). Scopes: ``read`` to read it, ``agent`` to set it.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from bot.store.handoff_timeout import Availability, get_availability, set_availability
from web.api.auth import AgentKey, ReadKey
from web.api.errors import responses
from web.deps import Services, ServicesDep

router = APIRouter(prefix="/api/v1/agents", tags=["handoff"])


class AvailabilityIn(BaseModel):
    available: bool
    note: str | None = Field(None, max_length=200, description="E.g. 'back Monday 9:00'.")


class AvailabilityOut(BaseModel):
    available: bool
    note: str | None
    updated_by: str | None = Field(description="Name of the API key that set it.")
    updated_at: datetime | None
    handoff_timeout_s: float = Field(description="How long a handoff waits for an agent.")
    office_hours: str | None = Field(description="The `handoff_office_hours` setting.")
    accepting_handoffs: bool = Field(
        description="Switched on and (if office hours are set) inside them right now."
    )


async def _out(services: Services, a: Availability) -> AvailabilityOut:
    s = services.settings
    closed = await services.handoff.closed_reason() if services.handoff else None
    return AvailabilityOut(
        available=a.available,
        note=a.note,
        updated_by=a.updated_by,
        updated_at=a.updated_at,
        handoff_timeout_s=s.handoff_timeout_s,
        office_hours=s.handoff_office_hours,
        accepting_handoffs=a.available and closed is None,
    )


@router.get("/availability", responses=responses(401, 403))
async def get_(services: ServicesDep, _key: ReadKey) -> AvailabilityOut:
    async with services.db.session() as session:
        a = await get_availability(session)
    if services.handoff is not None:  # just read: fresher than the handoff path's copy
        services.handoff.availability_changed(a)
    return await _out(services, a)


@router.post("/availability", responses=responses(401, 403, 422))
async def set_(body: AvailabilityIn, services: ServicesDep, key: AgentKey) -> AvailabilityOut:
    """Switch agents on or off; switching off sends waiting visitors the no-agent fallback."""

    def op(s: Session) -> Availability:
        return set_availability(s, available=body.available, note=body.note, updated_by=key.name)

    a = await services.db.write(op)
    if services.handoff is not None:
        services.handoff.availability_changed(a)  # this replica's handoffs see it at once
        if not a.available:
            await services.handoff.sweep_once()
    return await _out(services, a)
