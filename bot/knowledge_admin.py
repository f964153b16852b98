"""FAQ entries managed through the REST API.

Entries created through the API live in one managed FAQ file of the knowledge folder,
:data:`MANAGED_SOURCE` (``_api/faq.yaml``): an ordinary FAQ file in the documented format, read
by the same loader as every hand-written file, so ``klartext reindex`` and the API always agree.
Each managed entry carries its own ``id`` (given, or ``api-<12 hex>``) and ``lang``.

Entries of hand-written files (and help-page passages) are listed and read through the API but
never changed by it (:class:`ReadOnlyEntryError`): their files belong to whoever writes them.

Writes are serialised (an exclusive ``flock`` on ``_api/.lock``, which also serialises
processes sharing the folder) and atomic (a hidden temp file in the same folder, fsynced, then
``os.replace``). The new file text is validated with :func:`knowledge.faq.parse_faq_yaml` before
it is written, so a write never leaves an invalid managed file behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from knowledge.errors import KnowledgeError
from knowledge.faq import parse_faq_yaml
from knowledge.loaders import load_knowledge
from knowledge.schema import Entry, KnowledgeIssue

MANAGED_DIR = "_api"
MANAGED_SOURCE = f"{MANAGED_DIR}/faq.yaml"
_HEADER = (
    "# Managed by the Klartext REST API (/api/v1/knowledge/entries).\n"
    "# Edits here are kept, but prefer the API: it validates and serialises writes.\n"
)
_FIELD_ORDER = ("id", "lang", "question", "alt_questions", "answer", "tags", "url", "title")


class EntryNotFoundError(LookupError):
    def __init__(self, entry_id: str) -> None:
        super().__init__(f"no knowledge entry {entry_id!r}")
        self.entry_id = entry_id


class ReadOnlyEntryError(Exception):
    """The entry comes from a hand-written file or page; the API does not change those."""

    def __init__(self, entry: Entry) -> None:
        super().__init__(
            f"entry {entry.id!r} comes from {entry.location}; edit that file "
            f"(only entries in {MANAGED_SOURCE} are written through the API)"
        )
        self.entry = entry


class DuplicateEntryIdError(Exception):
    def __init__(self, entry_id: str, location: str) -> None:
        super().__init__(f"id {entry_id!r} is already used at {location}")
        self.entry_id = entry_id


class InvalidEntryError(ValueError):
    """The entry does not pass the knowledge loader's checks (``issues`` name the fields)."""

    def __init__(self, issues: Sequence[KnowledgeIssue]) -> None:
        super().__init__("; ".join(f"{i.field}: {i.message}" for i in issues) or "invalid entry")
        self.issues = list(issues)


class ManagedFileError(Exception):
    """The managed file was edited by hand into something the API cannot rewrite safely."""


@dataclass(frozen=True, slots=True)
class FaqFields:
    """The writable fields of an FAQ entry."""

    question: str
    answer: str
    lang: str = "en"
    alt_questions: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    url: str | None = None
    title: str | None = None

    def as_yaml(self, entry_id: str) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "id": entry_id,
            "lang": self.lang,
            "question": self.question,
            "alt_questions": list(self.alt_questions),
            "answer": self.answer,
            "tags": list(self.tags),
            "url": self.url,
            "title": self.title,
        }
        return {k: raw[k] for k in _FIELD_ORDER if raw[k] not in (None, [])}


@dataclass(frozen=True, slots=True)
class EntryQuery:
    lang: str | None = None
    source: str | None = None  # exact relative path, or a folder prefix ending in "/"
    kind: str | None = None
    q: str | None = None  # case-insensitive substring of question, phrasings or answer
    editable: bool | None = None


@dataclass(frozen=True, slots=True)
class EntryPage:
    items: list[Entry]
    total: int
    offset: int
    next_offset: int | None = None
    issues: list[KnowledgeIssue] = field(default_factory=list)


def is_managed(entry: Entry) -> bool:
    return entry.source == MANAGED_SOURCE


