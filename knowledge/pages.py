"""Help pages (Markdown, HTML, plain text) split into passages at headings.

One passage = one :class:`~knowledge.schema.Entry` with ``kind=passage``:
``question`` = "Page title › Section" (deeper headings add "› Sub"), ``answer`` = the section
text (Markdown kept as written), ``id`` = "<page id>#<slug>" where the page id is the
front-matter ``id`` or the relative path without extension, and ``url`` = page url + "#slug"
(the page url itself for the text at the top of the page). Empty sections are dropped.

Markdown and text pages may start with YAML front matter between ``---`` lines (keys ``id``,
``title``, ``url``, ``lang``, ``tags``). Markdown splits at ``#``/``##``/``###`` (an explicit anchor
``## Heading {#anchor}`` sets the slug); HTML at ``h1``–``h3`` (the heading's ``id`` attribute is
the slug; ``<title>``, ``<html lang>`` and ``<link rel="canonical">`` give title, lang, url);
plain text at blank-line separated blocks whose first line is short and reads like a heading.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from bs4 import BeautifulSoup
from bs4.element import NavigableString, PreformattedString, Tag

from knowledge import _codes as codes
from knowledge._located import LocatedDict, LocatedSyntaxError, load_yaml
from knowledge.faq import FieldChecker, ParseResult, is_lang, make_entry
from knowledge.schema import Entry, EntryKind, KnowledgeIssue

PAGE_SUFFIXES = (".md", ".markdown", ".html", ".htm", ".txt")
FRONT_MATTER_KEYS = ("id", "title", "url", "lang", "tags")
SEPARATOR = " › "
_FM_END = re.compile(r"^(?:---|\.\.\.)\s*$")
_ANCHOR = re.compile(r"\s*\{#([A-Za-z0-9_.:-]+)\}\s*$")
_TRANSLIT = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "ae", "Ö": "oe", "Ü": "ue"}
)
_HTML_SKIP = frozenset({"script", "style", "noscript", "template", "head", "nav"})
_HTML_BLOCK = frozenset({
    "p", "div", "section", "article", "main", "header", "footer", "aside", "ul", "ol", "li",
    "dl", "dt", "dd", "table", "tr", "blockquote", "pre", "h4", "h5", "h6", "br", "hr",
    "figure", "figcaption", "details", "summary", "form",
})  # fmt: skip


def slugify(text: str) -> str:
    """ASCII anchor slug: ``"Rückgabe & Umtausch"`` → ``"rueckgabe-umtausch"``."""
    text = unicodedata.normalize("NFKD", text.translate(_TRANSLIT).lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "section"


@dataclass(slots=True)
class _Section:
    level: int  # 0 = text before any heading
    heading: str
    anchor: str | None
    line: int
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts).strip()


@dataclass(slots=True)
class _Meta:
    page_id: str
    source: str
    lang: str
    title: str | None = None
    url: str | None = None
    tags: tuple[str, ...] = ()


def parse_page(text: str, source: str, suffix: str, default_lang: str = "en") -> ParseResult:
    """Split one page into passage entries; ``source`` is its path relative to the folder."""
    suffix = suffix.lower()
    page_id = re.sub(r"\s+", "-", source.rsplit(".", 1)[0] if "." in source else source)
    meta = _Meta(page_id=page_id, source=source, lang=default_lang)
    issues: list[KnowledgeIssue] = []
    if suffix in (".html", ".htm"):
        sections = _html_sections(text, meta)
    else:
        body, offset = _front_matter(text, meta, issues)
        if issues:
            return [], issues
        sections = (
            _markdown_sections(body, offset) if suffix != ".txt" else _text_sections(body, offset)
        )
    entries = _to_entries(sections, meta)
    if not entries:
        msg = "the page has no text to answer from"
        issues.append(KnowledgeIssue(source, 1, "page", msg, codes.EMPTY_PAGE))
    return entries, issues


# --------------------------------------------------------------------------- shared


def _front_matter(text: str, meta: _Meta, issues: list[KnowledgeIssue]) -> tuple[str, int]:
    """Strip and apply YAML front matter; return (body, number of lines before the body)."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        return text, 0
    end = next((i for i in range(1, len(lines)) if _FM_END.match(lines[i])), None)
    if end is None:
        msg = "front matter starts with '---' but has no closing '---'"
        issues.append(KnowledgeIssue(meta.source, 1, "front matter", msg, codes.SYNTAX))
        return text, 0
    body = "\n".join(lines[end + 1 :])
    try:  # one leading newline per skipped line keeps YAML line numbers == file line numbers
        data = load_yaml("\n" + "\n".join(lines[1:end]))
    except LocatedSyntaxError as exc:
        issues.append(
            KnowledgeIssue(meta.source, exc.line, "front matter", exc.message, codes.SYNTAX)
        )
        return body, end + 1
    if data is None:
        return body, end + 1
    if not isinstance(data, LocatedDict):
        msg = "front matter must be a mapping (title, url, lang, tags, id)"
        issues.append(KnowledgeIssue(meta.source, 2, "front matter", msg, codes.STRUCTURE))
        return body, end + 1
    _apply_meta(data, meta, issues)
    return body, end + 1


