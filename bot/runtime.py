"""The one place that wires the bot: :func:`build_runtime` loads the retriever, the NLU, the
LLM provider and the actions once; the web app, ``klartext ask`` and the evaluations all use
the resulting :class:`Runtime`.

With ``prepare=True`` a missing or stale index is (re)built from ``knowledge_dir`` and the NLU
is (re)trained when its training data changed (what ``make run`` on a fresh checkout needs).
With ``allow_missing=True`` a missing index / NLU does not raise: the runtime serves with an
empty retriever / a bare parser and :meth:`Runtime.ready` says so.
"""

from __future__ import annotations

import gc
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from bot.actions import Action, DemoOrderAction, HttpAction
from bot.config import Settings
from bot.embedcache import CachingEmbedder
from bot.engine import ORDER_ACTION, Engine
from bot.errors import ConfigError, NLUError
from bot.llm.breaker import CircuitBreaker
from bot.llm.providers import ChatModelProvider, make_provider
from bot.nlu.types import Entity, IntentParser, ParsedMessage
from retrieval.errors import AdaptError, IndexMissing
from retrieval.types import Embedder, Hit, Retriever

log = logging.getLogger(__name__)


class EmptyRetriever:
    """Stands in while there is no index: finds nothing (every question falls back)."""

    def search(self, query: str, *, k: int = 5, lang: str | None = None) -> list[Hit]:
        return []


class BareParser:
    """Stands in while there is no trained NLU: no intents, only order numbers and the
    language hint (or the default language)."""

    def __init__(self, settings: Settings) -> None:
        self._order = re.compile(settings.order_number_pattern, re.IGNORECASE)
        self._default = settings.default_language

    def parse(self, text: str, lang: str | None = None) -> ParsedMessage:
        entities = tuple(
            Entity("ORDER_NUMBER", m.group(0), m.start(), m.end(), m.group(0).upper())
            for m in self._order.finditer(text)
        )
        return ParsedMessage(
            text=text, lang=lang or self._default, intent="faq", confidence=0.0, entities=entities
        )


@dataclass(slots=True)
class Runtime:
    settings: Settings
    retriever: Retriever
    nlu: IntentParser
    engine: Engine
    provider: ChatModelProvider | None = None
    actions: dict[str, Action] = field(default_factory=dict)
    index_ready: bool = True
    nlu_ready: bool = True

    def ready(self) -> dict[str, bool]:
        """Component health for ``/readyz``: index, NLU, LLM (``True`` when not configured
        or its circuit is not open), actions."""
        llm_ok = self.provider is None or self.engine.breaker.state != "open"
        return {
            "index": self.index_ready,
            "nlu": self.nlu_ready,
            "llm": llm_ok,
            "actions": ORDER_ACTION in self.actions,
        }

    def reload_if_changed(self) -> bool:
        """Swap in a new index build if ``klartext reindex`` produced one; True if swapped."""
        reload = getattr(self.retriever, "reload_if_changed", None)
        return bool(reload()) if callable(reload) else False


def index_signature(settings: Settings) -> tuple[object, ...] | None:
    """The served index's files at a glance (``retrieval.store.index_signature``): the web
    app's reload loop builds an unready runtime again only when this changes."""
    from retrieval.store import index_signature as signature

    return signature(settings.index_dir)


def make_actions(settings: Settings) -> dict[str, Action]:
    """The order lookup: the configured HTTP backend, else the demo's ``orders.json``."""
    if settings.order_api_url:
        if "{order_number}" not in settings.order_api_url:
            raise ConfigError("KLARTEXT_ORDER_API_URL must contain {order_number}")
        return {
            ORDER_ACTION: HttpAction(
                ORDER_ACTION, settings.order_api_url, timeout_s=settings.action_timeout_s
            )
        }
    orders = settings.knowledge_dir / "orders.json"
    return {ORDER_ACTION: DemoOrderAction(orders)} if orders.is_file() else {}


def _make_embedder(settings: Settings, languages: list[str]) -> Embedder:
    from retrieval.embedders import make_embedder

    emb: Embedder = make_embedder(settings.embedding_backend, settings.embedding_model, languages)
    return emb


def _prepare(settings: Settings) -> None:
    """Reindex and retrain when the knowledge folder changed (no-ops when up to date)."""
    from bot.nlu.training import train_if_changed_for
    from knowledge.loaders import load_knowledge
    from retrieval.reindex import reindex

    kb = load_knowledge(settings.knowledge_dir)
    embedder: list[Embedder] = []

    def shared() -> Embedder:
        if not embedder:
            embedder.append(_make_embedder(settings, sorted(kb.languages)))
        return embedder[0]

    adapted: Embedder | None = None
    if settings.adapt_embeddings:  # trains only when the FAQ changed (docs/retrieval.md)
        from retrieval.adapt import adapted_or_none

        adapted = adapted_or_none(kb, settings.index_dir, shared().name)
    reindex(
        kb,
        settings.index_dir,
        shared if adapted is None else adapted,
        hnsw_threshold=settings.hnsw_threshold,
        duplicate_threshold=settings.duplicate_threshold,
        model_name=None if adapted is None else adapted.name,
    )
    train_if_changed_for(settings, settings.knowledge_dir, shared)


