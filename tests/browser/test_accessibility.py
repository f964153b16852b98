"""Keyboard-only use, focus management and the ARIA live region."""

from __future__ import annotations

from pathlib import Path

from _kt_server import KlartextServer
from _widget import Frames, contrast_ratios, open_widget, w, wait_answers
from playwright.sync_api import Browser, Page, expect

ACTIVE = """() => {
  const host = document.activeElement;
  if (!host || host.tagName !== 'KLARTEXT-CHAT') return host ? host.tagName : null;
  const inner = host.shadowRoot.activeElement;
  return inner ? 'kt:' + (inner.className || inner.tagName) : 'kt:none';
}"""


def test_keyboard_only_flow(page: Page, server: KlartextServer) -> None:
    page.goto(server.url + "/")
    expect(w(page, ".launcher")).to_be_visible()
    page.evaluate(
        """() => {
          window.__ktLive = [];
          const live = document.querySelector('klartext-chat').shadowRoot.querySelector('.live');
          new MutationObserver(() => window.__ktLive.push(live.textContent))
            .observe(live, {childList: true, characterData: true, subtree: true});
        }"""
    )
    # Tab through the page until the launcher has focus.
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate(ACTIVE) == "kt:launcher":
            break
    assert page.evaluate(ACTIVE) == "kt:launcher"
    expect(w(page, ".launcher")).to_have_attribute("aria-expanded", "false")

    page.keyboard.press("Enter")
    expect(w(page, ".panel")).to_be_visible()
    expect(w(page, ".launcher")).to_have_attribute("aria-expanded", "true")
    expect(w(page, "textarea")).to_be_focused()
    expect(w(page, ".head")).to_have_class("head st-online", timeout=30_000)

    page.keyboard.type("How long does delivery to Austria take?")
    page.keyboard.press("Enter")
    answer = wait_answers(page, 1)
    text = answer.locator(".bubble").text_content() or ""
    # The live region announced the completed answer once, never the partial stream.
    live = w(page, ".live[aria-live=polite]")
    expect(live).to_contain_text(text.strip()[:40])
    announced = [t for t in page.evaluate("() => window.__ktLive") if t]
    assert len(announced) == 1 and text.strip() in announced[0]
    # The message list is not itself a live region (it would read every token).
    expect(w(page, ".messages")).to_have_attribute("aria-live", "off")

    # Feedback buttons are reachable and operable with the keyboard.
    up = answer.locator(".fb button[data-rating=up]")
    up.focus()
    page.keyboard.press("Enter")
    expect(up).to_have_attribute("aria-pressed", "true")

    page.keyboard.press("Escape")
    expect(w(page, ".panel")).to_be_hidden()
    assert page.evaluate(ACTIVE) == "kt:launcher"
    expect(w(page, ".launcher")).to_have_attribute("aria-expanded", "false")


def test_feedback_frame_is_sent(page: Page, server: KlartextServer) -> None:
    frames = Frames().attach(page)
    page.goto(server.url + "/")
    open_widget(page)
    w(page, ".sug").first.click()  # a starter suggestion asks it
    answer = wait_answers(page, 1)
    answer.locator(".fb button[data-rating=down]").click()
    expect(answer.locator(".thanks")).to_be_visible()
    turn_id = frames.events("done")[-1]["turn_id"]
    sent = [f for f in frames.sent if f["type"] == "feedback"]
    assert sent == [{"type": "feedback", "turn_id": turn_id, "rating": "down"}]
    page.wait_for_timeout(300)
    assert [f for f in frames.received if f.get("type") == "error"] == []  # the server took it
    expect(w(page, ".notice.error")).to_have_count(0)


def test_mobile_layout_is_full_screen(
    browser: Browser, server: KlartextServer, shots: Path
) -> None:
    ctx = browser.new_context(
        viewport={"width": 375, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page = ctx.new_page()
    try:
        page.goto(server.url + "/")
        w(page, ".launcher").tap()
        expect(w(page, ".head")).to_have_class("head st-online", timeout=30_000)
        page.wait_for_timeout(300)  # open transition
        box = w(page, ".panel").bounding_box()
        assert box is not None
        assert [round(box[k]) for k in ("x", "y", "width", "height")] == [0, 0, 375, 740]
        expect(w(page, ".launcher")).to_be_hidden()  # the header's close button takes over
        w(page, "textarea").fill("Which payment methods do you accept?")
        w(page, ".sendbtn").tap()
        wait_answers(page, 1)
        page.wait_for_timeout(300)
        page.screenshot(path=str(shots / "widget-mobile.png"))
        w(page, ".hbtn.close").tap()
        expect(w(page, ".panel")).to_be_hidden()
        expect(w(page, ".launcher")).to_be_visible()
    finally:
        ctx.close()


def test_text_contrast_meets_wcag_aa(page: Page, server: KlartextServer) -> None:
    page.goto(server.url + "/")
    open_widget(page)
    ratios = contrast_ratios(page)
    assert len(ratios) >= 6, ratios
    low = {k: round(v, 2) for k, v in ratios.items() if v < 4.5}
    assert not low, f"contrast below 4.5:1: {low}"
