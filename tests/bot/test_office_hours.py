"""Office hours of human agents: ranges, day lists and spans, overnight ranges, time zones,
and clear errors for a bad setting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.errors import ConfigError
from bot.office_hours import parse_office_hours

# 2026-11-30 is a Monday
MON_0930_BERLIN = datetime(2026, 11, 30, 8, 30, tzinfo=UTC)


def test_weekday_ranges_in_a_time_zone() -> None:
    hours = parse_office_hours("Mon-Fri 09:00-17:00; sat,sun 10:00-12:00", "Europe/Berlin")
    assert hours.open_at(MON_0930_BERLIN)
    assert not hours.open_at(datetime(2026, 11, 30, 7, 30, tzinfo=UTC))  # 08:30 in Berlin
    assert not hours.open_at(datetime(2026, 11, 30, 16, 0, tzinfo=UTC))  # 17:00: closed
    assert hours.open_at(datetime(2026, 12, 6, 9, 59, tzinfo=UTC))  # Sunday 10:59
    assert not hours.open_at(datetime(2026, 12, 6, 11, 0, tzinfo=UTC))  # Sunday 12:00


def test_overnight_and_wrapping_day_spans() -> None:
    hours = parse_office_hours("fri-mon 22:00-02:00")
    assert hours.open_at(datetime(2026, 12, 4, 23, 0, tzinfo=UTC))  # Friday night
    assert hours.open_at(datetime(2026, 12, 5, 1, 0, tzinfo=UTC))  # early Saturday
    assert hours.open_at(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))  # early Tuesday (Mon night)
    assert not hours.open_at(datetime(2026, 12, 2, 1, 0, tzinfo=UTC))  # early Wednesday
    assert not hours.open_at(datetime(2026, 12, 4, 12, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("spec", "zone", "needle"),
    [
        ("weekdays 09:00-17:00", "UTC", "unknown day"),
        ("mon 9-17", "UTC", "cannot read"),
        ("mon 09:00-25:00", "UTC", "invalid time"),
        (" ; ", "UTC", "no ranges"),
        ("mon 09:00-17:00", "Mars/Olympus", "unknown time zone"),
    ],
)
def test_bad_settings_say_what_is_wrong(spec: str, zone: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_office_hours(spec, zone)
