"""Structured JSON logs with request/conversation ids; message text only with ``log_pii``.

Defence in depth: unless ``log_pii``, every line's message, exception text and string fields
(ids excepted) are scrubbed of emails, phone numbers and order numbers, whatever logged them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from contextvars import ContextVar
from typing import Any

conversation_id_var: ContextVar[str | None] = ContextVar("conversation_id", default=None)
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_IDS = frozenset({"request_id", "conversation_id", "turn_id", "message_id"})
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
# international (+49 …, 0049 …) or national (030 …) numbers with 8-15 digits
_PHONE = re.compile(r"(?<![\w+-])(?:\+|0)\d(?:[ ()/.-]{0,2}\d){6,16}(?![\w-])")
DEFAULT_ORDER_PATTERN = r"[A-Z]{2}-\d{5}"


class Scrubber:
    """Replaces emails, phone numbers and order numbers with ``<email>``, ``<phone>``,
    ``<order>``."""

    def __init__(self, order_pattern: str = DEFAULT_ORDER_PATTERN) -> None:
        try:
            self._order: re.Pattern[str] | None = re.compile(order_pattern)
        except re.error:
            self._order = None

    def __call__(self, text: str) -> str:
        text = _EMAIL.sub("<email>", text)
        if self._order is not None:
            text = self._order.sub("<order>", text)
        return _PHONE.sub("<phone>", text)


class JsonFormatter(logging.Formatter):
    def __init__(self, scrub: Scrubber | None = None) -> None:
        super().__init__()
        self.scrub = scrub  # None: nothing is scrubbed (``log_pii``)

    def _clean(self, value: str) -> str:
        return self.scrub(value) if self.scrub is not None else value

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": self._clean(record.getMessage()),
        }
        for key in ("request_id", "conversation_id"):
            value = getattr(record, key, None) or (
                request_id_var.get() if key == "request_id" else conversation_id_var.get()
            )
            if value:
                out[key] = value
        for key, value in vars(record).items():
            if key not in _STD and key not in out:
                scrub = isinstance(value, str) and key not in _IDS
                out[key] = self._clean(value) if scrub else value
        if record.exc_info:
            out["exc"] = self._clean(self.formatException(record.exc_info))
        return json.dumps(out, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """``LEVEL logger message`` for humans (``log_json=false``), scrubbed the same way."""

    def __init__(self, scrub: Scrubber | None = None) -> None:
        super().__init__("%(levelname)s %(name)s %(message)s")
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return self.scrub(line) if self.scrub is not None else line


def configure_logging(
    level: str = "INFO",
    *,
    json_logs: bool = True,
    log_pii: bool = False,
    order_pattern: str = DEFAULT_ORDER_PATTERN,
) -> None:
    """Route the ``klartext`` logger tree to stderr (idempotent); scrubbed unless ``log_pii``."""
    logger = logging.getLogger("klartext")
    logger.setLevel(level.upper())
    for h in list(logger.handlers):
        if getattr(h, "_klartext", False):
            logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._klartext = True  # type: ignore[attr-defined]
    scrub = None if log_pii else Scrubber(order_pattern)
    handler.setFormatter(JsonFormatter(scrub) if json_logs else PlainFormatter(scrub))
    logger.addHandler(handler)
    logger.propagate = False


def redact(text: str, *, log_pii: bool) -> str:
    """What may appear in a log line for user text: the text with ``log_pii``, else its size."""
    return text if log_pii else f"<{len(text)} chars>"
