"""Websocket limits: frame/message size, messages per minute per conversation, idle timeout,
heartbeat, and a protocol-abuse counter."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from bot.config import Settings

WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_chars: int
    max_frame_bytes: int
    messages_per_minute: int
    idle_timeout_s: float
    heartbeat_s: float
    max_errors_per_minute: int = 30

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_message_chars=settings.max_message_chars,
            # a frame may carry the longest message (4 bytes/char worst case) plus JSON framing
            max_frame_bytes=settings.max_message_chars * 4 + 1024,
            messages_per_minute=settings.rate_limit_per_minute,
            idle_timeout_s=settings.idle_timeout_s,
            heartbeat_s=settings.heartbeat_s,
        )

    def public(self) -> dict[str, int]:
        return {
            "max_message_chars": self.max_message_chars,
            "messages_per_minute": self.messages_per_minute,
        }


class SlidingWindow:
    """At most ``limit`` hits in any ``window_s``; ``hit()`` returns seconds to wait or None."""

    def __init__(self, limit: int, window_s: float = WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: deque[float] = deque()

    def hit(self, now: float | None = None) -> float | None:
        t = time.monotonic() if now is None else now
        while self._hits and self._hits[0] <= t - self.window_s:
            self._hits.popleft()
        if len(self._hits) >= self.limit:
            return max(0.001, self._hits[0] + self.window_s - t)
        self._hits.append(t)
        return None


class RateLimiter:
    """Per-key sliding windows (key = conversation id), shared by all sockets of a process so
    that opening a second tab does not double the allowance."""

    def __init__(self, limit: int, window_s: float = WINDOW_S, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._windows: dict[str, SlidingWindow] = {}

    def hit(self, key: str, now: float | None = None) -> float | None:
        win = self._windows.get(key)
        if win is None:
            if len(self._windows) >= self.max_keys:  # crude bound: forget the oldest key
                self._windows.pop(next(iter(self._windows)))
            win = self._windows[key] = SlidingWindow(self.limit, self.window_s)
        return win.hit(now)


@dataclass(slots=True)
class Guards:
    """The per-IP and per-API-key limits (the per-conversation one is ``Services.rate``)."""

    ws_connect_ip: RateLimiter
    ws_message_ip: RateLimiter
    api_key: RateLimiter

    @classmethod
    def from_settings(cls, settings: Settings) -> Guards:
        return cls(
            ws_connect_ip=RateLimiter(settings.ws_connections_per_minute_per_ip),
            ws_message_ip=RateLimiter(settings.ws_messages_per_minute_per_ip),
            api_key=RateLimiter(settings.api_requests_per_minute_per_key),
        )
