from __future__ import annotations

import pytest
from nlu_fakes import REF_DATE  # Saturday 2026-11-28

from bot.nlu.dates import find_dates


def _values(text: str) -> list[tuple[str, str]]:
    return [(text[s:e], iso) for s, e, iso in find_dates(text, REF_DATE)]


@pytest.mark.parametrize(
    ("text", "span", "iso"),
    [
        ("It should arrive tomorrow", "tomorrow", "2026-11-29"),
        ("I ordered it yesterday", "yesterday", "2026-11-27"),
        ("the day after tomorrow works", "day after tomorrow", "2026-11-30"),
        ("Kommt das Paket morgen?", "morgen", "2026-11-29"),
        ("Ich habe gestern bestellt", "gestern", "2026-11-27"),
        ("übermorgen passt", "übermorgen", "2026-11-30"),
        ("vorgestern kam nichts", "vorgestern", "2026-11-26"),
        ("see you next Friday", "next Friday", "2026-12-04"),
        ("can you deliver on Monday", "Monday", "2026-11-30"),
        ("it broke last friday", "last friday", "2026-11-27"),
        ("nächsten Dienstag bitte", "nächsten Dienstag", "2026-12-01"),
        ("letzten Montag bestellt", "letzten Montag", "2026-11-23"),
        ("in 3 days", "in 3 days", "2026-12-01"),
        ("in two weeks", "in two weeks", "2026-12-12"),
        ("5 days ago", "5 days ago", "2026-11-23"),
        ("vor 3 Tagen", "vor 3 Tagen", "2026-11-25"),
        ("in einer Woche", "in einer Woche", "2026-12-05"),
    ],
)
def test_relative_dates_use_reference_date(text: str, span: str, iso: str) -> None:
    assert _values(text) == [(span, iso)]


@pytest.mark.parametrize(
    ("text", "span", "iso"),
    [
        ("delivered on 2026-12-03", "2026-12-03", "2026-12-03"),
        ("bestellt am 03.12.2026", "03.12.2026", "2026-12-03"),
        ("bestellt am 3.12.", "3.12.", "2026-12-03"),
        ("am 3.12.26", "3.12.26", "2026-12-03"),
        ("on 12/24/2026", "12/24/2026", "2026-12-24"),
        ("on 24/12/2026", "24/12/2026", "2026-12-24"),
        ("on December 5, 2026", "December 5, 2026", "2026-12-05"),
        ("on the 5th of December", "5th of December", "2026-12-05"),
        ("by Dec 24th", "Dec 24th", "2026-12-24"),
        ("am 5. Dezember 2026", "5. Dezember 2026", "2026-12-05"),
        ("bis 1. März", "1. März", "2026-03-01"),
    ],
)
def test_absolute_dates(text: str, span: str, iso: str) -> None:
    assert _values(text) == [(span, iso)]


@pytest.mark.parametrize(
    "text",
    ["Guten Morgen!", "I may 5 things", "version 3.2 released", "call 0301234567", "31.02.2026"],
)
def test_not_dates(text: str) -> None:
    assert _values(text) == []
