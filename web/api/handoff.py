"""Human handoff through the API (scope ``agent``): take over, post agent messages that reach
the visitor's widget live, release back to the bot. Each transition is a ``handoff`` event in
the transcript, published to the conversation's open sockets after the commit."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from bot.store import handoff as hf
from web.api.auth import AgentKey
from web.api.conversations import load_conversation, transition
from web.api.errors import responses
from web.api.transcript import ConversationOut
from web.deps import ServicesDep

router = APIRouter(prefix="/api/v1/conversations", tags=["handoff"])
_ERRORS = responses(401, 403, 404, 409, 422)


class HandoffIn(BaseModel):
    state: hf.TakeoverTarget = Field(
        "human",
        description="`human`: an agent takes the conversation now; `pending_human`: queue it "
        "for an agent (only from `bot`).",
    )
    reason: str = Field("agent_takeover", min_length=1, max_length=64)
    agent_name: str | None = Field(None, min_length=1, max_length=100)


class AgentMessageIn(BaseModel):
    text: str = Field(min_length=1, max_length=8000)
    agent_name: str = Field(min_length=1, max_length=100)


class ReleaseIn(BaseModel):
    reason: str = Field("agent_release", min_length=1, max_length=64)


class TransitionOut(BaseModel):
    conversation: ConversationOut
    events: list[dict[str, Any]] = Field(description="The events appended, as websocket frames.")


async def _out(services: ServicesDep, cid: str, result: hf.Transition) -> TransitionOut:
    return TransitionOut(
        conversation=await load_conversation(services, cid),
        events=[e.frame() for e in result.events],
    )


@router.post("/{conversation_id}/handoff", responses=_ERRORS)
async def handoff(
    conversation_id: str,
    services: ServicesDep,
    _key: AgentKey,
    body: Annotated[HandoffIn | None, Body()] = None,
) -> TransitionOut:
    """``bot → pending_human`` or ``bot/pending_human → human``; the bot stops answering. The
    ``handoff`` event carries a ``summary`` of the conversation for the agent."""
    b = body or HandoffIn()
    flow = services.handoff
    summary = await flow.summary(conversation_id, reason=b.reason) if flow is not None else None
    result = await transition(
        services,
        conversation_id,
        lambda s: hf.take_over(
            s,
            conversation_id,
            target=b.state,
            reason=b.reason,
            agent_name=b.agent_name,
            summary=summary,
        ),
    )
    return await _out(services, conversation_id, result)


@router.post("/{conversation_id}/messages", status_code=201, responses=_ERRORS)
async def post_message(
    conversation_id: str, body: AgentMessageIn, services: ServicesDep, _key: AgentKey
) -> TransitionOut:
    """An agent's message, delivered live to the visitor (``agent_message`` frame). The
    conversation moves to ``human`` (with a ``handoff`` event) if it was not there yet."""
    text = body.text.strip()
    result = await transition(
        services,
        conversation_id,
        lambda s: hf.agent_message(s, conversation_id, text=text, agent_name=body.agent_name),
    )
    return await _out(services, conversation_id, result)


@router.post("/{conversation_id}/release", responses=_ERRORS)
async def release(
    conversation_id: str,
    services: ServicesDep,
    _key: AgentKey,
    body: Annotated[ReleaseIn | None, Body()] = None,
) -> TransitionOut:
    """``pending_human/human → bot``: the bot answers the visitor's next message."""
    reason = (body or ReleaseIn()).reason
    result = await transition(
        services, conversation_id, lambda s: hf.release(s, conversation_id, reason=reason)
    )
    return await _out(services, conversation_id, result)
