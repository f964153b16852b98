"""Offline study: does a second, stronger encoder (all-mpnet-base-v2 for English queries, USE)
added to e5's cosine raise the demo shop's hit@1 and answered-correctly rate?

    nice -n 10 .venv/bin/python bench/bench_ensemble.py [--cache /tmp/h3s4/ens] \
        [--mpnet /tmp/mpnet_model/all-mpnet-base-v2]

Development data only (``tests/data/answers_demo.yaml`` is never read): 5 folds of held-out
demo-KB phrasings, ``bench/data/retrieval_dev_demo.csv``, ``bench/data/retrieval_dev_demo_hard.csv``
and 150 BANKING77 *train* questions as negatives (the sets of ``bench/calibrate_head.py``).

Everything the retriever computes is rebuilt in NumPy from cached vectors (``--cache``: every
KB row and query embedded once per model, ``.npy``): per setting (full KB, or fold k without
its phrasings) the BM25 index and the e5 entry head are rebuilt, each entry's best-row cosine
is taken over the setting's rows, and candidates are ranked by the bot's weighted fusion
``w·cos + (1−w)·bm25/max + λ·log P_head``. The ensemble cosine of a row is
``(cos_e5 + β·cos_2) / (1 + β)`` (β per query language) — what one FAISS inner product over
concatenated vectors ``[e5; model2]`` with query ``[e5(q); β·model2(q)]`` computes.

Decisions replay ``bot.decide.judge`` (``bench/calibrate_verifier.py``'s ``decide``). Scores:
the shipped e5 calibration + head, and logistic calibrations refitted with 5-fold CV (the
threshold chosen inside each fold) on (cos_e5, coverage, log P) — the baseline — or with the
second encoder's cosine added. Prints per set hit@1, answered correctly, false answers, and
the most right answers at 1/2/3/5 % false (pooled CV scores); the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import calibrate_head as ch
import calibrate_verifier as cv

from knowledge.loaders import load_knowledge
from retrieval import store
from retrieval.calibration import HEAD_RANK_WEIGHTS, calibration_for, head_calibration_for
from retrieval.head import train_head
from retrieval.lexical import LexicalIndex
from retrieval.search import FUSION_WEIGHTS

MPNET = Path("/tmp/mpnet_model/all-mpnet-base-v2")
MODELS = ("e5", "mpnet", "use", "minilm")
SETS = ("dev", "dev_hard", "negative", "held_out")
TOP_N = 5


# --- vectors (cached) ----------------------------------------------------------------------
def _embed(model: str, texts: list[str], kind: str, mpnet: Path) -> Any:
    if model == "mpnet":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(mpnet), device="cpu")
        return st.encode(texts, batch_size=32, normalize_embeddings=True).astype(np.float32)
    from retrieval.embedders import E5Embedder, UseEmbedder, make_embedder

    emb = {"e5": E5Embedder, "use": UseEmbedder}.get(
        model, lambda: make_embedder(model, None, ["en"])
    )()
    return np.vstack([emb.embed(texts[i : i + 256], kind=kind)
                      for i in range(0, len(texts), 256)])  # fmt: skip


def cached(cache: Path, name: str, model: str, texts: list[str], kind: str, mpnet: Path) -> Any:
    path = cache / f"{name}.{model}.{kind}.npy"
    if path.is_file():
        vec = np.load(path)
        if len(vec) == len(texts):
            return vec
    t0 = time.process_time()
    vec = _embed(model, texts, kind, mpnet)
    print(f"# {model} {kind} {len(texts)} texts: {time.process_time() - t0:.1f} s CPU",
          file=sys.stderr, flush=True)  # fmt: skip
    np.save(path, vec)
    return vec


# --- settings ------------------------------------------------------------------------------
class Setting:
    """The full KB or one fold (held-out phrasings' rows masked, BM25 and head rebuilt)."""

    def __init__(self, kb: Any, rows: dict[str, Any], drop: set[tuple[str, int]]) -> None:
        self.keep = np.array([(e, p) not in drop for e, p in zip(rows["eid"], rows["phrase"],
                                                                 strict=True)])  # fmt: skip
        entries = [ch._without(e, {i for (x, i) in drop if x == e.id})
                   if any(x == e.id for x, _ in drop) else e for e in kb.entries]  # fmt: skip
        self.lexical = LexicalIndex.build([store.lexical_text(e) for e in entries])
        keep_rows = np.flatnonzero(self.keep)
        self.head = train_head(rows["e5"][keep_rows], [rows["eid"][i] for i in keep_rows])
        order = {eid: i for i, eid in enumerate(self.head.entry_ids)}
        self.head_pos = np.array([order[e.id] for e in kb.entries])


def _entry_max(sims: Any, keep: Any, starts: Any) -> Any:
    """Per query, each entry's best kept row (rows are grouped by entry, in entry order)."""
    masked = np.where(keep[None, :], sims, -np.inf)
    return np.maximum.reduceat(masked, starts, axis=1)


def build(cache: Path, mpnet: Path, folds: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every query's signals for every entry, per set."""
    kb = load_knowledge(ch.REPO / "knowledge" / "demo")
    texts, eid, phrase = [], [], []
    for e in kb.entries:
        for i, t in enumerate(store.row_texts(e)):
            texts.append(t)
            eid.append(e.id)
            phrase.append(i)
    rows: dict[str, Any] = {"eid": eid, "phrase": phrase}
    for m in MODELS:
        rows[m] = cached(cache, "rows", m, texts, "passage", mpnet)
    starts = np.flatnonzero(np.r_[True, np.array(eid[1:]) != np.array(eid[:-1])])
    ids = [e.id for e in kb.entries]
    langs = np.array([e.lang for e in kb.entries])
    dev, hard, neg = ch._dev_queries()
    groups: list[tuple[str, list[ch.Query], set[tuple[str, int]]]] = [
        ("dev", dev, set()), ("dev_hard", hard, set()), ("negative", neg, set())]  # fmt: skip
    for k, (_fkb, queries) in enumerate(ch._folds(kb, folds)):
        by_id = kb.by_id()
        drop = set()
        for text, exp, _lang in queries:
            (e,) = exp
            drop.add((e, by_id[e].phrasings.index(text)))
        groups.append((f"held_out{k}", queries, drop))
    also = cv._same_section(ch.REPO / "knowledge" / "demo")
    out: list[dict[str, Any]] = []
    full = None
    for tag, queries, drop in groups:
        setting = Setting(kb, rows, drop) if drop else (full or Setting(kb, rows, set()))
        if not drop:
            full = setting
        qt = [q for q, _, _ in queries]
        qv = {m: cached(cache, tag, m, qt, "query", mpnet) for m in MODELS}
        cos = {m: _entry_max(qv[m] @ rows[m].T, setting.keep, starts) for m in MODELS}
        sims = {m: qv[m] @ rows[m].T for m in MODELS}
        logp = np.stack([setting.head.log_probs(v)[setting.head_pos] for v in qv["e5"]])
        for i, (text, expected, lang) in enumerate(queries):
            bm, cov = setting.lexical.score(text)
            exp = set(expected)
            if tag.startswith("held_out"):
                exp |= {p for e in expected for p in also.get(e, ())}
            out.append({
                "set": "held_out" if tag.startswith("held_out") else tag,
                "fold": int(tag[-1]) if tag.startswith("held_out") else i % 5,
                "text": text, "lang": lang, "answerable": bool(exp),
                "label": np.array([x in exp for x in ids]), "same": langs == lang,
                "cos": {m: cos[m][i] for m in MODELS}, "bm25": bm.astype(np.float64),
                "cov": cov.astype(np.float64), "logp": logp[i].astype(np.float64),
                "sims": {m: sims[m][i] for m in MODELS}, "keep": setting.keep,
            })  # fmt: skip
    return out, {"ids": ids, "starts": starts, "langs": langs}


# --- replay ---------------------------------------------------------------------------------
def candidates(
    qs: list[dict[str, Any]],
    starts: Any,
    beta: dict[str, dict[str, float]],
    w: float,
    lam: float,
    pool: int = 20,
    second: str = "mpnet",
) -> list[dict[str, Any]]:
    """Each query's ``pool`` best entries by the weighted fusion over the ensemble cosine
    (``beta[lang][model]``: weight of that model's cosine next to e5's 1); feature column 3
    is the ``second`` model's cosine for English queries."""
    out = []
    for q in qs:
        b = beta.get(q["lang"], {})
        if any(b.values()):
            row = q["sims"]["e5"].astype(np.float64)
            for m, v in b.items():
                row = row + v * q["sims"][m]
            row /= 1 + sum(b.values())
            cos = np.maximum.reduceat(np.where(q["keep"], row, -np.inf), starts)
        else:
            cos = q["cos"]["e5"].astype(np.float64)
        bm = q["bm25"]
        fused = w * cos + (1 - w) * bm / (bm.max() or 1.0) + lam * q["logp"]
        idx = np.lexsort((np.arange(len(cos)), -cos, -fused))[:pool]
        en = float(q["lang"] == "en")
        feats = np.column_stack([
            q["cos"]["e5"][idx], q["cov"][idx], q["logp"][idx],
            en * q["cos"][second][idx], np.full(len(idx), en), q["cos"]["use"][idx], cos[idx],
        ])  # fmt: skip
        out.append({"set": q["set"], "fold": q["fold"], "answerable": q["answerable"],
                    "same": q["same"][idx], "label": q["label"][idx], "feats": feats,
                    "text": q["text"]})  # fmt: skip
    return out


FEATURE_SETS = {  # columns of ``feats`` a refitted calibration uses
    "e5": [0, 1, 2],
    "e5+mpnet": [0, 1, 2, 3],
    "mpnet": [3],
    "mpnet+cov+logp": [3, 1, 2],
    "ens": [6, 1, 2],
}
DEV_SETS = ("dev", "dev_hard", "negative")


def shipped(c: dict[str, Any]) -> Any:
    base, hc = calibration_for("e5"), head_calibration_for("e5")
    assert hc is not None
    z = base.cosine_weight * (c["feats"][:, 0] - base.cosine_mid) + base.coverage_weight * (
        c["feats"][:, 1] - 0.5
    )
    plain = 1 / (1 + np.exp(-z))
    s = 1 / (1 + np.exp(-(hc.z_weight * z + hc.logp_weight * c["feats"][:, 2] + hc.bias)))
    return np.where(plain < hc.floor, plain, s)


def fit(cs: list[dict[str, Any]], cols: list[int]) -> Any:
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([c["feats"][:TOP_N, cols] for c in cs])
    y = np.concatenate([c["label"][:TOP_N] for c in cs])
    sw = np.concatenate([np.full(min(TOP_N, len(c["label"])), cv.SET_WEIGHTS.get(c["set"], 1.0))
                         for c in cs])  # fmt: skip
    mu, sd = x.mean(0), x.std(0) + 1e-9
    model = LogisticRegression(max_iter=5000).fit((x - mu) / sd, y, sample_weight=sw)
    coef = model.coef_[0] / sd
    bias = float(model.intercept_[0] - (model.coef_[0] * mu / sd).sum())

    def score(c: dict[str, Any]) -> Any:
        return 1 / (1 + np.exp(-np.clip(c["feats"][:, cols] @ coef + bias, -60, 60)))

    score.constants = (coef, bias)  # type: ignore[attr-defined]
    return score


def _is_en(c: dict[str, Any]) -> bool:
    return bool(c["feats"][0, 4] == 1)


def _shift(p: Any, t: float) -> Any:
    """Move threshold ``t`` of probabilities ``p`` to 0.5 (the engine's scale)."""
    logit = np.log(np.clip(p, 1e-12, 1) / np.clip(1 - p, 1e-12, 1)) - np.log(t / (1 - t))
    return 1 / (1 + np.exp(-logit))


def evaluate(
    cs: list[dict[str, Any]],
    cols: list[int] | None,
    match: tuple[str, ...] = SETS,
    fit_sets: tuple[str, ...] = SETS,
    folds: int = 5,
) -> dict[str, Any]:
    """German queries keep the shipped calibration; English ones get it too (``cols`` None)
    or a calibration refitted on English development queries under 5-fold CV, its threshold
    picked on the training folds' ``match`` sets where English false answers do not exceed
    the shipped calibration's."""
    scores = [shipped(c) for c in cs]
    if cols is not None:
        for k in range(folds):
            train = [c for c in cs if c["fold"] != k and _is_en(c)]
            ref = [c for c in train if c["set"] in match]
            target = cv.rates(ref, [shipped(c) for c in ref], 0.5)["false"]
            score = fit([c for c in train if c["set"] in fit_sets], cols)
            t = cv.pick_threshold(ref, [score(c) for c in ref], target)
            for i, c in enumerate(cs):
                if c["fold"] == k and _is_en(c):
                    scores[i] = _shift(score(c), t)
    res = cv.by_set(cs, scores, 0.5)
    en = [i for i, c in enumerate(cs) if _is_en(c) and c["set"] in DEV_SETS]
    counts = [cv.decide(cs[i], scores[i], 0.5) for i in en]
    right = sum(a and bool(cs[i]["label"][b]) for i, (_f, b, a, _n) in zip(en, counts, strict=True))
    res["en_dev_counts"] = {"right": right, "false": sum(a for _f, _b, a, _n in counts) - right,
                            "n": len(en)}  # fmt: skip
    neg = [i for i, c in enumerate(cs) if c["set"] == "negative"]
    for name in ("dev", "dev_hard", "held_out"):
        pick = [i for i, c in enumerate(cs) if c["set"] == name] + neg
        res[name]["curve+neg"] = cv.curve([cs[i] for i in pick], [scores[i] for i in pick])
    return res


def _top_score(c: dict[str, Any]) -> float:
    scores = shipped(c)
    _first, best, _answered, _near = cv.decide(c, scores, 0.5)
    return float(scores[best])


def equal_false(
    base: list[dict[str, Any]],
    ens: list[dict[str, Any]],
    inband: list[bool],
    raw: dict[int, Any],
) -> dict[str, Any]:
    """Operating-point-free comparison on the English development queries: for each number of
    false answers F, the most right answers (all sets / dev hard) when sweeping the threshold
    of the shipped score vs of the cascade's CV probabilities (out-of-band queries keep the
    shipped decision at 0.5)."""
    en = [i for i, c in enumerate(base) if _is_en(c) and c["set"] in DEV_SETS]
    grid = np.arange(0.02, 0.99, 0.01)

    def sweep(pick: Any) -> list[tuple[int, int, int]]:
        points = []
        for t in grid:
            r = f = rh = 0
            for i in en:
                q, sc = pick(i, float(t))
                _first, best, answered, _near = cv.decide(q, sc, 0.5)
                ok = answered and bool(q["label"][best])
                r += ok
                f += answered and not ok
                rh += ok and base[i]["set"] == "dev_hard"
            points.append((f, r, rh))
        return points

    ship = sweep(lambda i, t: (base[i], _shift(shipped(base[i]), t)))
    casc = sweep(lambda i, t: (ens[i], _shift(raw[i], t)) if inband[i]
                 else (base[i], shipped(base[i])))  # fmt: skip
    out = {}
    for level in (6, 8, 10, 12, 14, 16, 18, 20):
        best = [max(((r, rh) for f, r, rh in pts if f <= level), default=(0, 0))
                for pts in (ship, casc)]  # fmt: skip
        out[f"F<={level}"] = {"shipped R/hard": best[0], "ensemble R/hard": best[1]}
    return out


def cascade(
    base: list[dict[str, Any]],
    ens: list[dict[str, Any]],
    cols: list[int],
    band: tuple[float, float],
    folds: int = 5,
) -> dict[str, Any]:
    """English queries whose shipped top score lies in ``band`` are re-ranked with the
    ensemble (``ens``) and scored by a calibration refitted (CV, on the English development
    queries, threshold at the shipped false-answer rate); all others keep the shipped path."""
    lo, hi = band
    inband = [_is_en(b) and lo <= _top_score(b) <= hi for b in base]
    chosen, scores = list(base), [shipped(b) for b in base]
    raw: dict[int, Any] = {}
    for k in range(folds):
        train = [i for i, c in enumerate(ens) if c["fold"] != k and _is_en(c)
                 and c["set"] in DEV_SETS]  # fmt: skip
        score = fit([ens[i] for i in train if inband[i]] or [ens[i] for i in train], cols)
        target = cv.rates([base[i] for i in train], [scores[i] for i in train], 0.5)["false"]

        def mixed(t: float, idx: list[int], score: Any = score) -> tuple[list[Any], list[Any]]:
            qs = [ens[i] if inband[i] else base[i] for i in idx]
            sc = [_shift(score(ens[i]), t) if inband[i] else scores[i] for i in idx]
            return qs, sc

        grid = [round(float(t), 2) for t in np.arange(0.05, 0.99, 0.01)]
        t = next((t for t in grid if cv.rates(*mixed(t, train), 0.5)["false"] <= target), 0.99)
        test = [i for i, c in enumerate(ens) if c["fold"] == k and inband[i]]
        qs, sc = mixed(t, test)
        for i, q, s_ in zip(test, qs, sc, strict=True):
            chosen[i], scores[i] = q, s_
            raw[i] = score(ens[i])
    res = cv.by_set(chosen, scores, 0.5)
    res["equal_false"] = equal_false(base, ens, inband, raw)
    # final constants: fitted on every English development query, threshold as above
    train = [i for i, c in enumerate(ens) if _is_en(c) and c["set"] in DEV_SETS]
    score = fit([ens[i] for i in train if inband[i]], cols)
    base_scores = [shipped(b) for b in base]
    target = cv.rates([base[i] for i in train], [base_scores[i] for i in train], 0.5)["false"]
    for t in [round(float(x), 2) for x in np.arange(0.05, 0.99, 0.01)]:
        qs = [ens[i] if inband[i] else base[i] for i in train]
        sc = [_shift(score(ens[i]), t) if inband[i] else base_scores[i] for i in train]
        if cv.rates(qs, sc, 0.5)["false"] <= target:
            break
    coef, bias = score.constants  # type: ignore[attr-defined]
    res["final"] = {
        "weights": [round(float(x), 4) for x in coef],
        "columns": cols,
        "bias_at_0.5": round(bias - float(np.log(t / (1 - t))), 4),
        "t": t,
    }
    en = [i for i, c in enumerate(base) if _is_en(c) and c["set"] in DEV_SETS]
    counts = [cv.decide(chosen[i], scores[i], 0.5) for i in en]
    right = sum(a and bool(chosen[i]["label"][b])
                for i, (_f, b, a, _n) in zip(en, counts, strict=True))  # fmt: skip
    res["en_dev_counts"] = {"right": right, "false": sum(a for _f, _b, a, _n in counts) - right,
                            "n": len(en), "second_encoder": sum(inband[i] for i in en)}  # fmt: skip
    return res


def _line(name: str, res: dict[str, Any]) -> str:
    parts = [f"{s} h@1 {res[s]['hit@1']:.3f} ok {res[s]['correct']:.3f} F {res[s]['false']:.3f}"
             for s in ("dev", "dev_hard", "held_out")]  # fmt: skip
    parts.append(f"neg F {res['negative']['false']:.3f}")
    parts.append("EN dev R {right} F {false}".format(**res["en_dev_counts"]))
    if "second_encoder" in res["en_dev_counts"]:
        parts.append("mpnet runs {second_encoder}/{n}".format(**res["en_dev_counts"]))
    return f"{name:44} " + " | ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/h3s4/ens"))
    ap.add_argument("--mpnet", type=Path, default=MPNET)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--betas", default="1")
    ap.add_argument("--lam", type=float, default=HEAD_RANK_WEIGHTS["e5"])
    ap.add_argument("--model", default="mpnet", choices=("mpnet", "use", "minilm"))
    ap.add_argument(
        "--bands", default="0,1;0.2,0.8", help="cascade: shipped-score bands lo,hi;lo,hi"
    )
    ap.add_argument("--features", default="ens", help="e5,e5+mpnet,mpnet,mpnet+cov+logp,ens")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    qs, meta = build(args.cache, args.mpnet, args.folds)
    print(f"# built {len(qs)} queries in {time.time() - t0:.0f} s", file=sys.stderr)
    report: dict[str, Any] = {}
    if args.bands:
        base = candidates(qs, meta["starts"], {}, FUSION_WEIGHTS["e5"], args.lam)
        for b in (float(x) for x in args.betas.split(",")):
            ens = candidates(qs, meta["starts"], {"en": {args.model: b}}, FUSION_WEIGHTS["e5"],
                             args.lam, second=args.model)  # fmt: skip
            for band in args.bands.split(";"):
                lo, hi = (float(x) for x in band.split(","))
                for fs in args.features.split(","):
                    key = f"cascade b={b} band=[{lo},{hi}] {fs}"
                    report[key] = cascade(base, ens, FEATURE_SETS[fs], (lo, hi))
                    print(_line(key, report[key]), report[key]["final"], flush=True)
                    print("   equal false:", json.dumps(report[key]["equal_false"]), flush=True)
        print(json.dumps({"seconds": round(time.time() - t0), "report": report}))
        return
    for b in (float(x) for x in args.betas.split(",")):
        cs = candidates(qs, meta["starts"], {"en": {args.model: b}}, FUSION_WEIGHTS["e5"],
                        args.lam, second=args.model)  # fmt: skip
        tag = f"en rank e5+{b}*{args.model}"
        res = {"shipped": evaluate(cs, None)}
        print(_line(f"{tag} | shipped", res["shipped"]), flush=True)
        for fs in args.features.split(","):
            for match, sets, fitted in (
                ("all", SETS, SETS),
                ("dev", DEV_SETS, SETS),
                ("dev/fit dev", DEV_SETS, DEV_SETS),
            ):
                key = f"{fs} @{match}"
                res[key] = evaluate(cs, FEATURE_SETS[fs], sets, fitted)
                print(_line(f"{tag} | {key}", res[key]), flush=True)
        report[tag] = res
    print(json.dumps({"seconds": round(time.time() - t0), "report": report}))


if __name__ == "__main__":
    main()
