"""Signed conversation tokens: ``<conversation_id>.<expiry unix>.<base64url HMAC-SHA256>``.

A visitor can only resume a conversation whose token the server issued; guessing ids is
useless. The secret comes from ``settings.token_secret`` or is generated once into
``data_dir/secret`` (mode 0600).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from bot.config import Settings


class BadTokenError(ValueError):
    """Malformed, tampered or expired token."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenSigner:
    def __init__(self, secret: bytes, ttl_s: int) -> None:
        if len(secret) < 16:
            raise ValueError("token secret must be at least 16 bytes")
        self._secret = secret
        self.ttl_s = ttl_s

    def _sig(self, conversation_id: str, expiry: int) -> str:
        msg = f"{conversation_id}.{expiry}".encode()
        return _b64(hmac.new(self._secret, msg, hashlib.sha256).digest())

    def issue(self, conversation_id: str, *, now: float | None = None) -> str:
        expiry = int((time.time() if now is None else now) + self.ttl_s)
        return f"{conversation_id}.{expiry}.{self._sig(conversation_id, expiry)}"

    def verify(self, token: str, *, now: float | None = None) -> str:
        """The conversation id the token was issued for; ``BadTokenError`` otherwise."""
        parts = token.split(".")
        if len(parts) != 3 or not parts[0] or not parts[1].isdigit():
            raise BadTokenError("malformed token")
        cid, exp_s, sig = parts
        expiry = int(exp_s)
        if not hmac.compare_digest(sig, self._sig(cid, expiry)):
            raise BadTokenError("bad signature")
        if expiry < (time.time() if now is None else now):
            raise BadTokenError("token expired")
        return cid


def load_or_create_secret(settings: Settings) -> bytes:
    if settings.token_secret is not None:
        return settings.token_secret.get_secret_value().encode()
    path = Path(settings.data_dir) / "secret"
    if path.is_file():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, value)
    finally:
        os.close(fd)
    return value


def signer_from_settings(settings: Settings) -> TokenSigner:
    return TokenSigner(load_or_create_secret(settings), settings.token_ttl_s)
