"""Engine branches in extractive mode (no LLM), EN and DE, with fake NLU and retriever."""

from __future__ import annotations

import pytest
from engine_fakes import FakeAction, FakeNLU, FakeRetriever, collect, of_type, text_of

from bot.actions import ActionResult
from bot.config import Settings
from bot.conversation import ConversationContext, Turn
from bot.engine import Engine
from bot.events import Done
from retrieval.types import Hit

RULES = {
    "human": "human_handoff",
    "mensch": "human_handoff",
    "order": "order_status",
    "bestellung": "order_status",
    "terrible": "complaint",
    "unverschämt": "complaint",
    "hello": "greeting",
    "hallo": "greeting",
    "thank": "thanks",
    "danke": "thanks",
    "bye": "goodbye",
    "yes": "affirm",
    "ja": "affirm",
    "weather": None,
    "wetter": None,
}
TABLE = {
    "delivery": [("en-ship-01", 0.82), ("en-ship-02", 0.55)],
    "lieferung": [("de-ship-01", 0.8), ("en-ship-01", 0.7)],
    "shipping cost": [("en-ship-02", 0.71), ("en-ship-01", 0.69)],
    "refund": [("en-ret-01", 0.42), ("en-ship-02", 0.2)],
    "terrible delivery": [("en-ship-01", 0.8)],
    "weather in berlin": [("en-ship-01", 0.3)],
    "parcel weather": [("en-ship-01", 0.9)],
}


def make_engine(action: FakeAction | None = None, **overrides: object) -> Engine:
    settings = Settings(answer_threshold=0.5, **overrides)  # type: ignore[arg-type]
    actions = {"lookup_order": action} if action else {}
    return Engine(
        nlu=FakeNLU(RULES), retriever=FakeRetriever(TABLE), settings=settings, actions=actions
    )


def ctx(*history: Turn, lang: str | None = None) -> ConversationContext:
    return ConversationContext(conversation_id="c1", history=list(history), lang=lang)


def done(events: list) -> Done:
    assert events[-1].type == "done"
    assert len(of_type(events, "done")) == 1
    return events[-1]


async def test_confident_faq_answer_streams_canonical_answer_with_source() -> None:
    events = await collect(make_engine().turn("How long does delivery take?", ctx(), turn_id="t1"))
    tokens = of_type(events, "token")
    assert len(tokens) > 1  # streamed in chunks
    assert text_of(events) == "Orders to Germany arrive in 1–3 working days."
    (sources,) = of_type(events, "sources")
    assert [s.id for s in sources.items] == ["en-ship-01"]
    assert sources.items[0].url == "/help/shipping#times"
    assert sources.items[0].score == pytest.approx(0.82)
    d = done(events)
    assert (d.mode, d.answered, d.lang, d.turn_id) == ("extractive", True, "en", "t1")
    assert d.confidence == pytest.approx(0.82)
    assert {"nlu", "retrieval", "total"} <= d.timing_ms.keys()
    assert not of_type(events, "suggestions")  # 0.82 vs 0.55 is not close


async def test_german_question_gets_german_entry_even_if_retrieval_lists_english() -> None:
    events = await collect(
        make_engine().turn("Wie lange dauert die Lieferung?", ctx(), turn_id="t")
    )
    assert "Werktagen" in text_of(events)
    assert of_type(events, "sources")[0].items[0].id == "de-ship-01"
    assert done(events).lang == "de"


async def test_close_second_entry_is_offered_as_did_you_mean() -> None:
    events = await collect(make_engine().turn("what is the shipping cost", ctx(), turn_id="t"))
    assert of_type(events, "sources")[0].items[0].id == "en-ship-02"
    (sugg,) = of_type(events, "suggestions")
    assert sugg.items == ["How long does delivery take?"]


@pytest.mark.parametrize(
    ("question", "lang_word"),
    [("can I get a refund", "couldn't find"), ("something unrelated entirely", "couldn't find")],
)
async def test_low_score_falls_back_and_offers_human(question: str, lang_word: str) -> None:
    events = await collect(make_engine().turn(question, ctx(), turn_id="t"))
    assert lang_word in text_of(events)
    assert not of_type(events, "sources")
    assert not of_type(events, "handoff")  # offered, not triggered
    sugg = of_type(events, "suggestions")[-1]
    assert sugg.items[-1] == "Talk to a human"
    d = done(events)
    assert (d.mode, d.answered) == ("fallback", False)


async def test_near_miss_is_suggested_on_fallback() -> None:
    events = await collect(make_engine().turn("refund please", ctx(), turn_id="t"))
    sugg = of_type(events, "suggestions")[-1]
    # every FAQ entry above suggest_min_score, best first, with its id; then the human
    assert sugg.items == ["How do I return an item?", "How much does shipping cost?",
                          "Talk to a human"]  # fmt: skip
    assert sugg.ids == ["en-ret-01", "en-ship-02"]
    strict = make_engine(suggest_min_score=0.3)
    events = await collect(strict.turn("refund please", ctx(), turn_id="t"))
    assert of_type(events, "suggestions")[-1].ids == ["en-ret-01"]


