"""Conversation context handed to the engine for one turn, and the ``ChatEngine`` seam."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from bot.events import Event

Role = Literal["user", "bot", "agent"]
HandoffState = Literal["bot", "pending_human", "human", "closed"]


@dataclass(frozen=True, slots=True)
class Turn:
    role: Role
    text: str


@dataclass(slots=True)
class ConversationContext:
    conversation_id: str
    history: list[Turn] = field(default_factory=list)  # oldest first, excluding this message
    lang: str | None = None  # language hint (widget setting / previous turns)
    summary: str = ""  # running summary of older turns (bounded memory)
    handoff_state: HandoffState = "bot"


class ChatEngine(Protocol):
    """Turns one user message into a stream of typed events ending with ``Done`` (or ``Error``)."""

    def turn(
        self, text: str, ctx: ConversationContext, *, turn_id: str
    ) -> AsyncIterator[Event]: ...
