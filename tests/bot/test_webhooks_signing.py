"""Webhook signatures and the retry schedule (pure functions)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.store.webhook_queue import Claimed
from bot.webhooks.dispatcher import DispatchConfig, backoff_delay, outcome_of
from bot.webhooks.signing import signature_header, verify

BODY = b'{"id":"evt_1","type":"message.created"}'


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    header = signature_header("whsec_x", BODY, timestamp=1_700_000_000)
    expected = hmac.new(b"whsec_x", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify("whsec_x", header, BODY, now=1_700_000_100)


def test_verify_rejects_tampering_wrong_secret_old_timestamps_and_garbage() -> None:
    header = signature_header("whsec_x", BODY, timestamp=1_700_000_000)
    assert not verify("whsec_x", header, BODY + b" ", now=1_700_000_000)
    assert not verify("whsec_y", header, BODY, now=1_700_000_000)
    assert not verify("whsec_x", header, BODY, now=1_700_000_000 + 301)
    for bad in ("", "t=abc,v1=00", "v1=00", "t=1700000000"):
        assert not verify("whsec_x", bad, BODY, now=1_700_000_000)
    rotated = header + ",v1=" + "0" * 64  # several v1 values (e.g. during rotation): any may match
    assert verify("whsec_x", rotated, BODY, now=1_700_000_000)


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    cfg = DispatchConfig(backoff_base_s=10.0, backoff_max_s=300.0)
    assert [backoff_delay(n, cfg, rand=lambda: 0.5) for n in (1, 2, 3, 4, 5, 6, 9)] == [
        10.0,
        20.0,
        40.0,
        80.0,
        160.0,
        300.0,
        300.0,
    ]
    assert backoff_delay(1, cfg, rand=lambda: 0.0) == 8.0
    assert backoff_delay(1, cfg, rand=lambda: 1.0) == pytest.approx(12.0)


def test_outcomes_retry_until_max_attempts() -> None:
    cfg = DispatchConfig(max_attempts=3, backoff_base_s=1.0)
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def claimed(attempts: int) -> Claimed:
        return Claimed(1, "evt.wh", "message.created", "{}", attempts, "http://x", "s")

    ok = outcome_of(claimed(0), cfg, at, 204, None)
    assert (ok.status, ok.response_code, ok.error) == ("delivered", 204, None)
    retry = outcome_of(claimed(0), cfg, at, 500, "HTTP 500")
    assert retry.status == "pending" and 0.8 <= (retry.next_attempt_at - at).total_seconds() <= 1.2
    redirect = outcome_of(claimed(1), cfg, at, 301, "HTTP 301")
    assert redirect.status == "pending"  # redirects are not followed: a failed attempt
    assert outcome_of(claimed(2), cfg, at, None, "ConnectError: refused").status == "failed"


def test_the_verification_snippet_in_the_api_docs_works() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    code = doc.split("### Verifying the signature")[1].split("```python")[1].split("```")[0]
    ns: dict[str, Any] = {}
    exec(code, ns)
    header = signature_header("whsec_x", BODY)
    assert ns["verify"]("whsec_x", header, BODY)
    assert not ns["verify"]("whsec_y", header, BODY)
    assert not ns["verify"]("whsec_x", header, BODY + b" ")
    assert not ns["verify"]("whsec_x", "garbage", BODY)
