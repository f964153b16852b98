"""Turns run as background tasks, independent of any socket: a dropped connection does not
stop the answer, and a reconnecting client gets the rest through ``last_seq``.

Per conversation, turns are serialised. Engine events are group-committed: whatever the engine
produced while the previous batch was being written goes into the next transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.conversation import ChatEngine, ConversationContext, Turn
from bot.errors import KlartextError
from bot.events import Done, Error, Event, Handoff
from bot.store import NewEvent, repo
from web.eventlog import EventLog, KeyedLocks

log = logging.getLogger("klartext.turns")

HISTORY_TURNS = 10
_HISTORY_EVENTS = 600
_END = object()


@dataclass(frozen=True, slots=True)
class Submitted:
    turn_id: str
    new: bool


def _to_new_event(ev: Event, turn_id: str) -> NewEvent:
    payload: dict[str, Any] = ev.model_dump(mode="json", exclude={"type", "turn_id"})
    if isinstance(ev, Handoff):
        payload["state"] = "pending_human"
    return NewEvent(ev.type, payload, turn_id)


class TurnRunner:
    def __init__(
        self,
        events: EventLog,
        engine: Callable[[], ChatEngine],
        *,
        default_lang: str = "en",
        log_pii: bool = False,
    ) -> None:
        self.events = events
        self.db = events.db
        self._engine = engine
        self._default_lang = default_lang
        self._log_pii = log_pii
        self._turn_locks = KeyedLocks()
        self._tasks: set[asyncio.Task[None]] = set()
        self.first_token_ms: list[float] = []  # recent time-to-first-token samples (server side)

    # --- client requests -------------------------------------------------------------------
    async def submit(self, conversation_id: str, message_id: str, text: str) -> Submitted:
        """Persist the user's message (idempotent on ``message_id``) and start its turn."""
        received = time.perf_counter()
        async with self.events.writing(conversation_id) as batch:
            turn_id, new = await repo.claim_message(
                batch.session, conversation_id, message_id, repo.new_id()
            )
            if new:
                await batch.append(
                    [NewEvent("user_message", {"message_id": message_id, "text": text}, turn_id)]
                )
                conv = await repo.get_conversation(batch.session, conversation_id)
                handoff = conv.handoff_state if conv else "bot"
        if new:
            if handoff == "human":  # a human agent answers; the bot stays quiet
                return Submitted(turn_id, True)
            self._spawn(self._run(conversation_id, turn_id, text, received))
        return Submitted(turn_id, new)

    async def request_human(self, conversation_id: str, message_id: str, lang: str) -> Submitted:
        async with self.events.writing(conversation_id) as batch:
            turn_id, new = await repo.claim_message(
                batch.session, conversation_id, message_id, repo.new_id()
            )
            if new:
                conv = await repo.get_conversation(batch.session, conversation_id)
                state = conv.handoff_state if conv and conv.handoff_state != "bot" else None
                state = state or "pending_human"
                done = Done(turn_id=turn_id, mode="handoff", answered=True, lang=lang)
                await batch.append(
                    [
                        NewEvent("handoff", {"reason": "user_request", "state": state}, turn_id),
                        _to_new_event(done, turn_id),
                    ]
                )
                await batch.update(handoff_state=state)
        return Submitted(turn_id, new)

    async def feedback(
        self, conversation_id: str, turn_id: str, rating: str, comment: str | None
    ) -> bool:
        async with self.db.writing() as session:
            if not await repo.turn_exists(session, conversation_id, turn_id):
                return False
            await repo.put_feedback(session, conversation_id, turn_id, rating, comment)
        return True

    # --- the background turn ---------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _context(self, conversation_id: str, turn_id: str) -> ConversationContext:
        async with self.db.session() as session:
            conv = await repo.get_conversation(session, conversation_id)
            evs = await repo.recent_events(
                session,
                conversation_id,
                limit=_HISTORY_EVENTS,
                types=["user_message", "token", "agent_message"],
            )
        turns: list[Turn] = []
        bot_text: dict[str, int] = {}
        for e in evs:
            if e.turn_id == turn_id:
                continue
            if e.type == "user_message":
                turns.append(Turn("user", str(e.payload.get("text", ""))))
            elif e.type == "agent_message":
                turns.append(Turn("agent", str(e.payload.get("text", ""))))
            elif e.turn_id is not None:
                piece = str(e.payload.get("text", ""))
                if e.turn_id in bot_text:
                    i = bot_text[e.turn_id]
                    turns[i] = Turn("bot", turns[i].text + piece)
                else:
                    bot_text[e.turn_id] = len(turns)
                    turns.append(Turn("bot", piece))
        return ConversationContext(
            conversation_id=conversation_id,
            history=turns[-HISTORY_TURNS:],
            lang=(conv.lang if conv else None) or None,
            handoff_state=conv.handoff_state if conv else "bot",  # type: ignore[arg-type]
        )

    async def _produce(
        self,
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

    async def _run(self, conversation_id: str, turn_id: str, text: str, received: float) -> None:
        async with self._turn_locks.hold(conversation_id):
            ctx = await self._context(conversation_id, turn_id)
            queue: asyncio.Queue[object] = asyncio.Queue()
            producer = asyncio.create_task(self._produce(self._engine(), text, ctx, turn_id, queue))
            first = True
            try:
                finished = False
                while not finished:
                    items = [await queue.get()]
                    while not queue.empty():
                        items.append(queue.get_nowait())
                    finished = items[-1] is _END
                    evs = [i for i in items if i is not _END]
                    if evs:
                        await self._persist(conversation_id, turn_id, evs)  # type: ignore[arg-type]
                    if first and any(getattr(e, "type", "") == "token" for e in evs):
                        first = False
                        self._record_ttft((time.perf_counter() - received) * 1000)
            finally:
                if not producer.done():
                    producer.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await producer

    async def _persist(self, conversation_id: str, turn_id: str, evs: list[Event]) -> None:
        async with self.events.writing(conversation_id) as batch:
            await batch.append([_to_new_event(e, turn_id) for e in evs])
            updates: dict[str, Any] = {}
            for e in evs:
                if isinstance(e, Handoff):
                    updates["handoff_state"] = "pending_human"
                elif isinstance(e, Done) and e.lang:
                    updates["lang"] = e.lang
            if updates:
                await batch.update(**updates)

    def _record_ttft(self, ms: float) -> None:
        self.first_token_ms.append(ms)
        if len(self.first_token_ms) > 10_000:
            del self.first_token_ms[:5_000]

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def aclose(self, grace_s: float = 10.0) -> None:
        """Let in-flight turns finish (they are persisted as they go), cancel after ``grace_s``."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
