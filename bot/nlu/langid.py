"""Per-message language detection for short chat messages.

Uses ``lingua-language-detector`` restricted to the supported languages (models preloaded
once per process; ~0.03 ms per message). Chat messages are short, so before asking lingua we
(1) strip things that carry no language (order numbers, emails, digits, URLs), (2) look up a
small lexicon of one-word messages ("danke", "hallo", "thanks", "ok") and (3) fall back to the
caller's hint (e.g. the conversation's language) or the default when lingua is unsure.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Single words whose language lingua cannot know from so few characters.
_LEXICON: dict[str, str | None] = {
    "hallo": "de",
    "danke": "de",
    "dankeschön": "de",
    "bitte": "de",
    "ja": "de",
    "nein": "de",
    "jo": "de",
    "tschüss": "de",
    "tschüs": "de",
    "moin": "de",
    "servus": "de",
    "genau": "de",
    "super": None,
    "prima": "de",
    "klar": "de",
    "hilfe": "de",
    "mitarbeiter": "de",
    "hello": "en",
    "hey": None,
    "hi": None,
    "ok": None,
    "okay": None,
    "thanks": "en",
    "thank you": "en",
    "thx": "en",
    "yes": "en",
    "yeah": "en",
    "no": "en",
    "nope": "en",
    "bye": "en",
    "goodbye": "en",
    "help": "en",
    "agent": "en",
    "human": "en",
    "cool": None,
    "great": "en",
    "guten tag": "de",
    "guten morgen": "de",
    "guten abend": "de",
    "vielen dank": "de",
    "good morning": "en",
    "good evening": "en",
}
_NOISE = re.compile(r"https?://\S+|\S+@\S+|[A-Za-z]{0,3}-?\d[\d\s.,:/+-]*|[^\w\s'äöüÄÖÜß]")
_GERMAN_CHARS = re.compile(r"[äöüß]", re.IGNORECASE)
_ISO = {"ENGLISH": "en", "GERMAN": "de", "FRENCH": "fr", "SPANISH": "es", "ITALIAN": "it"}


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    lang: str
    confidence: float
    method: str  # "lingua" | "lexicon" | "hint" | "default"


class LanguageDetector:
    """Detects one of ``languages``; unsure → ``hint`` if given, else ``default``.

    With a hint (the conversation's language), a message of up to three words switches to
    another language only when lingua is at least ``switch_confidence`` sure: "and Klarna?"
    (German 0.77 to lingua) stays in an English conversation, "und mit Kreditkarte?" (0.97)
    switches it.
    """

    def __init__(
        self,
        languages: Sequence[str] = ("en", "de"),
        *,
        default: str = "en",
        min_confidence: float = 0.55,
        switch_confidence: float = 0.9,
    ) -> None:
        self.languages = tuple(languages)
        self.default = default if default in self.languages else self.languages[0]
        self.min_confidence = min_confidence
        self.switch_confidence = switch_confidence
        self._detector: Any = None
        self._lock = threading.Lock()

    def _lingua(self) -> Any:
        with self._lock:
            if self._detector is None:
                from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

                langs = [
                    Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper()))
                    for code in self.languages
                ]
                builder = LanguageDetectorBuilder.from_languages(*langs)
                self._detector = builder.with_preloaded_language_models().build()
            return self._detector

    def detect(self, text: str, hint: str | None = None) -> LanguageGuess:
        fallback = hint if hint in self.languages else self.default
        method = "hint" if hint in self.languages else "default"
        cleaned = " ".join(_NOISE.sub(" ", text).split()).lower()
        if not cleaned:
            return LanguageGuess(fallback, 0.0, method)
        if cleaned in _LEXICON or cleaned.rstrip("!.?") in _LEXICON:
            lex = _LEXICON.get(cleaned, _LEXICON.get(cleaned.rstrip("!.?")))
            if lex in self.languages:
                return LanguageGuess(lex, 1.0, "lexicon")
            return LanguageGuess(fallback, 0.5, method)
        if len(self.languages) == 1:
            return LanguageGuess(self.languages[0], 1.0, "default")
        values = self._lingua().compute_language_confidence_values(cleaned)
        best = values[0]
        lang = _ISO.get(best.language.name, best.language.iso_code_639_1.name.lower())
        conf = float(best.value)
        if "de" in self.languages and _GERMAN_CHARS.search(cleaned) and lang != "de":
            return LanguageGuess("de", 0.8, "lingua")
        if len(cleaned.split()) <= 3:
            if conf < self.min_confidence:
                return LanguageGuess(fallback, conf, method)
            if method == "hint" and lang != fallback and conf < self.switch_confidence:
                return LanguageGuess(fallback, conf, method)  # stays in the conversation's
        return LanguageGuess(lang, conf, "lingua")