async def test_german_fallback_is_german() -> None:
    events = await collect(make_engine().turn("Wie ist das Wetter?", ctx(), turn_id="t"))
    assert "Soll ich Sie mit jemandem aus unserem Team verbinden?" in text_of(events)
    assert of_type(events, "suggestions")[-1].items == ["Mit einem Menschen sprechen"]
    assert done(events).mode == "fallback"


async def test_out_of_scope_needs_a_higher_score() -> None:
    events = await collect(make_engine().turn("weather in Berlin?", ctx(), turn_id="t"))
    assert "only help with questions" in text_of(events)
    assert done(events).answered is False
    # ...but a very confident knowledge match is still answered
    events = await collect(make_engine().turn("parcel weather damage", ctx(), turn_id="t"))
    assert done(events).mode == "extractive"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello", "Hello! I'm the support assistant"),
        ("Hallo", "Hallo! Ich bin der Support-Assistent"),
        ("thank you", "You're welcome"),
        ("Danke", "Gern geschehen"),
        ("bye", "Goodbye"),
    ],
)
async def test_smalltalk(text: str, expected: str) -> None:
    events = await collect(make_engine().turn(text, ctx(), turn_id="t"))
    assert text_of(events).startswith(expected)
    d = done(events)
    assert (d.mode, d.answered) == ("smalltalk", False)
    assert "retrieval" not in d.timing_ms


async def test_long_greeting_with_a_question_is_answered() -> None:
    events = await collect(
        make_engine().turn("hello, how long does delivery take to Munich?", ctx(), turn_id="t")
    )
    assert done(events).mode == "extractive"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("I want a human", "passing you"), ("Ich will einen Mensch", "leite Sie")],
)
async def test_human_request_hands_off(text: str, expected: str) -> None:
    events = await collect(make_engine().turn(text, ctx(), turn_id="t"))
    assert expected in text_of(events)
    (h,) = of_type(events, "handoff")
    assert h.reason == "user_request"
    assert (done(events).mode, done(events).answered) == ("handoff", False)


async def test_yes_after_offer_hands_off() -> None:
    engine = make_engine()
    first = await collect(engine.turn("can I get a refund", ctx(), turn_id="t1"))
    history = (Turn("user", "can I get a refund"), Turn("bot", text_of(first)))
    events = await collect(engine.turn("yes", ctx(*history), turn_id="t2"))
    assert of_type(events, "handoff")[0].reason == "user_request"
    # ... while a plain "yes" is smalltalk
    events = await collect(engine.turn("yes", ctx(), turn_id="t3"))
    assert done(events).mode == "smalltalk"


async def test_order_with_number_runs_action_and_hides_pii() -> None:
    data = {
        "order_number": "NC-12345",
        "status": "shipped",
        "carrier": "DHL",
        "tracking": "0034",
        "eta": "2026-12-02",
        "email": "anna@example.com",
    }
    action = FakeAction(ActionResult("ok", data))
    events = await collect(
        make_engine(action).turn("where is my order nc-12345?", ctx(), turn_id="t")
    )
    assert action.calls == [{"order_number": "NC-12345"}]
    started, finished = of_type(events, "action")
    assert (started.status, finished.status) == ("started", "ok")
    assert "email" not in finished.data
    reply = text_of(events)
    assert "NC-12345 has shipped with DHL" in reply and "2026-12-02" in reply
    assert "anna@" not in reply
    d = done(events)
    assert (d.mode, d.answered) == ("action", True)
    assert "action" in d.timing_ms


async def test_order_reply_in_german_and_not_found() -> None:
    action = FakeAction(ActionResult("not_found"))
    events = await collect(
        make_engine(action).turn("Wo ist meine Bestellung NC-99999?", ctx(), turn_id="t")
    )
    assert of_type(events, "action")[-1].status == "not_found"
    assert "keine Bestellung mit der Nummer NC-99999" in text_of(events)
    assert done(events).answered is False


async def test_order_action_error_and_missing_action() -> None:
    events = await collect(
        make_engine(FakeAction(ActionResult("error"))).turn("order NC-11111", ctx(), turn_id="t")
    )
    assert "can't reach our order system" in text_of(events)
    events = await collect(make_engine().turn("order NC-11111", ctx(), turn_id="t"))
    assert of_type(events, "action")[-1].status == "error"


async def test_order_without_number_asks_then_number_alone_looks_up() -> None:
    action = FakeAction(ActionResult("ok", {"order_number": "NC-12345", "status": "delivered"}))
    engine = make_engine(action)
    first = await collect(engine.turn("where is my order?", ctx(), turn_id="t1"))
    assert "What is your order number?" in text_of(first)
    assert not of_type(first, "action")
    assert (done(first).mode, done(first).answered) == ("action", False)
    history = (Turn("user", "where is my order?"), Turn("bot", text_of(first)))
    second = await collect(engine.turn("it's NC-12345", ctx(*history), turn_id="t2"))
    assert "has been delivered" in text_of(second)


