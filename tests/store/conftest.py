"""Store tests run on SQLite and on a throwaway PostgreSQL cluster (``tests/pg.py``)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pg import PgCluster, pg_cluster

from bot.store import Database
from bot.store.migrate import upgrade_async


@pytest.fixture(scope="session")
def pg() -> Iterator[PgCluster]:
    with pg_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'klartext.db'}"
    cluster: PgCluster = request.getfixturevalue("pg")
    return cluster.create_database()


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    await upgrade_async(db_url)
    database = Database(db_url)
    yield database
    await database.dispose()
