"""Canned replies for smalltalk intents (greeting, thanks, goodbye, affirm, deny) in EN and DE."""

from __future__ import annotations

from collections.abc import Mapping

SMALLTALK_INTENTS = frozenset({"greeting", "thanks", "goodbye", "affirm", "deny"})

_REPLIES: Mapping[str, Mapping[str, str]] = {
    "greeting": {
        "en": "Hello! I'm the support assistant. Ask me about orders, shipping, returns, "
        "payment or our products.",
        "de": "Hallo! Ich bin der Support-Assistent. Fragen Sie mich zu Bestellungen, Versand, "
        "Rücksendungen, Zahlung oder unseren Produkten.",
    },
    "thanks": {
        "en": "You're welcome! Is there anything else I can help you with?",
        "de": "Gern geschehen! Kann ich Ihnen sonst noch helfen?",
    },
    "goodbye": {
        "en": "Goodbye, and have a great day!",
        "de": "Auf Wiedersehen und einen schönen Tag noch!",
    },
    "affirm": {
        "en": "Great! What else would you like to know?",
        "de": "Prima! Was möchten Sie noch wissen?",
    },
    "deny": {
        "en": "Alright. If you have another question, just ask.",
        "de": "In Ordnung. Wenn Sie noch eine Frage haben, fragen Sie einfach.",
    },
}


def is_smalltalk(intent: str | None) -> bool:
    return intent in SMALLTALK_INTENTS


def reply(intent: str, lang: str) -> str:
    """The reply to smalltalk ``intent`` in ``lang`` (English if the language is unknown)."""
    table = _REPLIES[intent]
    return table.get(lang) or table["en"]
