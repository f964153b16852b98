"""A real webhook receiver for the tests: a stdlib HTTP server on a loopback port (in a thread)
that records every request, answers 500 to the first ``fail_first`` requests of each delivery
(or to all while ``failing``), and counts accepted deliveries by ``Klartext-Delivery-Id``."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.body)
        return out

    @property
    def key(self) -> str:
        return self.headers["klartext-delivery-id"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    def __init__(self, port: int | None = None, *, fail_first: int = 0) -> None:
        self.port = port or free_port()
        self.fail_first = fail_first
        self.failing = False
        self.requests: list[Received] = []
        self.seen: Counter[str] = Counter()  # requests per delivery id
        self.accepted: Counter[str] = Counter()  # 2xx answers per delivery id
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _handle(self, headers: dict[str, str], body: bytes) -> int:
        key = headers.get("klartext-delivery-id", "")
        with self._lock:
            self.seen[key] += 1
            fail = self.failing or self.seen[key] <= self.fail_first
            status = 500 if fail else 200
            if not fail:
                self.accepted[key] += 1
            self.requests.append(Received(headers, body, status))
        return status

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver._handle(headers, body)
                reply = b"ok" if status == 200 else b"receiver says no"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ok(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.status == 200]

    async def wait_for(self, n: int, timeout: float = 20.0) -> list[Received]:
        """The accepted requests once ``n`` distinct deliveries were accepted."""
        deadline = time.monotonic() + timeout
        while len(self.accepted) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.accepted)} of {n} deliveries arrived")
            await asyncio.sleep(0.02)
        return self.ok()
