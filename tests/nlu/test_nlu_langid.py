from __future__ import annotations

import pytest

from bot.nlu.langid import LanguageDetector


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector(("en", "de"), default="en")


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Where is my order?", "en"),
        ("Wo ist meine Bestellung?", "de"),
        ("I want to return my tent", "en"),
        ("Ich möchte mein Zelt zurückgeben", "de"),
        ("danke", "de"),
        ("Hallo!", "de"),
        ("thanks", "en"),
        ("Kann ich mit Paypal zahlen", "de"),
        ("can I pay with paypal", "en"),
        ("Lieferzeit nach Österreich?", "de"),
        ("shipping costs to Austria?", "en"),
        ("Wie lange dauert der Versand", "de"),
        ("NC-12345 wo bleibt das", "de"),
    ],
)
def test_short_messages(detector: LanguageDetector, text: str, lang: str) -> None:
    assert detector.detect(text).lang == lang


@pytest.mark.parametrize("text", ["ok", "👍", "NC-12345", "12.12.2026", "hi"])
def test_unsure_messages_use_hint_then_default(detector: LanguageDetector, text: str) -> None:
    assert detector.detect(text, hint="de").lang == "de"
    assert detector.detect(text).lang == "en"
    assert detector.detect(text).method in ("default", "hint")


def test_unsupported_hint_is_ignored(detector: LanguageDetector) -> None:
    assert detector.detect("ok", hint="fr").lang == "en"


def test_single_language_always_that_language() -> None:
    assert LanguageDetector(("de",)).detect("where is my order").lang == "de"


@pytest.mark.parametrize(
    ("text", "hint", "lang"),
    [
        ("and Klarna?", "en", "en"),  # lingua: German 0.77 — the conversation stays English
        ("and PayPal?", "en", "en"),
        ("und mit Kreditkarte?", "en", "de"),  # sure enough (0.97): the user switched
        ("what about customs?", "de", "en"),
        ("Österreich?", "en", "de"),  # umlauts are German
    ],
)
def test_short_follow_ups_keep_the_conversation_language_unless_sure(
    detector: LanguageDetector, text: str, hint: str, lang: str
) -> None:
    assert detector.detect(text, hint=hint).lang == lang
