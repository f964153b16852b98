"""Load a knowledge folder (or one file) into a :class:`~knowledge.schema.KnowledgeBase`.

The user-facing format reference is ``docs/knowledge.md``. In short, anywhere below the folder:

* FAQ files ``*.yaml``/``*.yml``/``*.json``: ``{lang?, entries: [{id?, question, answer,
  alt_questions?, tags?, url?, lang?, title?}, ...]}`` (or a bare list of entries);
  ``*.csv`` with header ``id,question,answer`` (+ optional ``alt_questions``, ``tags`` —
  ``|``-separated — ``lang``, ``url``, ``title``). Parsing: :mod:`knowledge.faq`.
* Help pages ``*.md``/``*.markdown``/``*.html``/``*.htm``/``*.txt``, split into passages at
  headings (``kind=passage``, id ``<page id>#<slug>``). Parsing: :mod:`knowledge.pages`.
* Reserved bot files at the top level (``intents.yaml``, ``catalog.yaml``, ``orders.json``) are not
  knowledge; :mod:`knowledge.botfiles` reads them. Hidden files/folders and other extensions are
  ignored (logged at debug level).

Language of an entry: its own ``lang``, else the file's (``lang:`` key / front matter / ``<html
lang>``), else a two-letter part of the file name (``faq.de.yaml``), else the nearest folder named
like a language (``de/``), else ``en``.

Ids: given, or :func:`knowledge.schema.derive_id` of source path + question; every entry gets a
content hash over kind, question, alt_questions, answer, lang, url and tags.

Problems are :class:`~knowledge.schema.KnowledgeIssue` (file, real line, field, message, code).
Issue codes, stable across releases:

====== ====================================================================================
KB001  file cannot be read or parsed (not UTF-8, YAML/JSON/CSV/front-matter syntax)
KB002  wrong file structure (no ``entries`` list, missing CSV columns, empty file)
KB003  an entry is not a mapping
KB004  a required field (question, answer) is missing or empty
KB005  a field has the wrong type or an invalid value (e.g. alt_questions not a list of strings)
KB006  invalid language code (two lowercase letters: ``en``, ``de``)
KB007  unknown or repeated field
KB008  duplicate id (the message names the other location)
KB009  a help page yields no text
KB010  unsupported file type (only from :func:`load_file`)
KB011  invalid id (empty, whitespace or ``#``)
====== ====================================================================================

Strict loading (default) collects *all* problems and raises one :class:`KnowledgeError`;
``skip_invalid=True`` leaves out bad entries/files and returns the problems in ``kb.issues``
(and logs each one as a warning).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from knowledge import _codes as codes
from knowledge.errors import KnowledgeError
from knowledge.faq import parse_faq
from knowledge.pages import PAGE_SUFFIXES, parse_page
from knowledge.schema import Entry, KnowledgeBase, KnowledgeIssue

__all__ = [
    "FAQ_SUFFIXES",
    "PAGE_SUFFIXES",
    "RESERVED_FILES",
    "default_lang_for",
    "knowledge_files",
    "load_file",
    "load_knowledge",
    "load_path",
]

log = logging.getLogger(__name__)

FAQ_SUFFIXES = (".yaml", ".yml", ".json", ".csv")
RESERVED_FILES = frozenset({"intents.yaml", "catalog.yaml", "orders.json"})
_LANG_PART = re.compile(r"^[a-z]{2}$")
_LANG_DIRS = frozenset(
    {"ar", "bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "he", "hr", "hu", "it"}
    | {"ja", "ko", "lt", "lv", "nl", "no", "pl", "pt", "ro", "ru", "sk", "sl", "sv", "tr", "uk"}
    | {"zh"}
)
_SKIP_DIRS = frozenset({"__pycache__", "node_modules"})

LoadResult = tuple[list[Entry], list[KnowledgeIssue]]


def knowledge_files(root: Path) -> list[Path]:
    """FAQ files and pages below ``root``, sorted by relative path (deterministic)."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS)
        here = Path(dirpath)
        for name in sorted(filenames):
            path = here / name
            if name.startswith("."):
                continue
            if here == root and name in RESERVED_FILES:
                continue
            if path.suffix.lower() not in (*FAQ_SUFFIXES, *PAGE_SUFFIXES):
                log.debug("ignoring %s: not a knowledge file type", path)
                continue
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def default_lang_for(source: str) -> str:
    """Language implied by a relative path: ``faq.de.yaml`` → de, ``de/faq.yaml`` → de, else en."""
    rel = PurePosixPath(source)
    for part in reversed(rel.name.split(".")[1:-1]):
        if _LANG_PART.fullmatch(part):
            return part
    for folder in reversed(rel.parts[:-1]):
        if folder in _LANG_DIRS:
            return folder
    return "en"


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def _read_text(path: Path, source: str) -> tuple[str | None, KnowledgeIssue | None]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        msg = f"cannot read file: {exc.strerror or exc}"
        return None, KnowledgeIssue(source, 1, "file", msg, codes.SYNTAX)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        msg = f"not valid UTF-8 (byte {raw[exc.start]:#04x}); save the file as UTF-8"
        return None, KnowledgeIssue(source, line, "file", msg, codes.SYNTAX)
    return text.replace("\r\n", "\n").replace("\r", "\n"), None


