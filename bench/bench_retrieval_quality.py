"""Retrieval quality: hit@1 / hit@5 / MRR@5 on StackFAQ, the German COVID FAQ and a
German→English cross-language probe, per embedder and fusion mode.

Every number goes through the bot's retrieval path: ``retrieval.reindex.reindex`` into a
temporary index, ``retrieval.search.load_retriever``, ``HybridRetriever.search``. Query
vectors are memoised per embedder (fusion does not change them), so each fusion mode costs
only the search itself.

    nice -n 10 .venv/bin/python bench/bench_retrieval_quality.py [--quick]
    nice -n 10 .venv/bin/python bench/bench_retrieval_quality.py --embedders minilm,mpnet

Data: ``$KLARTEXT_SHARED_DATA`` or ``../shared/data`` (``stackfaq``, ``covid_faq_de``).
Splits: StackFAQ queries are split by row parity into dev (odd rows) and held-out (even
rows); the weighted-fusion weight is chosen on dev only, and both halves are reported. The
COVID set is itself the development half (its other half is kept back by the data owner).
Prints one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_REPO))
sys.path.insert(0, str(_REPO / "bench"))

from stackfaq_to_csv import convert, shared_data_dir  # noqa: E402

from knowledge.loaders import load_path  # noqa: E402
from retrieval.embedders import E5Embedder, SentenceTransformerEmbedder, UseEmbedder  # noqa: E402
from retrieval.evaluate import LabelledQuery, QueryResult, read_queries, score_results  # noqa: E402
from retrieval.mpnet import MpnetEmbedder  # noqa: E402
from retrieval.reindex import reindex  # noqa: E402
from retrieval.search import HybridRetriever, load_retriever  # noqa: E402
from retrieval.types import Embedder, Vectors  # noqa: E402

MODES = ("dense", "lexical", "rrf", "weighted")
WEIGHTS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)

# Hand-written German questions (by this project) whose only answer is an English entry of
# the demo knowledge base; the probe indexes knowledge/demo/faq.en.yaml alone.
CROSS_LANG = [
    ("Wie lange dauert die Lieferung?", "en-ship-01"),
    ("Was kostet der Versand?", "en-ship-02"),
    ("Liefert ihr auch in die Schweiz oder nach Österreich?", "en-ship-05"),
    ("Kann ich an eine Packstation liefern lassen?", "en-ship-08"),
    ("Was passiert, wenn ich nicht zu Hause bin?", "en-ship-10"),
    ("Liefert ihr samstags?", "en-ship-14"),
    ("Wie viel Zeit habe ich für eine Rücksendung?", "en-ret-01"),
    ("Ist die Rücksendung kostenlos?", "en-ret-03"),
    ("Wann bekomme ich mein Geld zurück?", "en-ret-05"),
    ("Kann ich einen Artikel in einer anderen Größe umtauschen?", "en-ret-06"),
    ("Welche Zahlungsarten bietet ihr an?", "en-pay-01"),
    ("Kann ich auf Rechnung bezahlen?", "en-pay-02"),
    ("Wie löse ich einen Gutscheincode ein?", "en-pay-10"),
    ("Meine Zahlung wurde abgelehnt, was nun?", "en-pay-13"),
    ("Wie erstelle ich ein Kundenkonto?", "en-acct-01"),
    ("Ich habe mein Passwort vergessen.", "en-acct-03"),
    ("Wie lösche ich mein Konto?", "en-acct-06"),
    ("Wo ist meine Bestellung gerade?", "en-order-01"),
    ("Wie storniere ich meine Bestellung?", "en-order-04"),
    ("In meinem Paket fehlt ein Artikel.", "en-order-06"),
    ("Welche persönlichen Daten speichert ihr?", "en-priv-01"),
    ("Gebt ihr meine Daten an Dritte weiter?", "en-priv-02"),
]


FACTORIES: dict[str, Callable[[], Embedder]] = {
    "minilm": SentenceTransformerEmbedder,
    "e5": E5Embedder,
    "mpnet": MpnetEmbedder,
    "use": UseEmbedder,
}


class MemoEmbedder:
    """Wraps an embedder and memoises query vectors (same name, same vectors)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self._queries: dict[str, Vectors] = {}

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        if kind != "query" or len(texts) != 1:
            return self.inner.embed(texts, kind=kind)
        if texts[0] not in self._queries:
            self._queries[texts[0]] = self.inner.embed(texts, kind=kind)
        return self._queries[texts[0]]


def _run(
    retriever: HybridRetriever, queries: list[LabelledQuery], mode: str, weight: float = 0.7
) -> list[QueryResult]:
    retriever.weight = weight
    out = []
    for q in queries:
        t0 = time.perf_counter()
        hits = retriever.search(q.query, k=5, fusion=mode)  # type: ignore[arg-type]
        ms = (time.perf_counter() - t0) * 1000
        ids = [h.entry_id for h in hits]
        rank = next((i + 1 for i, e in enumerate(ids) if e in q.expected), None)
        top = hits[0] if hits else None
        out.append(
            QueryResult(
                q.query, q.expected, rank, top.entry_id if top else None,
                top.score if top else 0.0, ms,
            )
        )  # fmt: skip
    return out


