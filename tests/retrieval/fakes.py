"""Deterministic test doubles for the retrieval layer.

``FakeEmbedder`` hashes character trigrams (of lowercased, space-padded words) into a
normalised vector: texts sharing many trigrams are close, so lexically similar phrasings
match while unrelated ones do not. It counts calls and embedded texts, for the
"incremental reindex embeds only what changed" tests.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from knowledge.schema import Entry, EntryKind, KnowledgeBase, content_hash
from retrieval.types import Vectors


class FakeEmbedder:
    def __init__(self, dim: int = 256, name: str = "fake:trigram") -> None:
        self._dim = dim
        self._name = name
        self.calls = 0
        self.texts: list[str] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def _one(self, text: str) -> Vectors:
        vec = np.zeros(self._dim, dtype=np.float32)
        for word in text.lower().split():
            padded = f" {word.strip('?.,!')} "
            for i in range(len(padded) - 2):
                vec[zlib.crc32(padded[i : i + 3].encode()) % self._dim] += 1.0
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:
            vec[0] = 1.0
            return vec
        return vec / norm

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        self.calls += 1
        self.texts.extend(texts)
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return np.vstack([self._one(t) for t in texts]).astype(np.float32)


def faq(
    id: str,
    question: str,
    answer: str = "",
    *,
    alts: tuple[str, ...] = (),
    lang: str = "en",
    source: str = "faq.yaml",
    line: int = 1,
) -> Entry:
    """An FAQ entry with a real content hash."""
    answer = answer or f"Answer to: {question}"
    return Entry(
        id=id,
        kind=EntryKind.FAQ,
        question=question,
        answer=answer,
        source=source,
        line=line,
        alt_questions=alts,
        lang=lang,
        content_hash=content_hash("faq", question, alts, answer, lang, None, ()),
    )


def passage(id: str, heading: str, text: str, *, lang: str = "en") -> Entry:
    return Entry(
        id=id,
        kind=EntryKind.PASSAGE,
        question=heading,
        answer=text,
        source="help/page.md",
        line=3,
        lang=lang,
        content_hash=content_hash("passage", heading, (), text, lang, None, ()),
    )


def kb_of(root: Path, entries: list[Entry]) -> KnowledgeBase:
    return KnowledgeBase(root=root, entries=list(entries))


SHOP = [
    faq(
        "ship",
        "How long does delivery take?",
        "Orders arrive in 1-3 working days.",
        alts=("When will my parcel arrive?",),
        line=1,
    ),
    faq("return", "How do I return an item?", "Use the returns portal within 30 days.", line=8),
    faq("pay", "Which payment methods do you accept?", "Card, PayPal and invoice.", line=14),
    faq(
        "pw", "How can I reset my password?", "Click 'Forgot password' on the login page.", line=20
    ),
    faq(
        "versand", "Wie lange dauert der Versand?", "Die Lieferung dauert 1-3 Werktage.", lang="de"
    ),
    passage("help#warranty", "Help › Warranty", "All tents carry a two year warranty on seams."),
]
