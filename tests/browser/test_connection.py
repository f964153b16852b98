"""Reconnect schedule: exponential backoff with jitter, and an immediate retry when the browser
reports it is back online."""

from __future__ import annotations

import itertools

from _kt_server import KlartextServer, free_port
from _widget import w
from playwright.sync_api import Page, expect

# The widget on a page whose websocket URL points at a closed port: every attempt fails fast.
SETUP = """(wsUrl) => {
  Math.random = () => 0.5;
  window.__kt = [];
  const el = document.createElement('klartext-chat');
  el.setAttribute('data-ws-url', wsUrl);
  el.addEventListener('klartext:connection', (e) => window.__kt.push(
    [e.detail.state, Math.round(el._retryAt - Date.now()), Math.round(performance.now())]));
  document.querySelector('klartext-chat').remove();
  document.body.appendChild(el);
  el.open();
}"""


def test_backoff_doubles_with_jitter_and_online_event_retries_at_once(
    page: Page, server: KlartextServer
) -> None:
    page.goto(server.url + "/")
    expect(w(page, ".launcher")).to_be_visible()
    page.evaluate(SETUP, f"ws://127.0.0.1:{free_port()}/ws/chat")
    page.wait_for_function(  # the first attempt and three retries, then one more failure
        "() => window.__kt.filter(([s]) => s === 'connecting').length >= 4"
        " && window.__kt[window.__kt.length - 1][0] === 'offline'",
        timeout=15_000,
    )
    log = page.evaluate("() => window.__kt")
    # First "offline" entry of each attempt carries the scheduled delay (the countdown ticks
    # re-emit it); with Math.random() = 0.5 the jittered delay is 3/4 of the exponential step.
    delays = []
    for prev, cur in itertools.pairwise(log):
        if cur[0] == "offline" and prev[0] == "connecting":
            delays.append(cur[1])
    assert len(delays) >= 4, log
    for got, want in zip(delays, [375, 750, 1500, 3000], strict=False):
        assert abs(got - want) <= 60, (delays, log)
    expect(w(page, ".stxt")).to_contain_text("Offline")
    expect(w(page, ".banner.offline")).to_be_visible()

    # The browser says it is online again: retry now, not after the pending backoff.
    before = len(page.evaluate("() => window.__kt"))
    page.evaluate("() => window.dispatchEvent(new Event('online'))")
    page.wait_for_function(f"() => window.__kt.slice({before}).some(([s]) => s === 'connecting')")
