"""The handoff summary: extractive from the transcript, LLM prose when a model answers in time,
extractive again when the model fails or is too slow."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage

from bot.handoff_summary import extractive_summary, summarize
from bot.llm.providers import StaticProvider
from bot.store import NewEvent

PATTERN = r"[A-Z]{2}-\d{5}"


def _events() -> list[NewEvent]:
    return [
        NewEvent("user_message", {"text": "How long does shipping take?"}, "t1"),
        NewEvent("token", {"text": "One to three days."}, "t1"),
        NewEvent("sources", {"items": [{"id": "ship", "title": "Shipping times"}]}, "t1"),
        NewEvent("done", {"mode": "extractive", "answered": True, "lang": "en"}, "t1"),
        NewEvent("user_message", {"text": "My order nc-12345 never arrived!"}, "t2"),
        NewEvent("token", {"text": "Sorry, I couldn't find an answer."}, "t2"),
        NewEvent("done", {"mode": "fallback", "answered": False, "lang": "en"}, "t2"),
    ]


def test_extractive_summary_lists_questions_gaps_topics_and_orders() -> None:
    s = extractive_summary(_events(), lang="en", order_pattern=PATTERN, reason="complaint")
    assert s["method"] == "extractive"
    assert s["questions"] == ["How long does shipping take?", "My order nc-12345 never arrived!"]
    assert s["unanswered"] == ["My order nc-12345 never arrived!"]
    assert s["topics"] == ["Shipping times"]
    assert s["order_numbers"] == ["NC-12345"]
    text = s["text"]
    assert "Not answered by the bot: “My order nc-12345 never arrived!”" in text
    assert "Order numbers: NC-12345." in text and "Handoff reason: complaint." in text


def test_extractive_summary_in_german_and_without_questions() -> None:
    de = extractive_summary(_events(), lang="de", order_pattern=PATTERN, reason="user_request")
    assert (
        de["text"].startswith("Anliegen des Besuchers:")
        and "Bestellnummern: NC-12345" in de["text"]
    )
    empty = extractive_summary([], lang="en", order_pattern=PATTERN, reason="user_request")
    assert empty["questions"] == [] and "before asking anything" in empty["text"]


async def test_llm_summary_replaces_the_text_only() -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage("Customer's order NC-12345 is lost.")]))
    s = await summarize(
        _events(), lang="en", order_pattern=PATTERN, provider=StaticProvider(model), timeout_s=5
    )
    assert s["method"] == "llm" and s["text"] == "Customer's order NC-12345 is lost."
    assert s["order_numbers"] == ["NC-12345"] and len(s["questions"]) == 2


class _Slow(BaseChatModel):
    @property
    def _llm_type(self) -> str:
        return "slow"

    def _generate(self, messages: list[BaseMessage], *a: Any, **kw: Any) -> Any:
        raise NotImplementedError

    async def _agenerate(self, messages: list[BaseMessage], *a: Any, **kw: Any) -> Any:
        await asyncio.sleep(5)
        raise AssertionError("not reached")


class _Broken(_Slow):
    async def _agenerate(self, messages: list[BaseMessage], *a: Any, **kw: Any) -> Any:
        raise ConnectionError("llm down")


async def test_llm_failure_or_timeout_keeps_the_extractive_summary() -> None:
    for model in (_Slow(), _Broken()):
        s = await summarize(
            _events(),
            lang="en",
            order_pattern=PATTERN,
            provider=StaticProvider(model),
            timeout_s=0.2,
        )
        assert s["method"] == "extractive" and "NC-12345" in s["text"]
