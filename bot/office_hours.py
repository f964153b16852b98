"""Office hours of the human agents (setting ``handoff_office_hours``).

Format: ``;``-separated ranges ``<days> <HH:MM>-<HH:MM>``, days as ``mon``…``sun``, a span
``mon-fri`` or a list ``sat,sun``; times in ``handoff_timezone`` (an IANA name, default UTC).
Example: ``"mon-fri 09:00-17:00; sat 10:00-14:00"``. Outside these hours a handoff gets the
"no agent available" fallback at once. An end before the start runs past midnight
(``fri 22:00-02:00`` covers Friday night until Saturday 02:00).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import ConfigError

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(
    r"^(?P<days>[a-z,\-]+)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})$"
)


@dataclass(frozen=True, slots=True)
class _Span:
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time

    def contains(self, local: datetime) -> bool:
        t = local.time()
        if self.start <= self.end:
            return local.weekday() in self.days and self.start <= t < self.end
        # past midnight: the evening of a listed day, or the early morning after it
        yesterday = (local - timedelta(days=1)).weekday()
        return (local.weekday() in self.days and t >= self.start) or (
            yesterday in self.days and t < self.end
        )


@dataclass(frozen=True, slots=True)
class OfficeHours:
    spans: tuple[_Span, ...]
    zone: ZoneInfo

    def open_at(self, when: datetime) -> bool:
        """Whether ``when`` (an aware datetime) is inside the office hours."""
        local = when.astimezone(self.zone)
        return any(s.contains(local) for s in self.spans)


def _time(text: str, spec: str) -> time:
    h, m = (int(x) for x in text.split(":"))
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m != 0):
        raise ConfigError(f"handoff_office_hours: invalid time {text!r} in {spec!r}")
    return time.max if h == 24 else time(h, m)


def _days(text: str, spec: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        if lo not in _DAYS or (hi and hi not in _DAYS):
            raise ConfigError(
                f"handoff_office_hours: unknown day in {part!r} of {spec!r} (use mon…sun)"
            )
        a, b = _DAYS.index(lo), _DAYS.index(hi or lo)
        out.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(out)


def parse_office_hours(spec: str, timezone: str = "UTC") -> OfficeHours:
    """Parse the setting; raises :class:`~bot.errors.ConfigError` with what is wrong."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"handoff_timezone: unknown time zone {timezone!r}") from exc
    spans: list[_Span] = []
    for item in spec.lower().split(";"):
        item = " ".join(item.split())
        if not item:
            continue
        m = _RANGE.match(item)
        if m is None:
            raise ConfigError(
                f"handoff_office_hours: cannot read {item!r} (expected e.g. 'mon-fri 09:00-17:00')"
            )
        spans.append(_Span(_days(m["days"], spec), _time(m["start"], spec), _time(m["end"], spec)))
    if not spans:
        raise ConfigError("handoff_office_hours: no ranges given")
    return OfficeHours(tuple(spans), zone)