def _matches(entry: Entry, f: EntryQuery) -> bool:
    if f.lang is not None and entry.lang != f.lang:
        return False
    if f.kind is not None and entry.kind.value != f.kind:
        return False
    if f.editable is not None and is_managed(entry) != f.editable:
        return False
    if f.source is not None:
        wanted = f.source
        if not (
            entry.source == wanted or (wanted.endswith("/") and entry.source.startswith(wanted))
        ):
            return False
    if f.q:
        needle = f.q.casefold()
        hay = (*entry.phrasings, entry.answer, entry.title or "")
        if not any(needle in t.casefold() for t in hay):
            return False
    return True


class KnowledgeAdmin:
    """CRUD on the managed FAQ file of one knowledge folder (sync; call from a thread)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = self.root / MANAGED_SOURCE

    # --- reads ---------------------------------------------------------------------------
    def load(self) -> tuple[list[Entry], list[KnowledgeIssue]]:
        """Every entry of the folder (invalid ones left out and returned as issues)."""
        kb = load_knowledge(self.root, skip_invalid=True)
        return kb.entries, kb.issues

    def find(self, query: EntryQuery, *, offset: int = 0, limit: int = 50) -> EntryPage:
        entries, issues = self.load()
        found = [e for e in entries if _matches(e, query)]
        page = found[offset : offset + limit]
        nxt = offset + limit if offset + limit < len(found) else None
        return EntryPage(page, len(found), offset, nxt, issues)

    def get(self, entry_id: str) -> Entry:
        for e in self.load()[0]:
            if e.id == entry_id:
                return e
        raise EntryNotFoundError(entry_id)

    # --- writes --------------------------------------------------------------------------
    def create(self, fields: FaqFields, entry_id: str | None = None) -> Entry:
        with self._locked():
            new_id = entry_id or f"api-{uuid.uuid4().hex[:12]}"
            existing = {e.id: e for e in self.load()[0]}
            if new_id in existing:
                raise DuplicateEntryIdError(new_id, existing[new_id].location)
            raw = self._read_raw()
            raw.append(fields.as_yaml(new_id))
            return _pick(self._write(raw), new_id)

    def update(self, entry_id: str, fields: FaqFields) -> Entry:
        with self._locked():
            raw = self._read_raw()
            i = self._index_of(raw, entry_id)
            raw[i] = fields.as_yaml(entry_id)
            return _pick(self._write(raw), entry_id)

    def delete(self, entry_id: str) -> None:
        with self._locked():
            raw = self._read_raw()
            del raw[self._index_of(raw, entry_id)]
            self._write(raw)

    def current_fields(self, entry_id: str) -> FaqFields:
        """The writable fields of a managed entry (for partial updates)."""
        e = self.get(entry_id)
        if not is_managed(e):
            raise ReadOnlyEntryError(e)
        return FaqFields(
            question=e.question,
            answer=e.answer,
            lang=e.lang,
            alt_questions=e.alt_questions,
            tags=e.tags,
            url=e.url,
            title=e.title,
        )

    # --- internals -----------------------------------------------------------------------
    def _index_of(self, raw: list[dict[str, Any]], entry_id: str) -> int:
        for i, item in enumerate(raw):
            if str(item.get("id")) == entry_id:
                return i
        entry = self.get(entry_id)  # raises EntryNotFoundError when it exists nowhere
        raise ReadOnlyEntryError(entry)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (self.path.parent / ".lock").open("a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _read_raw(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ManagedFileError(f"{MANAGED_SOURCE} is not valid YAML: {exc}") from exc
        if data is None:
            return []
        items = data.get("entries") if isinstance(data, dict) else data
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ManagedFileError(f"{MANAGED_SOURCE} has no list of entries")
        return [dict(i) for i in items]

    def _write(self, raw: list[dict[str, Any]]) -> list[Entry]:
        """Validate, then atomically replace the managed file; the entries as loaded."""
        body = yaml.safe_dump(
            {"entries": raw},
            allow_unicode=True,
            sort_keys=False,
            width=100,
            default_flow_style=False,
        )
        text = _HEADER + body
        entries, issues = parse_faq_yaml(text, MANAGED_SOURCE)
        if issues:
            raise InvalidEntryError(issues)
        tmp = self.path.parent / f".faq.yaml.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            with tmp.open("w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        return entries


def _pick(entries: list[Entry], entry_id: str) -> Entry:
    for e in entries:
        if e.id == entry_id:
            return e
    raise KnowledgeError(f"entry {entry_id!r} vanished while writing {MANAGED_SOURCE}")
