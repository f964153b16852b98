"""Turns run as background tasks, independent of any socket: a dropped connection does not
stop the answer, and a reconnecting client gets the rest through ``last_seq``.

Per conversation, turns are serialised. Engine events are group-committed as the engine
produces them (``web.turn_stream``). The conversation history handed to the engine is cached
per conversation and validated by ``seq`` (a cache entry is used only if nothing else was
appended since), so a turn normally reads nothing from the database before its first token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.conversation import ChatEngine, ConversationContext, HandoffState, Turn
from bot.errors import StoreError
from bot.events import Done
from bot.leads import LeadCapture
from bot.store import NewEvent, StoredEvent, repo, writes
from web.eventlog import EventLog, KeyedLocks
from web.hub import TurnLeases
from web.turn_stream import HandoffHooks, TurnObserver, stream_turn, to_new_event

log = logging.getLogger("klartext.turns")

HISTORY_TURNS = 10
_HISTORY_EVENTS = 600
_CACHE_SIZE = 20_000
# while a human agent has (or is about to take) the conversation, the bot stays quiet
_BOT_QUIET = frozenset({"pending_human", "human"})
# several replicas: how long / how often to look at a turn that another replica runs
LEASE_WATCH_S = 180.0
LEASE_WATCH_EVERY_S = 2.0


class _NothingToDo(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Submitted:
    turn_id: str
    new: bool


@dataclass(frozen=True, slots=True)
class _History:
    seq: int  # valid while the conversation's last seq is still this
    turns: tuple[Turn, ...]
    lang: str | None


def _store_down_frame(turn_id: str) -> dict[str, Any]:
    """Not persisted (it could not be): the turn ends unfinished; a reconnect after the database
    is back ends it with a partial ``done`` (``finish_interrupted``)."""
    return {
        "type": "error",
        "code": StoreError.code,
        "message": "The conversation store is unavailable; the answer was interrupted.",
        "turn_id": turn_id,
        "retry_after": 5.0,
    }


def _history_from_events(events: list[StoredEvent], skip_turn: str) -> list[Turn]:
    turns: list[Turn] = []
    bot_at: dict[str, int] = {}
    for e in events:
        if e.turn_id == skip_turn:
            continue
        text = str(e.payload.get("text", ""))
        if e.type == "user_message":
            turns.append(Turn("user", text))
        elif e.type == "agent_message":
            turns.append(Turn("agent", text))
        elif e.turn_id is not None and e.turn_id in bot_at:
            i = bot_at[e.turn_id]
            turns[i] = Turn("bot", turns[i].text + text)
        elif e.turn_id is not None:
            bot_at[e.turn_id] = len(turns)
            turns.append(Turn("bot", text))
    return turns


class TurnRunner:
    def __init__(
        self,
        events: EventLog,
        engine: Callable[[], ChatEngine],
        *,
        default_lang: str = "en",
        log_pii: bool = False,
        lead_capture: bool = True,
    ) -> None:
        self.events = events
        self.db = events.db
        self._engine = engine
        self._default_lang = default_lang
        self._log_pii = log_pii
        self._lead_capture = lead_capture  # bot.leads: email in chat → consent → contact
        self._turn_locks = KeyedLocks()
        self._tasks: set[asyncio.Task[None]] = set()
        self._history: OrderedDict[str, _History] = OrderedDict()
        self._running: dict[str, int] = {}  # turns started or queued, per conversation
        self.leases: TurnLeases | None = None  # several replicas (Redis): web.turn_leases
        self._watching: dict[str, asyncio.Task[None]] = {}  # turns running on other replicas
        self.first_token_ms: list[float] = []  # recent time-to-first-token samples (server side)
        self.observer: TurnObserver | None = None
        self.handoff_hooks: HandoffHooks | None = None

    def conversation_created(self, conversation_id: str, lang: str | None) -> None:
        """A new, empty conversation: its first turn needs no history read."""
        self._remember(conversation_id, _History(0, (), lang))

    def forget(self, conversation_id: str) -> None:
        """Drop the cached history of a deleted conversation (GDPR erasure)."""
        self._remember(conversation_id, None)

    # --- client requests -------------------------------------------------------------------
    async def submit(self, conversation_id: str, message_id: str, text: str) -> Submitted:
        """Persist the user's message (idempotent on ``message_id``) and start its turn."""
        received = time.perf_counter()
        new_turn = writes.new_id()

        def op(s: Session) -> tuple[list[StoredEvent], tuple[str, bool, str, int]]:
            turn_id, new = writes.claim_message(s, conversation_id, message_id, new_turn)
            if not new:
                return [], (turn_id, False, "", 0)
            ev = NewEvent("user_message", {"message_id": message_id, "text": text}, turn_id)
            stored, handoff = writes.append_events_with_state(s, conversation_id, [ev])
            return stored, (turn_id, True, handoff, stored[0].seq)

        leases = self.leases
        if leases is not None:  # before the commit: no replica may see the message unleased
            await leases.acquire(conversation_id)
        try:
            turn_id, new, handoff, seq = await self.events.write(conversation_id, op)
        except BaseException:
            if leases is not None:
                await leases.release(conversation_id)
            raise
        if new and handoff not in _BOT_QUIET:
            self._running[conversation_id] = self._running.get(conversation_id, 0) + 1
            self._spawn(self._run(conversation_id, turn_id, text, seq, handoff, received))
        elif leases is not None:
            await leases.release(conversation_id)
        return Submitted(turn_id, new)

    async def request_human(self, conversation_id: str, message_id: str, lang: str) -> Submitted:
        new_turn = writes.new_id()
        hooks = self.handoff_hooks
        summary = await hooks.summary(conversation_id, reason="user_request") if hooks else None

        def op(s: Session) -> tuple[list[StoredEvent], tuple[str, bool, bool]]:
            turn_id, new = writes.claim_message(s, conversation_id, message_id, new_turn)
            if not new:
                return [], (turn_id, False, False)
            _, current = writes.append_events_with_state(s, conversation_id, [])
            state = current if current != "bot" else "pending_human"
            done = Done(turn_id=turn_id, mode="handoff", answered=True, lang=lang)
            payload: dict[str, Any] = {"reason": "user_request", "state": state}
            if summary is not None and current == "bot":
                payload["summary"] = summary
            stored = writes.append_events(
                s,
                conversation_id,
                [NewEvent("handoff", payload, turn_id), to_new_event(done, turn_id)],
            )
            writes.update_conversation(s, conversation_id, handoff_state=state)
            return stored, (turn_id, True, current == "bot")

        turn_id, new, entered = await self.events.write(conversation_id, op)
        if entered and hooks is not None:
            await hooks.requested(conversation_id)
        return Submitted(turn_id, new)

    async def feedback(
        self, conversation_id: str, turn_id: str, rating: str, comment: str | None
    ) -> bool:
        def op(s: Session) -> bool:
            if not writes.turn_exists(s, conversation_id, turn_id):
                return False
            writes.put_feedback(s, conversation_id, turn_id, rating, comment)
            return True

        return await self.db.write(op)

    # --- the background turn ---------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _context(
        self, conversation_id: str, turn_id: str, user_seq: int, handoff: str
    ) -> ConversationContext:
        cached = self._history.get(conversation_id)
        if cached is not None and cached.seq == user_seq - 1:
            turns, lang = list(cached.turns), cached.lang
        else:
            async with self.db.session() as session:
                conv = await repo.get_conversation(session, conversation_id)
                evs = await repo.recent_events(
                    session,
                    conversation_id,
                    limit=_HISTORY_EVENTS,
                    types=["user_message", "token", "agent_message"],
                )
            turns = _history_from_events([e for e in evs if e.seq < user_seq], turn_id)
            lang = conv.lang if conv else None
        return ConversationContext(
            conversation_id=conversation_id,
            history=turns[-HISTORY_TURNS:],
            lang=lang,
            handoff_state=cast(HandoffState, handoff or "bot"),
        )

    def _remember(self, conversation_id: str, history: _History | None) -> None:
        if history is None:
            self._history.pop(conversation_id, None)
            return
        self._history[conversation_id] = history
        self._history.move_to_end(conversation_id)
        while len(self._history) > _CACHE_SIZE:
            self._history.popitem(last=False)

    async def _run(
        self,
        conversation_id: str,
        turn_id: str,
        text: str,
        user_seq: int,
        handoff: str,
        received: float,
    ) -> None:
        try:
            await self._run_locked(conversation_id, turn_id, text, user_seq, handoff, received)
        except asyncio.CancelledError:  # shutdown grace exceeded: end the turn as partial
            with contextlib.suppress(Exception):
                await self._end_cancelled(conversation_id, turn_id)
            raise
        except (SQLAlchemyError, StoreError, OSError):  # database gone mid-turn: tell sockets now
            log.exception("turn interrupted: store unavailable")
            self._remember(conversation_id, None)
            with contextlib.suppress(Exception):
                await self.events.hub.publish(conversation_id, [_store_down_frame(turn_id)])
        finally:
            left = self._running.get(conversation_id, 1) - 1
            if left > 0:
                self._running[conversation_id] = left
            else:
                self._running.pop(conversation_id, None)
            if self.leases is not None:
                await self.leases.release(conversation_id)

    async def _end_cancelled(self, conversation_id: str, turn_id: str) -> None:
        """Append ``done(partial)`` for a turn cancelled before it finished, so reconnecting
        clients (on any replica) see it end; the tokens already persisted stay."""
        cached = self._history.get(conversation_id)
        lang = (cached.lang if cached else None) or self._default_lang

        def op(s: Session) -> tuple[list[StoredEvent], None]:
            kind, last = writes.last_turn_state(s, conversation_id)
            if kind != "user_message" or last != turn_id:
                return [], None
            done = Done(turn_id=turn_id, mode="fallback", answered=False, lang=lang, partial=True)
            return writes.append_events(s, conversation_id, [to_new_event(done, turn_id)]), None

        self._remember(conversation_id, None)
        await asyncio.wait_for(self.events.write(conversation_id, op), timeout=5.0)

    async def finish_interrupted(self, conversation_id: str, lang: str) -> bool:
        """If the conversation's last turn never finished (the process running it died) and no
        turn of it runs here, end it with a partial ``done`` so clients stop waiting. With
        several replicas only when ``leases`` is set and no replica holds a lease on it; the
        turn seen then must still be the last one when the ``done`` is written."""
        expected: str | None = None
        if self.leases is not None:
            async with self.db.session() as session:
                kind, expected = await session.run_sync(
                    lambda s: writes.last_turn_state(s, conversation_id)
                )
            if kind != "user_message":
                return False
            if await self.leases.held(conversation_id):
                self._watch_lease(conversation_id, lang, expected)
                return False

        def op(s: Session) -> tuple[list[StoredEvent], bool]:
            # checked under the conversation's write lock: a turn submitted concurrently has
            # registered itself by now
            if self._running.get(conversation_id):
                return [], False
            kind, turn_id = writes.last_turn_state(s, conversation_id)
            if kind != "user_message" or turn_id is None:
                return [], False
            if self.leases is not None and turn_id != expected:  # a new turn began meanwhile
                return [], False
            done = Done(turn_id=turn_id, mode="fallback", answered=False, lang=lang, partial=True)
            stored, handoff = writes.append_events_with_state(
                s, conversation_id, [to_new_event(done, turn_id)]
            )
            if handoff in _BOT_QUIET:  # the agent answers these; nothing was interrupted
                raise _NothingToDo
            return stored, True

        try:
            return await self.events.write(conversation_id, op)
        except _NothingToDo:
            return False

    async def _run_locked(
        self,
        conversation_id: str,
        turn_id: str,
        text: str,
        user_seq: int,
        handoff: str,
        received: float,
    ) -> None:
        async with self._turn_locks.hold(conversation_id):
            ctx = await self._context(conversation_id, turn_id, user_seq, handoff)
            engine = self._engine()
            if self._lead_capture:
                engine = LeadCapture(engine)
            out = await stream_turn(
                self.events, engine, text, ctx, turn_id, user_seq,
                first_token=lambda: self._record_ttft((time.perf_counter() - received) * 1000),
                observer=self.observer, hooks=self.handoff_hooks,
            )  # fmt: skip
            if self.observer is not None:
                self.observer.turn_finished(time.perf_counter() - received)
            if out.handed_off and self.handoff_hooks is not None:
                await self.handoff_hooks.requested(conversation_id)
            contiguous = out.seqs == list(range(user_seq, user_seq + len(out.seqs)))
            turns = (*ctx.history, Turn("user", text), Turn("bot", out.answer))
            history = _History(out.seqs[-1], turns[-HISTORY_TURNS:], out.lang)
            self._remember(conversation_id, history if contiguous else None)

    def _record_ttft(self, ms: float) -> None:
        if self.observer is not None:
            self.observer.first_token(ms / 1000)
        self.first_token_ms.append(ms)
        if len(self.first_token_ms) > 10_000:
            del self.first_token_ms[:5_000]

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def _watch_lease(self, conversation_id: str, lang: str, turn_id: str | None) -> None:
        """The unfinished turn runs on another replica (it holds the lease). Look again every
        ``LEASE_WATCH_EVERY_S``: if that replica died, its lease lapses and the turn is ended
        here, so a visitor who resumed on this replica is not left waiting."""
        if turn_id is None or conversation_id in self._watching:
            return
        task = asyncio.create_task(self._await_lease(conversation_id, lang, turn_id))
        self._watching[conversation_id] = task
        task.add_done_callback(lambda _: self._watching.pop(conversation_id, None))

    async def _await_lease(self, conversation_id: str, lang: str, turn_id: str) -> None:
        deadline = time.monotonic() + LEASE_WATCH_S
        try:
            while self.leases is not None and time.monotonic() < deadline:
                await asyncio.sleep(LEASE_WATCH_EVERY_S)
                async with self.db.session() as session:
                    kind, last = await session.run_sync(
                        lambda s: writes.last_turn_state(s, conversation_id)
                    )
                if kind != "user_message" or last != turn_id:
                    return  # it finished (or a newer turn began)
                if not await self.leases.held(conversation_id):
                    await self.finish_interrupted(conversation_id, lang)
                    return
        except Exception:
            log.warning("watching a turn on another replica failed", exc_info=True)

    async def aclose(self, grace_s: float = 10.0) -> None:
        """Let in-flight turns finish (they are persisted as they go), cancel after ``grace_s``."""
        for watcher in list(self._watching.values()):
            watcher.cancel()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
