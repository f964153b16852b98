"""Input guard of the REST API (``/api/``), before routing: the path, query values and JSON
bodies may not contain NUL/control characters or lone surrogates (PostgreSQL cannot store them
and nobody means them), JSON may not nest deeper than ``MAX_JSON_DEPTH``, bodies are limited
to ``MAX_BODY_BYTES`` and must be UTF-8. Refusals use the API's error body: 413 ``too_large``,
422 ``invalid_request``."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.api.errors import API_PREFIX, error_response

MAX_BODY_BYTES = 1 << 20
MAX_JSON_DEPTH = 32
# C0 controls except tab/newline/carriage return, DEL, and UTF-16 surrogates
_BAD_CHAR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _check_text(value: str, where: str) -> None:
    if _BAD_CHAR.search(value):
        raise _Refused(422, "invalid_request", f"{where}: control characters are not allowed")


def _walk(value: Any, depth: int = 0) -> None:
    if depth > MAX_JSON_DEPTH:
        raise _Refused(422, "invalid_request", f"body: JSON nested deeper than {MAX_JSON_DEPTH}")
    if isinstance(value, str):
        _check_text(value, "body")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_text(k, "body")
            _walk(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _walk(v, depth + 1)


def check_body(body: bytes) -> None:
    """Raise ``_Refused`` for a JSON body the API must not see (bad JSON passes through: the
    route's own validation reports it)."""
    if len(body) > MAX_BODY_BYTES:
        raise _Refused(413, "too_large", f"request body larger than {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Refused(422, "invalid_request", "body: not valid UTF-8") from exc
    try:
        data = json.loads(text)
    except RecursionError as exc:
        raise _Refused(422, "invalid_request", "body: JSON nested too deeply") from exc
    except ValueError:
        return
    _walk(data)


class ApiInputGuard:
    """Pure ASGI middleware; other paths pass untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        try:
            self._check_target(scope)
            if not _is_json(scope):  # other bodies are the route's business
                await self.app(scope, receive, send)
                return
            declared = _header(scope, b"content-length")
            if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                raise _Refused(413, "too_large", f"request body larger than {MAX_BODY_BYTES} bytes")
            body = await _read_body(receive)
            if body:
                check_body(body)
        except _Refused as exc:
            await error_response(exc.status, exc.code, exc.message)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    @staticmethod
    def _check_target(scope: Scope) -> None:
        path = str(scope.get("path", ""))
        if "\ufffd" in path:  # the server decoded invalid UTF-8 in the path
            raise _Refused(422, "invalid_request", "path: not valid UTF-8")
        _check_text(path, "path")
        query = bytes(scope.get("query_string", b""))
        try:
            pairs = parse_qsl(query.decode("utf-8"), keep_blank_values=True, errors="strict")
        except (UnicodeDecodeError, ValueError) as exc:
            raise _Refused(422, "invalid_request", "query: not valid UTF-8") from exc
        for k, v in pairs:
            _check_text(k, "query")
            _check_text(v, f"query.{k[:40]}")


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1").strip()
    return ""


def _is_json(scope: Scope) -> bool:
    """JSON bodies (the API's own); a request without a content type is checked as JSON too
    (FastAPI parses such bodies as JSON)."""
    kind = _header(scope, b"content-type").split(";")[0].strip().lower()
    return scope.get("method") in ("POST", "PUT", "PATCH") and (
        kind in ("", "application/json") or kind.endswith("+json")
    )


async def _read_body(receive: Receive) -> bytes:
    """The whole body; refused as soon as it grows over the limit."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = bytes(message.get("body", b""))
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _Refused(413, "too_large", f"request body larger than {MAX_BODY_BYTES} bytes")
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
