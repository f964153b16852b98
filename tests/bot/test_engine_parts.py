"""Small engine parts: decisions, chunking, memory, circuit breaker, providers, texts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from engine_fakes import ENTRIES, FakeNLU

from bot import smalltalk, texts
from bot.config import Settings
from bot.conversation import ConversationContext, Turn
from bot.decide import judge, route
from bot.errors import ConfigError
from bot.extractive import chunk_words
from bot.llm import CircuitBreaker, make_provider
from bot.memory import estimate_tokens, fold_summary, window
from bot.nlu.types import ParsedMessage
from retrieval.types import Hit

BY_ID = {e.id: e for e in ENTRIES}


def h(entry_id: str, score: float) -> Hit:
    return Hit(entry=BY_ID[entry_id], score=score, matched="")


@pytest.mark.parametrize(
    "text", ["Orders arrive in 1–3 days.", "  lead and\ttabs\n\nnew  lines ", "", "one"]
)
def test_chunk_words_is_lossless(text: str) -> None:
    chunks = list(chunk_words(text, 2))
    assert "".join(chunks) == text
    assert all(len(c.split()) <= 2 for c in chunks)


def test_chunk_words_rejects_zero() -> None:
    with pytest.raises(ValueError, match="words_per_chunk"):
        list(chunk_words("x", 0))


def test_judge_prefers_users_language_and_dedupes() -> None:
    j = judge(
        [h("en-ship-01", 0.9), h("de-ship-01", 0.7), h("de-ship-01", 0.6)], lang="de", threshold=0.5
    )
    assert j.confident and j.best is not None and j.best.entry_id == "de-ship-01"
    j = judge([h("en-ship-01", 0.9), h("de-ship-01", 0.4)], lang="de", threshold=0.5)
    assert j.best is not None and j.best.entry_id == "en-ship-01"  # cross-language answer
    assert j.confident
    j = judge([h("en-ship-01", 0.6), h("de-ship-01", 0.4)], lang="de", threshold=0.5)
    assert not j.confident  # a weak cross-language match needs threshold + margin
    assert judge([], lang="en", threshold=0.5).best is None


def test_judge_close_and_near() -> None:
    j = judge(
        [h("en-ship-01", 0.7), h("en-ship-02", 0.67), h("en-ret-01", 0.5)], lang="en", threshold=0.5
    )
    assert [x.entry_id for x in j.close] == ["en-ship-02"]
    j = judge([h("en-ship-01", 0.45), h("en-ship-02", 0.2)], lang="en", threshold=0.5)
    assert not j.confident and [x.entry_id for x in j.near] == ["en-ship-01"]
    assert j.confidence == pytest.approx(0.45)


def test_judge_near_follows_the_retrievers_order() -> None:
    # below the threshold the calibrated scores are close; the fused ranking's first is more
    # often the right entry, so it is suggested first
    hits = [replace(h("en-ship-02", 0.30), rank=1), replace(h("en-ship-01", 0.31), rank=2)]
    j = judge(hits, lang="en", threshold=0.5, suggest_min=0.1)
    assert not j.confident and j.best is not None and j.best.entry_id == "en-ship-01"
    assert [x.entry_id for x in j.near] == ["en-ship-02", "en-ship-01"]


def test_route_table() -> None:
    nlu = FakeNLU(
        {"human": "human_handoff", "order": "order_status", "hi": "greeting", "weather": None}
    )
    c = ConversationContext("c")
    assert route(nlu.parse("get me a human"), c).kind == "handoff"
    assert route(nlu.parse("my order NC-12345"), c).order_number == "NC-12345"
    assert route(nlu.parse("my order"), c).kind == "ask_order"
    assert route(nlu.parse("NC-12345"), c).kind == "order"  # a bare number is an order lookup
    assert route(nlu.parse("hi"), c).kind == "smalltalk"
    assert route(nlu.parse("weather"), c).kind == "out_of_scope"
    assert route(nlu.parse("how do returns work"), c).kind == "retrieve"
    long_mention = "I bought a tent, NC-12345, so how do returns work for it"
    assert route(nlu.parse(long_mention), c).kind == "retrieve"
    # no confident intent, but in scope (the NLU's "uncertain"): a knowledge question
    unsure = ParsedMessage("tracking says delivered, nothing here", "en", None, 0.4)
    assert route(unsure, c).kind == "retrieve"


def test_memory_window_and_summary_are_bounded() -> None:
    turns = [Turn("user", f"Question {i}. " + "word " * 50) for i in range(20)]
    ctx = ConversationContext("c", history=turns, summary="user: earlier")
    w = window(ctx, max_tokens=200, summary_tokens=40)
    assert w.turns and w.turns[-1] == turns[-1]
    assert sum(estimate_tokens(t.text) for t in w.turns) <= 200
    assert estimate_tokens(w.summary) <= 40 and "Question" in w.summary
    assert ctx.summary == "user: earlier"  # ctx untouched
    small = window(ConversationContext("c", history=turns[:1]), max_tokens=500, summary_tokens=40)
    assert small.summary == "" and small.turns == (turns[0],)
    assert fold_summary("", [Turn("bot", "A. B.")], 100) == "bot: A."
    assert estimate_tokens("") == 0 and estimate_tokens("abcde") == 2


def test_circuit_breaker_cycle() -> None:
    now = [0.0]
    b = CircuitBreaker(failures=2, cooldown_s=10, clock=lambda: now[0])
    b.record_failure()
    assert b.allow()
    b.record_failure()
    assert b.state == "open" and not b.allow()
    now[0] = 10.0
    assert b.state == "half_open" and b.allow()
    b.record_failure()  # trial failed → open again
    assert b.state == "open"
    now[0] = 20.0
    b.record_success()
    assert b.state == "closed"
    with pytest.raises(ValueError):
        CircuitBreaker(failures=0)


def test_providers_by_name(tmp_path: Path) -> None:
    assert make_provider(Settings(llm_provider="none")) is None
    p = make_provider(
        Settings(
            llm_provider="openai", llm_base_url="http://127.0.0.1:9/v1", llm_supports_tools=False
        )
    )
    assert p is not None and p.name == "openai" and p.supports_tools is False
    model = p.chat_model()
    assert type(model).__name__ == "ChatOpenAI"
    assert model.streaming is True  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="BASE_URL"):
        make_provider(Settings(llm_provider="openai"))
    with pytest.raises(ConfigError, match=r"llama-cpp-python|GGUF"):
        make_provider(Settings(llm_provider="llamacpp", llm_model_path=tmp_path / "none.gguf"))


def test_texts_and_smalltalk_cover_both_languages() -> None:
    for intent in smalltalk.SMALLTALK_INTENTS:
        assert smalltalk.reply(intent, "en") != smalltalk.reply(intent, "de")
        assert smalltalk.reply(intent, "fr") == smalltalk.reply(intent, "en")
    assert texts.text("order_not_found", "de", order_number="NC-1").count("NC-1") == 1
    assert texts.matches("ask_order_number", texts.text("ask_order_number", "de") + " ")


def test_only_faq_entries_are_suggested() -> None:

    from knowledge.schema import EntryKind

    page = replace(BY_ID["en-ship-02"], id="page#costs", kind=EntryKind.PASSAGE)
    close = [h("en-ship-01", 0.7), Hit(entry=page, score=0.69, matched=""), h("en-ret-01", 0.68)]
    j = judge(close, lang="en", threshold=0.5)
    assert [x.entry_id for x in j.close] == ["en-ret-01"]
    j = judge(
        [Hit(entry=page, score=0.45, matched=""), h("en-ret-01", 0.4)], lang="en", threshold=0.5
    )
    assert [x.entry_id for x in j.near] == ["en-ret-01"]


def test_judge_suggests_the_overall_favourite_in_another_language() -> None:
    from dataclasses import replace as _replace

    favourite = _replace(h("en-ret-01", 0.003), overall_first=True)
    weak = [h("de-ship-01", 0.3), favourite]
    j = judge(weak, lang="de", threshold=0.5, suggest_min=0.01)
    assert not j.confident
    assert [x.entry_id for x in j.near] == ["de-ship-01", "en-ret-01"]
    # not marked as the overall favourite: only same-language suggestions
    j = judge([h("de-ship-01", 0.3), h("en-ret-01", 0.003)], lang="de", threshold=0.5,
              suggest_min=0.01)  # fmt: skip
    assert [x.entry_id for x in j.near] == ["de-ship-01"]


def _first(entry_id: str, score: float, dense: float, translated: bool | None) -> Hit:
    return Hit(
        entry=BY_ID[entry_id],
        score=score,
        matched="",
        dense_score=dense,
        lang_first=True,
        translated=translated,
    )


def test_judge_answers_content_that_exists_only_in_another_language() -> None:
    german = _first("de-ship-01", 0.1, 0.80, True)
    english_only = _first("en-ret-01", 0.02, 0.83, False)
    j = judge(
        [german, english_only], lang="de", threshold=0.5, foreign_margin=0.02, foreign_lang="en"
    )
    assert j.confident and j.best is english_only
    assert j.confidence == pytest.approx(0.02)  # its own (low) calibrated score, not invented
    # off by default, and whenever one of its conditions fails
    assert not judge([german, english_only], lang="de", threshold=0.5).confident
    for other in (
        _first("en-ret-01", 0.02, 0.81, False),  # beats the German hit by less than the margin
        _first("en-ret-01", 0.02, 0.83, True),  # has a German translation: answer that or nothing
        _first("en-ret-01", 0.02, 0.83, None),  # unknown (a build without answer vectors)
        replace(english_only, lang_first=False),  # not its language's first candidate
    ):
        j = judge([german, other], lang="de", threshold=0.5, foreign_margin=0.02, foreign_lang="en")
        assert not j.confident, other
    # only from the main language: an English question never gets a German-only answer
    german_only = _first("de-ship-01", 0.02, 0.90, False)
    english = _first("en-ret-01", 0.1, 0.80, True)
    for main in ("en", "de", None):
        j = judge([english, german_only], lang="en", threshold=0.5, foreign_margin=0.02,
                  foreign_lang=main)  # fmt: skip
        assert (j.confident, j.best is german_only) == ((True, True) if main == "de" else
                                                       (False, False)), main  # fmt: skip
    # a confident German hit wins as before
    sure = _first("de-ship-01", 0.9, 0.80, True)
    j = judge(
        [sure, english_only], lang="de", threshold=0.5, foreign_margin=0.02, foreign_lang="en"
    )
    assert j.best is sure


def test_language_names() -> None:
    assert texts.language_name("en", "de") == "Englisch"
    assert texts.language_name("de", "en") == "German"
    assert texts.language_name("fr", "de") == "fr"
    assert texts.text("other_language", "de", language="Englisch").endswith("auf Englisch:")


def test_refusal_offers_the_untranslated_main_language_candidate() -> None:
    german = _first("de-ship-01", 0.3, 0.80, True)
    english_only = _first("en-ret-01", 0.001, 0.805, False)  # below the margin: not answered
    favourite = replace(h("en-ship-01", 0.002), overall_first=True)
    hits = [german, english_only, favourite]
    j = judge(hits, lang="de", threshold=0.5, suggest_min=0.01, foreign_margin=0.02,
              foreign_lang="en")  # fmt: skip
    assert not j.confident
    assert [x.entry_id for x in j.near] == ["de-ship-01", "en-ret-01"]  # before the favourite
    j = judge(hits, lang="de", threshold=0.5, suggest_min=0.01)  # foreign answers off
    assert [x.entry_id for x in j.near] == ["de-ship-01", "en-ship-01"]


def test_model_defaults_for_suggestions_and_foreign_answers() -> None:
    from bot.decide import Route, foreign_margin_for, suggest_min_for

    s = Settings()
    assert suggest_min_for(s, "e5:multilingual-e5-small-q4") == 0.01
    assert suggest_min_for(s, "e5kb:0123") == 0.12
    assert suggest_min_for(Settings(suggest_min_score=0.3), "e5kb:0123") == 0.3
    retrieve, oos = Route("retrieve"), Route("out_of_scope")
    assert foreign_margin_for(s, "e5:x", retrieve) == 0.02
    assert foreign_margin_for(s, "e5kb:x", retrieve) == 0.01
    assert foreign_margin_for(s, "minilm:x", retrieve) is None
    assert foreign_margin_for(s, "e5:x", oos) is None
    assert foreign_margin_for(Settings(foreign_answers=False), "e5:x", retrieve) is None
    assert foreign_margin_for(Settings(foreign_answer_margin=0.05), "minilm:x", retrieve) == 0.05
