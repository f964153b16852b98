"""A repeated message (its query embedding cached) is understood on the event loop, without
the worker-thread hop; a new one, or an NLU whose embedder cannot tell, still hops. The
events are the same either way."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from engine_fakes import FakeNLU, FakeRetriever, collect

from bot.config import Settings
from bot.conversation import ConversationContext, Turn
from bot.embedcache import CachingEmbedder
from bot.engine import Engine
from bot.events import Done
from bot.nlu.types import ParsedMessage
from retrieval.types import Embedder, Hit, Vectors

TABLE = {"delivery": [("en-ship-01", 0.82)]}
QUESTION = "How long is delivery?"


class LengthEmbedder:
    name = "fake:length"
    dim = 2

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        self.calls += 1
        return np.asarray([[len(t), 1.0] for t in texts], dtype=np.float32).reshape(-1, 2)


@dataclass
class EmbeddingNLU(FakeNLU):
    embedder: Embedder | None = None
    threads: list[int] = field(default_factory=list)

    def parse(self, text: str, lang: str | None = None) -> ParsedMessage:
        self.threads.append(threading.get_ident())
        if self.embedder is not None:
            self.embedder.embed([text], kind="query")
        return super().parse(text, lang)


@dataclass
class EmbeddingRetriever(FakeRetriever):
    embedder: Embedder | None = None

    def search(self, query: str, *, k: int = 5, lang: str | None = None) -> list[Hit]:
        assert self.embedder is not None
        self.embedder.embed([query], kind="query")
        return super().search(query, k=k, lang=lang)


def _engine(nlu_embedder: Embedder | None, shared: CachingEmbedder) -> tuple[Engine, EmbeddingNLU]:
    nlu = EmbeddingNLU(embedder=nlu_embedder)
    retriever = EmbeddingRetriever(TABLE, embedder=shared)
    return Engine(nlu=nlu, retriever=retriever, settings=Settings(answer_threshold=0.5)), nlu


def _public(events: Sequence[Any]) -> list[Any]:
    """The events without the timings (which differ between any two turns)."""
    return [e.model_copy(update={"timing_ms": {}}) if isinstance(e, Done) else e for e in events]


async def test_repeated_message_runs_on_the_loop_with_the_same_events() -> None:
    inner = LengthEmbedder()
    shared = CachingEmbedder(inner)
    engine, nlu = _engine(shared, shared)
    loop_thread = threading.get_ident()
    first = await collect(engine.turn(QUESTION, ConversationContext("c"), turn_id="t"))
    assert shared.contains(QUESTION) and inner.calls == 1
    second = await collect(engine.turn(QUESTION, ConversationContext("c"), turn_id="t"))
    assert nlu.threads[0] != loop_thread and nlu.threads[1] == loop_thread
    assert inner.calls == 1  # the second turn embedded nothing
    assert _public(first) == _public(second)
    assert first[-1].type == "done" and first[-1].mode == "extractive"
    await collect(engine.turn("Where is delivery now?", ConversationContext("c"), turn_id="u"))
    assert nlu.threads[2] != loop_thread  # a new message hops again


async def test_cached_follow_up_still_hops_for_its_search_with_context() -> None:
    inner = LengthEmbedder()
    shared = CachingEmbedder(inner)
    engine, nlu = _engine(shared, shared)
    follow_up = "and delivery?"  # looks like a follow-up
    await collect(engine.turn(follow_up, ConversationContext("c"), turn_id="t"))  # caches it
    assert shared.contains(follow_up)
    ctx = ConversationContext("c", history=[Turn("user", QUESTION), Turn("bot", "1-3 days")])
    await collect(engine.turn(follow_up, ctx, turn_id="u"))
    assert nlu.threads[1] != threading.get_ident()  # the combined text is not cached: a hop
    assert shared.contains(f"{QUESTION} {follow_up}")


async def test_nlu_embedder_without_a_cache_keeps_the_hop() -> None:
    shared = CachingEmbedder(LengthEmbedder())
    engine, nlu = _engine(LengthEmbedder(), shared)  # e.g. a fine-tuned NLU encoder
    for _ in range(2):
        await collect(engine.turn(QUESTION, ConversationContext("c"), turn_id="t"))
    assert all(t != threading.get_ident() for t in nlu.threads)


async def test_cached_turns_of_two_conversations_interleave() -> None:
    shared = CachingEmbedder(LengthEmbedder())
    engine, nlu = _engine(shared, shared)
    texts = {"a": "delivery to A?", "b": "delivery to B?"}
    for text in texts.values():  # cache both messages
        await collect(engine.turn(text, ConversationContext("w"), turn_id="w"))
    seen: list[str] = []
    original = nlu.parse

    def parse(text: str, lang: str | None = None) -> ParsedMessage:
        seen.append("a" if text == texts["a"] else "b")
        return original(text, lang)

    nlu.parse = parse  # type: ignore[method-assign]

    async def conversation(key: str) -> None:
        for i in range(3):
            await collect(engine.turn(texts[key], ConversationContext(key), turn_id=str(i)))

    await asyncio.gather(conversation("a"), conversation("b"))
    assert seen == ["a", "b"] * 3  # no conversation runs its cached turns back to back


class NamedEmbedder(LengthEmbedder):
    """Another model than the NLU's (an index adapted to the knowledge base)."""

    name = "fake:adapted"

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.threads: list[int] = []

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        self.threads.append(threading.get_ident())
        self.started.set()
        return super().embed(texts, kind=kind)


async def test_retriever_with_another_model_embeds_while_the_nlu_parses() -> None:
    inner = NamedEmbedder()
    shared = CachingEmbedder(inner)
    engine, nlu = _engine(LengthEmbedder(), shared)
    overlapped: list[bool] = []
    original = nlu.parse

    def parse(text: str, lang: str | None = None) -> ParsedMessage:
        overlapped.append(inner.started.wait(timeout=5))  # only if it runs meanwhile
        return original(text, lang)

    nlu.parse = parse  # type: ignore[method-assign]
    events = await collect(engine.turn(QUESTION, ConversationContext("c"), turn_id="t"))
    assert overlapped == [True]
    assert inner.calls == 1 and inner.threads[0] != nlu.threads[0]  # once, on its own thread
    assert events[-1].mode == "extractive"
    inner.started.clear()
    same = CachingEmbedder(LengthEmbedder())  # one model for both: nothing ahead
    engine, nlu = _engine(same, same)
    await collect(engine.turn(QUESTION, ConversationContext("c"), turn_id="t"))
    assert same.inner.calls == 1  # type: ignore[attr-defined]
