"""Follow-up questions (bot.followup): the pure rules, and the engine searching with the
previous question in front, with fake NLU and retriever."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_fakes import FakeNLU, FakeRetriever, collect, entry, of_type

from bot.config import Settings
from bot.conversation import ConversationContext, Turn
from bot.decide import Judgement
from bot.engine import Engine
from bot.errors import ConfigError
from bot.followup import (
    adds_to,
    looks_like_followup,
    prefer_context,
    previous_question,
    refers_back,
)
from retrieval.types import Hit

ENTRIES = [
    entry("en-ship-01", "How long does delivery take?", "Germany: 1–3 days. Austria: 2–4 days."),
    entry("en-ship-05", "Which countries do you ship to?", "Germany, Austria and Switzerland."),
    entry("en-ret-01", "How do I return an item?", "Print the label in your account."),
    entry("en-ret-03", "Are returns free?", "Returns cost nothing from Germany."),
]
# first contained key wins: the searches with context come first
TABLE = {
    "take? and to austria": [("en-ship-01", 0.8), ("en-ship-05", 0.3)],
    "take? and what's the weather": [("en-ship-01", 0.85)],
    "item? how much does that cost": [("en-ret-03", 0.7), ("en-ret-01", 0.6)],
    "wrap? is that free": [("en-ret-03", 0.3)],
    "is that free": [("en-ret-03", 0.9)],
    "and to austria": [("en-ship-05", 0.55)],
    "how much does that cost": [("en-ret-01", 0.2)],
    "how long does delivery take": [("en-ship-01", 0.9)],
    "return an item": [("en-ret-01", 0.9)],
    "which countries": [("en-ship-05", 0.95)],
}


def engine(**settings: object) -> tuple[Engine, FakeRetriever]:
    retriever = FakeRetriever(TABLE, entries=ENTRIES)
    s = Settings(answer_threshold=0.5, **settings)  # type: ignore[arg-type]
    return Engine(nlu=FakeNLU({"weather": None}), retriever=retriever, settings=s), retriever


def after(question: str, answer: str = "…") -> ConversationContext:
    return ConversationContext("c", history=[Turn("user", question), Turn("bot", answer)])


def sources(events: list) -> list[str]:
    return [s.id for e in of_type(events, "sources") for s in e.items]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("and to Austria?", True),
        ("what about customs?", True),
        ("how much does that cost?", True),
        ("express?", True),
        ("und mit Kreditkarte?", True),
        ("wie lange dauert das?", True),
        ("do you ship to Spain?", False),
        ("is there a warranty on tents?", False),
        ("gibt es einen Laden in Berlin?", False),
        ("and can you tell me everything about returns and refunds in detail please", False),
    ],
)
def test_looks_like_followup(text: str, expected: bool) -> None:
    assert looks_like_followup(text) is expected


def test_previous_question_only_right_after_a_bot_reply() -> None:
    assert previous_question(after("How long does delivery take?")) == (
        "How long does delivery take?"
    )
    assert previous_question(ConversationContext("c")) is None
    agent = ConversationContext("c", history=[Turn("user", "hi"), Turn("agent", "Hello!")])
    assert previous_question(agent) is None


def test_adds_to_needs_one_of_the_follow_ups_own_words() -> None:
    delivery = ENTRIES[0]
    assert adds_to("and to Austria?", delivery)
    assert not adds_to("and what's the weather?", delivery)
    assert not adds_to("and that?", delivery)  # only markers: nothing of its own
    kosten = entry("de-ret-03", "Kostet die Rücksendung etwas?", "Die Kosten trägt Nordcraft.")
    assert adds_to("was kostet das?", kosten)  # "kostet" meets "Kosten"


def _j(confident: bool, score: float, hit: Hit | None) -> Judgement:
    return Judgement(confident=confident, confidence=score, best=hit)


def test_prefer_context_rules() -> None:
    ship = Hit(entry=ENTRIES[0], score=0.8, matched="", rank=0)
    assert prefer_context(_j(True, 0.8, ship), "and to Austria?", off_topic=False)
    assert not prefer_context(_j(False, 0.4, ship), "and to Austria?", off_topic=False)
    # however confident the message's own judgement: it is not an input
    assert prefer_context(_j(True, 0.6, ship), "how long does it take?", off_topic=False)
    # off topic alone: only with its own words in the entry
    assert prefer_context(_j(True, 0.8, ship), "and to Austria?", off_topic=True)
    assert not prefer_context(_j(True, 0.8, ship), "and the weather?", off_topic=True)


def test_refers_back() -> None:
    assert refers_back("how much does that cost?") and refers_back("wie lange dauert das?")
    assert not refers_back("and to Austria?") and not refers_back("express?")


async def test_follow_up_is_answered_with_the_previous_question_as_context() -> None:
    eng, retriever = engine()
    ctx = after("How long does delivery take?")
    events = await collect(eng.turn("and to Austria?", ctx, turn_id="t"))
    assert sources(events) == ["en-ship-01"]  # alone it would be en-ship-05
    assert [q for q, _ in retriever.calls] == [
        "and to Austria?",
        "How long does delivery take? and to Austria?",
    ]
    events = await collect(
        eng.turn("how much does that cost?", after("How do I return an item?"), turn_id="t")
    )
    assert sources(events) == ["en-ret-03"]


async def test_context_answer_must_be_about_the_follow_up() -> None:
    eng, _ = engine()
    ctx = after("How long does delivery take?")
    events = await collect(eng.turn("and what's the weather?", ctx, turn_id="t"))
    assert not sources(events) and events[-1].mode == "fallback"  # not the delivery answer again


async def test_no_second_search_without_a_follow_up() -> None:
    eng, retriever = engine()
    await collect(eng.turn("and to Austria?", ConversationContext("c"), turn_id="t"))
    ctx = after("How long does delivery take?")
    await collect(eng.turn("Which countries do you ship to?", ctx, turn_id="t"))
    assert [q for q, _ in retriever.calls] == ["and to Austria?", "Which countries do you ship to?"]
    off, off_retriever = engine(followup_context=False)
    events = await collect(off.turn("and to Austria?", ctx, turn_id="t"))
    assert sources(events) == ["en-ship-05"] and len(off_retriever.calls) == 1


async def test_eval_cases_with_history_run_as_one_conversation(tmp_path: Path) -> None:
    from bot.evaluate import evaluate_answers, load_cases

    path = tmp_path / "cases.yaml"
    path.write_text(
        "cases:\n"
        "  - history: ['How long does delivery take?']\n"
        "    q: and to Austria?\n"
        "    expect_sources: [en-ship-01]\n"
        "    kind: followup\n"
        "  - q: and to Austria?\n"
        "    expect_sources: [en-ship-01]\n"
        "    kind: alone\n"
    )
    cases = load_cases(path)
    assert cases[0].history == ("How long does delivery take?",) and cases[1].history == ()
    eng, retriever = engine()
    report = await evaluate_answers(eng, cases)
    assert [r.correct for r in report.results] == [True, False]
    assert report.by_kind() == {
        "alone": {"correct_source": 0.0, "correct_refusal": 0.0, "false_answer": 1.0, "n": 1},
        "followup": {"correct_source": 1.0, "correct_refusal": 0.0, "false_answer": 0.0, "n": 1},
    }
    assert retriever.calls[0][0] == "How long does delivery take?"  # the history ran first
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases:\n  - history: hello\n    q: x\n    expect: refuse\n")
    with pytest.raises(ConfigError, match="case 1: `history` must be a list"):
        load_cases(bad)


async def test_pronoun_follow_up_is_not_answered_alone() -> None:
    eng, _ = engine()
    alone = await collect(eng.turn("is that free?", ConversationContext("c"), turn_id="t"))
    assert sources(alone) == ["en-ret-03"]  # at the start of a conversation: taken as asked
    events = await collect(eng.turn("is that free?", after("Do you gift wrap?"), turn_id="t"))
    assert not sources(events) and events[-1].mode == "fallback"  # what is "that"? not returns
    assert of_type(events, "suggestions")[0].ids == ["en-ret-03"]  # the context's candidates
