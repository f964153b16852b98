"""Structured JSON logs with request/conversation ids; message text only with ``log_pii``."""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

conversation_id_var: ContextVar[str | None] = ContextVar("conversation_id", default=None)
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("request_id", "conversation_id"):
            value = getattr(record, key, None) or (
                request_id_var.get() if key == "request_id" else conversation_id_var.get()
            )
            if value:
                out[key] = value
        for key, value in vars(record).items():
            if key not in _STD and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", *, json_logs: bool = True) -> None:
    """Route the ``klartext`` logger tree to stderr (idempotent)."""
    logger = logging.getLogger("klartext")
    logger.setLevel(level.upper())
    for h in list(logger.handlers):
        if getattr(h, "_klartext", False):
            logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._klartext = True  # type: ignore[attr-defined]
    handler.setFormatter(
        JsonFormatter() if json_logs else logging.Formatter("%(levelname)s %(name)s %(message)s")
    )
    logger.addHandler(handler)
    logger.propagate = False


def redact(text: str, *, log_pii: bool) -> str:
    """What may appear in a log line for user text: the text with ``log_pii``, else its size."""
    return text if log_pii else f"<{len(text)} chars>"
