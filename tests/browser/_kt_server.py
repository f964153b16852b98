"""The real Klartext app as a subprocess for the browser tests (see conftest.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CHROMIUM = os.environ.get("KLARTEXT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 120.0


def index_fingerprint() -> str:
    """Hash of everything an index build depends on: the demo knowledge and the code that
    loads, embeds and stores it."""
    digest = hashlib.sha256()
    files = [
        ROOT / "pyproject.toml",
        ROOT / "bot" / "config.py",
        ROOT / "bot" / "cli" / "index_cmds.py",
    ]
    for folder in ("knowledge", "retrieval"):
        files += sorted(p for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix != ".pyc")
    for path in files:
        if path.exists():
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(data_dir: Path) -> dict[str, str]:
    # Hermetic: the developer's own KLARTEXT_* settings (LLM, origins, database…) stay out.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLARTEXT_")}
    env.update(
        KLARTEXT_DATA_DIR=str(data_dir),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
    )
    return env


class KlartextServer:
    """A real uvicorn process serving ``web.app:create_app`` on loopback."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = data_dir / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.agent_key = ""

    def prepare(self, index_cache: Path | None = None) -> None:
        """Migrate a fresh SQLite database and build the demo index with the real CLI
        (``klartext reindex knowledge/demo``). With ``index_cache``, a build made earlier from
        the same knowledge and code is reused (see ``index_fingerprint``)."""
        from bot.store.migrate import upgrade

        self.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade(f"sqlite+aiosqlite:///{self.data_dir / 'klartext.db'}")
        self.agent_key = self._create_agent_key()
        index = self.data_dir / "index"
        cached = index_cache / index_fingerprint() if index_cache else None
        if cached is not None and cached.is_dir():
            shutil.copytree(cached, index)
            return
        done = subprocess.run(
            [str(VENV_BIN / "klartext"), "reindex", "knowledge/demo"],
            cwd=ROOT,
            env=_env(self.data_dir),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"klartext reindex failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
        if cached is not None:
            tmp = cached.with_name(cached.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(index, tmp)
            tmp.rename(cached)

    def _create_agent_key(self) -> str:
        """An API key with scope ``agent`` (``klartext apikey create``), for posting agent
        messages through the handoff API as a CRM would."""
        args = ["apikey", "create", "--name", "browser-tests", "--scopes", "agent"]
        done = subprocess.run(
            [str(VENV_BIN / "klartext"), *args],
            cwd=ROOT,
            env=_env(self.data_dir),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        keys = [w for w in done.stdout.split() if w.startswith("kt_")]
        if not keys:
            raise RuntimeError(f"no key in `klartext apikey create` output:\n{done.stdout}")
        return keys[-1]

    def agent_api(self, conversation_id: str, action: str, body: dict[str, str]) -> None:
        """``POST /api/v1/conversations/{id}/{action}`` with the agent key (messages, release…)."""
        resp = httpx.post(
            f"{self.url}/api/v1/conversations/{conversation_id}/{action}",
            json=body,
            headers={"Authorization": f"Bearer {self.agent_key}"},
            timeout=10,
        )
        resp.raise_for_status()

    def start(self) -> None:
        log = self.log_path.open("ab")
        app = ["web.app:create_app", "--factory"]
        self._proc = subprocess.Popen(
            [str(VENV_BIN / "python"), "-m", "uvicorn", *app, *self._args()],
            cwd=ROOT,
            env=_env(self.data_dir),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/widget.js", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"server did not start in {START_TIMEOUT_S}s:\n{self.log()}")

    def _args(self) -> list[str]:
        return ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]

    def kill(self) -> None:
        """SIGKILL, like a crash: nothing gets a chance to flush or say goodbye."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=10)
        self._proc = None

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""
