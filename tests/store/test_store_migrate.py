from __future__ import annotations

from sqlalchemy import inspect

from bot.store.db import make_engine
from bot.store.migrate import (
    current_revision_async,
    downgrade_async,
    head_revision,
    is_up_to_date_async,
    upgrade_async,
)


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_fresh_database_is_not_up_to_date_until_upgraded(db_url: str) -> None:
    assert await current_revision_async(db_url) is None
    assert not await is_up_to_date_async(db_url)
    await upgrade_async(db_url)
    assert await current_revision_async(db_url) == head_revision()
    assert await is_up_to_date_async(db_url)
    assert {"conversations", "events", "message_keys", "feedback"} <= await _tables(db_url)


async def test_upgrade_is_idempotent_and_downgrade_works(db_url: str) -> None:
    await upgrade_async(db_url)
    await upgrade_async(db_url)
    assert await is_up_to_date_async(db_url)
    await downgrade_async(db_url, "base")
    assert await current_revision_async(db_url) is None
    assert "events" not in await _tables(db_url)
