"""The demo page end to end: open the widget, ask in English and German, see answers stream in
with citation chips, reload into the history, survive a server crash."""

from __future__ import annotations

from pathlib import Path

from _kt_server import KlartextServer
from _widget import (
    ANSWER_TIMEOUT_MS,
    Frames,
    ask,
    open_widget,
    pace_websocket,
    streamed_lengths,
    w,
    wait_answers,
    watch_streaming,
)
from playwright.sync_api import Browser, BrowserContext, Page, expect

EN_QUESTION = "How long does delivery to Austria take?"
DE_QUESTION = "Wie lange dauert der Versand nach Österreich?"


def test_english_question_streams_an_answer_with_a_citation(
    page: Page, server: KlartextServer, shots: Path
) -> None:
    frames = Frames().attach(page)
    pace_websocket(page, 40)  # a slow link: the streaming bubble is visible between frames
    page.goto(server.url + "/")
    expect(w(page, ".launcher")).to_be_visible()
    expect(w(page, ".panel")).to_be_hidden()
    page.screenshot(path=str(shots / "widget-closed.png"))

    open_widget(page)
    expect(w(page, "textarea")).to_be_focused()
    watch_streaming(page)
    ask(page, EN_QUESTION)
    expect(w(page, ".row.user .bubble").last).to_have_text(EN_QUESTION)

    answer = wait_answers(page, 1)
    text = answer.locator(".bubble").inner_text()
    assert "Austria" in text or "2–4" in text, text
    # Streamed as token frames (the server may coalesce adjacent tokens of a fast extractive
    # answer into one frame; test_streaming.py covers rendering token by token).
    tokens = frames.events("token")
    assert tokens and all(t["turn_id"] == tokens[0]["turn_id"] for t in tokens)
    assert streamed_lengths(page), "the answer bubble was never shown while streaming"
    # Citation chip linking to the help page the answer came from.
    chip = answer.locator("a.chip").first
    expect(chip).to_be_visible()
    href = chip.get_attribute("href") or ""
    assert href.startswith("/help/"), href
    assert "noopener" in (chip.get_attribute("rel") or "")
    sources = frames.events("sources")
    assert href in [item["url"] for item in sources[-1]["items"]]
    assert [f for f in frames.received if f.get("type") == "error"] == []
    page.screenshot(path=str(shots / "widget-answer.png"))


def test_german_question_gets_a_german_answer_and_german_ui(
    browser: Browser, server: KlartextServer, shots: Path
) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="de-DE")
    page = ctx.new_page()
    frames = Frames().attach(page)
    try:
        page.goto(server.url + "/")
        open_widget(page)
        expect(w(page, "textarea")).to_have_attribute("placeholder", "Ihre Frage…")
        assert frames.sent[0]["type"] == "hello" and frames.sent[0]["lang"] == "de"
        ask(page, DE_QUESTION)
        answer = wait_answers(page, 1)
        expect(answer.locator("a.chip").first).to_be_visible()
        done = frames.events("done")[-1]
        assert done["lang"] == "de"
        text = answer.locator(".bubble").inner_text()
        assert any(w_ in text for w_ in ("Österreich", "Werktage", "Versand")), text
        page.screenshot(path=str(shots / "widget-german.png"))
    finally:
        ctx.close()


def test_reload_restores_the_conversation_from_history(page: Page, server: KlartextServer) -> None:
    page.goto(server.url + "/")
    open_widget(page)
    ask(page, EN_QUESTION)
    answer_text = wait_answers(page, 1).locator(".bubble").inner_text()
    cid = page.evaluate("() => document.querySelector('klartext-chat').conversationId")

    frames = Frames().attach(page)
    page.reload()
    # The panel was open, so it reopens; the transcript is replayed by the server (last_seq=0).
    expect(w(page, ".panel")).to_be_visible()
    restored = wait_answers(page, 1)
    expect(restored.locator(".bubble")).to_have_text(answer_text, use_inner_text=True)
    expect(w(page, ".row.user .bubble")).to_have_text([EN_QUESTION])
    expect(restored.locator("a.chip").first).to_be_visible()
    hello = frames.sent[0]
    assert hello["type"] == "hello" and hello["conversation_id"] == cid and hello["last_seq"] == 0
    assert page.evaluate("() => document.querySelector('klartext-chat').conversationId") == cid

    # "New conversation" starts over with a fresh id.
    w(page, ".hbtn.new").click()
    expect(w(page, ".row.user")).to_have_count(0)
    expect(w(page, ".head")).to_have_class("head st-online", timeout=ANSWER_TIMEOUT_MS)
    new_cid = page.evaluate("() => document.querySelector('klartext-chat').conversationId")
    assert new_cid and new_cid != cid


