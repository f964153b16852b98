"""Generative mode with a scripted fake chat model: streaming, tools, memory, failures."""

from __future__ import annotations

import httpx
import openai
import pytest
from engine_fakes import (
    ENTRIES,
    FailAfter,
    FakeAction,
    FakeNLU,
    FakeRetriever,
    ScriptedChatModel,
    collect,
    entry,
    of_type,
    text_of,
)
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from bot.actions import ActionResult
from bot.config import Settings
from bot.conversation import ConversationContext, Turn
from bot.engine import Engine
from bot.llm import CircuitBreaker, StaticProvider

TABLE = {
    "delivery": [("en-ship-01", 0.82), ("en-ship-02", 0.6)],
    "lieferung": [("de-ship-01", 0.8)],
    "return": [("en-ret-01", 0.75)],
    "unknown": [("en-ship-01", 0.2)],
}
_REQ = httpx.Request("POST", "http://llm.invalid/v1/chat/completions")


def make(
    script: list,
    *,
    tools: bool = False,
    action: FakeAction | None = None,
    breaker: CircuitBreaker | None = None,
    retriever: FakeRetriever | None = None,
) -> tuple[Engine, ScriptedChatModel]:
    model = ScriptedChatModel(script=script)
    engine = Engine(
        nlu=FakeNLU({"human": "human_handoff"}),
        retriever=retriever or FakeRetriever(TABLE),
        settings=Settings(answer_threshold=0.5),
        provider=StaticProvider(model, name="fake", supports_tools=tools),
        actions={"lookup_order": action} if action else {},
        breaker=breaker,
    )
    return engine, model


def ctx(*history: Turn, summary: str = "") -> ConversationContext:
    return ConversationContext(conversation_id="c", history=list(history), summary=summary)


async def test_streams_tokens_then_cited_sources_and_usage() -> None:
    engine, model = make(["Orders arrive in 1–3 working days [en-ship-01]."])
    events = await collect(engine.turn("delivery time?", ctx(), turn_id="t"))
    tokens = of_type(events, "token")
    assert len(tokens) > 3
    assert text_of(events) == "Orders arrive in 1–3 working days [en-ship-01]."
    assert [s.id for s in of_type(events, "sources")[0].items] == ["en-ship-01"]
    done = events[-1]
    assert (done.mode, done.answered, done.partial) == ("generative", True, False)
    assert done.usage["input_tokens"] == 10 and done.usage["total_tokens"] > 10
    assert {"first_token", "llm", "retrieval", "nlu", "total"} <= done.timing_ms.keys()
    assert model.bound_tools == []  # no tools when the provider does not support them
    system, question = model.seen[0][0], model.seen[0][-1]
    assert isinstance(system, SystemMessage) and isinstance(question, HumanMessage)
    assert '<passage id="en-ship-01"' in system.text and "1–3 working days" in system.text
    assert "English" in system.text


async def test_uncited_answer_cites_best_hit_and_german_prompt() -> None:
    engine, model = make(["Bestellungen kommen in 1–3 Werktagen an."])
    events = await collect(engine.turn("Wie lange dauert die Lieferung?", ctx(), turn_id="t"))
    assert [s.id for s in of_type(events, "sources")[0].items] == ["de-ship-01"]
    assert "German" in model.seen[0][0].text
    assert events[-1].lang == "de"


async def test_low_confidence_never_calls_the_llm() -> None:
    engine, model = make([])
    events = await collect(engine.turn("something unknown", ctx(), turn_id="t"))
    assert events[-1].mode == "fallback" and model.seen == []


async def test_agent_calls_lookup_order_tool() -> None:
    call = AIMessage(
        content="",
        tool_calls=[{"name": "lookup_order", "args": {"order_number": "nc-12345"}, "id": "c1"}],
    )
    action = FakeAction(ActionResult("ok", {"status": "shipped", "email": "a@b.c"}))
    engine, model = make([call, "It has shipped [en-ship-01]."], tools=True, action=action)
    events = await collect(engine.turn("delivery of my parcel?", ctx(), turn_id="t"))
    assert set(model.bound_tools) == {"search_knowledge", "handoff_to_human", "lookup_order"}
    assert action.calls == [{"order_number": "NC-12345"}]
    (act,) = of_type(events, "action")
    assert act.status == "ok" and "email" not in act.data
    assert text_of(events) == "It has shipped [en-ship-01]."
    tool_msg = model.seen[1][-1]
    assert (
        tool_msg.type == "tool" and "has shipped" in tool_msg.text and "a@b.c" not in tool_msg.text
    )
    assert events[-1].mode == "generative"


