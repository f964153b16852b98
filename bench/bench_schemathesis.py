"""Run schemathesis against a real server process's REST API (issue 6: zero 5xx).

schemathesis is not a project dependency (it installs a pytest plugin into whatever
environment holds it), so it lives in its own virtual environment and this script calls its
``st`` command::

    python3 -m venv /tmp/stv && /tmp/stv/bin/pip install schemathesis==4.32.5
    .venv/bin/python bench/bench_schemathesis.py --st /tmp/stv/bin/st [--max-time 300]

The server runs the fake engine on a temporary data directory with a copy of the demo
knowledge (the knowledge API writes there, never into the repo) and an admin API key; rate
limits are lifted so that the fuzzer reaches the handlers. Checks: ``not_a_server_error``
(no 5xx, no crash) over every operation of ``/openapi.json``, all phases schemathesis runs
by default (examples, coverage, fuzzing, stateful). Afterwards the server must still be alive
and answer a valid API call. Prints one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ws_common import rss_mb, start_server

from bot.store import Database
from bot.store.apikeys import create_api_key

_LIMITS = {
    "KLARTEXT_WS_CONNECTIONS_PER_MINUTE_PER_IP": "100000",
    "KLARTEXT_WS_MESSAGES_PER_MINUTE_PER_IP": "100000",
    "KLARTEXT_API_REQUESTS_PER_MINUTE_PER_KEY": "1000000",
}


async def _admin_key(data: Path) -> str:
    db = Database(f"sqlite+aiosqlite:///{data / 'klartext.db'}")
    async with db.writing() as s:
        key = (await create_api_key(s, name="schemathesis", scopes="read,agent,admin")).plaintext
    await db.dispose()
    return key


def _summary(output: str) -> dict[str, Any]:
    """The test-case counts schemathesis prints last (best effort; the exit code decides)."""
    found: dict[str, Any] = {}
    m = re.search(r"Test cases:\s*\n\s*(\d+) generated, ([^\n]*)", output)
    if m:
        found["test_cases"] = int(m.group(1))
        for count, label in re.findall(r"(\d+) (\w+)", m.group(2)):
            found[label] = int(count)
    m = re.search(r"Tested: (\d+)", output)
    if m:
        found["operations"] = int(m.group(1))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--st", default="st", help="the schemathesis command")
    parser.add_argument("--max-time", type=int, default=300, help="seconds of fuzzing")
    parser.add_argument("--workers", default="2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        knowledge = data / "knowledge"
        shutil.copytree(Path(__file__).resolve().parent.parent / "knowledge" / "demo", knowledge)
        env = {"KLARTEXT_KNOWLEDGE_DIR": str(knowledge), **_LIMITS}
        proc, port = start_server(data, engine="fake", extra_env=env)
        try:
            key = asyncio.run(_admin_key(data))
            base = f"http://127.0.0.1:{port}"
            cmd = [
                args.st, "run", f"{base}/openapi.json",
                "--checks", "not_a_server_error",
                "--header", f"Authorization: Bearer {key}",
                "--max-time", str(args.max_time),
                "--workers", args.workers,
                "--continue-on-failure",
            ]  # fmt: skip
            t0 = time.monotonic()  # st writes a .schemathesis/ report folder into its cwd
            run = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=data)
            seconds = time.monotonic() - t0
            alive = proc.poll() is None
            after = httpx.get(
                f"{base}/api/v1/conversations", headers={"Authorization": f"Bearer {key}"}
            )
            rss = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
    tail = run.stdout[-6000:].replace(key, "<key>")
    print(tail, file=sys.stderr)
    print(
        json.dumps(
            {
                "bench": "schemathesis",
                "exit_code": run.returncode,
                "server_errors_found": run.returncode != 0,
                **_summary(run.stdout),
                "seconds": round(seconds, 1),
                "server_alive": alive,
                "valid_call_after": after.status_code,
                "server_rss_mb": round(rss, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
