"""Real uvicorn servers on loopback (in a thread) around ``create_app`` with a scripted fake
engine, plus a small websocket client. Fixtures are re-exported by ``conftest.py``; test modules
import helpers from here (``conftest`` is an ambiguous module name across test folders)."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from bot.config import Settings
from bot.store.migrate import upgrade
from web.app import create_app

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _wsfakes import FakeRuntime
from pg import PgCluster, pg_cluster

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "protocol.schema.json"


class ServerThread:
    def __init__(self, settings: Settings, runtime: Any) -> None:
        self.settings = settings
        self.runtime = runtime
        app = create_app(settings, runtime=runtime)
        self.config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=settings.port,
            log_level="warning",
            ws_per_message_deflate=False,
            ws_max_size=1 << 20,
            ws_ping_interval=settings.heartbeat_s,
            ws_ping_timeout=settings.heartbeat_s,
            lifespan="on",
            forwarded_allow_ips=settings.trusted_proxies,  # as `klartext serve`
        )
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.settings.port}/ws/chat"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 180
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "port": free_port(),
        "token_secret": "test-secret-0123456789abcdef",
        "log_level": "WARNING",
        "heartbeat_s": 5.0,
        "idle_timeout_s": 30.0,
        "rate_limit_per_minute": 100,
        "max_message_chars": 500,
    }
    values.update(overrides)
    return Settings(**values)


StartServer = Callable[..., ServerThread]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """``start_server(**settings_overrides, runtime=None, real=False, data_dir=None)``: a
    migrated SQLite database in ``data_dir`` (default: the test's tmp dir) and a running server
    with ``runtime`` (default a ``FakeRuntime``; ``real=True``: the lifespan builds the real one).
    """
    running: list[ServerThread] = []

    def start(
        *, runtime: Any = None, real: bool = False, data_dir: Path | None = None, **overrides: Any
    ) -> ServerThread:
        settings = make_settings(data_dir or tmp_path, **overrides)
        upgrade(settings.effective_database_url)
        server = ServerThread(settings, None if real else runtime or FakeRuntime()).start()
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def server(start_server: StartServer) -> ServerThread:
    return start_server()


@pytest.fixture(scope="session")
def web_pg() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL cluster for the websocket tests on PostgreSQL."""
    with pg_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def frame_validator() -> Callable[[dict[str, Any]], None]:
    """Validates a frame against ``#/$defs/ServerFrame`` (or ``ClientFrame`` if ``client``)."""
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    server = jsonschema.Draft202012Validator({**schema, "oneOf": [{"$ref": "#/$defs/ServerFrame"}]})
    client = jsonschema.Draft202012Validator({**schema, "oneOf": [{"$ref": "#/$defs/ClientFrame"}]})

    def check(frame: dict[str, Any], *, from_client: bool = False) -> None:
        (client if from_client else server).validate(frame)

    return check


class Client:
    """A protocol-v1 client over a real websocket; every received frame is schema-checked."""

    def __init__(self, ws: ClientConnection, check: Callable[[dict[str, Any]], None]) -> None:
        self.ws = ws
        self.check = check
        self.welcome: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any]) -> None:
        """Send a well-formed client frame (schema-checked; bad frames go via ``ws.send``)."""
        self.check(frame, from_client=True)  # type: ignore[call-arg]
        await self.ws.send(json.dumps(frame))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        frame: dict[str, Any] = json.loads(raw)
        self.check(frame)
        return frame

    async def hello(self, **fields: Any) -> dict[str, Any]:
        await self.send({"type": "hello", "v": 1, "widget_version": "test", **fields})
        frame = await self.recv()
        while frame["type"] == "error":  # e.g. bad_token before the new conversation's welcome
            self.errors_before_welcome.append(frame)
            frame = await self.recv()
        assert frame["type"] == "welcome"
        self.welcome = frame
        history = await self.recv()
        assert history["type"] == "history"
        self.history = history["events"]
        for ev in self.history:
            self.check(ev)
        return frame

    errors_before_welcome: list[dict[str, Any]]

    async def until(self, kind: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Frames up to and including the first of type ``kind``."""
        out: list[dict[str, Any]] = []
        while True:
            frame = await self.recv(timeout)
            out.append(frame)
            if frame["type"] == kind:
                return out

    async def roundtrip_ping(self) -> list[dict[str, Any]]:
        """Send a ping; return the frames received before its pong (proves the socket works)."""
        await self.send({"type": "ping", "nonce": "p"})
        frames = await self.until("pong")
        assert frames[-1] == {"type": "pong", "nonce": "p"}
        return frames[:-1]


OpenClient = Callable[..., Any]


@pytest.fixture
async def open_client(
    frame_validator: Callable[[dict[str, Any]], None],
) -> AsyncIterator[OpenClient]:
    opened: list[ClientConnection] = []

    async def open_(url: str, **kwargs: Any) -> Client:
        ws = await connect(url, compression=None, **kwargs)
        opened.append(ws)
        client = Client(ws, frame_validator)
        client.errors_before_welcome = []
        return client

    yield open_
    for ws in opened:
        await ws.close()
