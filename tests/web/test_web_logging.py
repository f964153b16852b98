from __future__ import annotations

import json
import logging

from web.logging import JsonFormatter, conversation_id_var, redact


def test_json_lines_carry_ids_and_extra_fields_but_no_text_by_default() -> None:
    token = conversation_id_var.set("conv-1")
    try:
        record = logging.LogRecord("klartext.ws", logging.INFO, __file__, 1, "message", (), None)
        record.turn_id = "t-9"
        record.text = redact("my email is a@b.example", log_pii=False)
        line = json.loads(JsonFormatter().format(record))
    finally:
        conversation_id_var.reset(token)
    assert line["conversation_id"] == "conv-1" and line["turn_id"] == "t-9"
    assert line["msg"] == "message" and line["level"] == "INFO"
    assert line["text"] == "<23 chars>"
    assert redact("hello", log_pii=True) == "hello"
