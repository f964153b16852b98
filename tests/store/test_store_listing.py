from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pg import PgCluster
from sqlalchemy import func, select, text, update

from bot.store import Database, NewEvent, repo
from bot.store.listing import (
    BadCursorError,
    ConversationFilter,
    _filtered,
    decode_cursor,
    delete_conversation,
    encode_cursor,
    list_conversations,
    timed_events,
)
from bot.store.migrate import upgrade_async
from bot.store.models import Conversation, EventRow, Feedback, MessageKey

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


async def _seed(db: Database, n: int) -> list[str]:
    """``n`` conversations, one per hour from T0 (two share T0 + 1h to test the tie-break)."""
    ids = []
    async with db.writing() as s:
        for i in range(n):
            conv = await repo.create_conversation(s, lang="de" if i % 2 else "en")
            created = T0 + timedelta(hours=max(i, 1))
            await s.execute(
                update(Conversation).where(Conversation.id == conv.id).values(created_at=created)
            )
            await repo.append_events(
                s,
                conv.id,
                [
                    NewEvent("user_message", {"text": f"Frage Nummer {i} über Versand"}, "t"),
                    NewEvent("token", {"text": f"Antwort {i}"}, "t"),
                ],
            )
            ids.append(conv.id)
    return ids


async def test_cursor_pages_cover_everything_once_in_stable_order(db: Database) -> None:
    ids = await _seed(db, 7)
    seen: list[str] = []
    cursor = None
    pages = 0
    async with db.session() as s:
        while True:
            page = await list_conversations(s, ConversationFilter(), limit=3, cursor=cursor)
            seen += [c.id for c in page.items]
            pages += 1
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        rows = (await s.execute(select(Conversation.created_at, Conversation.id))).all()
    assert pages == 3 and sorted(seen) == sorted(ids) and len(seen) == 7
    expected = [cid for _, cid in sorted(((r[0], r[1]) for r in rows), reverse=True)]
    assert seen == expected


async def test_filters(db: Database) -> None:
    ids = await _seed(db, 6)
    async with db.writing() as s:
        await repo.update_conversation(s, ids[2], handoff_state="human", status="open")
        await repo.update_conversation(s, ids[3], status="closed")

    async def matching(**kw: object) -> set[str]:
        async with db.session() as s:
            page = await list_conversations(s, ConversationFilter(**kw), limit=50)  # type: ignore[arg-type]
        return {c.id for c in page.items}

    assert await matching(lang="de") == {ids[1], ids[3], ids[5]}
    assert await matching(handoff_state="human") == {ids[2]}
    assert await matching(status="closed") == {ids[3]}
    assert await matching(status="open", lang="en") == {ids[0], ids[2], ids[4]}
    after, before = T0 + timedelta(hours=3), T0 + timedelta(hours=5)
    assert await matching(created_after=after, created_before=before) == {ids[3], ids[4]}
    assert await matching(q="Nummer 4") == {ids[4]}
    assert await matching(q="antwort 5") == {ids[5]}
    assert await matching(q="Versand") == set(ids)
    assert await matching(q="100%_") == set()


async def test_text_search_can_use_the_trigram_index_on_postgresql(pg: PgCluster) -> None:
    # migration 0006: the search's expression must be the index's, or the index is dead weight
    url = pg.create_database()
    await upgrade_async(url)
    db = Database(url)
    try:
        ids = await _seed(db, 3)
        async with db.engine.connect() as conn:
            stmt = _filtered(ConversationFilter(q="Nummer 2")).limit(51)
            sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            await conn.execute(text("SET enable_seqscan = off"))  # a 6-row table: force the choice
            plan = "\n".join(r[0] for r in (await conn.execute(text("EXPLAIN " + sql))).all())
            found = [r[0] for r in (await conn.execute(text(sql))).all()]
        assert "ix_events_text_trgm" in plan, plan
        assert found == [ids[2]]
    finally:
        await db.dispose()


async def test_bad_cursor_is_refused() -> None:
    with pytest.raises(BadCursorError):
        decode_cursor("%%%")
    with pytest.raises(BadCursorError):
        decode_cursor(encode_cursor(T0, "x")[:-4] + "AAAA")
    assert decode_cursor(encode_cursor(T0, "abc")) == (T0, "abc")


async def test_timed_events_and_delete_cascade(db: Database) -> None:
    (cid, other) = await _seed(db, 2)
    async with db.writing() as s:
        await repo.claim_message(s, cid, "m1", "t")
        await repo.put_feedback(s, cid, "t", "up")
        await repo.claim_message(s, other, "m1", "t")
    async with db.session() as s:
        evs = await timed_events(s, cid)
    assert [e.type for e in evs] == ["user_message", "token"]
    assert evs[0].created_at.tzinfo is not None
    async with db.writing() as s:
        assert await delete_conversation(s, cid) is True
        assert await delete_conversation(s, cid) is False
    async with db.session() as s:
        for model in (EventRow, MessageKey, Feedback):
            left = await s.scalar(
                select(func.count()).select_from(model).where(model.conversation_id == cid)
            )
            assert left == 0, model
        assert await repo.get_conversation(s, cid) is None
        assert (
            await s.scalar(
                select(func.count()).select_from(EventRow).where(EventRow.conversation_id == other)
            )
            == 2
        )
