from __future__ import annotations

import uuid

from pg import PgCluster
from sqlalchemy import inspect, text

from bot.store import Database, NewEvent, repo
from bot.store.db import make_engine
from bot.store.listing import ConversationFilter, list_conversations
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


async def test_without_pg_trgm_rights_the_migration_goes_on_unindexed(pg: PgCluster) -> None:
    # migration 0006 enables pg_trgm; a role that may not (no CREATE on the database) still
    # gets every table, and the text search works unindexed
    url = pg.create_database()
    role = f"r_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f"CREATE ROLE {role} LOGIN"))
            await conn.execute(text(f"GRANT USAGE, CREATE ON SCHEMA public TO {role}"))
    finally:
        await admin.dispose()
    limited = url.replace("postgres@", f"{role}@", 1)
    await upgrade_async(limited)
    assert await current_revision_async(limited) == head_revision()
    engine = make_engine(limited)
    try:
        async with engine.connect() as conn:
            indexes = await conn.run_sync(lambda c: inspect(c).get_indexes("events"))
            assert "ix_events_text_trgm" not in {i["name"] for i in indexes}
    finally:
        await engine.dispose()
    db = Database(limited)
    try:
        async with db.writing() as s:
            conv = await repo.create_conversation(s, lang="en")
            await repo.append_events(s, conv.id, [NewEvent("user_message", {"text": "wo ist X"})])
        async with db.session() as s:
            page = await list_conversations(s, ConversationFilter(q="ist x"))
        assert [c.id for c in page.items] == [conv.id]
    finally:
        await db.dispose()
