"""Lead capture as a ChatEngine wrapper (bot.leads), with a scripted inner engine."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.conversation import ConversationContext, Turn
from bot.events import ActionEvent, AnswerMode, Done, Event, Handoff, Token
from bot.leads import (
    CAPTURE_ACTION,
    PROMPTS,
    LeadCapture,
    find_email,
    find_name,
    pending_prompt,
    yes_or_no,
)


class Inner:
    def __init__(self, mode: AnswerMode = "extractive", handoff: bool = False) -> None:
        self.mode = mode
        self.handoff = handoff
        self.calls = 0

    async def turn(
        self, text: str, ctx: ConversationContext, *, turn_id: str
    ) -> AsyncIterator[Event]:
        self.calls += 1
        yield Token(text="An answer.")
        if self.handoff:
            yield Handoff(reason="user_request")
        yield Done(turn_id=turn_id, mode=self.mode, answered=True, lang=ctx.lang or "en")


async def _run(engine: LeadCapture, text: str, ctx: ConversationContext) -> list[Event]:
    return [e async for e in engine.turn(text, ctx, turn_id="t")]


def _text(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, Token))


def test_helpers() -> None:
    assert find_email("Mail me: Anna.Berg@Example.com, thanks") == "anna.berg@example.com"
    assert find_email("no address here") is None
    assert find_name("Hi, my name is Anna Berg and I need help") == "Anna Berg"
    assert find_name("Ich heiße Jörg.") == "Jörg"
    assert find_name("my name is not important") is None
    assert [yes_or_no(t) for t in ("Yes please!", "ja, gerne", "ok", "No thanks", "nein")] == [
        True, True, True, False, False,
    ]  # fmt: skip
    assert yes_or_no("bitte nicht") is False
    assert yes_or_no("where is my parcel, it is late again") is None
    assert yes_or_no("maybe") is None


async def test_prompt_appended_then_yes_captures() -> None:
    inner = Inner()
    engine = LeadCapture(inner)
    ctx = ConversationContext("c", lang="en")
    first = "my name is Anna Berg, anna@example.com — where is my parcel?"
    events = await _run(engine, first, ctx)
    prompt = PROMPTS["en"].format(email="anna@example.com")
    assert _text(events) == "An answer.\n\n" + prompt
    assert isinstance(events[-1], Done) and events[-1].mode == "extractive"

    history = [Turn("user", first), Turn("bot", _text(events))]
    assert pending_prompt(history) is not None
    ctx2 = ConversationContext("c", history=history, lang="en")
    events = await _run(engine, "Yes", ctx2)
    assert inner.calls == 1  # the answer to the question is handled here
    action = next(e for e in events if isinstance(e, ActionEvent))
    assert action.name == CAPTURE_ACTION and action.status == "ok"
    assert action.data["email"] == "anna@example.com" and action.data["name"] == "Anna Berg"
    assert action.data["consent_text"] == f"{prompt}\n— Yes"
    assert isinstance(events[-1], Done) and events[-1].mode == "action"

    # once captured, the same address is not asked for again
    history += [Turn("user", "Yes"), Turn("bot", _text(events))]
    again = await _run(engine, "again: anna@example.com", ConversationContext("c", history=history))
    assert _text(again) == "An answer."


async def test_no_declines_and_other_text_passes_through() -> None:
    inner = Inner()
    engine = LeadCapture(inner)
    prompt = PROMPTS["de"].format(email="x@example.de")
    history = [Turn("user", "x@example.de"), Turn("bot", "Antwort.\n\n" + prompt)]
    events = await _run(engine, "Nein danke", ConversationContext("c", history=history))
    assert not any(isinstance(e, ActionEvent) for e in events)
    assert "nicht" in _text(events) and inner.calls == 0
    events = await _run(engine, "How do returns work?", ConversationContext("c", history=history))
    assert inner.calls == 1 and _text(events) == "An answer."


async def test_no_prompt_for_handoffs_actions_or_a_human_conversation() -> None:
    text = "my parcel is late again, please reach me at a@example.com"
    for inner in (Inner(handoff=True), Inner(mode="action"), Inner(mode="handoff")):
        events = await _run(LeadCapture(inner), text, ConversationContext("c"))
        assert _text(events) == "An answer."
    ctx = ConversationContext("c", handoff_state="human")
    assert _text(await _run(LeadCapture(Inner()), text, ctx)) == "An answer."


async def test_an_address_on_its_own_gets_only_the_question() -> None:
    inner = Inner()
    engine = LeadCapture(inner)
    for text in ("anna@example.com", "my email is Anna@Example.com, thanks"):
        events = await _run(engine, text, ConversationContext("c", lang="de"))
        assert inner.calls == 0
        assert _text(events) == PROMPTS["de"].format(email="anna@example.com")
        assert isinstance(events[-1], Done) and events[-1].mode == "action"
    long = "anna@example.com — my parcel NC-12345 has not arrived after two weeks"
    events = await _run(engine, long, ConversationContext("c", lang="en"))
    assert inner.calls == 1 and _text(events).startswith("An answer.\n\n")
