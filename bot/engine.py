"""The answering engine: one user message → a stream of typed events (:mod:`bot.events`).

``parse → fast paths → retrieve → decide → answer``. Decisions live in :mod:`bot.decide`,
answers are extractive (:mod:`bot.extractive`) or generative (:mod:`bot.agent`), replies and
fallback texts come in the user's language. Every turn ends with exactly one ``Done``;
``Error`` (stable code, user-safe message) comes before it when something failed.

Failure policy of the generative mode (documented in docs/engine.md):
- LLM skipped (circuit open) or failing before its first token → the extractive answer
  (``Done.mode="extractive"``);
- LLM failing mid-answer → ``Error(KT500)`` with a user-safe note, then ``Sources`` and
  ``Done(partial=True)``; the tokens already sent stay (the transcript keeps them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from bot import smalltalk, texts
from bot.actions import Action, ActionResult, order_reply, public_order_data
from bot.agent import Delta, Generator, ToolEffect, Usage, cited_hits, effect_events
from bot.config import Settings
from bot.conversation import ConversationContext
from bot.decide import Judgement, Route, foreign_margin_for, judge, route, suggest_min_for
from bot.errors import KlartextError, LLMError
from bot.events import (
    ActionEvent,
    Error,
    Event,
    Handoff,
    Sources,
    Suggestions,
    Token,
)
from bot.extractive import answer_text, chunk_words
from bot.followup import (
    looks_like_followup,
    prefer_context,
    previous_question,
    refers_back,
    with_context,
)
from bot.llm.breaker import CircuitBreaker
from bot.llm.providers import ChatModelProvider
from bot.memory import estimate_tokens, window
from bot.nlu.types import IntentParser, ParsedMessage
from bot.prompts import system_prompt
from bot.turn import TurnState, Understood, source_ref
from retrieval.types import Hit, Retriever

log = logging.getLogger(__name__)
# Embeds a message for the retriever while the NLU parses it, when the two use different models
# (an index adapted to the knowledge base, retrieval.adapt): two ONNX runs on two cores at once.
_AHEAD = ThreadPoolExecutor(max_workers=2, thread_name_prefix="klartext-embed-ahead")

ORDER_ACTION = "lookup_order"


class Engine:
    """Implements :class:`bot.conversation.ChatEngine`."""

    def __init__(
        self,
        *,
        nlu: IntentParser,
        retriever: Retriever,
        settings: Settings,
        provider: ChatModelProvider | None = None,
        actions: Mapping[str, Action] | None = None,
        breaker: CircuitBreaker | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.nlu = nlu
        self.retriever = retriever
        self.settings = settings
        self.provider = provider
        self.actions: dict[str, Action] = dict(actions or {})
        self.breaker = breaker or CircuitBreaker(
            settings.llm_breaker_failures, settings.llm_breaker_cooldown_s
        )
        self._clock = clock

    # --- public ------------------------------------------------------------------------
    async def turn(
        self, text: str, ctx: ConversationContext, *, turn_id: str
    ) -> AsyncIterator[Event]:
        state = TurnState(
            turn_id=turn_id, lang=ctx.lang or self.settings.default_language, started=self._clock()
        )
        try:
            async for event in self._turn(text, ctx, state):
                yield event
        except KlartextError as exc:
            log.exception("turn %s failed", turn_id)
            yield Error(code=exc.code, message=texts.text("internal_error", state.lang))
            state.mode, state.answered = "fallback", False
        except Exception:
            log.exception("turn %s failed", turn_id)
            yield Error(code="KT000", message=texts.text("internal_error", state.lang))
            state.mode, state.answered = "fallback", False
        yield state.done(self._clock())

    # --- the flow ----------------------------------------------------------------------
    def _lap(self, state: TurnState, key: str, since: float) -> float:
        now = self._clock()
        state.timing_ms[key] = round((now - since) * 1000, 2)
        return now

    def _understand(self, text: str, ctx: ConversationContext, started: float) -> Understood:
        """Parse, route and (when the route needs it) retrieve, in one worker thread (on the
        loop when the message's embedding is cached, see :meth:`_embedded`).

        One thread hop per turn instead of two: on a busy machine every hop waits for the
        scheduler twice (worker, then the event loop), which is most of the tail latency.
        ``route`` is pure and cheap, so deciding in the worker changes nothing.
        """
        ahead = self._embed_ahead(text)
        parsed = self.nlu.parse(text, ctx.lang)
        t = self._clock()
        nlu_ms = round((t - started) * 1000, 2)
        r = route(parsed, ctx)
        if (r.kind == "smalltalk" and parsed.intent) or r.kind in ("handoff", "order"):
            return Understood(parsed, r, None, nlu_ms)
        previous = self._followup_of(text, ctx)
        try:
            if ahead is not None:
                ahead.result()  # cached now: the search does not embed again
            k = self.settings.search_k
            hits = self.retriever.search(text, k=k, lang=parsed.lang)
            in_context = None
            if previous is not None:
                query = with_context(previous, text)
                in_context = self.retriever.search(query, k=k, lang=parsed.lang)
        except Exception as exc:  # re-raised on the loop once the language is known
            return Understood(parsed, r, None, nlu_ms, error=exc)
        ms = round((self._clock() - t) * 1000, 2)
        return Understood(parsed, r, hits, nlu_ms, ms, context_hits=in_context)

    def _followup_of(self, text: str, ctx: ConversationContext) -> str | None:
        """The previous question when ``text`` is to be searched with it too (bot.followup)."""
        if not self.settings.followup_context or not looks_like_followup(text):
            return None
        return previous_question(ctx)

    def _embed_ahead(self, text: str) -> Future[object] | None:
        """Start the retriever's query embedding on another thread when the NLU embeds with
        another model and the retriever's embedder caches (``contains``); else ``None``."""
        mine = getattr(self.retriever, "embedder", None)
        theirs = getattr(self.nlu, "embedder", None)
        contains = getattr(mine, "contains", None)
        if mine is None or theirs is None or contains is None or mine.name == theirs.name:
            return None
        if contains(text, kind="query"):
            return None
        return _AHEAD.submit(mine.embed, [text], kind="query")

    def _embedded(self, text: str) -> bool:
        """Whether every embedding the message needs is cached (a repeated message): then
        understanding it is ~1.5 ms of GIL-holding Python, cheaper on the loop than the hop."""
        users = (self.retriever, self.nlu)  # an NLU without intents embeds nothing
        embedders = [getattr(u, "embedder", None) for u in users]
        if embedders[0] is None:
            return False
        return all(
            e is None or bool(getattr(e, "contains", lambda *_, **__: False)(text, kind="query"))
            for e in embedders
        )

    async def _turn(
        self, text: str, ctx: ConversationContext, state: TurnState
    ) -> AsyncIterator[Event]:
        # no model call left: run on the loop (see _embedded); a follow-up's search with the
        # previous question embeds a new text
        if self._embedded(text) and self._followup_of(text, ctx) is None:
            u = self._understand(text, ctx, self._clock())
            await asyncio.sleep(0)  # a yield point: cached turns in a row must not starve others
        else:
            u = await asyncio.to_thread(self._understand, text, ctx, self._clock())
        parsed, r = u.parsed, u.route
        state.timing_ms["nlu"] = u.nlu_ms
        state.lang = parsed.lang
        if u.error is not None:
            raise u.error
        if r.kind == "smalltalk" and parsed.intent:
            state.mode = "smalltalk"
            yield Token(text=smalltalk.reply(parsed.intent, parsed.lang))
            return
        if r.kind == "handoff":
            state.mode = "handoff"
            yield Token(text=texts.text("handoff", parsed.lang))
            yield Handoff(reason="user_request")
            return
        if r.kind == "order":
            async for event in self._order(r, parsed, state):
                yield event
            return
        state.timing_ms["retrieval"] = u.retrieval_ms
        j = self._judge(u.hits or [], parsed, r)
        if u.context_hits is not None:  # a follow-up: judged with the previous question too
            in_context = self._judge(u.context_hits, parsed, Route("retrieve"))
            if prefer_context(in_context, text, off_topic=r.kind == "out_of_scope"):
                j = in_context
                if r.kind == "out_of_scope":  # in context it is a knowledge question
                    r = Route("retrieve")
            elif refers_back(text):  # "how much does that cost?" has no subject of its own
                j = replace(in_context, confident=False)
        state.confidence = j.confidence
        if r.kind == "complaint":
            async for event in self._complaint(parsed, ctx, j, state):
                yield event
            return
        if not j.confident and r.kind == "ask_order":
            async for event in self._order(r, parsed, state):
                yield event
            if j.near:  # "where is my parcel?": the number, or one of these entries
                yield Suggestions(
                    items=[h.entry.question for h in j.near], ids=[h.entry_id for h in j.near]
                )
            return
        if not j.confident:
            async for event in self._fallback(parsed, j, state, r.kind == "out_of_scope"):
                yield event
            return
        async for event in self._answer(parsed, ctx, j, state):
            yield event

    def _judge(self, hits: list[Hit], parsed: ParsedMessage, r: Route) -> Judgement:
        threshold = self.settings.answer_threshold
        model = getattr(getattr(self.retriever, "embedder", None), "name", "")
        if r.kind == "out_of_scope":
            threshold += self.settings.out_of_scope_margin
        return judge(
            hits,
            lang=parsed.lang,
            threshold=threshold,
            close_margin=self.settings.suggest_margin,
            suggest_min=suggest_min_for(self.settings, model),
            foreign_margin=foreign_margin_for(self.settings, model, r),
            foreign_lang=getattr(self.retriever, "main_language", None),
        )

    async def _order(
        self, r: Route, parsed: ParsedMessage, state: TurnState
    ) -> AsyncIterator[Event]:
        state.mode = "action"
        if r.kind == "ask_order" or r.order_number is None:
            yield Token(text=texts.text("ask_order_number", parsed.lang))
            return
        action = self.actions.get(ORDER_ACTION)
        yield ActionEvent(name=ORDER_ACTION, status="started")
        t = self._clock()
        if action is None:
            result = ActionResult("error", detail="no order action configured")
        else:
            try:
                result = await asyncio.wait_for(
                    action.run({"order_number": r.order_number}),
                    timeout=self.settings.action_timeout_s,
                )
            except TimeoutError:
                result = ActionResult("error", detail="timeout")
        self._lap(state, "action", t)
        if result.status == "error":
            log.warning("order action failed: %s", result.detail)
        yield ActionEvent(
            name=ORDER_ACTION, status=result.status, data=public_order_data(result.data)
        )
        yield Token(text=order_reply(result, r.order_number, parsed.lang))
        state.answered = result.status == "ok"

    async def _fallback(
        self, parsed: ParsedMessage, j: Judgement, state: TurnState, out_of_scope: bool
    ) -> AsyncIterator[Event]:
        state.mode, state.answered = "fallback", False
        key = "out_of_scope" if out_of_scope else "fallback"
        yield Token(text=texts.text(key, parsed.lang))
        near = [] if out_of_scope else list(j.near)
        items = [h.entry.question for h in near]
        items.append(texts.text("talk_to_human", parsed.lang))
        yield Suggestions(items=items, ids=[h.entry_id for h in near])

    async def _complaint(
        self, parsed: ParsedMessage, ctx: ConversationContext, j: Judgement, state: TurnState
    ) -> AsyncIterator[Event]:
        """A complaint goes to a human; a confident knowledge match is answered first."""
        if j.confident:
            async for event in self._answer(parsed, ctx, j, state):
                yield event
            yield Token(text="\n\n" + texts.text("complaint", parsed.lang))
        else:
            state.mode = "handoff"
            yield Token(text=texts.text("complaint", parsed.lang))
        yield Handoff(reason="complaint")

    async def _answer(
        self, parsed: ParsedMessage, ctx: ConversationContext, j: Judgement, state: TurnState
    ) -> AsyncIterator[Event]:
        assert j.best is not None
        provider = self.provider
        if provider is not None and self.breaker.allow():
            async for event in self._generative(provider, parsed, ctx, j, state):
                yield event
            return
        async for event in self._extractive(j, state):
            yield event

    async def _extractive(self, j: Judgement, state: TurnState) -> AsyncIterator[Event]:
        assert j.best is not None
        t = self._clock()
        state.mode, state.answered = "extractive", True
        if state.lang and j.best.lang != state.lang:  # say why it is in another language
            name = texts.language_name(j.best.lang, state.lang)
            yield Token(text=texts.text("other_language", state.lang, language=name) + "\n\n")
        for chunk in chunk_words(answer_text(j.best), self.settings.stream_chunk_words):
            yield Token(text=chunk)
        yield Sources(items=[source_ref(j.best)])
        if j.close:
            yield Suggestions(items=[h.entry.question for h in j.close])
        self._lap(state, "answer", t)

    def _context_hits(self, j: Judgement, hits_pool: Sequence[Hit] = ()) -> list[Hit]:
        assert j.best is not None
        unique: dict[str, Hit] = {}
        for h in (j.best, *j.close, *hits_pool):
            unique.setdefault(h.entry_id, h)
        return list(unique.values())[: self.settings.llm_context_passages]

    async def _generative(
        self,
        provider: ChatModelProvider,
        parsed: ParsedMessage,
        ctx: ConversationContext,
        j: Judgement,
        state: TurnState,
    ) -> AsyncIterator[Event]:
        t = self._clock()
        passages = self._context_hits(j)
        known: dict[str, Hit] = {h.entry_id: h for h in passages}
        win = window(
            ctx,
            max_tokens=self.settings.memory_max_tokens,
            summary_tokens=self.settings.memory_summary_tokens,
        )
        system = system_prompt(
            passages,
            lang=parsed.lang,
            bot_name=self.settings.bot_name,
            summary=win.summary,
            tools=provider.supports_tools,
        )
        order_action = self.actions.get(ORDER_ACTION)
        gen = Generator(
            provider.chat_model(),
            use_tools=provider.supports_tools,
            search=lambda q: self.retriever.search(q, k=3, lang=parsed.lang),
            order_action=order_action,
        )
        answer: list[str] = []
        handoff: str | None = None
        try:
            async for item in gen.stream(
                system=system, history=win.turns, question=parsed.text, lang=parsed.lang
            ):
                if isinstance(item, Delta):
                    if not answer:
                        self._lap(state, "first_token", t)
                    answer.append(item.text)
                    yield Token(text=item.text)
                elif isinstance(item, Usage):
                    state.usage = item.tokens
                elif isinstance(item, ToolEffect):
                    for event in effect_events(item, known):
                        yield event
                    if item.kind == "handoff":
                        handoff = item.reason or "low_confidence"
        except LLMError as exc:
            self.breaker.record_failure()
            log.warning("LLM failed (%s tokens sent): %s", len(answer), exc)
            self._lap(state, "llm", t)
            if not answer:
                async for event in self._extractive(j, state):
                    yield event
                return
            state.partial = True
            yield Error(code=exc.code, message=texts.text("llm_interrupted", parsed.lang))
            state.mode, state.answered = "generative", True
            yield Sources(items=[source_ref(h) for h in cited_hits("".join(answer), known, j.best)])
            return
        self.breaker.record_success()
        self._lap(state, "llm", t)
        if not state.usage:  # some servers (llama.cpp) send no usage: estimate, flagged
            prompt = system + "".join(turn.text for turn in win.turns) + parsed.text
            n_in, n_out = estimate_tokens(prompt), len(answer)
            state.usage = {
                "input_tokens": n_in,
                "output_tokens": n_out,
                "total_tokens": n_in + n_out,
                "estimated": 1,
            }
        state.mode, state.answered = "generative", True
        yield Sources(items=[source_ref(h) for h in cited_hits("".join(answer), known, j.best)])
        if handoff is not None:
            yield Handoff(reason="low_confidence")