async def test_order_question_without_number_offers_near_entries_with_the_number_request() -> None:
    events = await collect(make_engine().turn("where is my order refund?", ctx(), turn_id="t"))
    assert "What is your order number?" in text_of(events)
    (sugg,) = of_type(events, "suggestions")  # or one of these entries (below the threshold)
    assert sugg.ids == ["en-ret-01", "en-ship-02"] and len(sugg.items) == 2
    assert not of_type(events, "sources")
    assert (done(events).mode, done(events).answered) == ("action", False)


async def test_complaint_with_confident_match_answers_and_hands_off() -> None:
    events = await collect(make_engine().turn("terrible delivery!!", ctx(), turn_id="t"))
    text = text_of(events)
    assert text.startswith("Orders to Germany") and "sorry to hear" in text
    assert of_type(events, "handoff")[0].reason == "complaint"
    assert done(events).mode == "extractive"


async def test_complaint_without_match_hands_off() -> None:
    events = await collect(make_engine().turn("Das ist unverschämt", ctx(), turn_id="t"))
    assert "Das tut mir leid" in text_of(events)
    assert of_type(events, "handoff")[0].reason == "complaint"
    assert done(events).mode == "handoff"


async def test_internal_failure_becomes_error_then_done() -> None:
    class Broken(FakeNLU):
        def parse(self, text: str, lang: str | None = None):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    engine = Engine(nlu=Broken(), retriever=FakeRetriever({}), settings=Settings())
    events = await collect(engine.turn("hi", ctx(lang="de"), turn_id="t"))
    assert [e.type for e in events] == ["error", "done"]
    assert events[0].code == "KT000" and "boom" not in events[0].message
    assert "schiefgelaufen" in events[0].message


async def test_events_serialise_to_json() -> None:
    events = await collect(make_engine().turn("delivery time?", ctx(), turn_id="t"))
    dumped = [e.model_dump(mode="json") for e in events]
    assert dumped[-1]["type"] == "done" and dumped[-1]["mode"] == "extractive"


async def test_order_question_without_number_answered_from_knowledge_when_confident() -> None:
    events = await collect(make_engine().turn("my order delivery is late", ctx(), turn_id="t"))
    assert done(events).mode == "extractive"
    assert of_type(events, "sources")[0].items[0].id == "en-ship-01"


class _Named:
    def __init__(self, name: str) -> None:
        self.name = name


class _EnglishOnlyRetriever(FakeRetriever):
    """A German question whose German candidates are weak, and whose English first candidate
    has no German translation and a clearly better cosine (an English-only help page). The
    index model decides the default margin."""

    embedder = _Named("e5kb:0123")
    main_language = "en"

    def search(self, query: str, *, k: int = 5, lang: str | None = None) -> list[Hit]:
        by_id = {e.id: e for e in self.entries}
        return [
            Hit(by_id["de-ship-01"], 0.08, "", dense_score=0.78, lang_first=True, translated=True),
            Hit(by_id["en-ret-01"], 0.02, "", dense_score=0.84, lang_first=True, translated=False),
        ]


def _english_only_engine(model: str = "e5kb:0123", **overrides: object) -> Engine:
    retriever = _EnglishOnlyRetriever({})
    retriever.embedder = _Named(model)
    return Engine(
        nlu=FakeNLU(RULES),
        retriever=retriever,
        settings=Settings(answer_threshold=0.5, **overrides),  # type: ignore[arg-type]
    )


async def test_english_only_content_answers_a_german_question_and_says_so() -> None:
    events = await collect(
        _english_only_engine().turn("Kann ich einen Artikel umtauschen?", ctx(), turn_id="t")
    )
    assert text_of(events) == (
        "Diese Antwort haben wir nur auf Englisch:\n\n"
        "You can return items within 30 days using the return label."
    )
    assert [s.id for s in of_type(events, "sources")[0].items] == ["en-ret-01"]
    d = done(events)
    assert (d.mode, d.answered, d.lang) == ("extractive", True, "de")


async def test_english_only_content_is_not_answered_when_off_or_out_of_scope() -> None:
    off = _english_only_engine(foreign_answers=False)
    events = await collect(off.turn("Kann ich einen Artikel umtauschen?", ctx(), turn_id="t"))
    assert done(events).mode == "fallback"
    strict = _english_only_engine(foreign_answer_margin=0.1)  # 0.84 - 0.78 < 0.1
    events = await collect(strict.turn("Kann ich einen Artikel umtauschen?", ctx(), turn_id="t"))
    assert done(events).mode == "fallback"
    # the default margin is the index model's: none fitted for an English-only model
    for model, mode in (("minilm:all-MiniLM-L6-v2", "fallback"), ("e5:small", "extractive")):
        engine = _english_only_engine(model)
        events = await collect(
            engine.turn("Kann ich einen Artikel umtauschen?", ctx(), turn_id="t")
        )
        assert done(events).mode == mode, model
    events = await collect(_english_only_engine().turn("Wie ist das Wetter?", ctx(), turn_id="t"))
    assert done(events).mode == "fallback"  # out of scope: never from another language
