"""Helpers of the REST API tests: a real server (``tests/web/_wsutil``) on SQLite or
PostgreSQL with one API key per scope, an httpx client, and direct database seeding."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _wsutil import ServerThread, StartServer
from pg import PgCluster, pg_cluster

from bot.store import Database, NewEvent, repo
from bot.store.apikeys import create_api_key, revoke_api_key
from bot.store.models import Conversation

KEY_SETS = {
    "read": "read",
    "agent": "agent",
    "admin": "admin",
    "all": "read,agent,admin",
}


@dataclass
class Api:
    server: ServerThread
    db: Database
    http: httpx.AsyncClient
    keys: dict[str, str] = field(default_factory=dict)

    def auth(self, key: str = "all") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[key]}"}

    async def call(
        self, method: str, path: str, key: str | None = "all", **kw: Any
    ) -> httpx.Response:
        headers = self.auth(key) if key else {}
        return await self.http.request(method, path, headers=headers, **kw)

    async def seed(
        self,
        *,
        lang: str = "en",
        texts: tuple[str, ...] = ("hello",),
        created_at: datetime | None = None,
        **values: Any,
    ) -> str:
        """A conversation straight in the database, with one user message per text."""
        async with self.db.writing() as s:
            conv = await repo.create_conversation(s, lang=lang)
            if created_at is not None:
                values["created_at"] = created_at
            if values:
                await s.execute(
                    update(Conversation).where(Conversation.id == conv.id).values(**values)
                )
            await repo.append_events(
                s,
                conv.id,
                [NewEvent("user_message", {"text": t, "message_id": f"m{i}"}, f"t{i}")
                 for i, t in enumerate(texts)],
            )  # fmt: skip
        return conv.id


def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Server settings a test module asks for by defining an ``api_settings`` fixture."""
    try:
        return dict(request.getfixturevalue("api_settings"))
    except pytest.FixtureLookupError:
        return {}


@pytest.fixture(scope="session")
def api_pg() -> Iterator[PgCluster]:
    with pg_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
async def api(request: pytest.FixtureRequest, start_server: StartServer) -> AsyncIterator[Api]:
    overrides = settings_overrides(request)
    if request.param == "postgresql":
        cluster: PgCluster = request.getfixturevalue("api_pg")
        overrides["database_url"] = cluster.create_database()
    server = start_server(**overrides)
    db = Database(server.settings.effective_database_url)
    keys: dict[str, str] = {}
    async with db.writing() as s:
        for name, scopes in KEY_SETS.items():
            keys[name] = (await create_api_key(s, name=name, scopes=scopes)).plaintext
        revoked = await create_api_key(s, name="old", scopes="read,agent,admin")
        keys["revoked"] = revoked.plaintext
    async with db.writing() as s:
        await revoke_api_key(s, revoked.info.id)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        yield Api(server, db, http, keys)
    await db.dispose()


@pytest.fixture
async def api_sqlite(
    request: pytest.FixtureRequest, start_server: StartServer
) -> AsyncIterator[Api]:
    """SQLite only (for the tests that do not touch backend-specific SQL)."""
    server = start_server(**settings_overrides(request))
    db = Database(server.settings.effective_database_url)
    async with db.writing() as s:
        keys = {
            name: (await create_api_key(s, name=name, scopes=scopes)).plaintext
            for name, scopes in KEY_SETS.items()
        }
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        yield Api(server, db, http, keys)
    await db.dispose()
