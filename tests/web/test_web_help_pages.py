"""Help pages from the knowledge folder are hosted at their own url, safely rendered."""

from __future__ import annotations

from pathlib import Path

import httpx
from _wsfakes import FakeRuntime
from _wsutil import make_settings

from web.app import create_app

PAGE = """\
---
id: page-ship
title: Shipping & delivery
url: /help/shipping
lang: en
---
# Shipping & delivery
Intro with a [link](https://example.com) and **bold**.

## Delivery times
Germany 1–3 days. <img src=x onerror="alert(1)"> <script>alert(2)</script>
"""


async def _get(tmp_path: Path, url: str) -> httpx.Response:
    kb = tmp_path / "kb"
    (kb / "pages").mkdir(parents=True, exist_ok=True)
    (kb / "pages" / "shipping.md").write_text(PAGE)
    (kb / "pages" / "no-url.md").write_text("# Internal\nnot published\n")
    (kb / "pages" / "versand.de.md").write_text(
        "---\ntitle: Versand\nurl: /de/hilfe/versand\nlang: de\n---\n"
        "# Versand\n## Lieferzeiten\n1-3 Tage\n"
    )
    settings = make_settings(tmp_path / "data").model_copy(update={"knowledge_dir": kb})
    app = create_app(settings, runtime=FakeRuntime())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        return await http.get(url)


async def test_page_is_served_with_anchors_matching_passage_urls(tmp_path: Path) -> None:
    resp = await _get(tmp_path, "/help/shipping")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "<title>Shipping &amp; delivery</title>" in resp.text
    assert 'id="delivery-times"' in resp.text  # the passage url is /help/shipping#delivery-times
    assert "<strong>bold</strong>" in resp.text


async def test_raw_html_in_pages_is_escaped_not_rendered(tmp_path: Path) -> None:
    resp = await _get(tmp_path, "/help/shipping")
    assert "<script>" not in resp.text and "<img" not in resp.text
    assert "&lt;script&gt;" in resp.text
    assert "default-src 'none'" in resp.headers["content-security-policy"]


async def test_unknown_or_unpublished_page_is_404(tmp_path: Path) -> None:
    assert (await _get(tmp_path, "/help/nothing-here")).status_code == 404
    assert (await _get(tmp_path, "/help/no-url")).status_code == 404


async def test_every_url_folder_the_knowledge_declares_is_served(tmp_path: Path) -> None:
    resp = await _get(tmp_path, "/de/hilfe/versand")
    assert resp.status_code == 200
    assert 'lang="de"' in resp.text and 'id="lieferzeiten"' in resp.text
