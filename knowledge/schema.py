"""The data model of a knowledge folder.

A knowledge folder holds FAQ files (``*.yaml``/``*.yml``/``*.json``/``*.csv``) and help pages
(``*.md``/``*.html``/``*.htm``/``*.txt``), plus optional bot files at its top level:
``intents.yaml`` (NLU training examples), ``catalog.yaml`` (product names) and
``orders.json`` (the demo shop's fake order backend).

Every FAQ entry and every help-page passage becomes one :class:`Entry`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class EntryKind(StrEnum):
    FAQ = "faq"
    PASSAGE = "passage"


@dataclass(frozen=True, slots=True)
class Entry:
    """One answerable unit of knowledge.

    For an FAQ: ``question`` is the canonical question, ``alt_questions`` its other phrasings,
    ``answer`` the canonical answer. For a help-page passage: ``question`` is the heading path
    ("Page title › Section"), ``answer`` the passage text, ``alt_questions`` is empty.
    """

    id: str
    kind: EntryKind
    question: str
    answer: str
    source: str  # path relative to the knowledge folder, POSIX separators
    line: int = 1  # 1-based line (or CSV row) where the entry starts
    alt_questions: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    lang: str = "en"
    url: str | None = None
    title: str | None = None  # display title for citations; defaults to question
    content_hash: str = ""

    @property
    def display_title(self) -> str:
        return self.title or self.question

    @property
    def phrasings(self) -> tuple[str, ...]:
        """Texts the entry is found by: its question and alternative phrasings."""
        return (self.question, *self.alt_questions)

    @property
    def location(self) -> str:
        return f"{self.source}:{self.line}"


def content_hash(*parts: str | tuple[str, ...] | None) -> str:
    """Stable SHA-256 (hex, 16 chars) over the parts that change what an entry means."""
    h = hashlib.sha256()
    for part in parts:
        if part is None:
            h.update(b"\x00")
        elif isinstance(part, tuple):
            h.update("\x1f".join(part).encode())
        else:
            h.update(part.encode())
        h.update(b"\x1e")
    return h.hexdigest()[:16]


def derive_id(source: str, question: str) -> str:
    """Stable id for an entry without a given id: source path + normalised question."""
    norm = " ".join(question.lower().split())
    return "e-" + hashlib.sha1(f"{source}\n{norm}".encode(), usedforsecurity=False).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class KnowledgeIssue:
    """A problem found while loading: which file, which line/row, which field, what is wrong."""

    source: str
    line: int
    field: str
    message: str
    code: str = "KB001"

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: [{self.code}] field '{self.field}': {self.message}"


@dataclass(slots=True)
class KnowledgeBase:
    """Everything loaded from one knowledge folder."""

    root: Path
    entries: list[Entry] = field(default_factory=list)
    issues: list[KnowledgeIssue] = field(default_factory=list)  # skipped (lenient load) problems

    def by_id(self) -> dict[str, Entry]:
        return {e.id: e for e in self.entries}

    @property
    def languages(self) -> set[str]:
        return {e.lang for e in self.entries}
