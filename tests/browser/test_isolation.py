"""Shadow DOM isolation (hostile host-page CSS changes nothing) and the strict CSP."""

from __future__ import annotations

from pathlib import Path

from _kt_server import KlartextServer
from _widget import ask, open_widget, w, wait_answers
from playwright.sync_api import Page, expect

PROBE = """() => {
  const root = document.querySelector('klartext-chat').shadowRoot;
  const out = {};
  for (const sel of ['.launcher', '.panel', '.head', '.title', '.bubble', 'textarea', '.sendbtn',
                     '.human', '.messages']) {
    const el = root.querySelector(sel);
    const cs = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    out[sel] = [Math.round(r.x), Math.round(r.y), Math.round(r.width), Math.round(r.height),
      cs.fontFamily, cs.fontSize, cs.lineHeight, cs.color, cs.backgroundColor, cs.letterSpacing,
      cs.textTransform, cs.direction, cs.display, cs.visibility, cs.opacity, cs.borderTopWidth];
  }
  const host = getComputedStyle(document.querySelector('klartext-chat'));
  out.host = [host.display, host.position, host.opacity, host.transform, host.visibility,
              host.filter, host.pointerEvents, host.clipPath];
  return out;
}"""


def _probe_open_widget(page: Page) -> dict[str, list[object]]:
    open_widget(page)
    page.locator("body").evaluate("b => b.scrollTop = 0")
    page.wait_for_timeout(400)  # panel open transition
    w(page, "textarea").blur()
    return dict(page.evaluate(PROBE))


def test_hostile_host_css_does_not_change_the_widget(
    page: Page, server: KlartextServer, shots: Path
) -> None:
    # web/widget/demo/hostile.html links hostile.css; the baseline is the same page without it.
    url = server.url + "/static/demo/hostile.html"
    page.goto(url)
    page.evaluate("() => { document.getElementById('hostile').disabled = true; }")
    clean = _probe_open_widget(page)
    clean_png = w(page, ".messages").screenshot()

    page.evaluate("() => localStorage.clear()")
    page.goto(url)
    assert page.locator("h1").evaluate("el => getComputedStyle(el).color") == "rgb(255, 0, 0)"
    hostile = _probe_open_widget(page)
    assert hostile == clean
    assert w(page, ".messages").screenshot() == clean_png
    expect(w(page, "textarea")).to_be_editable()
    page.screenshot(path=str(shots / "hostile-css.png"))
    w(page, ".hbtn.close").click()  # still clickable despite pointer-events: none on the host
    expect(w(page, ".panel")).to_be_hidden()


def test_demo_page_runs_under_a_strict_csp(page: Page, server: KlartextServer) -> None:
    page.add_init_script(
        """window.__cspViolations = [];
        document.addEventListener('securitypolicyviolation',
          (e) => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"""
    )
    page.goto(server.url + "/")
    csp = page.locator("meta[http-equiv=Content-Security-Policy]").get_attribute("content") or ""
    assert "style-src 'self'" in csp and "unsafe-inline" not in csp
    open_widget(page)
    # Styles applied from the adopted stylesheet, not blocked.
    bg = w(page, ".launcher").evaluate("el => getComputedStyle(el).backgroundColor")
    assert bg == "rgb(31, 92, 77)"
    assert page.evaluate("() => window.__cspViolations") == []


def test_embedding_from_another_origin(page: Page, server: KlartextServer) -> None:
    """The page is on localhost, the widget and its websocket on 127.0.0.1 (CORS-free script
    tag, cross-origin websocket allowed by KLARTEXT_ALLOWED_ORIGINS)."""
    page.goto(server.url.replace("127.0.0.1", "localhost") + "/static/demo/embed.html")
    open_widget(page)
    assert page.evaluate("() => document.querySelector('script[src$=\"/widget.js\"]').src") == (
        server.url + "/widget.js"
    )
    ask(page, "How much does shipping cost?")
    expect(wait_answers(page, 1).locator("a.chip").first).to_be_visible()
