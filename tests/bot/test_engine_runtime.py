"""bot.runtime: wiring, missing parts, readiness, actions from settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_fakes import FakeNLU, FakeRetriever, ScriptedChatModel, collect, text_of

from bot.actions import DemoOrderAction, HttpAction
from bot.config import Settings
from bot.conversation import ConversationContext
from bot.engine import Engine
from bot.errors import ConfigError, NLUError
from bot.llm import StaticProvider
from bot.runtime import BareParser, EmptyRetriever, Runtime, build_runtime, make_actions
from retrieval.errors import IndexMissing


def test_missing_index_raises_unless_allowed(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(IndexMissing):
        build_runtime(settings)
    rt = build_runtime(settings, allow_missing=True)
    assert isinstance(rt.retriever, EmptyRetriever) and isinstance(rt.nlu, BareParser)
    assert rt.ready() == {"index": False, "nlu": False, "llm": True, "actions": True}
    assert rt.reload_if_changed() is False


async def test_bare_runtime_still_answers_orders_and_falls_back(tmp_path: Path) -> None:
    rt = build_runtime(Settings(data_dir=tmp_path), allow_missing=True)
    events = await collect(rt.engine.turn("NC-12345", ConversationContext("c"), turn_id="t"))
    assert "NC-12345 has shipped with DHL" in text_of(events)
    events = await collect(
        rt.engine.turn("How long is delivery?", ConversationContext("c"), turn_id="t")
    )
    assert events[-1].mode == "fallback"


def test_missing_nlu_names_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.runtime as runtime

    monkeypatch.setattr(runtime, "_load_retriever", lambda s, a: (FakeRetriever({}), True))
    with pytest.raises(NLUError, match="klartext nlu train"):
        build_runtime(Settings(data_dir=tmp_path))


def test_provider_override_and_llm_readiness(tmp_path: Path) -> None:
    provider = StaticProvider(ScriptedChatModel(script=[]))
    rt = build_runtime(Settings(data_dir=tmp_path), allow_missing=True, provider=provider)
    assert rt.engine.provider is provider
    for _ in range(rt.settings.llm_breaker_failures):
        rt.engine.breaker.record_failure()
    assert rt.ready()["llm"] is False


def test_bare_parser() -> None:
    p = BareParser(Settings()).parse("status of nc-12345 please", "de")
    assert p.lang == "de" and p.intent == "faq" and not p.out_of_scope
    order = p.entity("ORDER_NUMBER")
    assert order is not None and order.value == "NC-12345"


def test_make_actions_from_settings(tmp_path: Path) -> None:
    http = make_actions(Settings(order_api_url="https://shop.test/orders/{order_number}"))
    assert isinstance(http["lookup_order"], HttpAction)
    with pytest.raises(ConfigError, match="order_number"):
        make_actions(Settings(order_api_url="https://shop.test/orders"))
    assert isinstance(make_actions(Settings())["lookup_order"], DemoOrderAction)
    assert make_actions(Settings(knowledge_dir=tmp_path)) == {}


def test_reload_delegates_to_the_retriever() -> None:
    class Reloading(FakeRetriever):
        def reload_if_changed(self) -> bool:
            return True

    settings = Settings()
    retriever = Reloading({})
    engine = Engine(nlu=FakeNLU(), retriever=retriever, settings=settings)
    rt = Runtime(settings=settings, retriever=retriever, nlu=FakeNLU(), engine=engine)
    assert rt.reload_if_changed() is True


@pytest.mark.parametrize("strict", [False, True])
def test_answer_verifier_setting_reaches_the_retriever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strict: bool
) -> None:
    import retrieval.embedders as embedders
    import retrieval.search as search
    from retrieval import store

    seen: dict[str, object] = {}

    class _Manifest:
        model = "minilm:all-MiniLM-L6-v2"

    def fake_load(index_dir: Path, **kwargs: object) -> FakeRetriever:
        seen.update(kwargs)
        return FakeRetriever({})

    monkeypatch.setattr(store, "current_build", lambda d: d)
    monkeypatch.setattr(store, "read_manifest", lambda d: _Manifest())
    monkeypatch.setattr(embedders, "embedder_from_name", lambda name, index_dir=None: object())
    monkeypatch.setattr(search, "load_retriever", fake_load)
    import bot.runtime as runtime

    _, ok = runtime._load_retriever(Settings(data_dir=tmp_path, answer_verifier=strict), False)
    assert ok and seen["use_verifier"] is strict
    # a build with another model (a re-adapted knowledge base) gets a cached embedder too
    from bot.embedcache import CachingEmbedder

    follow = seen["embedder_for"]
    assert callable(follow) and isinstance(follow("e5kb:0123456789abcdef"), CachingEmbedder)


def test_a_damaged_adapter_is_reported_at_start_not_per_turn(tmp_path: Path) -> None:
    """An index adapted to the knowledge base whose adapter file is damaged: with
    ``allow_missing`` the runtime serves without the index (``ready()['index']`` is False,
    turns fall back); without, building fails with KT304."""
    import pytest

    import bot.runtime as runtime
    from knowledge.loaders import load_knowledge
    from retrieval.adapted import adapter_path
    from retrieval.errors import AdaptError
    from retrieval.reindex import reindex
    from tests.retrieval.fakes import FakeEmbedder

    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    (kb_dir / "faq.yaml").write_text(
        "lang: en\nentries:\n  - id: a\n    question: How long is delivery?\n"
        "    answer: Two days.\n"
    )
    settings = Settings(data_dir=tmp_path / "data", knowledge_dir=kb_dir)
    reindex(load_knowledge(kb_dir), settings.index_dir, FakeEmbedder(name="e5kb:0123456789abcdef"))
    path = adapter_path(settings.index_dir, "0123456789abcdef")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an adapter")
    retriever, ok = runtime._load_retriever(settings, allow_missing=True)
    assert not ok and retriever.search("delivery?") == []
    with pytest.raises(AdaptError, match="unreadable"):
        runtime._load_retriever(settings, allow_missing=False)