def test_connection_drop_mid_answer_resumes_without_duplicates(
    page: Page, server: KlartextServer
) -> None:
    frames = Frames().attach(page)
    pace_websocket(page, 150)  # slow link, so the drop lands mid-answer
    page.goto(server.url + "/")
    open_widget(page)
    # Drop the socket the moment the answer starts to show (atomically, in the page).
    page.evaluate(
        """() => {
          const el = document.querySelector('klartext-chat');
          const obs = new MutationObserver(() => {
            if (!el.shadowRoot.querySelector('.bubble.streaming')) return;
            obs.disconnect();
            el._ws.close();
            window.__dropped = true;
          });
          obs.observe(el.shadowRoot, {subtree: true, childList: true, attributes: true});
        }"""
    )
    ask(page, EN_QUESTION)
    page.wait_for_function("() => window.__dropped === true", timeout=ANSWER_TIMEOUT_MS)
    answer = wait_answers(page, 1)
    hellos = [f for f in frames.sent if f["type"] == "hello"]
    assert len(hellos) == 2
    done_seq = frames.events("done")[-1]["seq"]
    assert 0 < hellos[1]["last_seq"] < done_seq  # resumed from where the stream broke off
    text = answer.locator(".bubble").inner_text()
    reference = "".join(t["text"] for t in {e["seq"]: e for e in frames.events("token")}.values())
    assert text.count("Austria") == reference.count("Austria") == 1
    expect(w(page, ".row.bot:not(.welcome)")).to_have_count(1)

    # A fresh page renders exactly the same answer from the server's history.
    page.reload()
    expect(wait_answers(page, 1).locator(".bubble")).to_have_text(text, use_inner_text=True)


def test_a_resent_message_id_is_not_answered_twice(page: Page, server: KlartextServer) -> None:
    """What the outbox does after a reconnect: resend with the same message_id."""
    frames = Frames().attach(page)
    page.goto(server.url + "/")
    open_widget(page)
    ask(page, EN_QUESTION)
    wait_answers(page, 1)
    echo = frames.events("user_message")[-1]
    before = len(frames.received)
    page.evaluate(
        """(m) => document.querySelector('klartext-chat')._sendFrame(
             {type: 'message', message_id: m.message_id, text: m.text})""",
        echo,
    )
    page.evaluate("() => document.querySelector('klartext-chat')._sendFrame({type: 'ping'})")
    expect(w(page, ".head")).to_have_class("head st-online")
    page.wait_for_timeout(500)
    new = [f for f in frames.received[before:] if f.get("type") != "pong"]
    assert new == []
    expect(w(page, ".row.user")).to_have_count(1)
    expect(w(page, ".row.bot:has(.fb)")).to_have_count(1)


def test_a_forged_token_starts_a_fresh_conversation(page: Page, server: KlartextServer) -> None:
    frames = Frames().attach(page)
    page.goto(server.url + "/")
    page.evaluate(
        """(url) => localStorage.setItem('klartext:v1:' + url, JSON.stringify(
             {cid: 'someone-else', token: 'someone-else.9999999999.AAAA', open: true}))""",
        server.url.replace("http", "ws") + "/ws/chat",
    )
    page.reload()
    expect(w(page, ".head")).to_have_class("head st-online", timeout=ANSWER_TIMEOUT_MS)
    assert frames.received[0] == {**frames.received[0], "type": "error", "code": "bad_token"}
    welcome = frames.received[1]
    assert welcome["type"] == "welcome" and welcome["resumed"] is False
    assert welcome["conversation_id"] != "someone-else"
    expect(w(page, ".notice.error")).to_have_count(0)
    ask(page, EN_QUESTION)
    wait_answers(page, 1)


def test_a_second_tab_shares_the_conversation(
    context: BrowserContext, page: Page, server: KlartextServer
) -> None:
    page.goto(server.url + "/")
    open_widget(page)
    other = context.new_page()
    other.goto(server.url + "/")
    # Same conversation (localStorage is per site); the panel's open state carries over too.
    expect(w(other, ".head")).to_have_class("head st-online", timeout=ANSWER_TIMEOUT_MS)
    cid = page.evaluate("() => document.querySelector('klartext-chat').conversationId")
    assert other.evaluate("() => document.querySelector('klartext-chat').conversationId") == cid
    ask(page, EN_QUESTION)
    wait_answers(page, 1)
    # The other tab follows live.
    expect(w(other, ".row.user .bubble")).to_have_text([EN_QUESTION], timeout=ANSWER_TIMEOUT_MS)
    wait_answers(other, 1)
    other.close()


def test_server_crash_reconnects_resumes_and_sends_queued_messages(
    page: Page, server: KlartextServer
) -> None:
    page.goto(server.url + "/")
    open_widget(page)
    ask(page, EN_QUESTION)
    wait_answers(page, 1)
    cid = page.evaluate("() => document.querySelector('klartext-chat').conversationId")

    server.kill()
    expect(w(page, ".head")).to_have_class("head st-offline", timeout=10_000)
    expect(w(page, ".banner.offline")).to_be_visible()
    ask(page, "How much does shipping cost?")  # typed while offline: queued
    expect(w(page, ".row.user.queued")).to_have_count(1)

    frames = Frames().attach(page)
    server.start()
    expect(w(page, ".head")).to_have_class("head st-online", timeout=ANSWER_TIMEOUT_MS)
    wait_answers(page, 2)
    expect(w(page, ".row.user.queued")).to_have_count(0)
    expect(w(page, ".row.user.pending")).to_have_count(0)
    hello = frames.sent[0]
    assert hello["conversation_id"] == cid and hello["last_seq"] > 0
    assert frames.received[0]["type"] == "welcome" and frames.received[0]["resumed"] is True
    # Nothing said twice: one bubble per user message, two answers in all.
    expect(w(page, ".row.user")).to_have_count(2)
    expect(w(page, ".row.bot:has(.fb)")).to_have_count(2)
    assert page.evaluate("() => document.querySelector('klartext-chat').conversationId") == cid
