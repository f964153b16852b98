"""On-disk layout of an index directory, with atomic publication of new builds.

::

    index_dir/
      CURRENT                      name of the build being served (one line)
      builds/<UTC time>-<rand>/    one complete, immutable build
        manifest.json              model, dim, counts, build time, entry hashes, knowledge
                                   fingerprint, duplicates, format version (written last)
        entries.json               the entries (JSON list)
        rows.json                  vector row -> (entry id, phrasing index)
        vectors.npy                float32 (rows, dim), aligned with rows.json
        index.faiss                FAISS IndexIDMap2 (flat or HNSW)
        bm25_*.npy, bm25_vocab.json  the lexical index
        answers.npy, answers.json    answer vectors of a multilingual knowledge base: which
                                   entries have a translation (retrieval.translations)
      adapters/e5kb-<key>.npz      e5 adapted to the knowledge base (opt-in, retrieval.adapt);
                                   shared by the builds whose manifest model is e5kb:<key>

A reindex writes a new build directory, then atomically replaces ``CURRENT`` (``os.replace``).
A crash before that leaves the old build serving; readers only ever open builds named by
``CURRENT``. The previous build is kept (a server may still be reading it); older complete
builds and abandoned partial ones are pruned. No pickle anywhere.
"""

from __future__ import annotations

import contextlib
import json
import operator
import os
import secrets
import shutil
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from knowledge.schema import Entry, EntryKind
from retrieval.errors import IndexCorrupt, IndexMissing, IndexModelMismatch, RetrievalError

FORMAT_VERSION = 1
CURRENT = "CURRENT"
BUILDS = "builds"
MANIFEST = "manifest.json"
ENTRIES = "entries.json"
ROWS = "rows.json"
VECTORS = "vectors.npy"
FAISS = "index.faiss"


@dataclass(slots=True)
class Manifest:
    """What a build contains and how it was made."""

    model: str
    dim: int
    index_kind: str
    entry_count: int
    row_count: int
    built_at: str
    build_seconds: float
    entry_hashes: dict[str, str]
    knowledge_root: str = ""
    knowledge_fingerprint: dict[str, str] = field(default_factory=dict)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    next_row_id: int = 0
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        data = {f.name: getattr(self, f.name) for f in fields(self)}  # asdict() deep-copies: slow
        return json.dumps(data, ensure_ascii=False)  # no indent: keeps the fast C encoder

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexCorrupt(
                f"index format version {version!r} is not supported (expected {FORMAT_VERSION}); "
                "run `klartext reindex --full`"
            )
        return cls(**data)


@dataclass(frozen=True, slots=True)
class RowMap:
    """Vector row ``i`` has FAISS id ``row_ids[i]`` and embeds phrasing ``phrase[i]`` of
    entry ``entry_ids[i]`` (0 = question or passage, ``j`` = ``alt_questions[j-1]``)."""

    row_ids: list[int]
    entry_ids: list[str]
    phrase: list[int]

    def __len__(self) -> int:
        return len(self.row_ids)


def new_build_name() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def builds_dir(index_dir: Path) -> Path:
    return index_dir / BUILDS