def _apply_meta(data: LocatedDict, meta: _Meta, issues: list[KnowledgeIssue]) -> None:
    check = FieldChecker(data, meta.source)
    for key in data:
        if key not in FRONT_MATTER_KEYS:
            msg = f"unknown front-matter key {key!r} (allowed: {', '.join(FRONT_MATTER_KEYS)})"
            check.issue(str(key), msg, codes.UNKNOWN_FIELD)
    page_id = check.entry_id()
    meta.title = check.text("title", required=False)
    meta.url = check.url()
    meta.lang = check.lang(meta.lang)
    meta.tags = check.text_list("tags")
    meta.page_id = page_id or meta.page_id
    issues.extend(check.issues)


def _to_entries(sections: list[_Section], meta: _Meta) -> list[Entry]:
    title = meta.title or next((s.heading for s in sections if s.level == 1), None)
    title = title or _humanise(meta.page_id.rsplit("/", 1)[-1])
    first_h1 = next((s for s in sections if s.level == 1), None)
    stack: list[_Section] = []
    seen: dict[str, int] = {}
    entries: list[Entry] = []
    for sec in sections:
        stack = [s for s in stack if s.level < sec.level]
        if sec.level:
            stack.append(sec)
        path = [s.heading for s in stack if s is not first_h1 and s.heading != title]
        top = sec.level <= 1
        base = sec.anchor or (slugify(sec.heading) if sec.level else "intro")
        count = seen.get(base, 0)
        seen[base] = count + 1
        slug = base if count == 0 else f"{base}-{count}"
        if not sec.text:
            continue
        url = None if meta.url is None else (meta.url if top else f"{meta.url}#{slug}")
        entries.append(make_entry(
            id=f"{meta.page_id}#{slug}", kind=EntryKind.PASSAGE,
            question=SEPARATOR.join([title, *path]), answer=sec.text, source=meta.source,
            line=sec.line, tags=meta.tags, lang=meta.lang, url=url,
        ))  # fmt: skip
    return entries


def _humanise(stem: str) -> str:
    words = re.sub(r"[-_]+", " ", stem.split(".")[0]).strip()
    return words[:1].upper() + words[1:] if words else "Page"


# --------------------------------------------------------------------------- Markdown


def _markdown_sections(body: str, offset: int) -> list[_Section]:
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(body)
    lines = body.split("\n")
    heads: list[tuple[int, int, int, str]] = []  # (start, end, level, raw text)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.tag in ("h1", "h2", "h3") and tok.map:
            inline = tokens[i + 1]
            kids = inline.children or []
            raw = "".join(k.content for k in kids if k.type in ("text", "code_inline"))
            heads.append((tok.map[0], tok.map[1], int(tok.tag[1]), raw or inline.content))
    sections: list[_Section] = []
    intro_end = heads[0][0] if heads else len(lines)
    intro = "\n".join(lines[:intro_end])
    first = next((n for n, ln in enumerate(lines[:intro_end]) if ln.strip()), 0)
    sections.append(_Section(0, "", None, offset + first + 1, [intro]))
    for n, (start, end, level, raw) in enumerate(heads):
        stop = heads[n + 1][0] if n + 1 < len(heads) else len(lines)
        anchor_match = _ANCHOR.search(raw)
        heading = _ANCHOR.sub("", raw).strip()
        anchor = anchor_match.group(1) if anchor_match else None
        text = "\n".join(lines[end:stop])
        sections.append(_Section(level, heading, anchor, offset + start + 1, [text]))
    return sections


