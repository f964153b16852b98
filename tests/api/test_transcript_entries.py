"""web.api.transcript.render_entries: a bot turn's events become one entry (unit level)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.store.listing import TimedEvent
from web.api.transcript import render_entries

AT = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)


def _ev(seq: int, type_: str, payload: dict[str, object]) -> TimedEvent:
    return TimedEvent(seq=seq, type=type_, turn_id="t1", payload=payload, created_at=AT)


def test_refusal_keeps_suggestion_texts_and_entry_ids() -> None:
    items = ["How do I return an item?", "Talk to a human"]
    (bot,) = render_entries([
        _ev(1, "token", {"text": "I couldn't find that."}),
        _ev(2, "suggestions", {"items": items, "ids": ["en-ret-01"]}),
        _ev(3, "done", {"mode": "fallback", "answered": False, "confidence": 0.2}),
    ])  # fmt: skip
    assert bot.role == "bot" and bot.text == "I couldn't find that."
    assert bot.suggestions == items and bot.suggestion_ids == ["en-ret-01"]
    assert (bot.mode, bot.answered) == ("fallback", False)


def test_suggestions_without_ids_leave_the_field_empty() -> None:
    (bot,) = render_entries([_ev(1, "suggestions", {"items": ["Talk to a human"]})])
    assert bot.suggestions == ["Talk to a human"] and bot.suggestion_ids is None
