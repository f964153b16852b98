"""A throwaway PostgreSQL cluster for tests: initdb in a temp dir, started on a free loopback
port with its unix socket in that dir, stopped and deleted at the end.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` system user
(``runuser``). Missing binaries are a hard failure, never a skip: the store tests must run on
both backends.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

PG_BIN_DIRS = [Path(f"/usr/lib/postgresql/{v}/bin") for v in (17, 16, 15, 14)]
PG_USER = "postgres"


def pg_bin() -> Path:
    env = os.environ.get("KLARTEXT_PG_BIN")
    candidates = [Path(env)] if env else PG_BIN_DIRS
    for d in candidates:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            return d
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError(
        "PostgreSQL binaries (initdb, pg_ctl) not found in "
        f"{[str(c) for c in candidates]} or on PATH: install PostgreSQL "
        "(`bash .ci/system-deps`, Debian package postgresql) or set KLARTEXT_PG_BIN"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    def __init__(self) -> None:
        self.bin = pg_bin()
        self.as_root = os.geteuid() == 0
        self.dir = Path(tempfile.mkdtemp(prefix="klartext-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        if self.as_root:
            try:
                pw = pwd.getpwnam(PG_USER)
            except KeyError as exc:
                raise RuntimeError(
                    f"running as root, but there is no {PG_USER!r} system user to run PostgreSQL"
                ) from exc
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", PG_USER, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120)

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start"
        )

    def create_database(self, name: str | None = None) -> str:
        """A fresh database; returns its asyncpg SQLAlchemy URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def pg_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
