"""Lead capture in the chat: a visitor who types an email address is asked, in the same bot
reply, whether the team may contact them there; only an explicit "yes" to that question
links a contact to the conversation with consent recorded (the question's exact wording, the
answer, ``consent_source="chat:yes_to_prompt"``). "No" links nothing.

:class:`LeadCapture` wraps any :class:`~bot.conversation.ChatEngine`:

1. a message with an email (conversation with the bot, answer not a handoff / action / error):
   the inner engine answers as usual and the consent question is appended before ``Done``; a
   message that is little more than the address (e.g. after the "no agent available" offer,
   :mod:`bot.handoff_fallback`) gets only the question (``Done.mode="action"``);
2. the next message, if the previous bot reply ended with that question: "yes" →
   ``ActionEvent(capture_contact)`` carrying the email, optional name and consent wording (the
   web layer turns it into a contact and a ``contact_linked`` event, see
   :func:`append_turn_events`; the action itself is never published); "no" → a short
   acknowledgement; anything else goes to the inner engine (no consent).

The question is recognised in the conversation history (no extra state), like the engine's
order-number follow-up. Nothing here logs message text or addresses.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.conversation import ChatEngine, ConversationContext, Turn
from bot.events import ActionEvent, Done, Error, Event, Handoff, Token
from bot.nlu.entities import extract_entities
from bot.store.contacts import Consent, capture_lead
from bot.store.writes import NewEvent, StoredEvent, append_events

CAPTURE_ACTION = "capture_contact"
CONSENT_SOURCE = "chat:yes_to_prompt"

PROMPTS = {
    "en": "May we contact you at {email} about your request? Please answer yes or no.",
    "de": "Dürfen wir Sie unter {email} zu Ihrem Anliegen kontaktieren? "
    "Bitte antworten Sie mit Ja oder Nein.",
}
_THANKS = {
    "en": "Thank you! We may contact you at {email} about your request.",
    "de": "Danke! Wir dürfen Sie unter {email} zu Ihrem Anliegen kontaktieren.",
}
_DECLINED = {
    "en": "All right, we won't contact you at that address.",
    "de": "In Ordnung, wir kontaktieren Sie nicht unter dieser Adresse.",
}
# fmt: off
_YES = frozenset((
    "yes", "y", "yeah", "yep", "sure", "ok", "okay", "fine", "please", "agreed",
    "ja", "jap", "jo", "gerne", "gern", "klar", "einverstanden", "natürlich", "sicher", "bitte",
))
_NO = frozenset((
    "no", "n", "nope", "nah", "never", "don't", "dont", "not",
    "nein", "ne", "nö", "lieber", "nicht",
))
# fmt: on
_WORD = re.compile(r"[^\W\d_]+(?:'[a-z]+)?", re.UNICODE)
_PROMPT_RE = [
    (lang, re.compile(re.escape(p).replace(re.escape("{email}"), r"(?P<email>\S+@\S+?)") + r"\s*$"))
    for lang, p in PROMPTS.items()
]
_NAME = re.compile(
    r"(?i:\b(?:my name is|name:|this is|mein name ist|ich hei(?:ß|ss)e|hier ist))\s+"
    r"(?P<name>[A-ZÄÖÜ][\w'’-]+(?:\s+[A-ZÄÖÜ][\w'’-]+){0,2})"
)
_SKIP_MODES = frozenset({"handoff", "action"})
_EMAIL_ANY = re.compile(r"\S+@\S+")


@dataclass(frozen=True, slots=True)
class PendingPrompt:
    email: str
    lang: str
    prompt: str
    name: str | None


def find_email(text: str) -> str | None:
    """The first email address in ``text`` (lower-cased, as the NLU normalises it)."""
    if "@" not in text:
        return None
    found = [e for e in extract_entities(text, include_products=False) if e.label == "EMAIL"]
    return found[0].value if found else None


def find_name(text: str) -> str | None:
    """A name introduced explicitly ("my name is Anna Berg", "ich heiße …"), else ``None``."""
    m = _NAME.search(text)
    return m.group("name").strip() if m else None


def yes_or_no(text: str) -> bool | None:
    """``True``/``False`` for a short yes/no answer (EN/DE), ``None`` for anything else."""
    words = _WORD.findall(text.lower())
    if not words or len(words) > 4:
        return None
    if words[0] in _NO or "nicht" in words or "not" in words:
        return False
    if words[0] in _YES:
        return True
    return None


def pending_prompt(history: Sequence[Turn]) -> PendingPrompt | None:
    """The consent question, if the last bot reply ended with it."""
    if not history or history[-1].role != "bot":
        return None
    for lang, pattern in _PROMPT_RE:
        m = pattern.search(history[-1].text)
        if m:
            email = m.group("email")
            user = next((t.text for t in reversed(history[:-1]) if t.role == "user"), "")
            return PendingPrompt(email, lang, PROMPTS[lang].format(email=email), find_name(user))
    return None


def _only_email(text: str) -> bool:
    """Whether ``text`` is an email address with at most a few words around it ("my email is
    …", "hier: …, danke")."""
    rest = _EMAIL_ANY.sub(" ", text)
    return len(_WORD.findall(rest)) <= 4


def _already_captured(history: Sequence[Turn], email: str) -> bool:
    marks = [t.format(email=email) for t in _THANKS.values()]
    return any(t.role == "bot" and any(m in t.text for m in marks) for t in history)


def _lang(lang: str) -> str:
    return lang if lang in PROMPTS else "en"


class LeadCapture:
    """A :class:`~bot.conversation.ChatEngine` that adds lead capture to ``inner``."""

    def __init__(self, inner: ChatEngine) -> None:
        self.inner = inner

    async def turn(
        self, text: str, ctx: ConversationContext, *, turn_id: str
    ) -> AsyncIterator[Event]:
        if ctx.handoff_state != "bot":
            async for ev in self.inner.turn(text, ctx, turn_id=turn_id):
                yield ev
            return
        pending = pending_prompt(ctx.history)
        answer = yes_or_no(text) if pending is not None else None
        if pending is not None and answer is not None:
            for ev in _answer(pending, answer, text, turn_id):
                yield ev
            return
        email = find_email(text)
        if email is not None and _already_captured(ctx.history, email):
            email = None
        if email is not None and _only_email(text):
            # e.g. the answer to "leave your email address" (bot.handoff_fallback): nothing
            # for the knowledge to answer, so no fallback turn — just the question
            lang = _lang(ctx.lang or "en")
            yield Token(text=PROMPTS[lang].format(email=email))
            yield Done(turn_id=turn_id, mode="action", answered=True, confidence=1.0, lang=lang)
            return
        skip = email is None
        async for ev in self.inner.turn(text, ctx, turn_id=turn_id):
            if isinstance(ev, Handoff | Error):
                skip = True
            if isinstance(ev, Done) and not skip and ev.mode not in _SKIP_MODES:
                prompt = PROMPTS[_lang(ev.lang)].format(email=email)
                yield Token(text="\n\n" + prompt)
            yield ev


def _answer(pending: PendingPrompt, yes: bool, text: str, turn_id: str) -> list[Event]:
    lang = pending.lang
    done = Done(turn_id=turn_id, mode="action", answered=True, confidence=1.0, lang=lang)
    if not yes:
        return [Token(text=_DECLINED[lang]), done]
    data: dict[str, object] = {
        "email": pending.email,
        "name": pending.name,
        "consent_text": f"{pending.prompt}\n— {text.strip()[:200]}",
    }
    return [
        Token(text=_THANKS[lang].format(email=pending.email)),
        ActionEvent(name=CAPTURE_ACTION, status="ok", data=data),
        done,
    ]


def append_turn_events(
    s: Session, conversation_id: str, events: Sequence[NewEvent]
) -> list[StoredEvent]:
    """Append a turn's events in order; a ``capture_contact`` action becomes the captured
    contact (created or found by email, consent recorded) and its ``contact_linked`` event
    (the action, which carries the address, is not stored or published itself)."""
    stored: list[StoredEvent] = []
    batch: list[NewEvent] = []
    for ev in events:
        if ev.type == "action" and ev.payload.get("name") == CAPTURE_ACTION:
            stored += append_events(s, conversation_id, batch)
            batch = []
            data = ev.payload.get("data") or {}
            lead = capture_lead(
                s,
                conversation_id,
                email=str(data["email"]),
                name=str(data["name"]) if data.get("name") else None,
                consent=Consent(True, CONSENT_SOURCE, str(data.get("consent_text") or "")),
                turn_id=ev.turn_id,
            )
            stored += lead.events
        else:
            batch.append(ev)
    stored += append_events(s, conversation_id, batch)
    return stored
