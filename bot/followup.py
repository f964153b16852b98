"""Follow-up questions: a short message that only makes sense after the previous one.

"How long does delivery to Germany take?" → "and to Austria?"; "Do you ship to Switzerland?"
→ "what about customs?"; "Wie schicke ich etwas zurück?" → "was kostet das?". On its own the
follow-up is retrieved badly (or judged off topic), so the engine also searches with the
previous question in front (:func:`with_context`). Only messages that look like follow-ups
(:func:`looks_like_followup`) get the second search: a self-contained new question ("do you
ship to Spain?") is taken as asked.

The search in context wins when it is confident (:func:`prefer_context`), however confident the
message's own is; for a message the NLU calls off topic its entry must also contain one of the
follow-up's own words (:func:`adds_to`): "and what's the weather?" after a shipping question
must not re-answer the shipping question. A follow-up that points back with a pronoun
(:func:`refers_back`) is never answered on its own.

Pure functions, no models: the markers are word lists per language.
"""

from __future__ import annotations

import re

from bot.conversation import ConversationContext
from bot.decide import Judgement
from knowledge.schema import Entry
from retrieval.lexical import tokenize
from retrieval.store import lexical_text

_WORD = re.compile(r"[\w'-]+", re.UNICODE)
MAX_WORDS = 8
"""Longer messages are self-contained questions, whatever words they start with."""
SHORT_WORDS = 3
"""Up to this many words ("express?", "Österreich?", "and by card?") a message is elliptical."""

# A message starting with one of these continues the previous question.
_OPENERS = (
    "and",
    "what about",
    "how about",
    "also",
    "same for",
    "what if",
    "but",
    "or",
    "und",
    "was ist mit",
    "wie ist es mit",
    "wie sieht es mit",
    "wie sieht's mit",
    "auch",
    "gilt das auch",
    "aber",
    "oder",
)
# A message with one of these (and few other words) refers back to the previous topic.
_REFERENCES_EN = ("that", "it", "this", "those", "them")
_REFERENCES_DE = ("das", "dies", "dieses", "diese", "dafür", "dabei", "davon", "damit", "dort")
_REFERENCES = frozenset((*_REFERENCES_EN, *_REFERENCES_DE))
_MIN_PREFIX = 4
_MARKER_TOKENS = frozenset(tokenize(" ".join((*_OPENERS, *_REFERENCES))))


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def looks_like_followup(text: str) -> bool:
    """Whether ``text`` may continue the previous question: it opens with a continuation
    ("and …", "what about …", "und …", "was ist mit …"), refers back ("how much does that
    cost?", "wie lange dauert das?"), or is elliptical (at most :data:`SHORT_WORDS` words) —
    and has at most :data:`MAX_WORDS` words."""
    ws = words(text)
    if not ws or len(ws) > MAX_WORDS:
        return False
    if len(ws) <= SHORT_WORDS:
        return True
    joined = " ".join(ws)
    if any(joined == o or joined.startswith(o + " ") for o in _OPENERS):
        return True
    return refers_back(text)


def previous_question(ctx: ConversationContext) -> str | None:
    """The user's previous message, when the bot answered it last (the exchange right before
    this message); ``None`` at the start of a conversation or after an agent spoke."""
    history = ctx.history
    if len(history) < 2 or history[-1].role != "bot" or history[-2].role != "user":
        return None
    text = history[-2].text.strip()
    return text or None


def with_context(previous: str, text: str) -> str:
    """The search text for a follow-up: the previous question, then the message."""
    return f"{previous.strip()} {text.strip()}"


def adds_to(text: str, entry: Entry) -> bool:
    """Whether ``entry`` contains one of the follow-up's own words (stemmed, stopwords and
    the continuation/reference markers left out; a word of 4+ letters also matches one it
    begins or that begins it: "kostet" / "Kosten")."""
    own = set(tokenize(text)) - _MARKER_TOKENS
    if not own:
        return False
    theirs = set(tokenize(lexical_text(entry)))
    return any(o in theirs or _prefix_match(o, theirs) for o in own)


def _prefix_match(word: str, tokens: set[str]) -> bool:
    if len(word) < _MIN_PREFIX:
        return False
    return any(len(t) >= _MIN_PREFIX and (t.startswith(word) or word.startswith(t)) for t in tokens)


def prefer_context(in_context: Judgement, text: str, *, off_topic: bool) -> bool:
    """Whether the judgement of the search with the previous question replaces the message's
    own: when it is confident — however confident the message's own is, since a follow-up
    alone lacks its subject ("how long does it take?" alone finds delivery times). A message
    the NLU calls off topic ("and what's the weather?") needs its own words in the entry
    (:func:`adds_to`), or it would only re-answer the previous question."""
    best = in_context.best
    if not in_context.confident or best is None:
        return False
    return not off_topic or adds_to(text, best.entry)


def refers_back(text: str) -> bool:
    """Whether ``text`` points at the previous topic with a pronoun ("how much does that
    cost?", "wie lange dauert das?"): on its own it lacks its subject."""
    return any(w in _REFERENCES for w in words(text))
