"""API keys of the CRM REST API: only a SHA-256 hash of each key is stored; the plaintext is
returned once, by :func:`create_api_key`. A key looks like ``kt_<43 url-safe chars>``; its first
11 characters (``prefix``) identify it in listings without revealing it.

Scopes are independent (``read`` does not imply ``agent``); a route names the scope it needs.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot.errors import StoreError
from bot.store.models import Base, utcnow

SCOPES: tuple[str, ...] = ("read", "agent", "admin")
KEY_PREFIX = "kt_"
_PREFIX_LEN = 11


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    id: str
    name: str
    prefix: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    info: ApiKeyInfo
    plaintext: str  # shown once; never stored


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def parse_scopes(raw: str | Iterable[str]) -> frozenset[str]:
    """``"read,agent"`` (or an iterable) → a validated set; raises ``ValueError``."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    scopes = frozenset(s.strip().lower() for s in items if s.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    if not scopes:
        raise ValueError(f"at least one scope is required ({', '.join(SCOPES)})")
    return scopes


def _aware(ts: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything is stored in UTC."""
    if ts is not None and ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts


def _info(row: ApiKey) -> ApiKeyInfo:
    created = _aware(row.created_at)
    assert created is not None
    return ApiKeyInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scopes=frozenset(s for s in row.scopes.split(",") if s),
        created_at=created,
        revoked_at=_aware(row.revoked_at),
    )


async def create_api_key(
    session: AsyncSession, *, name: str, scopes: str | Sequence[str]
) -> CreatedKey:
    """Create a key (the caller commits). Raises ``ValueError`` for a bad name or scope."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("the key name must be 1–100 characters")
    wanted = parse_scopes(scopes)
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        id=uuid.uuid4().hex,
        name=name,
        prefix=plaintext[:_PREFIX_LEN],
        key_hash=hash_key(plaintext),
        scopes=",".join(s for s in SCOPES if s in wanted),
        created_at=utcnow(),
        revoked_at=None,
    )
    session.add(row)
    await session.flush()
    return CreatedKey(_info(row), plaintext)


async def verify_api_key(session: AsyncSession, plaintext: str) -> ApiKeyInfo | None:
    """The active key with this plaintext, or ``None`` (unknown, malformed or revoked)."""
    if not plaintext.startswith(KEY_PREFIX) or len(plaintext) > 200:
        return None
    row = await session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(plaintext)))
    if row is None or row.revoked_at is not None:
        return None
    return _info(row)


async def revoke_api_key(session: AsyncSession, key_id: str) -> ApiKeyInfo:
    """Revoke a key by id (idempotent; the caller commits). Raises ``StoreError`` if unknown."""
    row = await session.get(ApiKey, key_id)
    if row is None:
        raise StoreError(f"unknown api key {key_id!r}")
    if row.revoked_at is None:
        await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=utcnow()))
        await session.refresh(row)
    return _info(row)


async def list_api_keys(session: AsyncSession, *, include_revoked: bool = True) -> list[ApiKeyInfo]:
    stmt = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    return [_info(r) for r in await session.scalars(stmt)]
