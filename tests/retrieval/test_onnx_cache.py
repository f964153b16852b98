"""retrieval.onnx_cache: the shared directory rule and atomic writes."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from retrieval import onnx_cache


def test_directory_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLARTEXT_CACHE_DIR", "/srv/kt")
    assert onnx_cache.cache_dir() == Path("/srv/kt/onnx")
    monkeypatch.delenv("KLARTEXT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    assert onnx_cache.cache_dir() == Path("/xdg/klartext/onnx")


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "x.onnx"
    assert onnx_cache.write_atomic(target, b"first")
    assert onnx_cache.write_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["x.onnx"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_failed_rename_leaves_neither_file_nor_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with caplog.at_level(logging.WARNING, logger="retrieval.onnx_cache"):
        assert onnx_cache.write_atomic(tmp_path / "x.onnx", b"data") is False
    assert list(tmp_path.iterdir()) == []
    assert "cannot cache" in caplog.text