def _metrics(rows: list[QueryResult]) -> dict[str, float]:
    s = score_results(rows, k=5, answer_threshold=0.5).summary()
    return {"hit@1": s["hit@1"], "hit@5": s["hit@5"], "mrr": s["mrr"], "n": s["n"]}


def _split(rows: list[QueryResult]) -> tuple[list[QueryResult], list[QueryResult]]:
    return rows[1::2], rows[0::2]  # dev = odd rows (2nd, 4th, ...), held-out = even rows


def _index(kb_path: Path, embedder: Embedder, tmp: Path) -> HybridRetriever:
    index_dir = tmp / f"index-{embedder.name.replace(':', '_').replace('/', '_')}"
    if index_dir.exists():
        shutil.rmtree(index_dir)
    reindex(load_path(kb_path), index_dir, embedder, full=True)
    return load_retriever(index_dir, embedder=embedder)


def _evaluate(
    kb_path: Path, queries: list[LabelledQuery], embedder: Embedder, tmp: Path, *, split: bool
) -> dict[str, Any]:
    t0 = time.perf_counter()
    retriever = _index(kb_path, embedder, tmp)
    result: dict[str, Any] = {}
    for mode in MODES:
        if mode == "weighted":
            continue
        rows = _run(retriever, queries, mode)
        result[mode] = _metrics(rows)
        if split:
            dev, test = _split(rows)
            result[mode] |= {"dev": _metrics(dev), "heldout": _metrics(test)}
    sweep = {w: _run(retriever, queries, "weighted", w) for w in WEIGHTS}
    tune = {w: _split(r)[0] if split else r for w, r in sweep.items()}
    best = max(WEIGHTS, key=lambda w: (_metrics(tune[w])["mrr"], _metrics(tune[w])["hit@1"]))
    result["weighted"] = _metrics(sweep[best]) | {"weight": best}
    if split:
        dev, test = _split(sweep[best])
        result["weighted"] |= {"dev": _metrics(dev), "heldout": _metrics(test)}
    result["weighted_sweep_hit@1"] = {str(w): _metrics(r)["hit@1"] for w, r in sweep.items()}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"# {kb_path.name} {embedder.name}: {json.dumps(result)}", file=sys.stderr)
    return result


def _cross_lang(embedder: Embedder, tmp: Path) -> dict[str, Any]:
    kb = _REPO / "knowledge" / "demo" / "faq.en.yaml"
    queries = [LabelledQuery(q, (i,), n + 2) for n, (q, i) in enumerate(CROSS_LANG)]
    retriever = _index(kb, embedder, tmp)
    return {mode: _metrics(_run(retriever, queries, mode)) for mode in ("dense", "rrf")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="MiniLM and e5 only (no mpnet, no USE)."
    )
    parser.add_argument(
        "--embedders",
        default="",
        help=f"comma-separated subset of {','.join(FACTORIES)} (default: all; overrides --quick)",
    )
    args = parser.parse_args()
    data = shared_data_dir()
    names = [n for n in args.embedders.split(",") if n] or (
        ["minilm", "e5"] if args.quick else list(FACTORIES)
    )
    unknown = sorted(set(names) - set(FACTORIES))
    if unknown:
        parser.error(f"unknown embedders {unknown}; choose from {list(FACTORIES)}")
    embedders: dict[str, Embedder] = {n: MemoEmbedder(FACTORIES[n]()) for n in names}
    out: dict[str, Any] = {"stackfaq": {}, "covid_faq_de": {}, "cross_lang_de_en": {}}
    with tempfile.TemporaryDirectory(prefix="klartext-bench-") as tmp_name:
        tmp = Path(tmp_name)
        faq, queries_csv = convert(data / "stackfaq", tmp / "stackfaq")
        stack_queries = read_queries(queries_csv)
        covid_dir = tmp / "covid" / "de"  # the de/ folder marks the entries German
        covid_dir.mkdir(parents=True)
        shutil.copy(data / "covid_faq_de" / "faq.csv", covid_dir / "faq.csv")
        covid_queries = read_queries(data / "covid_faq_de" / "queries_dev.csv")
        for key, emb in embedders.items():
            out["stackfaq"][key] = _evaluate(faq, stack_queries, emb, tmp, split=True)
            out["covid_faq_de"][key] = _evaluate(
                covid_dir / "faq.csv", covid_queries, emb, tmp, split=False
            )
            if (_REPO / "knowledge" / "demo" / "faq.en.yaml").is_file():
                out["cross_lang_de_en"][key] = _cross_lang(emb, tmp)
    out["cross_lang_de_en"]["n"] = len(CROSS_LANG)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
