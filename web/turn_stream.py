"""A turn's events on their way from the engine to the event log, and who sees them.

The engine runs as its own task and queues its events. The turn takes whatever is queued, merges
adjacent tokens (:func:`coalesce_tokens`) and writes it as one batch: whatever the engine
produced while the previous batch was being written goes into the next transaction (group
commit), published to sockets after its commit (``web.eventlog``). An engine failure becomes an
``error`` event. Each batch is shown to the ``TurnObserver``; a batch with a ``handoff`` goes
through the ``HandoffHooks`` before it is written. ``web.turns.TurnRunner`` runs the turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy.orm import Session

from bot.conversation import ChatEngine, ConversationContext
from bot.errors import KlartextError
from bot.events import Done, Error, Event, Handoff, Token
from bot.leads import append_turn_events
from bot.store import NewEvent, StoredEvent, writes
from web.eventlog import EventLog

log = logging.getLogger("klartext.turns")

_END = object()


class TurnObserver(Protocol):
    """Watches turns (``web.metrics.Metrics`` implements it); must not raise or block."""

    def first_token(self, seconds: float) -> None: ...

    def turn_events(self, events: list[Event]) -> None: ...

    def turn_finished(self, seconds: float) -> None: ...


class HandoffHooks(Protocol):
    """Handoff extras (``web.handoff_flow.HandoffFlow`` implements it)."""

    async def summary(
        self, conversation_id: str, pending: Sequence[NewEvent] = (), reason: str | None = None
    ) -> dict[str, Any] | None: ...

    async def annotate(self, conversation_id: str, events: list[NewEvent]) -> list[NewEvent]:
        """Attach the conversation summary to ``handoff`` events entering pending_human."""
        ...

    async def requested(self, conversation_id: str) -> None:
        """After a visitor's handoff was committed (e.g. no agents: fall back at once)."""
        ...


@dataclass(frozen=True, slots=True)
class Streamed:
    """What a turn wrote: the seqs from its user message on, the answer's text, the language of
    its ``done`` (else the conversation's) and whether it handed off."""

    seqs: list[int]
    answer: str
    lang: str | None
    handed_off: bool


def to_new_event(ev: Event, turn_id: str) -> NewEvent:
    payload: dict[str, Any] = ev.model_dump(mode="json", exclude={"type", "turn_id"})
    if isinstance(ev, Handoff):
        payload["state"] = "pending_human"
    return NewEvent(ev.type, payload, turn_id)


def coalesce_tokens(evs: list[Event]) -> list[Event]:
    """Merge adjacent ``token`` events: when the engine outruns the database (load), a batch
    becomes one token event instead of many (fewer rows, frames and sends; same text)."""
    out: list[Event] = []
    for e in evs:
        last = out[-1] if out else None
        if isinstance(e, Token) and isinstance(last, Token):
            out[-1] = Token(text=last.text + e.text)
        else:
            out.append(e)
    return out


async def stream_turn(
    events: EventLog,
    engine: ChatEngine,
    text: str,
    ctx: ConversationContext,
    turn_id: str,
    user_seq: int,
    *,
    first_token: Callable[[], None],
    observer: TurnObserver | None = None,
    hooks: HandoffHooks | None = None,
) -> Streamed:
    """Run ``engine`` on ``text`` and write its events batch by batch until it ends;
    ``first_token`` is called when the first token of the answer is written."""
    conversation_id = ctx.conversation_id
    queue: asyncio.Queue[object] = asyncio.Queue()
    producer = asyncio.create_task(_produce(engine, text, ctx, turn_id, queue))
    seqs: list[int] = [user_seq]
    answer: list[str] = []
    lang = ctx.lang
    handed_off = False
    try:
        finished = False
        while not finished:
            items = [await queue.get()]
            while not queue.empty():
                items.append(queue.get_nowait())
            finished = items[-1] is _END
            evs = coalesce_tokens([cast(Event, i) for i in items if i is not _END])
            if not evs:
                continue
            stored = await _persist(events, hooks, conversation_id, turn_id, evs)
            seqs += [e.seq for e in stored]
            if observer is not None:
                observer.turn_events(evs)
            for e in evs:
                if isinstance(e, Token):
                    if not answer:
                        first_token()
                    answer.append(e.text)
                elif isinstance(e, Done) and e.lang:
                    lang = e.lang
                elif isinstance(e, Handoff):
                    handed_off = True
    finally:
        if not producer.done():
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer
    return Streamed(seqs, "".join(answer), lang, handed_off)


async def _produce(
    engine: ChatEngine,
    text: str,
    ctx: ConversationContext,
    turn_id: str,
    queue: asyncio.Queue[object],
) -> None:
    try:
        async for ev in engine.turn(text, ctx, turn_id=turn_id):
            await queue.put(ev)
    except KlartextError as exc:
        await queue.put(Error(code=exc.code, message=exc.message))
    except Exception:
        log.exception("engine failed", extra={"conversation_id": ctx.conversation_id})
        await queue.put(Error(code="internal", message="The assistant failed to answer."))
    finally:
        await queue.put(_END)


async def _persist(
    events: EventLog,
    hooks: HandoffHooks | None,
    conversation_id: str,
    turn_id: str,
    evs: list[Event],
) -> list[StoredEvent]:
    new_events = [to_new_event(e, turn_id) for e in evs]
    updates: dict[str, Any] = {}
    for e in evs:
        if isinstance(e, Handoff):
            updates["handoff_state"] = "pending_human"
        elif isinstance(e, Done) and e.lang:
            updates["lang"] = e.lang
    if "handoff_state" in updates and hooks is not None:
        new_events = await hooks.annotate(conversation_id, new_events)

    def op(s: Session) -> tuple[list[StoredEvent], list[StoredEvent]]:
        stored = append_turn_events(s, conversation_id, new_events)
        if updates:
            writes.update_conversation(s, conversation_id, **updates)
        return stored, stored

    return await events.write(conversation_id, op)
