"""What keeps a turn's overhead low: NLU, routing and retrieval run in one worker thread (one
hop off the event loop per turn); a failing search still answers in the detected language;
a built runtime's long-lived objects are frozen out of the garbage collector's full walks."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

from engine_fakes import FakeNLU, FakeRetriever, collect, of_type

from bot.config import Settings
from bot.conversation import ConversationContext
from bot.engine import Engine
from bot.nlu.types import ParsedMessage
from bot.runtime import build_runtime
from retrieval.types import Hit

TABLE = {"delivery": [("en-ship-01", 0.82)], "lieferung": [("de-ship-01", 0.8)]}


class ThreadNLU(FakeNLU):
    def __init__(self) -> None:
        super().__init__({"hello": "greeting", "human": "human_handoff"})
        self.threads: list[int] = []

    def parse(self, text: str, lang: str | None = None) -> ParsedMessage:
        self.threads.append(threading.get_ident())
        return super().parse(text, lang)


class ThreadRetriever(FakeRetriever):
    def __init__(self, fail: bool = False) -> None:
        super().__init__(TABLE)
        self.threads: list[int] = []
        self.fail = fail

    def search(self, query: str, *, k: int = 5, lang: str | None = None) -> list[Hit]:
        self.threads.append(threading.get_ident())
        if self.fail:
            raise RuntimeError("index gone")
        return super().search(query, k=k, lang=lang)


def _engine(retriever: ThreadRetriever) -> tuple[Engine, ThreadNLU]:
    nlu = ThreadNLU()
    return Engine(nlu=nlu, retriever=retriever, settings=Settings(answer_threshold=0.5)), nlu


async def test_parse_and_search_share_one_worker_thread_off_the_loop() -> None:
    retriever = ThreadRetriever()
    engine, nlu = _engine(retriever)
    events = await collect(
        engine.turn("How long is delivery?", ConversationContext("c"), turn_id="t")
    )
    loop_thread = threading.get_ident()
    assert nlu.threads == retriever.threads and nlu.threads[0] != loop_thread
    assert retriever.calls == [("How long is delivery?", "en")]
    done = events[-1]
    assert done.mode == "extractive" and of_type(events, "sources")[0].items[0].id == "en-ship-01"
    assert done.timing_ms["nlu"] >= 0 and done.timing_ms["retrieval"] >= 0
    assert done.timing_ms["total"] >= done.timing_ms["nlu"] + done.timing_ms["retrieval"]


async def test_fast_paths_do_not_search() -> None:
    retriever = ThreadRetriever()
    engine, _ = _engine(retriever)
    for text, mode in (("hello", "smalltalk"), ("I want a human", "handoff")):
        events = await collect(engine.turn(text, ConversationContext("c"), turn_id="t"))
        assert events[-1].mode == mode and "retrieval" not in events[-1].timing_ms
    assert retriever.calls == []


async def test_failing_search_errors_in_the_detected_language() -> None:
    engine, _ = _engine(ThreadRetriever(fail=True))
    events = await collect(
        engine.turn("Wie lange dauert die Lieferung?", ConversationContext("c"), turn_id="t")
    )
    assert [e.type for e in events] == ["error", "done"]
    assert "schiefgelaufen" in events[0].message and "index gone" not in events[0].message
    assert events[-1].lang == "de" and events[-1].mode == "fallback"


def test_built_runtime_is_frozen_out_of_full_collections(tmp_path: Path) -> None:
    build_runtime(Settings(data_dir=tmp_path), allow_missing=True)
    frozen = gc.get_freeze_count()
    assert frozen > 0
    build_runtime(Settings(data_dir=tmp_path), allow_missing=True)  # re-settles, no pile-up
    assert gc.get_freeze_count() < 2 * frozen
