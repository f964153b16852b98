"""The NLU facade: :class:`NLU` (an :class:`~bot.nlu.types.IntentParser`) and :func:`load_nlu`.

One spaCy pipeline per supported language shares one intent classifier (trained on all
languages' examples) and one embedder. ``parse`` detects the message language (the ``lang``
argument is a hint used when detection is unsure), runs that language's pipeline and returns a
:class:`~bot.nlu.types.ParsedMessage`.

Model folder layout (written by :mod:`bot.nlu.training`)::

    <nlu_dir>/nlu.json        manifest: languages, embedder name, fingerprint, train stats
    <nlu_dir>/<lang>/         spaCy ``nlp.to_disk`` (config.cfg, entity_ruler, klartext_intent/)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from bot.errors import NLUError
from bot.nlu.entities import DEFAULT_ORDER_PATTERN, ProductName
from bot.nlu.langid import LanguageDetector
from bot.nlu.types import Entity, ParsedMessage
from retrieval.types import Embedder

MANIFEST = "nlu.json"


def _as_entity(span: Any) -> Entity:
    value = span._.value if span._.value is not None else span.text
    return Entity(span.label_, span.text, span.start_char, span.end_char, str(value))


class NLU:
    """Parses messages: language, intent (+ out of scope), entities."""

    def __init__(
        self,
        pipelines: Mapping[str, Any],
        *,
        embedder: Embedder | None = None,
        default_language: str = "en",
        detector: LanguageDetector | None = None,
        manifest: Mapping[str, Any] | None = None,
    ) -> None:
        from bot.nlu.components import intent_component

        if not pipelines:
            raise NLUError("no language pipelines")
        self.pipelines = dict(pipelines)
        self.languages = tuple(self.pipelines)
        self.default_language = (
            default_language if default_language in self.pipelines else self.languages[0]
        )
        self.detector = detector or LanguageDetector(self.languages, default=self.default_language)
        self.manifest = dict(manifest or {})
        self.embedder = embedder
        for nlp in self.pipelines.values():
            intent_component(nlp).embedder = embedder

    @property
    def has_intents(self) -> bool:
        from bot.nlu.components import intent_component

        return any(intent_component(n).classifier is not None for n in self.pipelines.values())

    @property
    def intents(self) -> list[str]:
        from bot.nlu.classifier import OOS_LABEL
        from bot.nlu.components import intent_component

        clf = intent_component(self.pipelines[self.default_language]).classifier
        return [label for label in clf.labels if label != OOS_LABEL] if clf else []

    def set_reference_date(self, ref: date | None) -> None:
        """Anchor relative dates ("tomorrow") to ``ref`` (None = today); for tests/replays."""
        from bot.nlu.components import entity_component

        for nlp in self.pipelines.values():
            entity_component(nlp).ref_date = ref

    def detect_language(self, text: str, hint: str | None = None) -> str:
        return self.detector.detect(text, hint).lang

    def _message(self, doc: Any, lang: str) -> ParsedMessage:
        return ParsedMessage(
            text=doc.text,
            lang=lang,
            intent=doc._.intent,
            confidence=float(doc._.intent_confidence),
            ranking=tuple(doc._.intent_ranking),
            entities=tuple(_as_entity(e) for e in doc.ents),
            out_of_scope=bool(doc._.out_of_scope),
        )

    def parse(self, text: str, lang: str | None = None) -> ParsedMessage:
        """Parse one message. ``lang`` is a hint (e.g. the conversation language)."""
        detected = self.detect_language(text, lang)
        return self._message(self.pipelines[detected](text), detected)

    def parse_many(self, texts: Sequence[str], lang: str | None = None) -> list[ParsedMessage]:
        """Batch version of :meth:`parse` (embeds in batches; same results)."""
        langs = [self.detect_language(t, lang) for t in texts]
        out: list[ParsedMessage | None] = [None] * len(texts)
        for code, nlp in self.pipelines.items():
            idx = [i for i, lg in enumerate(langs) if lg == code]
            for i, doc in zip(idx, nlp.pipe([texts[i] for i in idx], batch_size=256), strict=True):
                out[i] = self._message(doc, code)
        return [m for m in out if m is not None]


def read_manifest(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / MANIFEST
    if not path.is_file():
        raise NLUError(f"no NLU model in {model_dir}: run `klartext nlu train`")
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NLUError(f"unreadable NLU manifest {path}: {exc}") from exc
    return data


def load_nlu(
    model_dir: Path,
    *,
    embedder: Embedder | None = None,
    catalog_products: Sequence[ProductName] | None = None,
    order_pattern: str | None = None,
    default_language: str = "en",
    ner_model: str | None = None,
) -> NLU:
    """Load a trained NLU folder. ``embedder`` must be the one it was trained with (checked by
    name); None builds it from the manifest. A model trained with a fine-tuned encoder
    (``encoder`` in the manifest) loads that encoder unless ``embedder`` is the same one.
    ``catalog_products`` / ``order_pattern`` replace the saved product patterns / order-number
    regex."""
    import spacy

    import bot.nlu.components as comps
    from bot.nlu.embedding import default_embedder, local_embedder

    manifest = read_manifest(model_dir)
    trained_with = manifest.get("embedder")
    encoder = manifest.get("encoder")  # a fine-tuned encoder saved with the model
    if (
        encoder
        and manifest.get("has_intents")
        and (embedder is None or embedder.name != trained_with)
    ):
        from bot.nlu.finetune import FinetunedEmbedder

        embedder = FinetunedEmbedder(Path(model_dir) / str(encoder), name=trained_with)
    if embedder is None and manifest.get("has_intents"):
        spec = manifest.get("embedder_spec")
        embedder = local_embedder(str(spec)) if spec else default_embedder()
    if embedder is not None and trained_with and embedder.name != trained_with:
        raise NLUError(
            f"NLU model was trained with embedder {trained_with!r}, got {embedder.name!r}: "
            "retrain with `klartext nlu train`"
        )
    pipelines: dict[str, Any] = {}
    for lang in manifest["languages"]:
        overrides: dict[str, Any] = {}
        if order_pattern and order_pattern != DEFAULT_ORDER_PATTERN:
            re.compile(order_pattern)
            overrides["components.klartext_entities.order_pattern"] = order_pattern
        try:
            nlp = spacy.load(Path(model_dir) / lang, config=overrides)
        except (OSError, ValueError) as exc:
            raise NLUError(f"cannot load NLU pipeline {lang}: {exc}") from exc
        if catalog_products is not None:
            comps.set_products(nlp, catalog_products)
        if ner_model and "ner" not in nlp.pipe_names:
            nlp.add_pipe("ner", source=spacy.load(ner_model), before="klartext_entities")
        pipelines[lang] = nlp
    return NLU(pipelines, embedder=embedder, default_language=default_language, manifest=manifest)