def _load_retriever(settings: Settings, allow_missing: bool) -> tuple[Retriever, bool]:
    from retrieval import store
    from retrieval.embedders import embedder_from_name
    from retrieval.search import load_retriever

    try:
        manifest = store.read_manifest(store.current_build(settings.index_dir))
    except IndexMissing:
        if not allow_missing:
            raise
        log.warning("no index in %s: run `klartext reindex`", settings.index_dir)
        return EmptyRetriever(), False

    # One embedding per message: the NLU gets the same cached embedder when it was trained
    # with that model (see _load_nlu). A build with another model (e.g. the knowledge base
    # re-adapted after an FAQ change, retrieval.adapt) swaps the retriever's embedder on
    # reload; the NLU keeps the one it was loaded with.
    def embedder_for(name: str) -> Embedder:
        return CachingEmbedder(embedder_from_name(name, settings.index_dir))

    try:
        embedder = embedder_for(manifest.model)
        if manifest.model.startswith("e5kb:"):  # a missing/damaged adapter fails now, not per turn
            embedder.embed(["warm-up"], kind="query")
    except AdaptError as exc:
        if not allow_missing:
            raise
        log.error("index not served: %s", exc.message)
        return EmptyRetriever(), False
    second = None
    if settings.second_opinion:  # the one place the opt-in second encoder is built
        from retrieval.ensemble import second_opinion_for

        second = second_opinion_for(manifest.model, settings.second_opinion_rule)
    retriever = load_retriever(
        settings.index_dir,
        embedder=embedder,
        use_verifier=settings.answer_verifier,
        second_opinion=second,
        embedder_for=embedder_for,
    )
    if second is not None:
        from retrieval.ensemble import warm_up

        warm_up(retriever)  # mpnet's row vectors now, not on the first unsure question
    return retriever, True


def _load_nlu(
    settings: Settings, retriever: Retriever, allow_missing: bool
) -> tuple[IntentParser, bool]:
    from bot.nlu.pipeline import load_nlu, read_manifest

    try:
        manifest = read_manifest(settings.nlu_dir)
    except NLUError:
        if not allow_missing:
            raise NLUError(
                f"no trained NLU in {settings.nlu_dir}: run `klartext nlu train`"
            ) from None
        log.warning("no NLU in %s: run `klartext nlu train`", settings.nlu_dir)
        return BareParser(settings), False
    shared: Any = getattr(retriever, "embedder", None)
    embedder = shared if shared is not None and shared.name == manifest.get("embedder") else None
    nlu = load_nlu(
        settings.nlu_dir,
        embedder=embedder,
        order_pattern=settings.order_number_pattern,
        default_language=settings.default_language,
        ner_model=settings.spacy_ner_model,
    )
    return nlu, True


def _warm_up(nlu: IntentParser, retriever: Retriever) -> None:
    """Run one parse and one search so that lazy model loading does not hit the first user."""
    try:
        parsed = nlu.parse("hello")
        retriever.search(parsed.text, k=1, lang=parsed.lang)
    except Exception:  # warm-up is best effort; real turns report real errors
        log.warning("warm-up failed", exc_info=True)


def _settle_heap() -> None:
    """Collect once, then move every object alive now (models, vocabularies, index: ~300k
    tracked objects for the demo) into the permanent generation.

    A full (generation 2) collection walks every tracked object: ~300 ms on this 2-core machine
    under load, during which the event loop is blocked, i.e. a whole turn's p99 budget several
    times over. Frozen objects are not walked. Unfreezing first lets runtimes replaced since
    the last build (knowledge admin rebuilds) be collected instead of staying frozen forever.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def build_runtime(
    settings: Settings,
    *,
    prepare: bool = False,
    allow_missing: bool = False,
    provider: ChatModelProvider | None = None,
) -> Runtime:
    """Load everything once. ``provider`` overrides the configured LLM provider."""
    if prepare:
        _prepare(settings)
    retriever, index_ok = _load_retriever(settings, allow_missing)
    nlu, nlu_ok = _load_nlu(settings, retriever, allow_missing)
    llm = provider if provider is not None else make_provider(settings)
    actions = make_actions(settings)
    engine = Engine(
        nlu=nlu,
        retriever=retriever,
        settings=settings,
        provider=llm,
        actions=actions,
        breaker=CircuitBreaker(settings.llm_breaker_failures, settings.llm_breaker_cooldown_s),
    )
    _warm_up(nlu, retriever)
    _settle_heap()
    return Runtime(
        settings=settings,
        retriever=retriever,
        nlu=nlu,
        engine=engine,
        provider=llm,
        actions=actions,
        index_ready=index_ok,
        nlu_ready=nlu_ok,
    )
