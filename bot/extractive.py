"""Grounded extractive answers: the matched entry's canonical answer, streamed in word chunks."""

from __future__ import annotations

import re
from collections.abc import Iterator

from retrieval.types import Hit

_SPLIT = re.compile(r"(\S+\s*)")


def chunk_words(text: str, words_per_chunk: int = 4) -> Iterator[str]:
    """Split ``text`` into chunks of ``words_per_chunk`` words, keeping all whitespace, so that
    ``"".join(chunk_words(t)) == t``."""
    if words_per_chunk < 1:
        raise ValueError("words_per_chunk must be >= 1")
    lead = len(text) - len(text.lstrip())
    pieces = _SPLIT.findall(text[lead:])
    if lead and pieces:
        pieces[0] = text[:lead] + pieces[0]
    elif lead:
        pieces = [text]
    for i in range(0, len(pieces), words_per_chunk):
        yield "".join(pieces[i : i + words_per_chunk])


def answer_text(hit: Hit) -> str:
    """The text to answer with: the FAQ's canonical answer or the passage text, trimmed."""
    return hit.entry.answer.strip()