async def test_agent_search_tool_results_are_citable_and_handoff_tool() -> None:
    search = AIMessage(
        content="",
        tool_calls=[
            {"name": "search_knowledge", "args": {"query": "return policy"}, "id": "s1"},
            {"name": "handoff_to_human", "args": {"reason": "unsure"}, "id": "h1"},
        ],
    )
    engine, model = make([search, "See [en-ret-01] and [en-ship-01]."], tools=True)
    events = await collect(engine.turn("delivery and refunds", ctx(), turn_id="t"))
    assert [s.id for s in of_type(events, "sources")[0].items] == ["en-ret-01", "en-ship-01"]
    assert of_type(events, "handoff")[0].reason == "low_confidence"
    assert '<passage id="en-ret-01"' in model.seen[1][-2].text or any(
        '<passage id="en-ret-01"' in m.text for m in model.seen[1]
    )


@pytest.mark.parametrize(
    "error",
    [
        openai.APITimeoutError(request=_REQ),
        openai.APIConnectionError(request=_REQ),  # connection refused
        openai.InternalServerError(
            "upstream 503", response=httpx.Response(503, request=_REQ), body=None
        ),
        ValueError("malformed stream chunk"),
    ],
    ids=["timeout", "refused", "5xx", "malformed"],
)
async def test_failure_before_first_token_degrades_to_extractive(error: Exception) -> None:
    breaker = CircuitBreaker(failures=3)
    engine, _ = make([error], tools=False, breaker=breaker)
    events = await collect(engine.turn("delivery time?", ctx(), turn_id="t"))
    assert text_of(events) == "Orders to Germany arrive in 1–3 working days."
    assert not of_type(events, "error")
    assert events[-1].mode == "extractive" and events[-1].answered
    assert breaker.state == "closed"  # one failure does not open it


async def test_failure_before_first_token_in_agent_mode_degrades() -> None:
    engine, _ = make([openai.APIConnectionError(request=_REQ)], tools=True)
    events = await collect(engine.turn("delivery?", ctx(), turn_id="t"))
    assert events[-1].mode == "extractive"


async def test_failure_mid_stream_marks_partial_and_keeps_tokens() -> None:
    engine, _ = make(
        [
            FailAfter(
                "Orders arrive in 1–3 working days.", 3, openai.APIConnectionError(request=_REQ)
            )
        ]
    )
    events = await collect(engine.turn("delivery time?", ctx(), turn_id="t"))
    types = [e.type for e in events]
    assert types[:3] == ["token"] * 3
    assert types[3:] == ["error", "sources", "done"]
    err = events[3]
    assert err.code == "KT500" and "cut off" in err.message and "Connection" not in err.message
    assert text_of(events) == "Orders arrive"  # three chunks: "Orders", " ", "arrive"
    assert events[-1].partial is True and events[-1].mode == "generative"


async def test_open_circuit_skips_llm_then_half_open_recovers() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=2, cooldown_s=30, clock=lambda: now[0])
    err = openai.APITimeoutError(request=_REQ)
    engine, model = make([err, err, "Back [en-ship-01]."], breaker=breaker)
    for _ in range(2):
        await collect(engine.turn("delivery?", ctx(), turn_id="t"))
    assert breaker.state == "open"
    events = await collect(engine.turn("delivery?", ctx(), turn_id="t"))
    assert events[-1].mode == "extractive" and len(model.seen) == 2  # not called
    now[0] = 31.0
    events = await collect(engine.turn("delivery?", ctx(), turn_id="t"))
    assert events[-1].mode == "generative" and breaker.state == "closed"


async def test_history_and_summary_reach_the_model_bounded() -> None:
    long_turns = [
        Turn("user" if i % 2 == 0 else "bot", f"message {i} " + "x" * 800) for i in range(12)
    ]
    engine, model = make(["ok [en-ship-01]"])
    await collect(
        engine.turn("delivery?", ctx(*long_turns, summary="user: asked about tents"), turn_id="t")
    )
    msgs = model.seen[0]
    system = msgs[0].text
    assert "<summary>" in system and "asked about tents" in system and "message 0" in system
    assert msgs[-2].text.startswith("message 11")  # newest turn kept verbatim
    assert isinstance(msgs[-2], AIMessage)
    assert len(msgs) < 2 + len(long_turns)  # older turns folded
    assert sum(len(m.text) for m in msgs[1:-1]) // 4 <= 1200


async def test_extra_entries_helper() -> None:
    e = entry("x-1", "Q", "A")
    assert e.id == "x-1" and ENTRIES[0].id == "en-ship-01"


async def test_missing_usage_is_estimated_and_flagged() -> None:
    engine, model = make(["Orders arrive soon [en-ship-01]."])
    model.usage = False
    events = await collect(engine.turn("delivery time?", ctx(), turn_id="t"))
    usage = events[-1].usage
    assert usage["estimated"] == 1 and usage["output_tokens"] == len(of_type(events, "token"))
    assert usage["input_tokens"] > 50  # the system prompt with the passage
