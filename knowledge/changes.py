"""Change detection for a knowledge folder.

* :func:`diff_entries` compares loaded entries with ``id → content_hash`` from an index manifest,
  so a reindex embeds only what is new or changed and removes what is gone.
* :func:`find_exact_duplicates` reports FAQ questions (or alternative phrasings) that two
  different entries share once case, whitespace and punctuation are ignored. The near-duplicate
  (embedding similarity) check lives in ``retrieval`` and reuses :class:`DuplicatePair`.
* :func:`fingerprint_files` hashes the folder's files, so a caller can tell cheaply that nothing
  changed (e.g. to skip a reindex, or to see whether ``intents.yaml`` changed).
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from knowledge.schema import Entry, EntryKind

__all__ = [
    "ChangeSet",
    "DuplicatePair",
    "diff_entries",
    "find_exact_duplicates",
    "fingerprint_files",
    "normalise_question",
]


@dataclass(slots=True)
class ChangeSet:
    """Ids by what happened to them since the previous build (current order; removed sorted)."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        """True when nothing was added, changed or removed."""
        return not (self.added or self.changed or self.removed)

    @property
    def to_embed(self) -> list[str]:
        """Ids whose vectors must be (re)computed: added + changed."""
        return [*self.added, *self.changed]

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "removed": len(self.removed),
            "unchanged": len(self.unchanged),
        }


def diff_entries(current: Sequence[Entry], previous: Mapping[str, str]) -> ChangeSet:
    """Classify ``current`` entries against ``previous`` (id → content_hash from a manifest)."""
    changes = ChangeSet()
    seen: set[str] = set()
    for entry in current:
        if entry.id in seen:
            continue
        seen.add(entry.id)
        old = previous.get(entry.id)
        if old is None:
            changes.added.append(entry.id)
        elif old != entry.content_hash:
            changes.changed.append(entry.id)
        else:
            changes.unchanged.append(entry.id)
    changes.removed = sorted(set(previous) - seen)
    return changes


@dataclass(frozen=True, slots=True)
class DuplicatePair:
    """Two entries that ask the same thing; ``a`` comes first in load order."""

    a_id: str
    a_location: str
    b_id: str
    b_location: str
    text: str  # the shared phrasing (as written in entry b), or a description of the match
    similarity: float = 1.0

    def __str__(self) -> str:
        return (
            f"{self.a_id} ({self.a_location}) and {self.b_id} ({self.b_location}): "
            f"{self.text!r} [similarity {self.similarity:.2f}]"
        )


def normalise_question(text: str) -> str:
    """Casefold, drop punctuation and symbols, collapse whitespace."""
    kept = (
        " " if unicodedata.category(c)[0] in "PSZ" else c
        for c in unicodedata.normalize("NFKC", text).casefold()
    )
    return " ".join("".join(kept).split())


def find_exact_duplicates(entries: Sequence[Entry]) -> list[DuplicatePair]:
    """FAQ phrasings shared by different entries of one language after :func:`normalise_question`.

    Entries in different languages may share a phrasing (a loanword such as "click and collect"
    or a product name): they are translations, not duplicates. One pair per (earlier entry,
    later entry, phrasing), in load order.
    """
    first_seen: dict[tuple[str, str], list[Entry]] = {}
    pairs: list[DuplicatePair] = []
    reported: set[tuple[str, str, str]] = set()
    for entry in entries:
        if entry.kind is not EntryKind.FAQ:
            continue
        for phrase in entry.phrasings:
            key = normalise_question(phrase)
            if not key:
                continue
            owners = first_seen.setdefault((entry.lang, key), [])
            for other in owners:
                mark = (other.id, entry.id, key)
                if other.id != entry.id and mark not in reported:
                    reported.add(mark)
                    pairs.append(
                        DuplicatePair(other.id, other.location, entry.id, entry.location, phrase)
                    )
            if all(o.id != entry.id for o in owners):
                owners.append(entry)
    return pairs


def fingerprint_files(root: Path) -> dict[str, str]:
    """Relative POSIX path → SHA-256 (hex) of the bytes, for every non-hidden file below root."""
    root = Path(root)
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 16), b""):
                    digest.update(chunk)
            out[path.relative_to(root).as_posix()] = digest.hexdigest()
    return dict(sorted(out.items()))
