from __future__ import annotations

import pytest

from bot.errors import StoreError
from bot.store import Database
from bot.store.apikeys import (
    create_api_key,
    hash_key,
    list_api_keys,
    parse_scopes,
    revoke_api_key,
    verify_api_key,
)


async def test_create_verify_revoke_list(db: Database) -> None:
    async with db.writing() as s:
        created = await create_api_key(s, name="crm", scopes="admin, read")
    key = created.plaintext
    assert key.startswith("kt_") and len(key) > 40
    assert created.info.prefix == key[:11]
    assert created.info.scopes == frozenset({"read", "admin"})
    async with db.session() as s:
        found = await verify_api_key(s, key)
        assert await verify_api_key(s, key + "x") is None
        assert await verify_api_key(s, "not-a-key") is None
    assert found is not None and found.id == created.info.id and found.name == "crm"
    async with db.writing() as s:
        revoked = await revoke_api_key(s, created.info.id)
        again = await revoke_api_key(s, created.info.id)  # idempotent
    assert revoked.revoked_at is not None and again.revoked_at == revoked.revoked_at
    async with db.session() as s:
        assert await verify_api_key(s, key) is None
        keys = await list_api_keys(s)
        active = await list_api_keys(s, include_revoked=False)
    assert [k.id for k in keys] == [created.info.id] and active == []


async def test_only_the_hash_is_stored(db: Database) -> None:
    from sqlalchemy import text

    async with db.writing() as s:
        created = await create_api_key(s, name="crm", scopes=["read"])
    async with db.session() as s:
        rows = (await s.execute(text("SELECT key_hash, prefix, scopes FROM api_keys"))).all()
    assert rows == [(hash_key(created.plaintext), created.plaintext[:11], "read")]
    assert created.plaintext not in repr(rows)


async def test_unknown_key_and_bad_scopes(db: Database) -> None:
    async with db.writing() as s:
        with pytest.raises(StoreError):
            await revoke_api_key(s, "nope")
        with pytest.raises(ValueError, match="unknown scope"):
            await create_api_key(s, name="x", scopes="read,root")
        with pytest.raises(ValueError, match="name"):
            await create_api_key(s, name=" ", scopes="read")
    with pytest.raises(ValueError, match="at least one"):
        parse_scopes(" , ")
