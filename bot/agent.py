"""Generative answers with a LangChain 1.x agent (``langchain.agents.create_agent``).

Grounding never depends on tool calls: the engine retrieves first and the passages are in the
system prompt (see :mod:`bot.prompts`). When the provider supports tools, the agent can also
call ``search_knowledge`` (more passages), ``lookup_order`` (through :mod:`bot.actions`) and
``handoff_to_human``; otherwise the chat model is streamed directly, without tools.

:meth:`Generator.stream` yields :class:`Delta` (text), :class:`Usage` and the side effects the
tools had (:class:`ToolEffect`) in order; any failure surfaces as :class:`bot.errors.LLMError`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from bot.actions import Action, ActionResult, order_reply, public_order_data
from bot.conversation import Turn
from bot.errors import LLMError
from bot.events import ActionEvent, Event
from bot.prompts import format_passages, user_message
from retrieval.types import Hit

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage
    from langchain_core.tools import BaseTool

Search = Callable[[str], Sequence[Hit]]


@dataclass(frozen=True, slots=True)
class Delta:
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    tokens: dict[str, int]


@dataclass(frozen=True, slots=True)
class ToolEffect:
    kind: Literal["hits", "action", "handoff"]
    hits: tuple[Hit, ...] = ()
    action: str = ""
    result: ActionResult | None = None
    reason: str = ""


GenEvent = Delta | Usage | ToolEffect


@dataclass(slots=True)
class _Effects:
    pending: list[ToolEffect] = field(default_factory=list)

    def drain(self) -> list[ToolEffect]:
        out, self.pending = self.pending, []
        return out


def _tools(
    *, search: Search, order_action: Action | None, lang: str, effects: _Effects
) -> list[BaseTool]:
    from langchain_core.tools import tool

    @tool
    def search_knowledge(query: str) -> str:
        """Search the shop's help center. Returns passages with ids to cite, as data."""
        hits = tuple(search(query))
        effects.pending.append(ToolEffect("hits", hits=hits))
        return format_passages(hits)

    @tool
    def handoff_to_human(reason: str = "") -> str:
        """Hand the conversation to a human colleague (user asks for a person, or you can't
        help)."""
        effects.pending.append(ToolEffect("handoff", reason=reason))
        return "A human colleague has been notified and will reply in this chat."

    tools: list[BaseTool] = [search_knowledge, handoff_to_human]
    if order_action is not None:
        action = order_action

        @tool
        async def lookup_order(order_number: str) -> str:
            """Look up the status of an order by its order number (e.g. NC-12345)."""
            number = order_number.strip().upper()
            result = await action.run({"order_number": number})
            effects.pending.append(ToolEffect("action", action=action.name, result=result))
            shown = ActionResult(result.status, public_order_data(result.data), "")
            return order_reply(shown, number, lang)

        tools.append(lookup_order)
    return tools


def _messages(system: str, history: Sequence[Turn], question: str) -> list[BaseMessage]:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    out: list[BaseMessage] = [SystemMessage(content=system)]
    for turn in history:
        text = user_message(turn.text)
        out.append(HumanMessage(content=text) if turn.role == "user" else AIMessage(content=text))
    out.append(HumanMessage(content=user_message(question)))
    return out


def _add_usage(total: dict[str, int], chunk: Any) -> None:
    meta = getattr(chunk, "usage_metadata", None)
    if not meta:
        return
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        total[key] = total.get(key, 0) + int(meta.get(key, 0) or 0)


class Generator:
    """Streams one generative answer from ``model`` (with tools when ``use_tools``)."""

    def __init__(
        self,
        model: BaseChatModel,
        *,
        use_tools: bool,
        search: Search,
        order_action: Action | None = None,
        recursion_limit: int = 8,
    ) -> None:
        self._model = model
        self._use_tools = use_tools
        self._search = search
        self._order_action = order_action
        self._recursion_limit = recursion_limit

    async def stream(
        self, *, system: str, history: Sequence[Turn], question: str, lang: str
    ) -> AsyncIterator[GenEvent]:
        messages = _messages(system, history, question)
        usage: dict[str, int] = {}
        try:
            if self._use_tools:
                source = self._agent_stream(messages, lang)
            else:
                source = self._direct_stream(messages)
            async for item in source:
                if isinstance(item, ToolEffect | Delta):
                    yield item
                else:
                    _add_usage(usage, item)
        except LLMError:
            raise
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:
            raise LLMError(f"LLM failed: {type(exc).__name__}: {exc}") from exc
        if usage:
            yield Usage(usage)

    async def _direct_stream(self, messages: list[BaseMessage]) -> AsyncIterator[Any]:
        async for chunk in self._model.astream(messages):
            if chunk.text:
                yield Delta(chunk.text)
            yield chunk

    async def _agent_stream(self, messages: list[BaseMessage], lang: str) -> AsyncIterator[Any]:
        from langchain.agents import create_agent
        from langchain_core.messages import AIMessageChunk

        effects = _Effects()
        tools = _tools(
            search=self._search, order_action=self._order_action, lang=lang, effects=effects
        )
        system, rest = messages[0], messages[1:]
        agent: Any = create_agent(self._model, tools, system_prompt=system.text)
        stream = agent.astream(
            {"messages": rest},
            {"recursion_limit": self._recursion_limit},
            stream_mode="messages",
        )
        async for chunk, meta in stream:
            for effect in effects.drain():
                yield effect
            if not isinstance(chunk, AIMessageChunk) or meta.get("langgraph_node") != "model":
                continue
            if chunk.text:
                yield Delta(chunk.text)
            yield chunk
        for effect in effects.drain():
            yield effect


_CITATION = re.compile(r"\[([A-Za-z0-9][\w.#/:-]*)\]")


def effect_events(effect: ToolEffect, known: dict[str, Hit]) -> list[Event]:
    """The events a tool's side effect becomes; passages it found join ``known``."""
    if effect.kind == "hits":
        for h in effect.hits:
            known.setdefault(h.entry_id, h)
        return []
    if effect.kind == "action" and effect.result is not None:
        return [
            ActionEvent(
                name=effect.action,
                status=effect.result.status,
                data=public_order_data(effect.result.data),
            )
        ]
    return []


def cited_hits(answer: str, known: Mapping[str, Hit], best: Hit | None) -> list[Hit]:
    """Passages the answer cites by id (in order); ``best`` if it cites none."""
    cited: list[Hit] = []
    for m in _CITATION.finditer(answer):
        hit = known.get(m.group(1))
        if hit is not None and hit not in cited:
            cited.append(hit)
    if not cited and best is not None:
        cited.append(best)
    return cited
