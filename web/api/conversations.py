"""``/api/v1/conversations``: list (filters, cursor pagination), get with transcript, close /
reopen, export (JSON / Markdown) and delete (GDPR). Scopes: ``read`` for GETs, ``agent`` for
close/reopen, ``admin`` for delete."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from bot.store import StoredEvent
from bot.store import handoff as hf
from bot.store.listing import (
    MAX_LIMIT,
    ConversationFilter,
    delete_conversation_sync,
    get_conversation_row,
    list_conversations,
    timed_events,
)
from web.api.auth import AdminKey, AgentKey, ReadKey
from web.api.errors import ApiError, responses
from web.api.transcript import ConversationOut, Transcript, render_entries, to_markdown
from web.deps import Services, ServicesDep

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])

Status = Literal["open", "closed"]
HandoffState = Literal["bot", "pending_human", "human", "closed"]


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    next_cursor: str | None


async def load_conversation(services: Services, conversation_id: str) -> ConversationOut:
    async with services.db.session() as session:
        row = await get_conversation_row(session, conversation_id)
    if row is None:
        raise ApiError(404, "not_found", f"no conversation {conversation_id!r}")
    return ConversationOut.of(row)


async def load_transcript(services: Services, conversation_id: str) -> Transcript:
    async with services.db.session() as session:
        row = await get_conversation_row(session, conversation_id)
        if row is None:
            raise ApiError(404, "not_found", f"no conversation {conversation_id!r}")
        events = await timed_events(session, conversation_id)
    return Transcript(conversation=ConversationOut.of(row), entries=render_entries(events))


async def transition(
    services: Services, conversation_id: str, op: Callable[[Session], hf.Transition]
) -> hf.Transition:
    """Run a state-machine operation through the event log (its events reach open sockets
    after the commit); unknown id → 404, not allowed now → 409 ``invalid_transition``."""

    def write(s: Session) -> tuple[list[StoredEvent], hf.Transition]:
        result = op(s)
        return result.events, result

    try:
        return await services.events.write(conversation_id, write)
    except hf.UnknownConversationError as exc:
        raise ApiError(404, "not_found", f"no conversation {conversation_id!r}") from exc
    except hf.InvalidTransitionError as exc:
        raise ApiError(409, "invalid_transition", str(exc)) from exc


@router.get("", responses=responses(400, 401, 403, 422))
async def list_(
    services: ServicesDep,
    _key: ReadKey,
    status: Status | None = None,
    handoff_state: HandoffState | None = None,
    lang: Annotated[str | None, Query(max_length=16)] = None,
    contact_id: Annotated[str | None, Query(max_length=64)] = None,
    created_after: Annotated[
        datetime | None, Query(description="Inclusive; ISO 8601 (UTC if no offset).")
    ] = None,
    created_before: Annotated[
        datetime | None, Query(description="Exclusive; ISO 8601 (UTC if no offset).")
    ] = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="Text in user/agent/bot messages."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=500, description="`next_cursor`.")] = None,
) -> ConversationPage:
    """Conversations, newest first (by creation time), ``limit`` per page; pass the page's
    ``next_cursor`` as ``cursor`` for the next page (``null`` on the last one)."""
    flt = ConversationFilter(
        status=status,
        handoff_state=handoff_state,
        lang=lang,
        contact_id=contact_id,
        created_after=created_after,
        created_before=created_before,
        q=q,
    )
    async with services.db.session() as session:
        page = await list_conversations(session, flt, limit=limit, cursor=cursor)
    return ConversationPage(
        items=[ConversationOut.of(r) for r in page.items], next_cursor=page.next_cursor
    )


@router.get("/{conversation_id}", responses=responses(401, 403, 404))
async def get(conversation_id: str, services: ServicesDep, _key: ReadKey) -> Transcript:
    """One conversation with its full transcript."""
    return await load_transcript(services, conversation_id)


@router.get(
    "/{conversation_id}/export",
    responses={
        **responses(401, 403, 404, 422),
        200: {"content": {"application/json": {}, "text/markdown": {}}},
    },
)
async def export(
    conversation_id: str,
    services: ServicesDep,
    _key: ReadKey,
    fmt: Annotated[Literal["json", "md"], Query(alias="format")] = "json",
) -> Response:
    """The transcript as a downloadable JSON or Markdown file."""
    t = await load_transcript(services, conversation_id)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"conversation-{conversation_id}-{stamp}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "md":
        return Response(to_markdown(t), media_type="text/markdown; charset=utf-8", headers=headers)
    return Response(
        t.model_dump_json(exclude_none=True), media_type="application/json", headers=headers
    )


@router.post("/{conversation_id}/close", responses=responses(401, 403, 404, 409))
async def close(conversation_id: str, services: ServicesDep, _key: AgentKey) -> ConversationOut:
    """Close the conversation (``handoff`` event with state ``closed``)."""
    await transition(services, conversation_id, lambda s: hf.close(s, conversation_id))
    return await load_conversation(services, conversation_id)


@router.post("/{conversation_id}/reopen", responses=responses(401, 403, 404, 409))
async def reopen(conversation_id: str, services: ServicesDep, _key: AgentKey) -> ConversationOut:
    """Reopen a closed conversation; the bot answers it again."""
    await transition(services, conversation_id, lambda s: hf.reopen(s, conversation_id))
    return await load_conversation(services, conversation_id)


@router.delete("/{conversation_id}", status_code=204, responses=responses(401, 403, 404))
async def delete(conversation_id: str, services: ServicesDep, _key: AdminKey) -> Response:
    """Erase the conversation with its events, message ids and feedback (GDPR)."""

    def erase(s: Session) -> tuple[list[StoredEvent], bool]:
        return [], delete_conversation_sync(s, conversation_id)

    # through the event log: serialised with the conversation's other writes in this process
    found = await services.events.write(conversation_id, erase)
    if not found:
        raise ApiError(404, "not_found", f"no conversation {conversation_id!r}")
    services.turns.forget(conversation_id)
    return Response(status_code=204)
