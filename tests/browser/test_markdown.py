"""The widget's Markdown renderer (``window.Klartext.renderMarkdown``), unit-tested in the browser:
the supported subset renders, and nothing in user or bot text can inject HTML or script URLs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _kt_server import KlartextServer
from _widget import open_widget, w
from playwright.sync_api import Browser, Page, expect

RENDER = """(src) => {
  const div = document.createElement('div');
  div.appendChild(window.Klartext.renderMarkdown(src));
  const tags = [...div.querySelectorAll('*')].map((e) => e.tagName.toLowerCase());
  const links = [...div.querySelectorAll('a')].map((a) => ({
    href: a.getAttribute('href'), rel: a.rel, target: a.target, text: a.textContent }));
  const attrs = [...div.querySelectorAll('*')].flatMap((e) => [...e.attributes].map((a) => a.name));
  return {html: div.innerHTML, text: div.textContent, tags, links, attrs};
}"""


@pytest.fixture(scope="module")
def md_page(browser: Browser, server: KlartextServer) -> Iterator[Page]:
    """One page for all renderer cases (the renderer is pure; no need to reload per case)."""
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(server.url + "/")
    page.wait_for_function("() => window.Klartext && window.Klartext.renderMarkdown")
    yield page
    ctx.close()


@pytest.fixture
def render(md_page: Page) -> Any:
    def _render(src: str) -> dict[str, Any]:
        return dict(md_page.evaluate(RENDER, src))

    return _render


def test_inline_formatting(render: Any) -> None:
    out = render("**Austria** takes *2–4* days, see `ORDER-123` and __this__ or _that_.")
    assert out["tags"] == ["p", "strong", "em", "code", "strong", "em"]
    assert out["text"] == "Austria takes 2–4 days, see ORDER-123 and this or that."


def test_lists_code_blocks_quotes_and_headings(render: Any) -> None:
    out = render(
        "# Title\n\nIntro line\ncontinues.\n\n- one\n- **two**\n  - nested\n\n"
        "3. third\n4. fourth\n\n> quoted\n\n```js\nconst a = '<b>';\n```"
    )
    assert out["tags"] == [
        "p", "p", "ul", "li", "li", "strong", "ul", "li", "ol", "li", "li",
        "blockquote", "p", "pre", "code",
    ]  # fmt: skip
    assert "Intro line continues." in out["text"]
    assert 'start="3"' in out["html"]
    assert "const a = '&lt;b&gt;';" in out["html"]


def test_safe_links(render: Any) -> None:
    out = render(
        "[https](https://example.com/a?b=1) [rel](/help/shipping#x) [mail](mailto:hi@example.com) "
        "and https://nordcraft.example/help."
    )
    hrefs = [link["href"] for link in out["links"]]
    assert hrefs == [
        "https://example.com/a?b=1",
        "/help/shipping#x",
        "mailto:hi@example.com",
        "https://nordcraft.example/help",
    ]
    assert all(link["rel"] == "noopener noreferrer" for link in out["links"])
    assert all(link["target"] == "_blank" for link in out["links"])


@pytest.mark.parametrize(
    "src",
    [
        '<img src=x onerror="window.__pwned=1">',
        "<script>window.__pwned=1</script>",
        '<a href="javascript:window.__pwned=1">x</a>',
        "[x](javascript:window.__pwned=1)",
        "[x](JaVaScRiPt:window.__pwned=1)",
        "[x](java\tscript:window.__pwned=1)",
        "[x]( javascript:window.__pwned=1)",
        "[x](data:text/html,<script>window.__pwned=1</script>)",
        "[x](vbscript:msgbox)",
        "[<img src=x onerror=window.__pwned=1>](https://example.com)",
        "**<svg onload=window.__pwned=1>**",
        "`<iframe src=javascript:window.__pwned=1>`",
        "```\n</code></pre><img src=x onerror=window.__pwned=1>\n```",
        "- <b onclick=window.__pwned=1>item</b>",
    ],
)
def test_injection_attempts_render_as_text(render: Any, md_page: Page, src: str) -> None:
    out = render(src)
    assert set(out["tags"]) <= {"p", "a", "strong", "em", "code", "pre", "ul", "li"}
    assert set(out["attrs"]) <= {"href", "target", "rel", "class"}
    for link in out["links"]:
        assert link["href"].startswith(("https:", "/")), link
    if "<" in src:
        assert "&lt;" in out["html"]
    md_page.wait_for_timeout(20)
    assert md_page.evaluate("() => window.__pwned") is None


def test_bot_answer_with_html_is_shown_as_text(page: Page, server: KlartextServer) -> None:
    """Feed a malicious answer through the widget's real frame handler, as the server would."""
    page.goto(server.url + "/")
    open_widget(page)
    payload = (
        'Look: <img src=x onerror="window.__pwned=1"> and [click](javascript:window.__pwned=1)'
    )
    page.evaluate(
        """(text) => {
          const el = document.querySelector('klartext-chat');
          const seq = el._lastSeq;
          el._onFrame({type: 'token', seq: seq + 1, turn_id: 'evil', text});
          el._onFrame({type: 'done', seq: seq + 2, turn_id: 'evil', mode: 'extractive',
                       answered: true, confidence: 1, lang: 'en', timing_ms: {}, partial: false});
        }""",
        payload,
    )
    bubble = w(page, ".row.bot:has(.fb) .bubble").last
    expect(bubble).to_contain_text('<img src=x onerror="window.__pwned=1">')
    expect(bubble.locator("img")).to_have_count(0)
    expect(bubble.locator("a")).to_have_count(0)
    # The user's own text is never parsed either.
    w(page, "textarea").fill("<img src=x onerror=window.__pwned=1> **not bold**")
    w(page, "textarea").press("Enter")
    expect(w(page, ".row.user .bubble").last).to_have_text(
        "<img src=x onerror=window.__pwned=1> **not bold**"
    )
    expect(w(page, ".row.user img")).to_have_count(0)
    assert page.evaluate("() => window.__pwned") is None
