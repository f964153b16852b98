"""Hosts the knowledge folder's help pages at their own ``url`` (``/help/shipping`` …), so the
citation chips the widget shows lead somewhere even without a separate help centre.

Pages are rendered from Markdown with raw HTML disabled (retrieved text is data, never markup),
and headings get the same anchors as the passages' urls (``/help/shipping#delivery-times``).
"""

from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from markdown_it import MarkdownIt

from knowledge.pages import PageDocument, page_documents, slugify
from web.deps import SettingsDep

_CSP = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self'; base-uri 'none'"
_STYLE = (
    "body{font:16px/1.6 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;"
    "color:#1d2a24}h1,h2,h3{line-height:1.25}a{color:#1f5e4a}code{background:#f1f3f2;"
    "padding:.1em .3em;border-radius:4px}"
)


@lru_cache(maxsize=8)
def _pages(root: Path, stamp: float) -> dict[str, PageDocument]:
    return page_documents(root)


def _render(doc: PageDocument) -> str:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False})
    tokens = md.parse(doc.body)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and i + 1 < len(tokens):
            tok.attrSet("id", slugify(tokens[i + 1].content))
    body = md.renderer.render(tokens, md.options, {})
    title = html.escape(doc.title)
    return (
        f'<!doctype html><html lang="{html.escape(doc.lang)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


async def _help_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    root = settings.knowledge_dir.resolve()
    stamp = max((p.stat().st_mtime for p in root.rglob("*.md")), default=0.0)
    doc = _pages(root, stamp).get(request.url.path.rstrip("/"))
    if doc is None:
        raise HTTPException(status_code=404, detail="no help page at this address")
    return HTMLResponse(
        _render(doc), headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-cache"}
    )


def install(app: FastAPI, knowledge_dir: Path) -> None:
    """Serve every folder of page urls the knowledge declares (``/help/…``, ``/de/hilfe/…``).
    Pages under a folder that appears later are served after a restart."""
    folders = {url.rsplit("/", 1)[0] for url in page_documents(knowledge_dir.resolve())}
    for folder in sorted(f for f in folders if f and not f.startswith(("/api", "/ws", "/static"))):
        app.add_api_route(
            folder + "/{name}",
            _help_page,
            methods=["GET"],
            response_class=HTMLResponse,
            tags=["help pages"],
            include_in_schema=False,
        )
