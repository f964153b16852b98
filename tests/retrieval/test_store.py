"""Index directory layout: atomic publication, pruning, manifest checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval import store
from retrieval.errors import IndexCorrupt, IndexMissing, IndexModelMismatch


def _manifest(model: str = "m:one") -> store.Manifest:
    return store.Manifest(
        model=model,
        dim=4,
        index_kind="flat",
        entry_count=0,
        row_count=0,
        built_at="2026-01-01T00:00:00+00:00",
        build_seconds=0.0,
        entry_hashes={},
    )


def _complete_build(index_dir: Path, model: str = "m:one") -> Path:
    build = store.create_build(index_dir)
    store.write_manifest(build, _manifest(model))
    return build


def test_missing_index_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(IndexMissing, match="klartext reindex"):
        store.current_build(tmp_path / "nothing")


def test_publish_switches_current_and_keeps_previous(tmp_path: Path) -> None:
    builds = []
    for _ in range(4):
        build = _complete_build(tmp_path)
        store.publish(tmp_path, build)
        builds.append(build)
        assert store.current_build(tmp_path) == build
    remaining = sorted(p.name for p in store.builds_dir(tmp_path).iterdir())
    assert remaining == [builds[2].name, builds[3].name]
    assert not list(tmp_path.glob("*.tmp"))


def test_incomplete_build_is_never_published_and_gets_pruned(tmp_path: Path) -> None:
    good = _complete_build(tmp_path)
    store.publish(tmp_path, good)
    partial = store.create_build(tmp_path)  # crashed before writing its manifest
    with pytest.raises(IndexCorrupt):
        store.publish(tmp_path, partial)
    assert store.current_build(tmp_path) == good
    newer = _complete_build(tmp_path)
    store.publish(tmp_path, newer)
    assert not partial.exists()
    assert good.exists()


def test_model_mismatch_names_both_models() -> None:
    with pytest.raises(IndexModelMismatch) as info:
        store.check_model(_manifest("minilm:all-MiniLM-L6-v2"), "e5:multilingual-e5-small")
    assert "minilm:all-MiniLM-L6-v2" in str(info.value)
    assert "e5:multilingual-e5-small" in str(info.value)
    store.check_model(_manifest("a"), "a")


def test_unknown_format_version_is_corrupt(tmp_path: Path) -> None:
    build = _complete_build(tmp_path)
    text = (
        (build / store.MANIFEST).read_text().replace('"format_version": 1', '"format_version": 99')
    )
    (build / store.MANIFEST).write_text(text)
    with pytest.raises(IndexCorrupt, match="reindex --full"):
        store.read_manifest(build)
