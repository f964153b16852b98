"""The handoff / lifecycle state machine of a conversation, as sync write operations (run them
through ``EventLog.write`` so the events they append are published after the commit)::

    bot ──handoff──▶ pending_human ──handoff / agent message──▶ human
     ▲                    │                                        │
     └──────release───────┴────────────────release─────────────────┘
    open ──close──▶ closed (handoff_state "closed") ──reopen──▶ open (handoff_state "bot")

Every transition appends a ``handoff`` event (``reason``, ``state``) to the transcript. The
conversation row is locked first (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite has one
writer), so concurrent transitions of one conversation are serialised. An operation that is
not allowed in the current state raises :class:`InvalidTransitionError` and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.models import Conversation
from bot.store.writes import NewEvent, StoredEvent, append_events, update_conversation

TakeoverTarget = Literal["pending_human", "human"]


class UnknownConversationError(LookupError):
    pass


class InvalidTransitionError(Exception):
    def __init__(self, action: str, status: str, handoff_state: str) -> None:
        super().__init__(
            f"cannot {action} a conversation in state {handoff_state!r} (status {status!r})"
        )
        self.action = action
        self.status = status
        self.handoff_state = handoff_state


@dataclass(frozen=True, slots=True)
class Transition:
    status: str
    handoff_state: str
    events: list[StoredEvent]


def _lock(s: Session, conversation_id: str) -> tuple[str, str]:
    row = s.execute(
        select(Conversation.status, Conversation.handoff_state)
        .where(Conversation.id == conversation_id)
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise UnknownConversationError(conversation_id)
    return str(row[0]), str(row[1])


def _apply(
    s: Session, conversation_id: str, status: str, state: str, events: list[NewEvent]
) -> Transition:
    stored = append_events(s, conversation_id, events)
    update_conversation(s, conversation_id, status=status, handoff_state=state)
    return Transition(status, state, stored)


def _handoff_event(
    state: str,
    reason: str,
    agent_name: str | None = None,
    summary: dict[str, Any] | None = None,
) -> NewEvent:
    payload: dict[str, Any] = {"reason": reason, "state": state}
    if agent_name:
        payload["agent_name"] = agent_name
    if summary is not None:
        payload["summary"] = summary
    return NewEvent("handoff", payload)


def take_over(
    s: Session,
    conversation_id: str,
    *,
    target: TakeoverTarget = "human",
    reason: str = "agent_takeover",
    agent_name: str | None = None,
    summary: dict[str, Any] | None = None,
) -> Transition:
    """``bot → pending_human`` (queue it for an agent) or ``bot/pending_human → human``;
    ``summary`` (:mod:`bot.handoff_summary`) goes on the ``handoff`` event."""
    status, state = _lock(s, conversation_id)
    allowed = ("bot",) if target == "pending_human" else ("bot", "pending_human")
    if status != "open" or state not in allowed:
        raise InvalidTransitionError("hand off", status, state)
    event = _handoff_event(target, reason, agent_name, summary)
    return _apply(s, conversation_id, status, target, [event])


def agent_message(s: Session, conversation_id: str, *, text: str, agent_name: str) -> Transition:
    """An agent's message; the conversation moves to ``human`` first if it was not there."""
    status, state = _lock(s, conversation_id)
    if status != "open" or state == "closed":
        raise InvalidTransitionError("post a message to", status, state)
    events: list[NewEvent] = []
    if state != "human":
        events.append(_handoff_event("human", "agent_message", agent_name))
    events.append(NewEvent("agent_message", {"text": text, "agent_name": agent_name}))
    return _apply(s, conversation_id, status, "human", events)


def release(s: Session, conversation_id: str, *, reason: str = "agent_release") -> Transition:
    """``pending_human/human → bot``: the bot answers again."""
    status, state = _lock(s, conversation_id)
    if status != "open" or state not in ("pending_human", "human"):
        raise InvalidTransitionError("release", status, state)
    return _apply(s, conversation_id, status, "bot", [_handoff_event("bot", reason)])


def close(s: Session, conversation_id: str) -> Transition:
    status, state = _lock(s, conversation_id)
    if status == "closed":
        raise InvalidTransitionError("close", status, state)
    return _apply(s, conversation_id, "closed", "closed", [_handoff_event("closed", "closed")])


def reopen(s: Session, conversation_id: str) -> Transition:
    status, state = _lock(s, conversation_id)
    if status != "closed":
        raise InvalidTransitionError("reopen", status, state)
    return _apply(s, conversation_id, "open", "bot", [_handoff_event("bot", "reopened")])
