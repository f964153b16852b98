from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bot.config import Settings
from web.tokens import BadTokenError, TokenSigner, load_or_create_secret


def test_roundtrip_and_tampering() -> None:
    signer = TokenSigner(b"k" * 32, ttl_s=100)
    token = signer.issue("abc", now=1000)
    assert signer.verify(token, now=1050) == "abc"
    cid, exp, sig = token.split(".")
    for bad in (
        f"xyz.{exp}.{sig}",
        f"{cid}.{int(exp) + 1}.{sig}",
        f"{cid}.{exp}.{sig[:-2]}AA",
        "garbage",
        "a.b.c",
        "",
    ):
        with pytest.raises(BadTokenError):
            signer.verify(bad, now=1050)
    with pytest.raises(BadTokenError, match="expired"):
        signer.verify(token, now=1101)
    other = TokenSigner(b"o" * 32, ttl_s=100)
    with pytest.raises(BadTokenError):
        other.verify(token, now=1050)


def test_secret_generated_once_with_0600(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = load_or_create_secret(settings)
    path = tmp_path / "data" / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(settings) == first and len(first) >= 32
    explicit = Settings(data_dir=tmp_path / "data", token_secret="from-settings-0123456789")
    assert load_or_create_secret(explicit) == b"from-settings-0123456789"
