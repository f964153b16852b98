"""Test helpers: a deterministic fake embedder and a toy bilingual intents set."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import date

import numpy as np

from retrieval.types import Vectors

REF_DATE = date(2026, 11, 28)  # a Saturday

TOY_INTENTS: dict[str, dict[str, list[str]]] = {
    "greeting": {
        "en": [
            "hi",
            "hello",
            "hello there",
            "hi there",
            "hey hello",
            "hello, anyone there?",
            "hi, good morning",
            "good morning",
        ],
        "de": [
            "hallo",
            "hallo zusammen",
            "guten tag",
            "hallo, guten tag",
            "moin",
            "moin moin",
            "guten morgen",
            "hallo, guten morgen",
        ],
    },
    "order_status": {
        "en": [
            "where is my order",
            "where is my order now",
            "has my order shipped",
            "status of my order",
            "when will my order arrive",
            "track my order",
            "my order has not arrived",
            "order status please",
        ],
        "de": [
            "wo ist meine bestellung",
            "wo bleibt meine bestellung",
            "status meiner bestellung",
            "wann kommt meine bestellung",
            "ist meine bestellung unterwegs",
            "meine bestellung ist nicht angekommen",
            "bestellung verfolgen",
            "bestellstatus bitte",
        ],
    },
    "human_handoff": {
        "en": [
            "talk to a human",
            "i want to talk to a human",
            "a real human please",
            "connect me with a human agent",
            "talk to an agent",
            "can a human agent help me",
            "i want a real person",
            "human please",
        ],
        "de": [
            "mit einem menschen sprechen",
            "ich möchte mit einem menschen sprechen",
            "bitte einen mitarbeiter",
            "mit einem mitarbeiter sprechen",
            "echter mensch bitte",
            "kann ein mensch mir helfen",
            "verbinde mich mit einem mitarbeiter",
            "mensch bitte",
        ],
    },
}


class FakeEmbedder:
    """Hashes words and 4-letter word prefixes into a 1024-d unit vector (deterministic)."""

    def __init__(self, dim: int = 1024) -> None:
        self._dim = dim
        self.calls = 0

    @property
    def name(self) -> str:
        return "fake:hash-1024"

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        self.calls += 1
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = re.sub(r"\W+", " ", text.lower()).split()
            feats = words + ["~" + w[:4] for w in words if len(w) > 4]
            for f in feats:
                h = int(hashlib.md5(f.encode()).hexdigest(), 16)
                out[row, h % self._dim] += 1.0 if (h >> 20) % 2 else -1.0
            n = np.linalg.norm(out[row])
            if n > 0:
                out[row] /= n
        return out


def toy_examples() -> list[tuple[str, str, str]]:
    return [
        (text, intent, lang)
        for intent, by_lang in TOY_INTENTS.items()
        for lang, texts in by_lang.items()
        for text in texts
    ]
