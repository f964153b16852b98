"""FAQ files: YAML, JSON and CSV into :class:`~knowledge.schema.Entry` objects.

YAML/JSON: a mapping ``{lang?, entries: [...]}`` or a bare list of entries. Each entry has
``question`` and ``answer`` (required) and optionally ``id``, ``alt_questions``, ``tags``, ``url``,
``lang`` and ``title``. CSV: header with ``id,question,answer`` plus optional ``alt_questions``,
``tags`` (both ``|``-separated), ``lang``, ``url``, ``title``.

Every parser returns ``(entries, issues)``: an entry with any problem is left out and each
problem becomes a :class:`~knowledge.schema.KnowledgeIssue` with the real line (the entry's line,
or the line of the bad field; for CSV the physical line where the row starts). Codes: see
:mod:`knowledge._codes`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import Any

from knowledge import _codes as codes
from knowledge._located import LocatedDict, LocatedList, LocatedSyntaxError, load_json, load_yaml
from knowledge.schema import Entry, EntryKind, KnowledgeIssue, content_hash, derive_id

ENTRY_FIELDS = ("id", "question", "alt_questions", "answer", "tags", "url", "lang", "title")
CSV_REQUIRED = ("id", "question", "answer")
_FILE_KEYS = frozenset({"lang", "entries"})
_LANG_RE = re.compile(r"^[a-z]{2}$")
_BAD_ID_RE = re.compile(r"[\s#]")

ParseResult = tuple[list[Entry], list[KnowledgeIssue]]


def is_lang(value: object) -> bool:
    """True for a two-letter lowercase language code such as ``en`` or ``de``."""
    return isinstance(value, str) and _LANG_RE.fullmatch(value) is not None


def make_entry(
    *,
    id: str | None,
    kind: EntryKind,
    question: str,
    answer: str,
    source: str,
    line: int,
    alt_questions: Sequence[str] = (),
    tags: Sequence[str] = (),
    lang: str = "en",
    url: str | None = None,
    title: str | None = None,
) -> Entry:
    """Build an Entry with its stable id (given or derived) and its content hash."""
    alts, tag_t = tuple(alt_questions), tuple(tags)
    return Entry(
        id=id or derive_id(source, question),
        kind=kind,
        question=question,
        answer=answer,
        source=source,
        line=line,
        alt_questions=alts,
        tags=tag_t,
        lang=lang,
        url=url,
        title=title,
        content_hash=content_hash(kind.value, question, alts, answer, lang, url, tag_t),
    )


class FieldChecker:
    """Validates one entry mapping, collecting issues with field lines."""

    def __init__(self, data: LocatedDict, source: str) -> None:
        self.data = data
        self.source = source
        self.issues: list[KnowledgeIssue] = []

    def issue(self, field: str, message: str, code: str, line: int | None = None) -> None:
        where = self.data.line_of(field) if line is None else line
        self.issues.append(KnowledgeIssue(self.source, where, field, message, code))

    def text(self, field: str, *, required: bool) -> str | None:
        value = self.data.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                what = "is missing" if field not in self.data else "is empty"
                self.issue(field, f"'{field}' {what}", codes.MISSING)
            return None
        if not isinstance(value, str):
            self.issue(field, f"must be a string, got {_type_name(value)}", codes.WRONG_TYPE)
            return None
        return value.strip()

    def text_list(self, field: str) -> tuple[str, ...]:
        value = self.data.get(field)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.issue(
                field, f"must be a list of strings, got {_type_name(value)}", codes.WRONG_TYPE
            )
            return ()
        items: list[str] = []
        for i, item in enumerate(value):
            line = value.line_of(i) if isinstance(value, LocatedList) else None
            if not isinstance(item, str) or not item.strip():
                got = "an empty string" if isinstance(item, str) else _type_name(item)
                self.issue(
                    f"{field}[{i}]",
                    f"must be a non-empty string, got {got}",
                    codes.WRONG_TYPE,
                    line,
                )
            else:
                items.append(item.strip())
        return tuple(items)

    def entry_id(self) -> str | None:
        value = self.data.get("id")
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.issue("id", f"must be a string, got {_type_name(value)}", codes.WRONG_TYPE)
            return None
        text = str(value).strip()
        if not text or _BAD_ID_RE.search(text):
            self.issue("id", f"invalid id {text!r}: no whitespace or '#' allowed", codes.BAD_ID)
            return None
        return text

    def lang(self, default: str) -> str:
        value = self.data.get("lang")
        if value is None:
            return default
        if not is_lang(value):
            self.issue(
                "lang",
                f"invalid language {value!r}: use a two-letter code like 'en'",
                codes.BAD_LANG,
            )
            return default
        return str(value)

    def url(self) -> str | None:
        value = self.text("url", required=False)
        if value is not None and re.search(r"\s", value):
            self.issue(
                "url", f"invalid url {value!r}: must not contain whitespace", codes.WRONG_TYPE
            )
            return None
        return value


def build_faq_entry(data: object, source: str, line: int, default_lang: str) -> ParseResult:
    """Validate one entry (a mapping at ``line``) and build it; problems become issues."""
    if not isinstance(data, LocatedDict):
        msg = f"an FAQ entry must be a mapping with question and answer, got {_type_name(data)}"
        return [], [KnowledgeIssue(source, line, "entry", msg, codes.NOT_MAPPING)]
    check = FieldChecker(data, source)
    for key in data:
        if key not in ENTRY_FIELDS:
            check.issue(
                str(key),
                f"unknown field {key!r} (allowed: {', '.join(ENTRY_FIELDS)})",
                codes.UNKNOWN_FIELD,
            )
    for key, key_line in data.duplicate_keys:
        check.issue(key, f"field {key!r} appears twice", codes.UNKNOWN_FIELD, key_line)
    entry_id = check.entry_id()
    question = check.text("question", required=True)
    answer = check.text("answer", required=True)
    alts = check.text_list("alt_questions")
    tags = check.text_list("tags")
    lang = check.lang(default_lang)
    url = check.url()
    title = check.text("title", required=False)
    if check.issues or question is None or answer is None:
        return [], check.issues
    entry = make_entry(
        id=entry_id,
        kind=EntryKind.FAQ,
        question=question,
        answer=answer,
        source=source,
        line=data.line,
        alt_questions=alts,
        tags=tags,
        lang=lang,
        url=url,
        title=title,
    )
    return [entry], []


def _parse_structured(data: object, source: str, default_lang: str) -> ParseResult:
    issues: list[KnowledgeIssue] = []
    if data is None:
        return [], [KnowledgeIssue(source, 1, "entries", "the file is empty", codes.STRUCTURE)]
    if isinstance(data, LocatedDict):
        for key in data:
            if key not in _FILE_KEYS:
                msg = f"unknown top-level key {key!r} (expected 'lang' and 'entries')"
                issues.append(
                    KnowledgeIssue(source, data.line_of(key), str(key), msg, codes.UNKNOWN_FIELD)
                )
        for key, key_line in data.duplicate_keys:
            msg = f"top-level key {key!r} appears twice (the first one is ignored)"
            issues.append(KnowledgeIssue(source, key_line, key, msg, codes.UNKNOWN_FIELD))
        if "lang" in data:
            if is_lang(data["lang"]):
                default_lang = data["lang"]
            else:
                msg = f"invalid language {data['lang']!r}: use a two-letter code like 'en'"
                issues.append(
                    KnowledgeIssue(source, data.line_of("lang"), "lang", msg, codes.BAD_LANG)
                )
        if "entries" not in data:
            msg = "missing 'entries': a FAQ file needs a list of entries"
            return [], [*issues, KnowledgeIssue(source, data.line, "entries", msg, codes.STRUCTURE)]
        items, items_line = data["entries"], data.line_of("entries")
    else:
        items, items_line = data, 1
    if not isinstance(items, LocatedList):
        msg = f"'entries' must be a list of entries, got {_type_name(items)}"
        return [], [*issues, KnowledgeIssue(source, items_line, "entries", msg, codes.STRUCTURE)]
    entries: list[Entry] = []
    for i, item in enumerate(items):
        got, bad = build_faq_entry(item, source, items.line_of(i), default_lang)
        entries.extend(got)
        issues.extend(bad)
    return entries, issues


def parse_faq_yaml(text: str, source: str, default_lang: str = "en") -> ParseResult:
    try:
        data = load_yaml(text)
    except LocatedSyntaxError as exc:
        return [], [KnowledgeIssue(source, exc.line, "file", exc.message, codes.SYNTAX)]
    return _parse_structured(data, source, default_lang)


def parse_faq_json(text: str, source: str, default_lang: str = "en") -> ParseResult:
    try:
        data = load_json(text)
    except LocatedSyntaxError as exc:
        return [], [KnowledgeIssue(source, exc.line, "file", exc.message, codes.SYNTAX)]
    return _parse_structured(data, source, default_lang)


def _split_bar(cell: str) -> LocatedList | None:
    parts = [p.strip() for p in cell.split("|")]
    if not any(parts):
        return None
    out = LocatedList()
    out.extend(p for p in parts if p)
    return out


def parse_faq_csv(text: str, source: str, default_lang: str = "en") -> ParseResult:
    """Parse an FAQ CSV; each entry's line is the physical line where its row starts."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    issues: list[KnowledgeIssue] = []
    entries: list[Entry] = []
    header: list[str] | None = None
    prev_line = 0
    try:
        for row in reader:
            start, prev_line = prev_line + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [h.strip().lower() for h in row]
                missing = [c for c in CSV_REQUIRED if c not in header]
                unknown = [h for h in header if h not in ENTRY_FIELDS]
                if missing:
                    msg = (
                        f"header lacks column(s) {', '.join(missing)} "
                        f"(need {','.join(CSV_REQUIRED)})"
                    )
                    return [], [KnowledgeIssue(source, start, "header", msg, codes.STRUCTURE)]
                for name in unknown:
                    msg = f"unknown column {name!r} (allowed: {', '.join(ENTRY_FIELDS)})"
                    issues.append(KnowledgeIssue(source, start, name, msg, codes.UNKNOWN_FIELD))
                continue
            if len(row) > len(header):
                msg = f"row has {len(row)} cells but the header has {len(header)} columns"
                issues.append(KnowledgeIssue(source, start, "row", msg, codes.STRUCTURE))
                continue
            data = LocatedDict(start)
            for name, cell in zip(header, row, strict=False):
                if name in ("alt_questions", "tags"):
                    value: Any = _split_bar(cell)
                else:
                    value = cell.strip() or None
                if value is not None and name in ENTRY_FIELDS:
                    data[name] = value
            for name in ("question", "answer"):
                data.setdefault(name, "")
            got, bad = build_faq_entry(data, source, start, default_lang)
            entries.extend(got)
            issues.extend(bad)
    except csv.Error as exc:
        line = reader.line_num or 1
        issues.append(KnowledgeIssue(source, line, "file", f"invalid CSV: {exc}", codes.SYNTAX))
    if header is None:
        issues.append(
            KnowledgeIssue(
                source, 1, "header", "the file is empty (no header row)", codes.STRUCTURE
            )
        )
    return entries, issues


def parse_faq(text: str, source: str, suffix: str, default_lang: str = "en") -> ParseResult:
    """Parse FAQ ``text`` by file ``suffix`` (``.yaml``, ``.yml``, ``.json``, ``.csv``)."""
    suffix = suffix.lower()
    if suffix == ".csv":
        return parse_faq_csv(text, source, default_lang)
    if suffix == ".json":
        return parse_faq_json(text, source, default_lang)
    return parse_faq_yaml(text, source, default_lang)


def _type_name(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
