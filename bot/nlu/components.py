"""spaCy components registered by name: ``klartext_intent`` and ``klartext_entities``.

Importing this module registers the factories and the extensions ``doc._.intent``,
``doc._.intent_confidence``, ``doc._.intent_ranking`` (top 3), ``doc._.out_of_scope`` and
``span._.value`` (the normalised entity value). :func:`make_pipeline` assembles a blank
pipeline for one language.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from bot.nlu.classifier import OOS_LABEL, IntentClassifier
from bot.nlu.entities import (
    DEFAULT_ORDER_PATTERN,
    ProductName,
    compile_order_pattern,
    extract_entities,
)
from retrieval.types import Embedder

for _name, _default in (
    ("intent", None),
    ("intent_confidence", 0.0),
    ("intent_ranking", ()),
    ("out_of_scope", False),
):
    if not Doc.has_extension(_name):
        Doc.set_extension(_name, default=_default)
if not Span.has_extension("value"):
    Span.set_extension("value", default=None)

_TOP_K = 3


class IntentComponent:
    """Sets the intent extensions from an :class:`IntentClassifier`.

    The embedder is not part of the saved pipeline: the owner sets ``component.embedder``
    after loading (so the bot can share the retrieval model). Without a classifier or
    embedder, docs keep ``intent=None`` and ``out_of_scope=False``.
    """

    def __init__(self, nlp: Language, name: str) -> None:
        self.name = name
        self.classifier: IntentClassifier | None = None
        self.embedder: Embedder | None = None

    def __call__(self, doc: Doc) -> Doc:
        return next(iter(self.pipe([doc])))

    def pipe(self, docs: Iterable[Doc], batch_size: int = 128) -> Iterator[Doc]:
        batch: list[Doc] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) >= batch_size:
                yield from self._predict(batch)
                batch = []
        if batch:
            yield from self._predict(batch)

    def _predict(self, docs: Sequence[Doc]) -> list[Doc]:
        if self.classifier is None or self.embedder is None:
            return list(docs)
        texts = [d.text for d in docs]
        vectors = self.embedder.embed(texts, kind="query")
        proba = self.classifier.predict_proba(texts, vectors)
        labels = self.classifier.labels
        rejected, uncertain = self.classifier.scope(proba, vectors)
        for doc, row, reject, unsure in zip(docs, proba, rejected, uncertain, strict=True):
            order = np.argsort(-row)[: _TOP_K + 1]  # + 1: the reject class may be among them
            ranking = tuple(
                (labels[i], round(float(row[i]), 4)) for i in order if labels[i] != OOS_LABEL
            )[:_TOP_K]
            best, conf = ranking[0]
            is_oos = bool(reject)
            doc._.intent = None if is_oos or unsure else best
            doc._.intent_confidence = conf
            doc._.intent_ranking = ranking
            doc._.out_of_scope = is_oos
        return list(docs)

    def to_disk(self, path: Path, *, exclude: Iterable[str] = ()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.classifier is not None:
            self.classifier.to_dir(path)

    def from_disk(self, path: Path, *, exclude: Iterable[str] = ()) -> IntentComponent:
        path = Path(path)
        if (path / "classifier.json").is_file():
            self.classifier = IntentClassifier.from_dir(path)
        return self


class EntityComponent:
    """Adds rule-based entities (order number, email, phone, date, money) to ``doc.ents``.

    Runs after the ``entity_ruler`` (PRODUCT, ``ent_id`` = catalog name) and any NER; rule
    matches win over NER on overlap. ``ref_date`` (None = today) anchors relative dates.
    """

    def __init__(self, nlp: Language, name: str, order_pattern: str, phone_region: str) -> None:
        self.name = name
        self.order_pattern = order_pattern
        self.phone_region = phone_region
        self._order_re: re.Pattern[str] = compile_order_pattern(order_pattern)
        self.ref_date: date | None = None

    def __call__(self, doc: Doc) -> Doc:
        found = extract_entities(
            doc.text,
            ref_date=self.ref_date,
            order_pattern=self._order_re,
            phone_region=self.phone_region,
            include_products=False,
        )
        spans: list[Span] = []
        for found_ent in found:
            span = doc.char_span(
                found_ent.start, found_ent.end, label=found_ent.label, alignment_mode="expand"
            )
            if span is None:
                continue
            span._.value = found_ent.value
            spans.append(span)
        rule_tokens = {i for s in spans for i in range(s.start, s.end)}
        for ent in doc.ents:  # PRODUCT from the ruler, NER labels
            if ent.label_ == "PRODUCT" and not rule_tokens.intersection(range(ent.start, ent.end)):
                ent._.value = ent.ent_id_ or ent.text
                spans.append(ent)
            elif not rule_tokens.intersection(range(ent.start, ent.end)):
                ent._.value = ent.text
                spans.append(ent)
        doc.ents = filter_spans(spans)
        return doc


@Language.factory("klartext_intent")
def make_intent_component(nlp: Language, name: str) -> IntentComponent:
    return IntentComponent(nlp, name)


@Language.factory(
    "klartext_entities",
    default_config={"order_pattern": DEFAULT_ORDER_PATTERN, "phone_region": "DE"},
)
def make_entity_component(
    nlp: Language, name: str, order_pattern: str, phone_region: str
) -> EntityComponent:
    return EntityComponent(nlp, name, order_pattern, phone_region)


def set_products(nlp: Language, products: Sequence[ProductName]) -> None:
    """Replace the ``entity_ruler``'s PRODUCT patterns (name + aliases → catalog name).

    The ruler exists only while there are products (an empty ruler makes spaCy warn)."""
    patterns = [
        {"label": "PRODUCT", "pattern": phrase, "id": p.name}
        for p in products
        for phrase in (p.name, *p.aliases)
    ]
    if "entity_ruler" in nlp.pipe_names:
        nlp.remove_pipe("entity_ruler")
    if patterns:
        first = nlp.pipe_names[0] if nlp.pipe_names else None
        ruler: Any = nlp.add_pipe(
            "entity_ruler", config={"phrase_matcher_attr": "LOWER"}, before=first
        )
        ruler.add_patterns(patterns)


def make_pipeline(
    lang: str,
    *,
    products: Sequence[ProductName] = (),
    order_pattern: str = DEFAULT_ORDER_PATTERN,
    ner_model: str | None = None,
) -> Language:
    """A blank ``lang`` pipeline: [entity_ruler →] [ner →] klartext_entities → klartext_intent."""
    import spacy

    nlp = spacy.blank(lang)
    if ner_model:
        source = spacy.load(ner_model)
        nlp.add_pipe("ner", source=source)
    nlp.add_pipe("klartext_entities", config={"order_pattern": order_pattern})
    nlp.add_pipe("klartext_intent")
    set_products(nlp, products)
    return nlp


def intent_component(nlp: Language) -> IntentComponent:
    comp = nlp.get_pipe("klartext_intent")
    assert isinstance(comp, IntentComponent)
    return comp


def entity_component(nlp: Language) -> EntityComponent:
    comp = nlp.get_pipe("klartext_entities")
    assert isinstance(comp, EntityComponent)
    return comp
