"""User-facing texts of the engine in every supported language (EN, DE).

One table per purpose; :func:`text` falls back to English for an unknown language, so a new
language degrades gracefully instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping

_TEXTS: Mapping[str, Mapping[str, str]] = {
    "fallback": {
        "en": "Sorry, I couldn't find an answer to that in our help center. "
        "Would you like me to connect you with a member of our team?",
        "de": "Dazu habe ich in unserem Hilfe-Center leider keine Antwort gefunden. "
        "Soll ich Sie mit jemandem aus unserem Team verbinden?",
    },
    "out_of_scope": {
        "en": "I'm the support assistant for this shop, so I can only help with questions "
        "about orders, shipping, returns, payment and our products. "
        "Would you like me to connect you with a member of our team?",
        "de": "Ich bin der Support-Assistent dieses Shops und kann nur bei Fragen zu "
        "Bestellungen, Versand, Rücksendungen, Zahlung und unseren Produkten helfen. "
        "Soll ich Sie mit jemandem aus unserem Team verbinden?",
    },
    "handoff": {
        "en": "Of course. I'm passing you to a member of our team; "
        "they'll reply here as soon as possible.",
        "de": "Gern. Ich leite Sie an jemanden aus unserem Team weiter; "
        "Sie bekommen hier so bald wie möglich eine Antwort.",
    },
    "complaint": {
        "en": "I'm sorry to hear that. I'm passing this to a member of our team "
        "so they can sort it out with you personally.",
        "de": "Das tut mir leid. Ich gebe Ihr Anliegen an jemanden aus unserem Team weiter, "
        "damit es persönlich mit Ihnen geklärt wird.",
    },
    "ask_order_number": {
        "en": "I can look up your order. What is your order number? "
        "It looks like NC-12345 and is in your order confirmation email.",
        "de": "Ich kann Ihre Bestellung nachsehen. Wie lautet Ihre Bestellnummer? "
        "Sie sieht aus wie NC-12345 und steht in Ihrer Bestellbestätigung.",
    },
    "did_you_mean": {"en": "Did you mean:", "de": "Meinten Sie:"},
    "talk_to_human": {"en": "Talk to a human", "de": "Mit einem Menschen sprechen"},
    "llm_interrupted": {
        "en": "Sorry, my answer was cut off. The sources below have the full information, "
        "or I can connect you with our team.",
        "de": "Entschuldigung, meine Antwort wurde unterbrochen. Die Quellen unten enthalten "
        "die vollständigen Informationen, oder ich verbinde Sie mit unserem Team.",
    },
    "action_error": {
        "en": "Sorry, I can't reach our order system right now. Please try again in a few "
        "minutes, or I can connect you with our team.",
        "de": "Ich erreiche unser Bestellsystem gerade leider nicht. Bitte versuchen Sie es in "
        "ein paar Minuten noch einmal, oder ich verbinde Sie mit unserem Team.",
    },
    "order_not_found": {
        "en": "I couldn't find an order with the number {order_number}. Please check the "
        "number in your confirmation email.",
        "de": "Ich habe keine Bestellung mit der Nummer {order_number} gefunden. Bitte prüfen "
        "Sie die Nummer in Ihrer Bestellbestätigung.",
    },
    "no_agent": {
        "en": "I'm sorry, nobody from our team is available right now. If you leave your "
        "email address here, we'll get back to you as soon as possible. Until then, "
        "I'm happy to keep helping with your questions.",
        "de": "Es tut mir leid, gerade ist niemand aus unserem Team erreichbar. Wenn Sie uns "
        "hier Ihre E-Mail-Adresse hinterlassen, melden wir uns so bald wie möglich bei Ihnen. "
        "Bis dahin helfe ich Ihnen gern weiter.",
    },
    "other_language": {
        "en": "This answer is only available in {language}:",
        "de": "Diese Antwort haben wir nur auf {language}:",
    },
    "internal_error": {
        "en": "Sorry, something went wrong on our side. Please try again.",
        "de": "Entschuldigung, bei uns ist etwas schiefgelaufen. Bitte versuchen Sie es erneut.",
    },
}


_LANGUAGE_NAMES: Mapping[str, Mapping[str, str]] = {
    "en": {"en": "English", "de": "German"},
    "de": {"en": "Englisch", "de": "Deutsch"},
}


def language_name(code: str, lang: str) -> str:
    """The name of language ``code`` in ``lang`` (the code itself when unknown)."""
    names = _LANGUAGE_NAMES.get(lang) or _LANGUAGE_NAMES["en"]
    return names.get(code, code)


def text(key: str, lang: str, **values: str) -> str:
    """The text ``key`` in ``lang`` (English if that language has none), formatted."""
    table = _TEXTS[key]
    template = table.get(lang) or table["en"]
    return template.format(**values) if values else template


def matches(key: str, candidate: str) -> bool:
    """Whether ``candidate`` is the text ``key`` in any language (e.g. "did the bot just ask
    for the order number?")."""
    stripped = candidate.strip()
    return any(stripped == t for t in _TEXTS[key].values())
