"""Log scrubbing through a real ``logging`` logger configured by ``configure_logging``: emails,
phone numbers and order numbers are replaced in messages, string fields and tracebacks unless
``log_pii``; ids, dates and numbers that are not phone numbers stay readable."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from web.logging import Scrubber, configure_logging, request_id_var


@pytest.fixture
def capture() -> Iterator[io.StringIO]:
    logger = logging.getLogger("klartext")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    buf = io.StringIO()
    yield buf
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def _lines(
    buf: io.StringIO, *, log_pii: bool, json_logs: bool = True, order: str = r"[A-Z]{2}-\d{5}"
) -> list[Any]:
    configure_logging("INFO", json_logs=json_logs, log_pii=log_pii, order_pattern=order)
    handler = logging.getLogger("klartext").handlers[-1]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buf)
    log = logging.getLogger("klartext.test")
    token = request_id_var.set("req-42")
    try:
        log.warning(
            "lookup for %s (%s) failed: order %s",
            "Jane.Doe+shop@example.co.uk",
            "+49 (30) 1234-5678",
            "AB-12345",
            extra={"turn_id": "0123456789abcdef0123", "note": "call 030 12345678"},
        )
        try:
            raise ValueError("bad mail jane@example.com")
        except ValueError:
            log.exception("failed on 2026-11-28 for 1234567 items")
    finally:
        request_id_var.reset(token)
    raw = buf.getvalue().splitlines()
    return [json.loads(line) for line in raw] if json_logs else raw


def test_scrubbed_by_default(capture: io.StringIO) -> None:
    first, second = _lines(capture, log_pii=False)
    assert first["msg"] == "lookup for <email> (<phone>) failed: order <order>"
    assert first["note"] == "call <phone>"
    assert first["turn_id"] == "0123456789abcdef0123" and first["request_id"] == "req-42"
    assert "jane@example.com" not in second["exc"] and "<email>" in second["exc"]
    assert second["msg"] == "failed on 2026-11-28 for 1234567 items"  # not phone numbers


def test_plain_format_is_scrubbed_too(capture: io.StringIO) -> None:
    text = "\n".join(_lines(capture, log_pii=False, json_logs=False))
    assert "example.co.uk" not in text and "1234-5678" not in text and "AB-12345" not in text
    assert "<email>" in text and "<order>" in text


def test_log_pii_keeps_everything(capture: io.StringIO) -> None:
    first, _ = _lines(capture, log_pii=True)
    assert "Jane.Doe+shop@example.co.uk" in first["msg"] and "AB-12345" in first["msg"]


def test_configured_order_pattern_and_a_broken_one() -> None:
    assert Scrubber(r"\d{3}-[A-Z]{3}")("order 123-XYZ") == "order <order>"
    assert Scrubber("([unclosed")("mail a@b.io") == "mail <email>"  # emails still scrubbed
