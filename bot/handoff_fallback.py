"""The "no agent available" fallback of a pending handoff, as one write operation.

When a conversation waited in ``pending_human`` longer than ``handoff_timeout_s`` (reason
``handoff_timeout``), agents are switched off (``no_agent_available``) or it is outside
``handoff_office_hours`` (``outside_office_hours``), the bot takes
the conversation back and tells the visitor, in their language, that nobody is available,
asks for an email address to follow up and promises to get back to them. The transcript gets,
in one transaction::

    handoff {state: "bot", reason}              (no turn: a transition, like the API's)
    token   {text: <no_agent text>}             (turn_id T)
    done    {mode: "handoff", answered: false}  (turn_id T)

(The ``handoff`` event has no ``turn_id`` so that stats do not count it as another handoff.)

Lead capture (:mod:`bot.leads`) then handles the email the visitor may send.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from bot import texts
from bot.store.handoff_timeout import claim_expired
from bot.store.writes import NewEvent, StoredEvent, append_events, new_id, update_conversation

FallbackReason = Literal["handoff_timeout", "no_agent_available", "outside_office_hours"]
FallbackOp = Callable[[Session], tuple[list[StoredEvent], bool]]


def fallback_op(
    conversation_id: str,
    *,
    reason: FallbackReason,
    older_than: datetime | None,
    default_lang: str,
) -> FallbackOp:
    """A write op (for ``EventLog.write``): ``(events, True)`` if it took the conversation back,
    ``([], False)`` if it was no longer pending (or not yet due) — e.g. another replica or an
    agent got there first."""

    def op(s: Session) -> tuple[list[StoredEvent], bool]:
        lang = claim_expired(s, conversation_id, older_than=older_than)
        if lang is None:
            return [], False
        lang = lang or default_lang
        turn_id = new_id()
        stored = append_events(
            s,
            conversation_id,
            [
                NewEvent("handoff", {"reason": reason, "state": "bot"}),
                NewEvent("token", {"text": texts.text("no_agent", lang)}, turn_id),
                NewEvent(
                    "done",
                    {"mode": "handoff", "answered": False, "confidence": 0.0, "lang": lang},
                    turn_id,
                ),
            ],
        )
        update_conversation(s, conversation_id, handoff_state="bot")
        return stored, True

    return op
