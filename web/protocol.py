"""Protocol v1 (``docs/protocol.md``): client frame models, parsing into stable error codes,
and builders for the server's control frames."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

PROTOCOL_VERSION = 1
SERVER_VERSION = "0.1.0"
MAX_JSON_DEPTH = 8


class FrameError(Exception):
    """A client frame was refused; ``code`` is one of the stable protocol error codes."""

    def __init__(self, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


# C0 controls, DEL and lone UTF-16 surrogates: never valid in ids (the database refuses NUL,
# a surrogate cannot be encoded back to UTF-8)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def _no_controls(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    return value


SafeStr = Annotated[str, AfterValidator(_no_controls)]


class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Hello(_Frame):
    type: Literal["hello"]
    v: int = PROTOCOL_VERSION
    widget_version: SafeStr = Field("unknown", max_length=64)
    conversation_id: SafeStr | None = Field(None, max_length=64)
    token: SafeStr | None = Field(None, max_length=256)
    last_seq: int = Field(0, ge=0)
    lang: SafeStr | None = Field(None, max_length=16)


class Message(_Frame):
    type: Literal["message"]
    message_id: SafeStr = Field(min_length=1, max_length=128)
    text: str


class FeedbackFrame(_Frame):
    type: Literal["feedback"]
    turn_id: SafeStr = Field(min_length=1, max_length=64)
    rating: Literal["up", "down"]
    comment: Annotated[str, AfterValidator(lambda c: clean_text(c))] | None = Field(
        None, max_length=2000
    )


class RequestHuman(_Frame):
    type: Literal["request_human"]
    message_id: SafeStr = Field(min_length=1, max_length=128)


class Typing(_Frame):
    type: Literal["typing"]


class Ping(_Frame):
    type: Literal["ping"]
    nonce: Annotated[SafeStr, Field(max_length=128)] | int | None = None


ClientFrame = Annotated[
    Hello | Message | FeedbackFrame | RequestHuman | Typing | Ping, Field(discriminator="type")
]
_ADAPTER: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)
CLIENT_TYPES = frozenset({"hello", "message", "feedback", "request_human", "typing", "ping"})


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def parse_frame(raw: str, *, max_bytes: int) -> ClientFrame:
    """Parse one text frame or raise ``FrameError`` with a stable code."""
    if len(raw) > max_bytes or len(raw.encode("utf-8", "surrogatepass")) > max_bytes:
        raise FrameError("too_large", f"frame larger than {max_bytes} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise FrameError("bad_json", "frame is not valid JSON") from exc
    if not isinstance(data, dict):
        raise FrameError("invalid_frame", "frame must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise FrameError("invalid_frame", "frame has no string `type`")
    if kind not in CLIENT_TYPES:
        raise FrameError("unknown_type", f"unknown frame type {kind[:40]!r}")
    if _depth(data) > MAX_JSON_DEPTH:
        raise FrameError("invalid_frame", "frame nested too deeply")
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or kind
        raise FrameError("invalid_frame", f"{where}: {first['msg']}") from exc


def clean_text(text: str) -> str:
    """Strip, drop control characters except newline/tab, and lone surrogates."""
    kept = (
        ch
        for ch in text
        if (ch in "\n\t" or ord(ch) >= 32) and ord(ch) != 127 and not 0xD800 <= ord(ch) <= 0xDFFF
    )
    return "".join(kept).strip()


def error_frame(
    code: str,
    message: str,
    *,
    retry_after: float | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if retry_after is not None:
        out["retry_after"] = round(retry_after, 3)
    if message_id is not None:
        out["message_id"] = message_id
    return out
