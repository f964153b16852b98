"""Shared helpers for the websocket benchmarks: start a real uvicorn subprocess, read its RSS."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_nofile(want: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, want), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(
    data_dir: Path, *, engine: str, deflate: bool = False, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """uvicorn in a subprocess on a free port; ``engine`` = ``fake`` or ``real``."""
    port = free_port()
    env = {
        **os.environ,
        "KLARTEXT_DATA_DIR": str(data_dir),
        "KLARTEXT_LOG_LEVEL": "WARNING",
        "KLARTEXT_RATE_LIMIT_PER_MINUTE": "100000",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        **(extra_env or {}),
    }
    if engine == "fake":
        env["KLARTEXT_BENCH_ENGINE"] = "fake"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from bot.store.migrate import upgrade; upgrade(sys.argv[1])",
            f"sqlite+aiosqlite:///{data_dir / 'klartext.db'}",
        ],
        check=True,
        env=env,
        cwd=ROOT,
    )
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "--app-dir",
        str(ROOT / "bench"),
        "_ws_server:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--ws-max-size",
        str(1 << 20),
        "--ws-per-message-deflate",
        "true" if deflate else "false",
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def pick_engine(requested: str) -> str:
    """``auto`` → ``real`` when the runtime and its embedders are importable, else ``fake``."""
    if requested != "auto":
        return requested
    import importlib.util

    ok = all(importlib.util.find_spec(m) for m in ("bot.runtime", "retrieval.embedders"))
    return "real" if ok else "fake"


def engine_label(engine: str) -> str:
    return (
        "real runtime, extractive (llm_provider=none), demo knowledge base"
        if engine == "real"
        else "FAKE scripted extractive-like engine (no retrieval, no NLU)"
    )


def prepare_real(data_dir: Path) -> None:
    """Index the demo knowledge base and train the NLU into ``data_dir``."""
    env = {**os.environ, "KLARTEXT_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    code = (
        "from bot.config import get_settings; from bot.runtime import build_runtime; "
        "build_runtime(get_settings(), prepare=True, allow_missing=True)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
