"""Rule-based entities with normalised values, independent of spaCy.

:func:`extract_entities` finds ORDER_NUMBER, EMAIL, PHONE, DATE, MONEY and PRODUCT mentions and
returns non-overlapping :class:`~bot.nlu.types.Entity` objects sorted by position. The spaCy
component in :mod:`bot.nlu.components` wraps the same extractors (PRODUCT via an
``entity_ruler``). Values: order number upper-cased, email lower-cased, phone E.164, date ISO,
money ``"19.99 EUR"``, product its catalog name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from bot.nlu.dates import find_dates
from bot.nlu.types import Entity

DEFAULT_ORDER_PATTERN = r"[A-Z]{2}-\d{5}"
# Earlier labels win when spans overlap (then the longer span).
LABEL_PRIORITY = ("EMAIL", "ORDER_NUMBER", "MONEY", "DATE", "PHONE", "PRODUCT")

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}(?![\w-])")

_CURRENCIES: dict[str, str] = {
    "€": "EUR",
    "eur": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "$": "USD",
    "usd": "USD",
    "dollar": "USD",
    "dollars": "USD",
    "us$": "USD",
    "£": "GBP",
    "gbp": "GBP",
    "pound": "GBP",
    "pounds": "GBP",
    "chf": "CHF",
    "franken": "CHF",
}
_CUR_RE = "|".join(sorted((re.escape(c) for c in _CURRENCIES), key=len, reverse=True))
_AMOUNT_RE = r"\d{1,3}(?:[.,\s]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_MONEY_AFTER = re.compile(
    r"(?<![\w.,])(?P<amt>" + _AMOUNT_RE + r")(?:[.,]-+)?\s?(?P<cur>" + _CUR_RE + r")(?![\w])",
    re.IGNORECASE,
)
_MONEY_BEFORE = re.compile(
    r"(?<![\w])(?P<cur>" + _CUR_RE + r")\s?(?P<amt>" + _AMOUNT_RE + r")(?![\d])",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ProductName:
    """A catalog product: its canonical ``name`` and the ``aliases`` users write."""

    name: str
    aliases: tuple[str, ...] = ()


def parse_amount(raw: str) -> Decimal | None:
    """``"1.299,00"`` / ``"1,299.00"`` / ``"19,99"`` / ``"20"`` → Decimal (None if not a number)."""
    s = re.sub(r"\s", "", raw)
    last_dot, last_comma = s.rfind("."), s.rfind(",")
    sep = max(last_dot, last_comma)
    if sep >= 0 and len(s) - sep - 1 in (1, 2):  # decimal separator
        whole, frac = s[:sep], s[sep + 1 :]
        s = re.sub(r"[.,]", "", whole) + "." + frac
    else:  # only thousands separators
        s = re.sub(r"[.,]", "", s)
    try:
        return Decimal(s)
    except InvalidOperation:
        return None


def _money(text: str) -> Iterable[tuple[int, int, str]]:
    for pattern in (_MONEY_AFTER, _MONEY_BEFORE):
        for m in pattern.finditer(text):
            amount = parse_amount(m.group("amt"))
            if amount is None:
                continue
            currency = _CURRENCIES[m.group("cur").lower()]
            yield m.start(), m.end(), f"{amount.quantize(Decimal('0.01'))} {currency}"


def _emails(text: str) -> Iterable[tuple[int, int, str]]:
    for m in _EMAIL.finditer(text):
        yield m.start(), m.end(), m.group().lower()


def _orders(text: str, pattern: re.Pattern[str]) -> Iterable[tuple[int, int, str]]:
    for m in pattern.finditer(text):
        yield m.start(), m.end(), m.group().upper()


def _phones(text: str, region: str) -> Iterable[tuple[int, int, str]]:
    import phonenumbers

    for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
        yield (
            m.start,
            m.end,
            phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164),
        )


def compile_order_pattern(pattern: str) -> re.Pattern[str]:
    """The order-number regex, case-insensitive, not inside a longer word/number."""
    return re.compile(r"(?<![\w-])(?:" + pattern + r")(?![\w-])", re.IGNORECASE)


def product_patterns(products: Sequence[ProductName]) -> list[tuple[str, str]]:
    """``(phrase, canonical name)`` for every name and alias, longest phrases first."""
    pairs = {(p.name, p.name) for p in products} | {
        (alias, p.name) for p in products for alias in p.aliases
    }
    return sorted(pairs, key=lambda pair: -len(pair[0]))


def _products(text: str, products: Sequence[ProductName]) -> Iterable[tuple[int, int, str]]:
    for phrase, name in product_patterns(products):
        regex = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in phrase.split()) + r"(?!\w)"
        for m in re.finditer(regex, text, re.IGNORECASE):
            yield m.start(), m.end(), name


def resolve_overlaps(candidates: Iterable[Entity]) -> list[Entity]:
    """Keep non-overlapping entities, preferring :data:`LABEL_PRIORITY` order, then length."""
    rank = {label: i for i, label in enumerate(LABEL_PRIORITY)}
    ordered = sorted(
        candidates, key=lambda e: (rank.get(e.label, len(rank)), -(e.end - e.start), e.start)
    )
    kept: list[Entity] = []
    for ent in ordered:
        if all(ent.end <= k.start or ent.start >= k.end for k in kept):
            kept.append(ent)
    return sorted(kept, key=lambda e: e.start)


def extract_entities(
    text: str,
    *,
    ref_date: date | None = None,
    order_pattern: str | re.Pattern[str] = DEFAULT_ORDER_PATTERN,
    products: Sequence[ProductName] = (),
    phone_region: str = "DE",
    include_products: bool = True,
) -> list[Entity]:
    """All rule-based entities in ``text`` (both languages' patterns are always active)."""
    ref = ref_date or date.today()
    order_re = (
        order_pattern
        if isinstance(order_pattern, re.Pattern)
        else compile_order_pattern(order_pattern)
    )
    found: list[Entity] = []
    sources: list[tuple[str, Iterable[tuple[int, int, str]]]] = [
        ("EMAIL", _emails(text)),
        ("ORDER_NUMBER", _orders(text, order_re)),
        ("MONEY", _money(text)),
        ("DATE", find_dates(text, ref)),
        ("PHONE", _phones(text, phone_region)),
    ]
    if include_products:
        sources.append(("PRODUCT", _products(text, products)))
    for label, spans in sources:
        found.extend(Entity(label, text[s:e], s, e, v) for s, e, v in spans)
    return resolve_overlaps(found)
