"""The ``contacts`` table: people known to the CRM, linked to conversations through
``conversations.contact_id``.

``email`` is stored normalised (trimmed, lower-cased); ``email`` and ``external_id`` are each
unique when set (several contacts may have neither). Consent to be contacted is a flag with
the time it was last recorded, where it came from (``consent_source``, e.g. ``api`` or
``chat:yes_to_prompt``) and the exact wording the person agreed to (``consent_text``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.models import Base, utcnow


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (Index("ix_contacts_created_at_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True, unique=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    consent_source: Mapped[str | None] = mapped_column(String(100), nullable=True)
    consent_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
