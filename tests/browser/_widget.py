"""Helpers to drive the widget through its shadow DOM (Playwright CSS selectors pierce open
shadow roots) and to watch the websocket frames it exchanges."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import Locator, Page, WebSocket, expect

ANSWER_TIMEOUT_MS = 30_000


def w(page: Page, selector: str) -> Locator:
    return page.locator(f"klartext-chat {selector}")


def open_widget(page: Page) -> None:
    w(page, ".launcher").click()
    expect(w(page, ".panel")).to_be_visible()
    expect(w(page, ".head")).to_have_class("head st-online", timeout=ANSWER_TIMEOUT_MS)


def ask(page: Page, text: str) -> None:
    box = w(page, "textarea")
    box.fill(text)
    box.press("Enter")


def answers(page: Page) -> Locator:
    """Finished bot answers (a `done` gave them their feedback buttons)."""
    return w(page, ".row.bot:has(.fb)")


def wait_answers(page: Page, n: int) -> Locator:
    expect(answers(page)).to_have_count(n, timeout=ANSWER_TIMEOUT_MS)
    return answers(page).nth(n - 1)


def pace_websocket(page: Page, gap_ms: int) -> None:
    """Simulate a slow link: deliver the server's frames to the page at least ``gap_ms`` apart
    (the loopback server streams a short extractive answer within one animation frame)."""
    page.add_init_script(
        """{
          const gap = GAP_MS;
          const Native = window.WebSocket;
          window.WebSocket = class extends Native {
            set onmessage(fn) {
              let chain = Promise.resolve();
              const later = (e) => new Promise((ok) => setTimeout(() => { fn(e); ok(); }, gap));
              super.onmessage = (e) => { chain = chain.then(() => later(e)); };
            }
          };
        }""".replace("GAP_MS", str(int(gap_ms)))
    )


def watch_streaming(page: Page) -> None:
    """Record the text length of every still-streaming answer bubble on each DOM change."""
    page.evaluate(
        """() => {
          window.__ktStream = [];
          const root = document.querySelector('klartext-chat').shadowRoot;
          new MutationObserver(() => {
            for (const b of root.querySelectorAll('.bubble.streaming'))
              window.__ktStream.push(b.textContent.length);
          }).observe(root, {subtree: true, childList: true, characterData: true});
        }"""
    )


def streamed_lengths(page: Page) -> list[int]:
    return list(page.evaluate("() => window.__ktStream"))


@dataclass
class Frames:
    """Every JSON frame the page's websockets sent and received, in order."""

    received: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)

    def attach(self, page: Page) -> Frames:
        def on_ws(ws: WebSocket) -> None:
            ws.on("framereceived", lambda payload: self._add(self.received, payload))
            ws.on("framesent", lambda payload: self._add(self.sent, payload))

        page.on("websocket", on_ws)
        return self

    @staticmethod
    def _add(into: list[dict[str, Any]], payload: str | bytes) -> None:
        if isinstance(payload, str):
            into.append(json.loads(payload))

    def events(self, kind: str) -> list[dict[str, Any]]:
        """Received conversation events of one type, live or replayed via ``history``."""
        out: list[dict[str, Any]] = []
        for f in self.received:
            batch = f["events"] if f.get("type") == "history" else [f]
            out += [e for e in batch if e.get("type") == kind]
        return out


def contrast_ratios(page: Page) -> dict[str, float]:
    """WCAG contrast ratio of text against its effective background, for key widget texts."""
    return dict(
        page.evaluate(
            """() => {
          const root = document.querySelector('klartext-chat').shadowRoot;
          const rgb = (s) => { const n = s.match(/[\\d.]+/g).slice(0, 3).map(Number);
            return s.startsWith('color(') ? n.map((v) => v * 255) : n; };
          const lum = (c) => { const [r, g, b] = c.map((v) => { v /= 255;
            return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
            return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
          const bg = (el) => { for (; el; el = el.parentElement || el.getRootNode().host) {
            const c = getComputedStyle(el).backgroundColor;
            if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') return c; }
            return 'rgb(255, 255, 255)'; };
          const out = {};
          for (const sel of ['.title', '.stxt', '.welcome .bubble p', 'textarea', '.human',
                             '.powered', '.sug', '.launcher']) {
            const el = root.querySelector(sel); if (!el) continue;
            const a = lum(rgb(getComputedStyle(el).color)), b = lum(rgb(bg(el)));
            out[sel] = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
          }
          return out;
        }"""
        )
    )
