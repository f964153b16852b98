"""The engine's decisions as pure functions: which path a parsed message takes (:func:`route`)
and whether the retrieved hits are good enough to answer (:func:`judge`).

Kept free of I/O so every branch is unit-testable without models.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from bot import texts
from bot.config import Settings
from bot.conversation import ConversationContext
from bot.nlu.types import ParsedMessage
from bot.smalltalk import is_smalltalk
from knowledge.schema import EntryKind
from retrieval.calibration import suggest_floor_for
from retrieval.translations import foreign_margin
from retrieval.types import Hit

RouteKind = Literal[
    "smalltalk", "handoff", "order", "ask_order", "complaint", "out_of_scope", "retrieve"
]

_WORD = re.compile(r"\w+")
SMALLTALK_MAX_WORDS = 5
"""Smalltalk intents on longer messages ("hi, how long does shipping take?") still retrieve."""


@dataclass(frozen=True, slots=True)
class Route:
    kind: RouteKind
    order_number: str | None = None


def _last_bot_text(ctx: ConversationContext) -> str:
    for turn in reversed(ctx.history):
        if turn.role != "user":
            return turn.text
    return ""


def _offered_human(bot_text: str) -> bool:
    return any(
        bot_text.rstrip().endswith(texts.text(key, lang).split(". ")[-1])
        for key in ("fallback", "out_of_scope")
        for lang in ("en", "de")
    )


def _mostly_order_number(text: str, number_text: str) -> bool:
    rest = text.replace(number_text, " ")
    return len(_WORD.findall(rest)) <= 3


def route(parsed: ParsedMessage, ctx: ConversationContext) -> Route:
    """The path for this message before retrieval.

    Order: an order number in reply to our question (or with ``order_status``) → ``order``;
    ``human_handoff`` → ``handoff``; an affirmation right after we offered a human → ``handoff``;
    ``order_status`` without a number → ``ask_order`` (the engine answers a confident knowledge
    match, e.g. "how do I cancel my order?", and asks for the number otherwise); ``complaint``;
    short smalltalk;
    out of scope; everything else → ``retrieve``.
    """
    intent = parsed.intent
    order = parsed.entity("ORDER_NUMBER")
    last_bot = _last_bot_text(ctx)
    if order is not None and (
        intent == "order_status"
        or texts.matches("ask_order_number", last_bot)
        or _mostly_order_number(parsed.text, order.text)
    ):
        return Route("order", order_number=order.value)
    if intent == "human_handoff":
        return Route("handoff")
    if intent == "affirm" and _offered_human(last_bot):
        return Route("handoff")
    if intent == "order_status":
        return Route("ask_order")
    if intent == "complaint":
        return Route("complaint")
    if is_smalltalk(intent) and len(_WORD.findall(parsed.text)) <= SMALLTALK_MAX_WORDS:
        return Route("smalltalk")
    if parsed.out_of_scope:
        return Route("out_of_scope")
    return Route("retrieve")


@dataclass(frozen=True, slots=True)
class Judgement:
    confident: bool
    confidence: float
    best: Hit | None
    close: tuple[Hit, ...] = field(default_factory=tuple)  # other entries nearly as good
    near: tuple[Hit, ...] = field(default_factory=tuple)  # below threshold but worth suggesting


def _distinct(hits: Sequence[Hit]) -> list[Hit]:
    seen: set[str] = set()
    out: list[Hit] = []
    for h in hits:
        if h.entry_id not in seen:
            seen.add(h.entry_id)
            out.append(h)
    return out


def judge(
    hits: Sequence[Hit],
    *,
    lang: str,
    threshold: float,
    close_margin: float = 0.05,
    suggest_floor: float = 0.15,
    max_suggestions: int = 2,
    cross_lang_margin: float = 0.15,
    suggest_min: float | None = None,
    foreign_margin: float | None = None,
    foreign_lang: str | None = None,
) -> Judgement:
    """Whether to answer, and from which hit.

    A hit in the user's language at or above ``threshold`` is preferred over a better one in
    another language (the user should get an answer they can read); a hit in another language
    is only answered at ``threshold + cross_lang_margin`` (in a bilingual knowledge base a
    weak cross-language match is usually a spurious one). ``close``
    lists other FAQ entries within ``close_margin`` of the best ("Did you mean …?" — only FAQ
    questions make sensible suggestion buttons; a help-page section is usually the same
    content);
    ``near`` lists up to ``max_suggestions + 1`` FAQ entries (in the retriever's fused order)
    scoring at least ``suggest_min`` — default ``threshold - suggest_floor`` — when nothing
    is confident; the last place goes to the retriever's overall favourite in another language
    (``Hit.overall_first``) when it is an FAQ entry.

    Content in another language only: with ``foreign_margin`` and ``foreign_lang`` set and
    nothing confident, the first hit in ``foreign_lang`` (``Hit.lang_first``; the knowledge
    base's main language, which the other languages translate in part) is answered when its
    entry has no translation in the knowledge base (``Hit.translated is False``) and its
    cosine beats the first same-language hit's by ``foreign_margin`` — a German question about
    an English-only page. Its calibrated score cannot say so: across languages there is no
    lexical overlap.
    """
    ranked = _distinct(sorted(hits, key=lambda h: h.score, reverse=True))
    if not ranked:
        return Judgement(confident=False, confidence=0.0, best=None)
    same_lang = [h for h in ranked if h.lang == lang]
    best = ranked[0]
    if same_lang and same_lang[0].score >= threshold:
        best = same_lang[0]
    pool = same_lang or ranked
    bar = threshold if best.lang == lang else threshold + cross_lang_margin
    if best.score >= bar:
        close = tuple(
            h
            for h in pool
            if h.entry_id != best.entry_id
            and h.entry.kind == EntryKind.FAQ
            and h.score >= threshold
            and best.score - h.score <= close_margin
        )[:max_suggestions]
        return Judgement(confident=True, confidence=best.score, best=best, close=close)
    foreign = _only_elsewhere(hits, lang, foreign_lang, foreign_margin)
    if foreign is not None:
        return Judgement(confident=True, confidence=foreign.score, best=foreign)
    floor = threshold - suggest_floor if suggest_min is None else suggest_min
    # in the retriever's fused order: below the threshold the calibrated scores are close and
    # the fused first is more often the right one (development files, docs/engine.md)
    near = sorted(
        (h for h in pool if h.entry.kind == EntryKind.FAQ and h.score >= floor),
        key=lambda h: h.rank,
    )
    # the retriever's overall favourite in another language: often the only entry on the
    # topic (a German question about English-only content), however low its score; before it,
    # the main language's first candidate when it has no translation (answered above when it
    # clears the margin, offered when it does not)
    other = [h for h in ranked if h.overall_first and h.lang != lang and h not in near]
    if foreign_margin is not None:
        alone = [
            h
            for h in hits
            if _untranslated_first(h, lang, foreign_lang)
            and h.entry.kind == EntryKind.FAQ
            and h not in near
        ]
        other = alone[:1] + other
    if other and other[0].entry.kind == EntryKind.FAQ:
        near = [*near[:max_suggestions], other[0]]
    return Judgement(
        confident=False, confidence=best.score, best=best, near=tuple(near[: max_suggestions + 1])
    )


def suggest_min_for(settings: Settings, model: str) -> float:
    """``judge``'s ``suggest_min``: the setting, else the index model's own floor."""
    if settings.suggest_min_score is not None:
        return settings.suggest_min_score
    return suggest_floor_for(model)


def foreign_margin_for(settings: Settings, model: str, r: Route) -> float | None:
    """``judge``'s ``foreign_margin``: the setting, else the index model's own; never for a
    message the NLU put out of scope."""
    if not settings.foreign_answers or r.kind == "out_of_scope":
        return None
    if settings.foreign_answer_margin is not None:
        return settings.foreign_answer_margin
    return foreign_margin(model)


def _untranslated_first(h: Hit, lang: str, foreign: str | None) -> bool:
    """``h`` is the first candidate of the main language ``foreign`` (not the user's), and
    nothing in the knowledge base translates it."""
    return h.lang_first and h.lang == foreign != lang and h.translated is False


def _only_elsewhere(
    hits: Sequence[Hit], lang: str, foreign: str | None, margin: float | None
) -> Hit | None:
    """The other-language hit to answer from (see :func:`judge`), if any."""
    if margin is None or foreign is None or foreign == lang:
        return None
    mine = next((h for h in hits if h.lang_first and h.lang == lang), None)
    if mine is None:
        return None
    return next(
        (
            h
            for h in hits
            if _untranslated_first(h, lang, foreign) and h.dense_score - mine.dense_score >= margin
        ),
        None,
    )
