"""MiniLM + mpnet second opinion at 10k entries: StackFAQ's 125 threads plus synthetic shop
FAQ entries (``bench_retrieval_latency.synthetic_rows``) as distractors, StackFAQ queries.

    nice -n 10 .venv/bin/python bench/bench_ensemble_minilm_10k.py [--cache /tmp/h4s4] \
        [--pad 9875] [--beta 4] [--margin 0.12] [--time 200]

Real path: ``reindex`` with MiniLM (every row embedded for real), ``load_retriever(...,
second_opinion=SecondOpinion(MpnetEmbedder(), first_family="minilm", beta, margin,
keep_first_scores=True))``, ``search(q, k=5, lang="en")``. mpnet row vectors are real for the
StackFAQ threads and stand-ins (``StandInEmbedder``: random unit vectors) for the synthetic
distractors — embedding 20k rows with mpnet takes ~12 min of CPU here; a stand-in row is
unlikely to be near any query, so hit@1 is slightly optimistic (MiniLM's own ranking still
sees every distractor for real). Reports hit@1/hit@5/MRR per half (dev = odd rows, held-out =
even rows), the consulted share, and query latency (interleaved: alone vs with the second
opinion; CPU = process time). Prints one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_REPO))
sys.path.insert(0, str(_REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_ensemble_minilm import DiskMemo, interleave, metrics, ranks  # noqa: E402
from bench_retrieval_latency import StandInEmbedder, synthetic_rows, write_kb  # noqa: E402
from stackfaq_to_csv import convert, shared_data_dir  # noqa: E402

from knowledge.loaders import load_knowledge  # noqa: E402
from retrieval import store  # noqa: E402
from retrieval.embedders import SentenceTransformerEmbedder  # noqa: E402
from retrieval.ensemble import SecondOpinion  # noqa: E402
from retrieval.evaluate import read_queries  # noqa: E402
from retrieval.mpnet import MpnetEmbedder  # noqa: E402
from retrieval.reindex import reindex  # noqa: E402
from retrieval.search import load_retriever  # noqa: E402
from retrieval.types import Embedder, Vectors  # noqa: E402


class PartlyStandIn(StandInEmbedder):
    """Passages in ``real`` go to the model, others get stand-in vectors; queries are real."""

    def __init__(self, inner: Embedder, real: set[str]) -> None:
        super().__init__(inner)
        self.real = real

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        out = super().embed(texts, kind=kind)
        todo = [i for i, t in enumerate(texts) if t in self.real] if kind != "query" else []
        if todo:
            out[todo] = self.inner.embed([texts[i] for i in todo], kind=kind)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/h4s4"))
    parser.add_argument("--pad", type=int, default=9875, help="synthetic distractor entries")
    parser.add_argument("--beta", type=float, default=4.0)
    parser.add_argument("--margin", type=float, default=0.12)
    parser.add_argument("--time", type=int, default=200, help="held-out queries timed")
    args = parser.parse_args()
    cache: Path = args.cache
    faq, queries_csv = convert(shared_data_dir() / "stackfaq", cache / "stackfaq")
    qs = read_queries(queries_csv)
    kb_dir = cache / f"pad{args.pad}" / "kb"
    if not kb_dir.is_dir():
        write_kb(kb_dir, synthetic_rows(args.pad))
        shutil.copy(faq, kb_dir / "stackfaq.csv")
    kb = load_knowledge(kb_dir)
    real = {t for e in kb.entries if e.id.startswith("sf") for t in store.row_texts(e)}
    minilm = DiskMemo(SentenceTransformerEmbedder(), cache, "minilm_q")
    mpnet = DiskMemo(MpnetEmbedder(), cache, "mpnet_q")
    index_dir = cache / f"pad{args.pad}" / "index"
    t = time.perf_counter()
    reindex(kb, index_dir, minilm, hnsw_threshold=20_000)
    build_s = round(time.perf_counter() - t, 1)
    so = SecondOpinion(PartlyStandIn(mpnet, real), first_family="minilm", beta=args.beta,
                       margin=args.margin, keep_first_scores=True)  # fmt: skip
    plain = load_retriever(index_dir, embedder=minilm, auto_reload_s=None)
    cascade = load_retriever(index_dir, embedder=minilm, auto_reload_s=None, second_opinion=so)
    dev, held = list(range(1, len(qs), 2)), list(range(0, len(qs), 2))
    out: dict[str, Any] = {"entries": len(kb.entries), "build_s": build_s}
    for tag, r in (("minilm", plain), ("cascade", cascade)):
        so.runs = 0
        rk = ranks([[h.entry_id for h in r.search(q.query, k=5, lang="en")] for q in qs], qs)
        out[tag] = {"dev": metrics([rk[i] for i in dev]), "heldout": metrics([rk[i] for i in held])}
        if tag == "cascade":
            out[tag]["share"] = round(so.runs / len(qs), 3)
    minilm.save()
    mpnet.save()
    # latency: fresh, un-memoised query embedders
    live_so = SecondOpinion(PartlyStandIn(MpnetEmbedder(), real), first_family="minilm",
                            beta=args.beta, margin=args.margin, keep_first_scores=True)  # fmt: skip
    live = SentenceTransformerEmbedder()
    a = load_retriever(index_dir, embedder=live, auto_reload_s=None)
    b = load_retriever(index_dir, embedder=live, auto_reload_s=None, second_opinion=live_so)
    timed = [qs[i].query for i in held][: args.time]
    out["timing"] = interleave(a, b, live_so, timed)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
