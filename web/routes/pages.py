"""The widget's static files: ``/widget.js``, ``/widget.css``, the demo pages and
``/static/{path}`` (all from ``web/widget/``). Missing files are a clean 404."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

WIDGET_DIR = Path(__file__).resolve().parent.parent / "widget"
router = APIRouter(tags=["pages"])

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webp": "image/webp",
    ".woff2": "font/woff2",
}
_SHORT_CACHE = "public, max-age=300, must-revalidate"  # the embed URL is not versioned
_PAGE_CACHE = "no-cache"


def _file(path: Path, *, cache: str, cors: bool = False) -> FileResponse:
    if not path.is_file():
        raise HTTPException(status_code=404, detail="not found")
    media = _TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    headers = {"Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
    if cors:
        headers["Access-Control-Allow-Origin"] = "*"
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return FileResponse(path, media_type=media or "application/octet-stream", headers=headers)


@router.api_route("/widget.js", methods=["GET", "HEAD"], include_in_schema=False)
async def widget_js() -> FileResponse:
    return _file(WIDGET_DIR / "widget.js", cache=_SHORT_CACHE, cors=True)


@router.api_route("/widget.css", methods=["GET", "HEAD"], include_in_schema=False)
async def widget_css() -> FileResponse:
    return _file(WIDGET_DIR / "widget.css", cache=_SHORT_CACHE, cors=True)


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def demo_index() -> FileResponse:
    return _file(WIDGET_DIR / "demo" / "index.html", cache=_PAGE_CACHE)


@router.api_route("/demo/theming", methods=["GET", "HEAD"], include_in_schema=False)
async def demo_theming() -> FileResponse:
    return _file(WIDGET_DIR / "demo" / "theming.html", cache=_PAGE_CACHE)


@router.api_route("/static/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def static(path: str) -> FileResponse:
    root = WIDGET_DIR.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or any(p.startswith(".") for p in Path(path).parts):
        raise HTTPException(status_code=404, detail="not found")
    return _file(target, cache=_SHORT_CACHE, cors=True)
