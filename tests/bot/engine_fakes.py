"""Deterministic fakes for engine tests: NLU, retriever, chat model, actions."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field

from bot.actions import ActionResult
from bot.nlu.types import Entity, ParsedMessage
from knowledge.schema import Entry, EntryKind
from retrieval.types import Hit

_ORDER = re.compile(r"[A-Z]{2}-\d{5}")


def entry(
    id: str, question: str, answer: str, *, lang: str = "en", url: str | None = None
) -> Entry:
    return Entry(
        id=id,
        kind=EntryKind.FAQ,
        question=question,
        answer=answer,
        source=f"faq.{lang}.yaml",
        lang=lang,
        url=url,
    )


ENTRIES = [
    entry(
        "en-ship-01",
        "How long does delivery take?",
        "Orders to Germany arrive in 1–3 working days.",
        url="/help/shipping#times",
    ),
    entry(
        "en-ship-02",
        "How much does shipping cost?",
        "Shipping is free from 50 EUR, otherwise 4.90 EUR.",
    ),
    entry(
        "en-ret-01",
        "How do I return an item?",
        "You can return items within 30 days using the return label.",
    ),
    entry(
        "de-ship-01",
        "Wie lange dauert die Lieferung?",
        "Bestellungen nach Deutschland kommen in 1–3 Werktagen an.",
        lang="de",
    ),
    entry(
        "de-ret-01",
        "Wie kann ich etwas zurückschicken?",
        "Sie können Artikel innerhalb von 30 Tagen zurückschicken.",
        lang="de",
    ),
]


@dataclass
class FakeRetriever:
    """Returns scripted hits: the first ``table`` key contained in the (lower-cased) query
    wins; values are ``[(entry_id, score), ...]``."""

    table: Mapping[str, Sequence[tuple[str, float]]]
    entries: Sequence[Entry] = field(default_factory=lambda: list(ENTRIES))
    calls: list[tuple[str, str | None]] = field(default_factory=list)

    def search(self, query: str, *, k: int = 5, lang: str | None = None) -> list[Hit]:
        self.calls.append((query, lang))
        by_id = {e.id: e for e in self.entries}
        q = query.lower()
        for key, scripted in self.table.items():
            if key in q:
                return [
                    Hit(entry=by_id[i], score=s, matched=by_id[i].question, rank=n)
                    for n, (i, s) in enumerate(scripted[:k])
                ]
        return []


@dataclass
class FakeNLU:
    """``rules``: substring (lower-case) → intent (``None`` = out of scope); language: German
    if the text contains a common German word, else the hint or English."""

    rules: Mapping[str, str | None] = field(default_factory=dict)
    default_intent: str | None = "faq"

    def parse(self, text: str, lang: str | None = None) -> ParsedMessage:
        low = text.lower()
        german = any(
            w in low.split() for w in ("wie", "ich", "meine", "hallo", "danke", "ja", "wo", "ist")
        )
        detected = "de" if german else (lang or "en")
        intent = self.default_intent
        for key, value in self.rules.items():
            if key in low:
                intent = value
                break
        entities = tuple(
            Entity("ORDER_NUMBER", m.group(0), m.start(), m.end(), m.group(0))
            for m in _ORDER.finditer(text.upper())
        )
        return ParsedMessage(
            text=text,
            lang=detected,
            intent=intent,
            confidence=0.9,
            entities=entities,
            out_of_scope=intent is None,
        )


@dataclass
class FakeAction:
    result: ActionResult
    name: str = "lookup_order"
    calls: list[dict[str, str]] = field(default_factory=list)

    async def run(self, entities: Mapping[str, str]) -> ActionResult:
        self.calls.append(dict(entities))
        return self.result


@dataclass(frozen=True)
class FailAfter:
    """A scripted response that streams ``text`` word by word and raises ``error`` after
    ``chunks`` chunks (0 = before the first token)."""

    text: str
    chunks: int
    error: Exception


Script = AIMessage | str | Exception | FailAfter


class ScriptedChatModel(BaseChatModel):
    """A fake chat model that streams scripted responses (text split on whitespace, tool
    calls as one chunk, usage on the last chunk), supports ``bind_tools`` and records the
    messages it was called with. Exceptions in the script are raised."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    script: list[Any]  # of Script (Any: pydantic must not coerce str into AIMessage)
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[str] = Field(default_factory=list)
    usage: bool = True  # send usage metadata on the last chunk (llama.cpp's server does not)

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        names = []
        for t in tools:
            names.append(
                getattr(t, "name", None) or (t.get("name") if isinstance(t, dict) else str(t))
            )
        self.bound_tools = [str(n) for n in names]
        return self

    def _next(self, messages: list[BaseMessage]) -> Script:
        self.seen.append(list(messages))
        if not self.script:
            raise AssertionError("ScriptedChatModel: script exhausted")
        return self.script.pop(0)

    def _chunks(self, item: Script) -> Iterator[AIMessageChunk]:
        if isinstance(item, Exception):
            raise item
        fail: Exception | None = None
        limit = None
        if isinstance(item, FailAfter):
            message = AIMessage(content=item.text)
            fail, limit = item.error, item.chunks
        else:
            message = AIMessage(content=item) if isinstance(item, str) else item
        words = [w for w in re.split(r"(\s+)", str(message.content)) if w]
        for n, w in enumerate(words):
            if limit is not None and n >= limit:
                break
            yield AIMessageChunk(content=w, id=message.id)
        if fail is not None:
            raise fail
        if message.tool_calls:
            yield AIMessageChunk(
                content="",
                id=message.id,
                tool_call_chunks=[
                    {"name": tc["name"], "args": _json(tc["args"]), "id": tc["id"], "index": i}
                    for i, tc in enumerate(message.tool_calls)
                ],
            )
        if not self.usage:
            return
        usage = UsageMetadata(
            input_tokens=10, output_tokens=len(words), total_tokens=10 + len(words)
        )
        yield AIMessageChunk(content="", id=message.id, usage_metadata=usage)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks(self._next(messages)):
            gen = ChatGenerationChunk(message=chunk)
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=gen)
            yield gen

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        merged: AIMessageChunk | None = None
        for gen in self._stream(messages, stop, run_manager, **kwargs):
            assert isinstance(gen.message, AIMessageChunk)
            merged = gen.message if merged is None else merged + gen.message
        assert merged is not None
        msg = AIMessage(
            content=merged.content,
            tool_calls=merged.tool_calls,
            usage_metadata=merged.usage_metadata,
        )
        return ChatResult(generations=[ChatGeneration(message=msg)])


def _json(value: Mapping[str, Any]) -> str:
    import json

    return json.dumps(dict(value))


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [e async for e in stream]


def of_type(events: Sequence[Any], kind: str) -> list[Any]:
    return [e for e in events if e.type == kind]


def text_of(events: Sequence[Any]) -> str:
    return "".join(e.text for e in events if e.type == "token")


MakeModel = Callable[[list[Script]], ScriptedChatModel]
