"""The on-disk cache of exported encoder graphs, shared by :mod:`retrieval.onnx_bert` and
:mod:`retrieval.e5onnx`.

Directory: ``$KLARTEXT_CACHE_DIR/onnx``, else ``$XDG_CACHE_HOME/klartext/onnx``, else
``~/.cache/klartext/onnx``. Files are keyed by their callers (hashes of the weights they
hold), written to a temporary name beside the target and renamed into place, so concurrent
processes never read half a file. A cache that cannot be written is logged and skipped: the
caller builds the graph again next time.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

_log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """The default cache directory (see the module docstring)."""
    root = os.environ.get("KLARTEXT_CACHE_DIR")
    if root:
        return Path(root) / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "klartext" / "onnx"


def write_atomic(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically (mode 0644: the cache may serve other users);
    ``False`` (logged) when that fails."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        _log.warning("cannot cache the ONNX graph at %s (built again next time): %s", path, exc)
        return False
    return True
