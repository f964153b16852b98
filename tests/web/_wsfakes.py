"""A scripted ``ChatEngine`` for protocol tests (the real runtime is tested separately)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from bot.conversation import ConversationContext
from bot.events import Done, Error, Event, Handoff, SourceRef, Sources, Token

ANSWER = "Standard delivery takes two to four working days within Germany ."


def answer_tokens(text: str = ANSWER) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


class FakeEngine:
    """``slow`` in the text: 0.15 s between tokens; ``boom``: fails after one token;
    ``human``: hands off. Otherwise ANSWER with 10 ms between tokens."""

    def __init__(self) -> None:
        self.contexts: list[ConversationContext] = []
        self.calls = 0

    async def turn(
        self, text: str, ctx: ConversationContext, *, turn_id: str
    ) -> AsyncIterator[Event]:
        self.calls += 1
        self.contexts.append(ctx)
        delay = 0.15 if "slow" in text else 0.01
        if "human" in text:
            yield Token(text="Connecting you with a person.")
            yield Handoff(reason="user_request")
            yield Done(turn_id=turn_id, mode="handoff", answered=True)
            return
        for i, tok in enumerate(answer_tokens()):
            if "boom" in text and i == 1:
                raise RuntimeError("engine exploded")
            yield Token(text=tok)
            await asyncio.sleep(delay)
        if "enginerror" in text:
            yield Error(code="KT500", message="The language model failed.")
            return
        yield Sources(items=[SourceRef(id="faq-shipping", title="Shipping", url="/help/shipping")])
        yield Done(turn_id=turn_id, mode="extractive", answered=True, confidence=0.9, lang="en")


class FakeRuntime:
    def __init__(self, ready: dict[str, bool] | None = None) -> None:
        self.engine = FakeEngine()
        self._ready = ready or {"index": True, "nlu": True}

    def ready(self) -> dict[str, bool]:
        return dict(self._ready)
