"""A lean forward pass of a BERT encoder (all-MiniLM-L6-v2) for one or a few messages.

Parsing embeds one short message at a time; there the Hugging Face module stack costs as much as
the arithmetic. :class:`FastBert` copies the weights of a loaded ``BertModel`` once (query, key
and value fused into one matrix; linear layers optionally in bfloat16, layer norms and the
residual stream in float32) and runs embeddings → N × (self-attention, feed-forward, post-layer
norm) → mean pooling → L2 norm with plain ``torch.nn.functional`` calls. Same result as
sentence-transformers' ``encode`` (cosine > 0.99999 in float32, > 0.9999 in bfloat16; tested).
"""

from __future__ import annotations

from typing import Any

_Layer = tuple[Any, ...]


def _f32(t: Any) -> Any:
    return t.detach().float().clone()


class FastBert:
    """``FastBert(bert_model, dtype)(input_ids, attention_mask)`` → unit sentence vectors."""

    def __init__(self, bert: Any, dtype: Any) -> None:
        import torch

        emb = bert.embeddings
        self.dtype = dtype
        self.heads = int(bert.config.num_attention_heads)
        self.eps = float(bert.config.layer_norm_eps)
        self.word = _f32(emb.word_embeddings.weight)
        self.pos = _f32(emb.position_embeddings.weight)
        self.type0 = _f32(emb.token_type_embeddings.weight[0])
        self.norm = (_f32(emb.LayerNorm.weight), _f32(emb.LayerNorm.bias))

        def low(t: Any) -> Any:
            return t.detach().to(dtype).clone()

        self.layers: list[_Layer] = []
        for layer in bert.encoder.layer:
            att = layer.attention
            qkv = (att.self.query, att.self.key, att.self.value)
            self.layers.append(
                (
                    low(torch.cat([m.weight for m in qkv])),
                    low(torch.cat([m.bias for m in qkv])),
                    low(att.output.dense.weight),
                    low(att.output.dense.bias),
                    (_f32(att.output.LayerNorm.weight), _f32(att.output.LayerNorm.bias)),
                    low(layer.intermediate.dense.weight),
                    low(layer.intermediate.dense.bias),
                    low(layer.output.dense.weight),
                    low(layer.output.dense.bias),
                    (_f32(layer.output.LayerNorm.weight), _f32(layer.output.LayerNorm.bias)),
                )
            )

    def __call__(self, input_ids: Any, attention_mask: Any) -> Any:
        import torch.nn.functional as fn

        batch, length = input_ids.shape
        dim = self.word.shape[1]
        x = self.word[input_ids] + self.pos[:length] + self.type0
        x = fn.layer_norm(x, (dim,), *self.norm, self.eps)
        mask = None if bool(attention_mask.all()) else attention_mask[:, None, None, :].bool()
        for wqkv, bqkv, wo, bo, norm1, wi, bi, wo2, bo2, norm2 in self.layers:
            qkv = fn.linear(x.to(self.dtype), wqkv, bqkv)
            q, k, v = qkv.view(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            att = fn.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            att = fn.linear(att.transpose(1, 2).reshape(batch, length, dim), wo, bo)
            x = fn.layer_norm(x + att.float(), (dim,), norm1[0], norm1[1], self.eps)
            hidden = fn.gelu(fn.linear(x.to(self.dtype), wi, bi))
            x = fn.layer_norm(
                x + fn.linear(hidden, wo2, bo2).float(), (dim,), norm2[0], norm2[1], self.eps
            )
        keep = attention_mask[..., None].float()
        return fn.normalize((x * keep).sum(1) / keep.sum(1).clamp(min=1e-9), dim=1)
