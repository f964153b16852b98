"""CPU per stage of one engine turn, for ``bench_engine_overhead.py --breakdown``.

Each stage runs alone over the same questions (twice; the first pass warms caches) and the
calling thread's CPU time per question is reported, so the numbers are a budget, not a trace:
a real turn runs the stages back to back after the encoder has evicted the CPU caches, which
makes the later ones slower (compare ``understand_cold`` with the sum). Stages the runtime
does not have (another embedder, no intent model) are left out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any


def _cpu_ms(
    fn: Callable[[str, str | None], object], cases: Sequence[tuple[str, str | None]]
) -> float:
    for text, lang in cases:  # warm-up pass
        fn(text, lang)
    start = time.thread_time()
    for text, lang in cases:
        fn(text, lang)
    return round((time.thread_time() - start) * 1000 / max(1, len(cases)), 3)


def _doc_stages(nlp: Any) -> Callable[[str], Any]:
    """The spaCy tokenizer and the rule components, without the intent component."""
    procs = [proc for name, proc in nlp.pipeline if name != "klartext_intent"]

    def run(text: str) -> Any:
        doc = nlp.make_doc(text)
        for proc in procs:
            doc = proc(doc)
        return doc

    return run


def stage_cpu_ms(engine: Any, cases: Sequence[tuple[str, str | None]]) -> dict[str, float]:
    """``{stage: CPU ms per question}`` for the engine's NLU and retriever."""
    from bot.conversation import ConversationContext
    from bot.nlu.components import intent_component

    nlu, retriever = engine.nlu, engine.retriever
    cache: Any = retriever.embedder
    inner: Any = getattr(cache, "inner", cache)
    clear = getattr(cache, "clear", lambda: None)
    langs = {text: nlu.detect_language(text, lang) for text, lang in cases}
    docs = {code: _doc_stages(nlp) for code, nlp in nlu.pipelines.items()}
    out = {"langid": _cpu_ms(nlu.detect_language, cases)}
    out["spacy_rules"] = _cpu_ms(lambda t, _: docs[langs[t]](t), cases)
    encoder = inner._load_onnx() if hasattr(inner, "_load_onnx") else None
    if encoder is not None:
        out["encoder_tokenize"] = _cpu_ms(lambda t, _: encoder.token_ids(t, query=True), cases)
    out["embed_query"] = _cpu_ms(lambda t, _: inner.embed([t], kind="query"), cases)
    vectors = {t: cache.embed([t], kind="query") for t, _ in cases}
    clf = intent_component(nlu.pipelines[nlu.default_language]).classifier
    if clf is not None:
        out["intent_proba"] = _cpu_ms(lambda t, _: clf.predict_proba([t], vectors[t]), cases)
        proba = {t: clf.predict_proba([t], vectors[t]) for t, _ in cases}
        out["intent_oos"] = _cpu_ms(lambda t, _: clf.out_of_scope(proba[t], vectors[t]), cases)
    out["parse_cached_embedding"] = _cpu_ms(nlu.parse, cases)
    k = engine.settings.search_k
    out["search_cached_embedding"] = _cpu_ms(
        lambda t, lang: retriever.search(t, k=k, lang=langs[t]), cases
    )

    def understand(text: str, lang: str | None, cold: bool) -> object:
        if cold:
            clear()
        return engine._understand(text, ConversationContext("s", lang=lang), time.perf_counter())

    out["understand_warm"] = _cpu_ms(lambda t, lang: understand(t, lang, False), cases)
    out["understand_cold"] = _cpu_ms(lambda t, lang: understand(t, lang, True), cases)
    return out