def _load_one(path: Path, source: str, lang: str | None = None) -> LoadResult:
    suffix = path.suffix.lower()
    if suffix not in (*FAQ_SUFFIXES, *PAGE_SUFFIXES):
        allowed = ", ".join((*FAQ_SUFFIXES, *PAGE_SUFFIXES))
        msg = f"unsupported file type {suffix or '(none)'!r} (use one of {allowed})"
        return [], [KnowledgeIssue(source, 1, "file", msg, codes.UNSUPPORTED)]
    text, problem = _read_text(path, source)
    if text is None:
        return [], [problem] if problem else []
    lang = lang or default_lang_for(source)
    if suffix in FAQ_SUFFIXES:
        return parse_faq(text, source, suffix, lang)
    return parse_page(text, source, suffix, lang)


def _drop_duplicate_ids(entries: Iterable[Entry]) -> LoadResult:
    """Keep the first entry per id; each later one becomes a KB008 issue naming both places."""
    first: dict[str, Entry] = {}
    kept: list[Entry] = []
    issues: list[KnowledgeIssue] = []
    for entry in entries:
        other = first.get(entry.id)
        if other is None:
            first[entry.id] = entry
            kept.append(entry)
            continue
        msg = f"duplicate id {entry.id!r}: also used at {other.location}"
        issues.append(KnowledgeIssue(entry.source, entry.line, "id", msg, codes.DUPLICATE_ID))
    return kept, issues


def load_file(path: Path, root: Path, *, default_lang: str | None = None) -> LoadResult:
    """Load one FAQ file or page; ``source`` paths are relative to ``root``. Never raises.

    ``default_lang`` overrides the language implied by the relative path (entries and files
    that state their ``lang`` keep it).
    """
    path = Path(path)
    source = _relative(path, Path(root))
    entries, issues = _load_one(path, source, default_lang)
    kept, dups = _drop_duplicate_ids(entries)
    return kept, sorted([*issues, *dups], key=lambda i: (i.source, i.line))


def load_knowledge(root: Path, *, skip_invalid: bool = False) -> KnowledgeBase:
    """Load every FAQ file and page below ``root``.

    Strict (default): raise :class:`KnowledgeError` listing all problems at once.
    ``skip_invalid=True``: leave bad entries/files out and report them in ``kb.issues``.
    """
    root = Path(root)
    if not root.is_dir():
        msg = f"knowledge folder not found: {root}"
        raise KnowledgeError(msg, [KnowledgeIssue(str(root), 1, "folder", msg, codes.STRUCTURE)])
    entries: list[Entry] = []
    issues: list[KnowledgeIssue] = []
    for path in knowledge_files(root):
        got, bad = _load_one(path, path.relative_to(root).as_posix())
        entries.extend(got)
        issues.extend(bad)
    entries, dups = _drop_duplicate_ids(entries)
    issues = sorted([*issues, *dups], key=lambda i: (i.source, i.line))
    if issues and not skip_invalid:
        files = len({i.source for i in issues})
        msg = f"{len(issues)} problem(s) in {files} file(s) of knowledge folder {root}"
        raise KnowledgeError(msg, issues)
    for issue in issues:
        log.warning("skipped invalid knowledge: %s", issue)
    return KnowledgeBase(root=root, entries=entries, issues=issues)


def load_path(path: Path, *, skip_invalid: bool = False) -> KnowledgeBase:
    """A knowledge folder, or a single FAQ file / page (its folder becomes the root).

    Same strict/lenient behaviour as :func:`load_knowledge`; for ``--kb PATH`` style options.
    """
    path = Path(path)
    if path.is_dir():
        return load_knowledge(path, skip_invalid=skip_invalid)
    if not path.is_file():
        msg = f"knowledge file or folder not found: {path}"
        raise KnowledgeError(msg, [KnowledgeIssue(str(path), 1, "path", msg, codes.STRUCTURE)])
    # the file's own folder still counts for the language: kb/de/faq.yaml is German
    lang = default_lang_for(f"{path.parent.name}/{path.name}")
    entries, issues = load_file(path, path.parent, default_lang=lang)
    if issues and not skip_invalid:
        raise KnowledgeError(f"{len(issues)} problem(s) in {path}", issues)
    for issue in issues:
        log.warning("skipped invalid knowledge: %s", issue)
    return KnowledgeBase(root=path.parent, entries=entries, issues=issues)