def current_name(index_dir: Path) -> str | None:
    """The build named by ``CURRENT`` (cheap: one small file read), or None."""
    try:
        name = (index_dir / CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    return name or None


def current_build(index_dir: Path) -> Path:
    """Directory of the build being served; :class:`IndexMissing` when there is none."""
    name = current_name(index_dir)
    build = builds_dir(index_dir) / name if name else None
    if build is None or not (build / MANIFEST).is_file():
        raise IndexMissing(f"no index at {index_dir}: run `klartext reindex` first")
    return build


def create_build(index_dir: Path) -> Path:
    build = builds_dir(index_dir) / new_build_name()
    build.mkdir(parents=True)
    return build


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(index_dir: Path, build: Path, *, keep: int = 2) -> None:
    """Atomically make ``build`` the served one, then prune all but the newest ``keep``
    builds among those up to it (the current and the previous one by default)."""
    if not (build / MANIFEST).is_file():
        raise IndexCorrupt(f"refusing to publish incomplete build {build}")
    for path in build.iterdir():
        if path.is_file():
            _fsync_file(path)
    tmp = index_dir / f"{CURRENT}.{secrets.token_hex(4)}.tmp"
    tmp.write_text(build.name + "\n")
    _fsync_file(tmp)
    os.replace(tmp, index_dir / CURRENT)
    prune(index_dir, keep=keep)


def prune(index_dir: Path, *, keep: int = 2) -> list[str]:
    """Delete complete builds older than the newest ``keep`` up to CURRENT, and partial
    builds older than CURRENT. Builds newer than CURRENT (a reindex in flight) are left."""
    name = current_name(index_dir)
    root = builds_dir(index_dir)
    if name is None or not root.is_dir():
        return []
    older = sorted((p for p in root.iterdir() if p.is_dir() and p.name <= name), reverse=True)
    complete = [p for p in older if (p / MANIFEST).is_file()]
    kept = {p.name for p in complete[:keep]} | {name}
    removed = []
    for path in older:
        if path.name not in kept:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed + _prune_adapters(index_dir)


ADAPTERS = "adapters"
ADAPTER_FAMILY = "e5kb"  # manifest model e5kb:<key> <-> adapters/e5kb-<key>.npz
_ADAPTER_GRACE_S = 3600.0  # an adapter this new may belong to a reindex still in flight


def adapter_file_name(key: str) -> str:
    """The adapter file of the manifest model ``e5kb:<key>`` (see retrieval.adapted)."""
    return f"{ADAPTER_FAMILY}-{key}.npz"


def index_signature(index_dir: Path) -> tuple[object, ...] | None:
    """What a server's index depends on, cheaply: ``CURRENT`` (name and modification time) and
    the adapter files (name, size, modification time); None while there is no ``CURRENT``. Two
    equal signatures mean loading again would read the same files."""
    try:
        current = (index_dir / CURRENT).stat()
        name = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    adapters: list[tuple[str, int, int]] = []
    folder = index_dir / ADAPTERS
    if folder.is_dir():
        for file in sorted(folder.iterdir()):
            with contextlib.suppress(OSError):
                st = file.stat()
                adapters.append((file.name, st.st_size, st.st_mtime_ns))
    return (name, current.st_mtime_ns, tuple(adapters))


def _prune_adapters(index_dir: Path) -> list[str]:
    """Delete adapter files (``adapters/e5kb-<key>.npz``) that no build's manifest names."""
    folder = index_dir / ADAPTERS
    if not folder.is_dir():
        return []
    used = set()
    for build in builds_dir(index_dir).iterdir():
        try:
            family, _, key = read_manifest(build).model.partition(":")
        except (RetrievalError, OSError):
            continue
        if family == ADAPTER_FAMILY:
            used.add(adapter_file_name(key))
    removed = []
    now = datetime.now(UTC).timestamp()
    for file in sorted(folder.glob(adapter_file_name("*"))):
        try:
            fresh = now - file.stat().st_mtime < _ADAPTER_GRACE_S
        except OSError:
            continue
        if file.name not in used and not fresh:
            file.unlink(missing_ok=True)
            removed.append(f"{ADAPTERS}/{file.name}")
    return removed


# --- manifest ---------------------------------------------------------------------------
def write_manifest(build: Path, manifest: Manifest) -> None:
    (build / MANIFEST).write_text(manifest.to_json())


def read_manifest(build: Path) -> Manifest:
    try:
        return Manifest.from_json((build / MANIFEST).read_text())
    except FileNotFoundError as exc:
        raise IndexMissing(f"no manifest in {build}: run `klartext reindex`") from exc
    except (ValueError, TypeError) as exc:
        raise IndexCorrupt(f"unreadable manifest in {build}: {exc}") from exc


def check_model(manifest: Manifest, configured: str) -> None:
    """Raise :class:`IndexModelMismatch` unless the index was built with ``configured``."""
    if manifest.model != configured:
        raise IndexModelMismatch(
            f"the index was built with embedding model '{manifest.model}' but "
            f"'{configured}' is configured: run `klartext reindex --full` "
            "(or configure the index's model)"
        )


# --- entries and rows -------------------------------------------------------------------
_ENTRY_FIELDS = tuple(f.name for f in fields(Entry))
_entry_values = operator.attrgetter(*_ENTRY_FIELDS)  # one C call per entry (10k: ~3x faster)


def entry_to_dict(entry: Entry) -> dict[str, Any]:
    data: dict[str, Any] = dict(zip(_ENTRY_FIELDS, _entry_values(entry), strict=True))
    data["kind"] = entry.kind.value
    data["alt_questions"] = list(entry.alt_questions)
    data["tags"] = list(entry.tags)
    return data


def entry_from_dict(data: dict[str, Any]) -> Entry:
    return Entry(
        id=data["id"],
        kind=EntryKind(data["kind"]),
        question=data["question"],
        answer=data["answer"],
        source=data["source"],
        line=int(data.get("line", 1)),
        alt_questions=tuple(data.get("alt_questions", ())),
        tags=tuple(data.get("tags", ())),
        lang=data.get("lang", "en"),
        url=data.get("url"),
        title=data.get("title"),
        content_hash=data.get("content_hash", ""),
    )


def write_entries(build: Path, entries: list[Entry]) -> None:
    payload = [entry_to_dict(e) for e in entries]
    (build / ENTRIES).write_text(json.dumps(payload, ensure_ascii=False))


def read_entries(build: Path) -> list[Entry]:
    try:
        return [entry_from_dict(d) for d in json.loads((build / ENTRIES).read_text())]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexCorrupt(f"unreadable entries in {build}: {exc}") from exc


def write_rows(build: Path, rows: RowMap) -> None:
    payload = {"row_ids": rows.row_ids, "entry_ids": rows.entry_ids, "phrase": rows.phrase}
    (build / ROWS).write_text(json.dumps(payload, ensure_ascii=False))


def read_rows(build: Path) -> RowMap:
    try:
        data = json.loads((build / ROWS).read_text())
        return RowMap(
            [int(i) for i in data["row_ids"]],
            [str(e) for e in data["entry_ids"]],
            [int(p) for p in data["phrase"]],
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexCorrupt(f"unreadable row map in {build}: {exc}") from exc


# --- what gets indexed ------------------------------------------------------------------
def row_texts(entry: Entry) -> tuple[str, ...]:
    """Texts embedded as vector rows: every FAQ phrasing; a passage's heading and text."""
    if entry.kind is EntryKind.PASSAGE:
        return (f"{entry.question}\n{entry.answer}",)
    return entry.phrasings


def matched_text(entry: Entry, phrase: int) -> str:
    """The phrasing behind row ``phrase`` of ``entry`` as shown to users."""
    if entry.kind is EntryKind.PASSAGE:
        return entry.answer
    phrasings = entry.phrasings
    return phrasings[phrase] if 0 <= phrase < len(phrasings) else entry.question


def lexical_text(entry: Entry) -> str:
    """Text BM25 sees for ``entry``: question, alternative phrasings, answer, tags."""
    return "\n".join((*entry.phrasings, entry.answer, " ".join(entry.tags)))
