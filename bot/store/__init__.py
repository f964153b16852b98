"""Persistence: SQLAlchemy 2 async models, repository functions, Alembic migrations.

SQLite (a file in ``data_dir``) by default, PostgreSQL through ``KLARTEXT_DATABASE_URL``.
"""

from __future__ import annotations

from bot.store.db import Database, is_sqlite
from bot.store.writes import ConversationInfo, NewEvent, StoredEvent

__all__ = ["ConversationInfo", "Database", "NewEvent", "StoredEvent", "is_sqlite"]