# --------------------------------------------------------------------------- plain text


def _looks_like_heading(line: str) -> bool:
    line = line.strip()
    return 0 < len(line) <= 80 and line[-1] not in ".,;:!" and not line.startswith(("-", "*"))


def _text_sections(body: str, offset: int) -> list[_Section]:
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    for n, line in enumerate(body.split("\n")):
        if line.strip():
            if not current:
                blocks.append((offset + n + 1, current))
            current.append(line.rstrip())
        elif current:
            current = []
    sections = [_Section(0, "", None, offset + 1)]
    for n, (line_no, block) in enumerate(blocks):
        if _looks_like_heading(block[0]):
            level = 1 if n == 0 and len(block) == 1 else 2
            sections.append(
                _Section(level, block[0].strip(), None, line_no, ["\n".join(block[1:])])
            )
        else:
            sec = sections[-1]
            if sec.level == 0 and not sec.parts:
                sec.line = line_no
            sec.parts.append(("\n\n" if sec.text else "") + "\n".join(block))
    return sections


# --------------------------------------------------------------------------- HTML


class _HtmlCollector:
    def __init__(self) -> None:
        self.sections = [_Section(0, "", None, 1)]

    def walk(self, node: Tag) -> None:
        for child in node.children:
            if isinstance(child, PreformattedString):  # comments, doctype, CDATA
                continue
            if isinstance(child, NavigableString):
                self.sections[-1].parts.append(re.sub(r"\s+", " ", str(child)))
                continue
            if not isinstance(child, Tag) or child.name in _HTML_SKIP:
                continue
            if child.name in ("h1", "h2", "h3"):
                anchor = child.get("id")
                self.sections.append(_Section(
                    int(child.name[1]), child.get_text(" ", strip=True),
                    anchor if isinstance(anchor, str) and anchor else None,
                    child.sourceline or 1,
                ))  # fmt: skip
                continue
            block = child.name in _HTML_BLOCK
            if block:
                self.sections[-1].parts.append("\n")
            if child.name == "li":
                self.sections[-1].parts.append("- ")
            self.walk(child)
            if block:
                self.sections[-1].parts.append("\n")


def _html_sections(text: str, meta: _Meta) -> list[_Section]:
    soup = BeautifulSoup(text, "html.parser")
    html = soup.find("html")
    lang = html.get("lang") if isinstance(html, Tag) else None
    if isinstance(lang, str) and is_lang(lang[:2].lower()):
        meta.lang = lang[:2].lower()
    title = soup.find("title")
    if isinstance(title, Tag) and title.get_text(strip=True):
        meta.title = title.get_text(" ", strip=True)
    canonical = soup.find("link", rel="canonical")
    href = canonical.get("href") if isinstance(canonical, Tag) else None
    if isinstance(href, str) and href.strip():
        meta.url = href.strip()
    collector = _HtmlCollector()
    collector.walk(soup)
    for sec in collector.sections:
        lines = (" ".join(p.split()) for p in "".join(sec.parts).split("\n"))
        sec.parts = ["\n".join(ln for ln in lines if ln)]
    return collector.sections


# --------------------------------------------------------------------------- whole pages


@dataclass(frozen=True, slots=True)
class PageDocument:
    """A Markdown/text help page as a whole (for hosting it at its ``url``)."""

    url: str
    title: str
    lang: str
    body: str  # Markdown without the front matter
    source: str


def page_documents(root: Path) -> dict[str, PageDocument]:
    """Markdown/text pages below ``root`` that declare a site-relative ``url`` (``/help/…``),
    keyed by that url. Pages with front-matter problems are left out (reindex reports them)."""
    docs: dict[str, PageDocument] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in (".md", ".markdown", ".txt") or not path.is_file():
            continue
        source = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        meta = _Meta(page_id=source, source=source, lang="en")
        issues: list[KnowledgeIssue] = []
        body, _ = _front_matter(path.read_text(encoding="utf-8"), meta, issues)
        if issues or not meta.url or not meta.url.startswith("/"):
            continue
        url = meta.url.split("#", 1)[0].rstrip("/")
        docs[url] = PageDocument(url, meta.title or url, meta.lang, body, source)
    return docs
