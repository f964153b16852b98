"""The web app's reload loop (``web.app._reload_loop``) with an index that cannot be served:
it builds the runtime again when the index's files change, not on every poll."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import web.app as web_app
from bot.config import Settings
from web.hub import InProcessHub


class _Unready:
    """A runtime whose index is not served (what ``build_runtime(allow_missing=True)`` returns
    for a missing index or a damaged adapter)."""

    def __init__(self, ready: bool = False) -> None:
        self._ready = ready

    def ready(self) -> dict[str, bool]:
        return {"index": self._ready, "nlu": True}


async def _settle(builds: list[Path], n: int, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while len(builds) < n and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # ~20 more polls: room for unwanted rebuilds to show up


async def test_unservable_index_is_retried_only_when_its_files_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path)
    index_dir = settings.index_dir
    index_dir.mkdir(parents=True)
    builds: list[Path] = []
    serve_next = [False]

    async def build(_: Settings) -> Any:
        builds.append(index_dir)
        return _Unready(serve_next[0])

    monkeypatch.setattr(web_app, "_build_runtime", build)
    monkeypatch.setattr(web_app, "RELOAD_INTERVAL_S", 0.01)
    services = SimpleNamespace(
        hub=InProcessHub(), runtime=_Unready(), settings=settings, runtime_error=None
    )
    task = asyncio.create_task(web_app._reload_loop(services))  # type: ignore[arg-type]
    try:
        await _settle(builds, 1)
        assert builds == []  # no CURRENT yet: nothing to build

        (index_dir / "CURRENT").write_text("b1\n")
        await _settle(builds, 1)
        assert len(builds) == 1  # the index appeared: one try, which still fails ...

        await _settle(builds, 2)
        assert len(builds) == 1  # ... and is not repeated every poll

        adapters = index_dir / "adapters"
        adapters.mkdir()
        (adapters / "e5kb-abc.npz").write_bytes(b"new adapter")
        await _settle(builds, 2)
        assert len(builds) == 2  # a new adapter file: tried again

        serve_next[0] = True
        (index_dir / "CURRENT").write_text("b2\n")
        st = (index_dir / "CURRENT").stat()
        os.utime(index_dir / "CURRENT", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        await _settle(builds, 3)
        assert len(builds) == 3  # a new build: tried again, and now it serves
        assert services.runtime.ready()["index"] is True
        await _settle(builds, 4)
        assert len(builds) == 3
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
