"""Absolute and relative date mentions in English and German, normalised to ISO dates.

:func:`find_dates` returns ``(start, end, iso)`` character spans. Relative expressions
("tomorrow", "übermorgen", "next Friday", "vor 3 Tagen") are resolved against ``ref``, so tests
inject a fixed reference date. Weekday rules: a bare/``on``/``next``/``this`` weekday is the next
such day strictly after ``ref`` (1–7 days ahead); ``last`` weekday is 1–7 days back.
Numeric dates: ``28.11.2026`` / ``28.11.`` (day first), ISO ``2026-11-28``, ``11/28/2026``
(month first unless the first number is > 12, then day first).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

_MONTHS: dict[str, int] = {}
for _i, _names in enumerate(
    [
        "january jan januar jänner jän",
        "february feb februar",
        "march mar märz maerz mär",
        "april apr",
        "may mai",
        "june jun juni",
        "july jul juli",
        "august aug",
        "september sep sept",
        "october oct oktober okt",
        "november nov",
        "december dec dezember dez",
    ],
    start=1,
):
    for _n in _names.split():
        _MONTHS[_n] = _i

_WEEKDAYS: dict[str, int] = {}
for _i, _names in enumerate(
    [
        "monday mon montag",
        "tuesday tue tues dienstag",
        "wednesday wed mittwoch",
        "thursday thu thurs donnerstag",
        "friday fri freitag",
        "saturday sat samstag sonnabend",
        "sunday sun sonntag",
    ]
):
    for _n in _names.split():
        _WEEKDAYS[_n] = _i

_NUMBER_WORDS: dict[str, int] = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "ein": 1,
    "eine": 1,
    "einem": 1,
    "einer": 1,
    "einen": 1,
    "zwei": 2,
    "drei": 3,
    "vier": 4,
    "fünf": 5,
    "sechs": 6,
    "sieben": 7,
    "acht": 8,
    "neun": 9,
    "zehn": 10,
}

_UNIT_DAYS: dict[str, int] = {}
for _unit, _days in (
    ("day days tag tage tagen", 1),
    ("week weeks woche wochen", 7),
):
    for _n in _unit.split():
        _UNIT_DAYS[_n] = _days

_MONTH_RE = "|".join(sorted((re.escape(m) for m in _MONTHS), key=len, reverse=True))
_WD_RE = "|".join(sorted((re.escape(w) for w in _WEEKDAYS), key=len, reverse=True))
_NUM_RE = r"\d{1,3}|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
_UNIT_RE = "|".join(sorted(_UNIT_DAYS, key=len, reverse=True)) + "|months?|monate?n?|monat"

_SIMPLE_RELATIVE: dict[str, int] = {
    "today": 0,
    "heute": 0,
    "tomorrow": 1,
    "morgen": 1,
    "yesterday": -1,
    "gestern": -1,
    "day after tomorrow": 2,
    "übermorgen": 2,
    "uebermorgen": 2,
    "day before yesterday": -2,
    "vorgestern": -2,
}

_B = r"(?<![\w.])"  # left boundary
_E = r"(?![\w])"  # right boundary

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("iso", re.compile(_B + r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})" + _E)),
    (
        "dmy_dot",
        re.compile(_B + r"(?P<d>\d{1,2})\.\s?(?P<m>\d{1,2})\.(?:\s?(?P<y>\d{4}|\d{2})(?![\d.]))?"),
    ),
    ("slash", re.compile(_B + r"(?P<a>\d{1,2})/(?P<b>\d{1,2})(?:/(?P<y>\d{4}|\d{2}))?" + _E)),
    (
        "d_month_y",
        re.compile(
            _B + r"(?:the\s+)?(?P<d>\d{1,2})(?:st|nd|rd|th|\.)?\s+(?:of\s+)?"
            r"(?P<mon>" + _MONTH_RE + r")\.?(?:,?\s+(?P<y>\d{4}))?" + _E,
            re.IGNORECASE,
        ),
    ),
    (
        "month_d_y",
        re.compile(
            _B + r"(?P<mon>" + _MONTH_RE + r")\.?\s+(?:the\s+)?(?P<d>\d{1,2})(?:st|nd|rd|th)?"
            r"(?:,?\s+(?P<y>\d{4}))?" + _E,
            re.IGNORECASE,
        ),
    ),
    (
        "simple",
        re.compile(
            _B + r"(?P<rel>(?:the\s+)?day\s+after\s+tomorrow|(?:the\s+)?day\s+before\s+yesterday|"
            r"today|tomorrow|yesterday|heute|übermorgen|uebermorgen|morgen|vorgestern|gestern)"
            + _E,
            re.IGNORECASE,
        ),
    ),
    (
        "in_n",
        re.compile(
            _B + r"in\s+(?P<n>" + _NUM_RE + r")\s+(?P<unit>" + _UNIT_RE + r")" + _E, re.IGNORECASE
        ),
    ),
    (
        "n_ago",
        re.compile(
            _B + r"(?P<n>" + _NUM_RE + r")\s+(?P<unit>" + _UNIT_RE + r")\s+ago" + _E, re.IGNORECASE
        ),
    ),
    (
        "vor_n",
        re.compile(
            _B + r"vor\s+(?P<n>" + _NUM_RE + r")\s+(?P<unit>" + _UNIT_RE + r")" + _E, re.IGNORECASE
        ),
    ),
    (
        "weekday",
        re.compile(
            _B + r"(?:(?P<mod>next|this|coming|last|past|previous|on|"
            r"nächste[nm]?|naechste[nm]?|kommende[nm]?|diese[nm]?|letzte[nm]?|vergangene[nm]?|am)"
            r"\s+)?(?P<wd>" + _WD_RE + r")" + _E,
            re.IGNORECASE,
        ),
    ),
]

_FULL_WEEKDAY = {
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "montag",
    "dienstag",
    "mittwoch",
    "donnerstag",
    "freitag",
    "samstag",
    "sonnabend",
    "sonntag",
}
_PAST_MODS = ("last", "past", "previous", "letzte", "vergangene")
_NOT_DATE_BEFORE_MORGEN = re.compile(r"(guten|gute|schönen|schoenen|jeden|am)\s+$", re.IGNORECASE)


def _year(raw: str | None, ref: date) -> int:
    if not raw:
        return ref.year
    y = int(raw)
    return 2000 + y if y < 100 else y


def _safe_date(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def _number(raw: str) -> int:
    return int(raw) if raw.isdigit() else _NUMBER_WORDS[raw.lower()]


def _shift(ref: date, n: int, unit: str) -> date:
    unit = unit.lower()
    if unit.startswith(("month", "monat")):
        month0 = ref.month - 1 + n
        y, m = ref.year + month0 // 12, month0 % 12 + 1
        for d in (ref.day, 30, 29, 28):
            got = _safe_date(y, m, d)
            if got:
                return got
    return ref + timedelta(days=n * _UNIT_DAYS[unit])


def _resolve(kind: str, m: re.Match[str], ref: date, text: str) -> date | None:
    g = m.groupdict()
    if kind == "iso":
        return _safe_date(int(g["y"]), int(g["m"]), int(g["d"]))
    if kind == "dmy_dot":
        return _safe_date(_year(g["y"], ref), int(g["m"]), int(g["d"]))
    if kind == "slash":
        a, b = int(g["a"]), int(g["b"])
        mon, day = (b, a) if a > 12 else (a, b)
        return _safe_date(_year(g["y"], ref), mon, day)
    if kind in ("d_month_y", "month_d_y"):
        mon_name = g["mon"].lower()
        if mon_name == "may" and kind == "month_d_y" and not g["y"]:
            return None  # "may 5" is too often the verb ("may 2 people ...")
        return _safe_date(_year(g["y"], ref), _MONTHS[mon_name], int(g["d"]))
    if kind == "simple":
        rel = re.sub(r"\s+", " ", g["rel"].lower()).removeprefix("the ")
        if rel == "morgen" and _NOT_DATE_BEFORE_MORGEN.search(text[: m.start()]):
            return None
        return ref + timedelta(days=_SIMPLE_RELATIVE[rel])
    if kind == "in_n":
        return _shift(ref, _number(g["n"]), g["unit"])
    if kind in ("n_ago", "vor_n"):
        return _shift(ref, -_number(g["n"]), g["unit"])
    # weekday
    wd_name, mod = g["wd"].lower(), (g["mod"] or "").lower()
    if not mod and wd_name not in _FULL_WEEKDAY:
        return None  # bare "mon"/"sat" are too ambiguous
    wd = _WEEKDAYS[wd_name]
    if mod.startswith(_PAST_MODS):
        back = (ref.weekday() - wd) % 7 or 7
        return ref - timedelta(days=back)
    ahead = (wd - ref.weekday()) % 7 or 7
    return ref + timedelta(days=ahead)


def _trimmed_start(kind: str, m: re.Match[str]) -> int:
    """Leave "on"/"am"/"the" out of the span: "on Monday" → "Monday"."""
    if kind == "weekday" and (m.group("mod") or "").lower() in ("on", "am"):
        return m.start("wd")
    if kind == "d_month_y":
        return m.start("d")
    if kind == "simple" and m.group("rel").lower().startswith("the"):
        return m.start("rel") + 4
    return m.start()


def find_dates(text: str, ref: date) -> list[tuple[int, int, str]]:
    """All date mentions in ``text`` as non-overlapping ``(start, end, "YYYY-MM-DD")``."""
    found: list[tuple[int, int, str]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.span()
            if any(start < e and s < end for s, e in taken):
                continue
            resolved = _resolve(kind, m, ref, text)
            if resolved is None:
                continue
            start = _trimmed_start(kind, m)
            found.append((start, end, resolved.isoformat()))
            taken.append((start, end))
    return sorted(found)
