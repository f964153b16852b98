"""The "talk to a human" button, the handoff status, and agent messages shown distinctly."""

from __future__ import annotations

from pathlib import Path

from _kt_server import KlartextServer
from _widget import ANSWER_TIMEOUT_MS, Frames, ask, open_widget, w, wait_answers
from playwright.sync_api import Page, expect


def test_talk_to_a_human_shows_the_handoff_state(
    page: Page, server: KlartextServer, shots: Path
) -> None:
    frames = Frames().attach(page)
    page.goto(server.url + "/")
    open_widget(page)
    ask(page, "Can I return an item I bought?")
    wait_answers(page, 1)

    w(page, ".human").click()
    expect(w(page, ".banner.handoff")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    expect(w(page, ".banner.handoff")).to_contain_text("Waiting for a human agent")
    expect(w(page, ".notice.handoff")).to_have_count(1)
    expect(w(page, ".human")).to_be_hidden()
    request = [f for f in frames.sent if f["type"] == "request_human"]
    assert len(request) == 1 and request[0]["message_id"]
    handoff = frames.events("handoff")[-1]
    assert handoff["state"] == "pending_human" and handoff["reason"] == "user_request"
    # The live region announced the status change.
    expect(w(page, ".live[aria-live=polite]")).to_contain_text("human agent")

    # After a reload the state comes back from the server (welcome.handoff_state + history).
    page.reload()
    expect(w(page, ".banner.handoff")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    expect(w(page, ".notice.handoff")).to_have_count(1)


def test_agent_messages_from_the_handoff_api_render_distinctly(
    page: Page, server: KlartextServer, shots: Path
) -> None:
    """A CRM posts an agent message through the handoff API; the widget shows it live, with the
    agent's name, apart from bot answers, and the banner switches to 'human'."""
    page.goto(server.url + "/")
    open_widget(page)
    ask(page, "Where is my parcel? It has not arrived.")
    wait_answers(page, 1)
    w(page, ".human").click()
    expect(w(page, ".banner.handoff")).to_contain_text("Waiting", timeout=ANSWER_TIMEOUT_MS)
    cid = page.evaluate("() => document.querySelector('klartext-chat').conversationId")
    text = "Hi, I'm **Lena** from the Nordcraft team. Let me check."
    server.agent_api(cid, "messages", {"text": text, "agent_name": "Lena"})

    agent = w(page, ".row.agent")
    expect(agent).to_have_count(1, timeout=ANSWER_TIMEOUT_MS)
    expect(agent.locator(".by")).to_contain_text("Lena")
    expect(agent.locator(".bubble strong")).to_have_text("Lena")
    expect(w(page, ".banner.handoff")).to_contain_text("chatting with a human agent")
    expect(w(page, ".live")).to_contain_text("Lena")
    bg_agent = agent.locator(".bubble").evaluate("el => getComputedStyle(el).backgroundColor")
    bg_bot = w(page, ".row.bot .bubble").first.evaluate(
        "el => getComputedStyle(el).backgroundColor"
    )
    assert bg_agent != bg_bot
    page.wait_for_timeout(200)
    page.screenshot(path=str(shots / "widget-handoff.png"))

    # The agent hands back to the bot: banner gone, the button is offered again.
    server.agent_api(cid, "release", {})
    expect(w(page, ".banner.handoff")).to_be_hidden(timeout=ANSWER_TIMEOUT_MS)
    expect(w(page, ".notice.handoff").last).to_contain_text("assistant again")
    expect(w(page, ".human")).to_be_visible()
