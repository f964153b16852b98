"""Theming through data-* attributes and CSS custom properties, driven from /demo/theming."""

from __future__ import annotations

from pathlib import Path

from _kt_server import KlartextServer
from _widget import ask, contrast_ratios, pace_websocket, w, wait_answers
from playwright.sync_api import Page, expect


def test_theming_page_options_change_the_widget(
    page: Page, server: KlartextServer, shots: Path
) -> None:
    page.goto(server.url + "/demo/theming")
    expect(w(page, ".launcher")).to_be_visible()
    page.fill("input[name=title]", "Hilfe & Service")
    page.fill("textarea[name=welcome]", "Moin! Ich bin **Nordi**.")
    page.select_option("select[name=lang]", "de")
    page.click(".sw5")  # a light yellow: text on it must turn dark
    page.check("input[name=avatar]")
    page.select_option("select[name=position]", "left")
    expect(page.locator("#snippet")).to_contain_text('data-position="left"')

    w(page, ".launcher").click()
    expect(w(page, ".title")).to_have_text("Hilfe & Service")
    expect(w(page, ".welcome .bubble strong")).to_have_text("Nordi")
    expect(w(page, "textarea")).to_have_attribute("placeholder", "Ihre Frage…")
    expect(w(page, ".head img")).to_have_attribute("src", "/static/demo/avatar.svg")
    launcher = w(page, ".launcher").bounding_box()
    assert launcher is not None and launcher["x"] < 100
    style = w(page, ".launcher").evaluate(
        "el => [getComputedStyle(el).backgroundColor, getComputedStyle(el).color]"
    )
    assert style == ["rgb(242, 201, 76)", "rgb(17, 20, 24)"]
    expect(page.locator("#last-event")).to_contain_text("klartext:")
    page.evaluate("() => window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "widget-theming.png"))


def test_dark_theme_keeps_contrast(page: Page, server: KlartextServer, shots: Path) -> None:
    page.goto(server.url + "/demo/theming")
    expect(w(page, ".launcher")).to_be_visible()
    page.select_option("select[name=theme]", "dark")
    page.click(".sw4")  # violet
    w(page, ".launcher").click()
    expect(w(page, ".head")).to_have_class("head st-online", timeout=30_000)
    bg = w(page, ".panel").evaluate("el => getComputedStyle(el).backgroundColor")
    assert bg == "rgb(22, 26, 33)"
    ratios = contrast_ratios(page)
    low = {k: round(v, 2) for k, v in ratios.items() if v < 4.5}
    assert len(ratios) >= 6 and not low, ratios
    ask(page, "Do you ship to Switzerland?")
    wait_answers(page, 1)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.wait_for_timeout(200)
    page.screenshot(path=str(shots / "widget-dark.png"))


def test_page_css_custom_properties_override_the_theme(page: Page, server: KlartextServer) -> None:
    page.goto(server.url + "/")
    expect(w(page, ".launcher")).to_be_visible()
    # The page's own stylesheet (constructed: the demo page's CSP forbids inline <style>).
    page.evaluate(
        """() => {
          const sheet = new CSSStyleSheet();
          sheet.replaceSync('klartext-chat { --kt-primary: rgb(109, 63, 209); --kt-radius: 4px }');
          document.adoptedStyleSheets = [sheet];
        }"""
    )
    w(page, ".launcher").click()
    assert w(page, ".launcher").evaluate("el => getComputedStyle(el).backgroundColor") == (
        "rgb(109, 63, 209)"
    )
    assert w(page, ".panel").evaluate("el => getComputedStyle(el).borderTopLeftRadius") == "4px"


OVERRIDE_PAGE = """<!doctype html><html lang="de"><head><meta charset="utf-8"></head><body>
<script src="/widget.js" data-klartext-url="" data-lang="de" data-position="left"
  data-strings='{"de": {"placeholder": "Wie können wir helfen?"}, "send": "Los"}'
  data-suggestions='{"en": ["Delivery?"], "de": ["Lieferzeit?", "Rückgabe?"]}' async></script>
</body></html>"""


def test_strings_and_config_can_be_overridden(page: Page, server: KlartextServer) -> None:
    page.add_init_script("window.KlartextConfig = {title: 'Hilfe', strings: {close: 'Zu'}};")
    page.route(
        server.url + "/override",
        lambda route: route.fulfill(content_type="text/html; charset=utf-8", body=OVERRIDE_PAGE),
    )
    page.goto(server.url + "/override")
    w(page, ".launcher").click()
    expect(w(page, "textarea")).to_have_attribute("placeholder", "Wie können wir helfen?")
    expect(w(page, ".sendbtn")).to_have_attribute("aria-label", "Los")
    expect(w(page, ".title")).to_have_text("Hilfe")  # from window.KlartextConfig
    expect(w(page, ".launcher")).to_have_attribute("aria-label", "Chat schließen")  # built-in DE
    expect(w(page, ".sug")).to_have_text(["Lieferzeit?", "Rückgabe?"])
    # KlartextConfig.strings and data-strings merge (the attribute wins per key).
    expect(w(page, ".hbtn.close")).to_have_attribute("aria-label", "Zu")


def test_events_api_and_unread_badge(page: Page, server: KlartextServer) -> None:
    pace_websocket(page, 100)
    page.goto(server.url + "/")
    expect(w(page, ".launcher")).to_be_visible()
    page.evaluate(
        """() => {
          window.__events = [];
          for (const name of ['open', 'close', 'message', 'answer', 'connection'])
            document.addEventListener('klartext:' + name,
              (e) => window.__events.push([name, e.detail]));
        }"""
    )
    page.evaluate("() => Klartext.element.open()")
    expect(w(page, ".head")).to_have_class("head st-online", timeout=30_000)
    message_id = page.evaluate("() => Klartext.element.send('How much does shipping cost?')")
    page.evaluate("() => Klartext.element.close()")  # before the (paced) answer arrives
    expect(w(page, ".root.unread .badge")).to_be_visible(timeout=30_000)
    events = page.evaluate("() => window.__events")
    names = [name for name, _ in events if name != "connection"]
    assert names == ["open", "message", "close", "answer"]
    assert events[[n for n, _ in events].index("message")][1]["message_id"] == message_id
    answer = next(detail for name, detail in events if name == "answer")
    assert answer["answered"] is True and "€" in answer["text"]
    w(page, ".launcher").click()
    expect(w(page, ".root.unread")).to_have_count(0)
