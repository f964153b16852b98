"""A small circuit breaker for the LLM: after ``failures`` consecutive failures the LLM is
skipped for ``cooldown_s`` seconds (the engine answers extractively meanwhile); then one
trial call is let through (half-open) and a success closes the circuit again."""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    def __init__(
        self,
        failures: int = 3,
        cooldown_s: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1:
            raise ValueError("failures must be >= 1")
        self._threshold = failures
        self._cooldown = cooldown_s
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None

    @property
    def state(self) -> str:
        """``closed`` (LLM used), ``open`` (skipped) or ``half_open`` (one trial allowed)."""
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self._cooldown:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        return self.state != "open"

    def record_success(self) -> None:
        self._consecutive = 0
        self._opened_at = None

    def record_failure(self) -> None:
        self._consecutive += 1
        if self._consecutive >= self._threshold or self._opened_at is not None:
            self._opened_at = self._clock()
