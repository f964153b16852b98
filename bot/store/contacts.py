"""Contacts: create / update / find / list, linking a contact to a conversation, and the
chat's lead capture.

Writes are sync functions of a ``Session`` (run them through ``Database.write`` or
``EventLog.write``); reads are async. Creating a contact queues a ``contact.created`` webhook
in the same transaction; linking appends a ``contact_linked`` event to the conversation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.store.contact_models import Contact
from bot.store.listing import MAX_LIMIT, BadCursorError, decode_cursor, encode_cursor, utc
from bot.store.models import Conversation, utcnow
from bot.store.outbox import enqueue_webhook
from bot.store.writes import NewEvent, StoredEvent, append_events, new_id, update_conversation

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
UNSET: Any = object()  # "leave this field as it is" in :func:`update_contact`
_EDITABLE = ("email", "name", "phone", "external_id")


class ContactNotFoundError(LookupError):
    pass


class ConversationNotFoundError(LookupError):
    pass


class ContactConflictError(ValueError):
    """Another contact already has this ``email`` / ``external_id``."""

    def __init__(self, field: str) -> None:
        super().__init__(f"another contact has this {field}")
        self.field = field


@dataclass(frozen=True, slots=True)
class ContactInfo:
    id: str
    email: str | None
    name: str | None
    phone: str | None
    external_id: str | None
    consent: bool
    consent_at: datetime | None
    consent_source: str | None
    consent_text: str | None
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (timestamps as ISO 8601), e.g. for webhook payloads."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return out


@dataclass(frozen=True, slots=True)
class ContactPage:
    items: list[ContactInfo]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Consent:
    """A consent decision as recorded: given or withdrawn, from where, with which wording."""

    given: bool
    source: str
    text: str | None = None


@dataclass(frozen=True, slots=True)
class CapturedLead:
    contact: ContactInfo
    created: bool
    events: list[StoredEvent]


def normalise_email(raw: str | None) -> str | None:
    """Trimmed and lower-cased; ``None``/empty → ``None``; raises ``ValueError`` if malformed."""
    if raw is None or not raw.strip():
        return None
    email = raw.strip().lower()
    if not _EMAIL.match(email) or len(email) > 320:
        raise ValueError("not a valid email address")
    return email


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _info(c: Contact) -> ContactInfo:
    return ContactInfo(
        id=c.id,
        email=c.email,
        name=c.name,
        phone=c.phone,
        external_id=c.external_id,
        consent=bool(c.consent),
        consent_at=utc(c.consent_at) if c.consent_at is not None else None,
        consent_source=c.consent_source,
        consent_text=c.consent_text,
        created_at=utc(c.created_at),
        updated_at=utc(c.updated_at),
    )


def _check_unique(s: Session, values: dict[str, Any], exclude_id: str | None) -> None:
    for field in ("email", "external_id"):
        value = values.get(field)
        if value is None:
            continue
        stmt = select(Contact.id).where(getattr(Contact, field) == value)
        if exclude_id is not None:
            stmt = stmt.where(Contact.id != exclude_id)
        if s.scalar(stmt.limit(1)) is not None:
            raise ContactConflictError(field)


def _conflict_field(exc: IntegrityError) -> str:
    return "external_id" if "external_id" in str(exc.orig) else "email"


def _consent_values(consent: Consent | None) -> dict[str, Any]:
    if consent is None:
        return {}
    return {
        "consent": consent.given,
        "consent_at": utcnow(),
        "consent_source": consent.source[:100],
        "consent_text": consent.text,
    }


# --- writes (sync) ------------------------------------------------------------------------
def create_contact(
    s: Session,
    *,
    email: str | None = None,
    name: str | None = None,
    phone: str | None = None,
    external_id: str | None = None,
    consent: Consent | None = None,
    conversation_id: str | None = None,
) -> ContactInfo:
    """Insert a contact and queue ``contact.created`` (with ``conversation_id`` when the chat
    captured it). Raises ``ValueError`` for a malformed email and
    :class:`ContactConflictError` for a duplicate email / external id."""
    now = utcnow()
    values: dict[str, Any] = {
        "id": new_id(),
        "email": normalise_email(email),
        "name": _clean(name),
        "phone": _clean(phone),
        "external_id": _clean(external_id),
        "consent": False,
        "created_at": now,
        "updated_at": now,
        **_consent_values(consent),
    }
    _check_unique(s, values, None)
    try:
        with s.begin_nested():
            s.execute(insert(Contact).values(values))
    except IntegrityError as exc:  # a concurrent insert won the race
        raise ContactConflictError(_conflict_field(exc)) from exc
    contact = s.get_one(Contact, values["id"])
    info = _info(contact)
    enqueue_webhook(
        s, "contact.created", {"contact": info.as_dict()}, conversation_id=conversation_id
    )
    return info


def update_contact(
    s: Session,
    contact_id: str,
    *,
    email: str | None = UNSET,
    name: str | None = UNSET,
    phone: str | None = UNSET,
    external_id: str | None = UNSET,
    consent: Consent | None = None,
) -> ContactInfo:
    """Change the given fields (``None`` clears one; :data:`UNSET` leaves it). A ``consent``
    replaces the recorded consent and stamps ``consent_at``."""
    given = {"email": email, "name": name, "phone": phone, "external_id": external_id}
    values: dict[str, Any] = {k: v for k, v in given.items() if v is not UNSET}
    if "email" in values:
        values["email"] = normalise_email(values["email"])
    for key in ("name", "phone", "external_id"):
        if key in values:
            values[key] = _clean(values[key])
    values.update(_consent_values(consent))
    if s.get(Contact, contact_id) is None:
        raise ContactNotFoundError(contact_id)
    _check_unique(s, values, contact_id)
    try:
        with s.begin_nested():
            s.execute(
                update(Contact)
                .where(Contact.id == contact_id)
                .values(updated_at=utcnow(), **values)
            )
    except IntegrityError as exc:
        raise ContactConflictError(_conflict_field(exc)) from exc
    contact = s.get_one(Contact, contact_id, populate_existing=True)
    return _info(contact)


def link_contact(
    s: Session,
    conversation_id: str,
    contact_id: str,
    *,
    source: str,
    turn_id: str | None = None,
) -> list[StoredEvent]:
    """Set the conversation's ``contact_id`` and append a ``contact_linked`` event (``source``:
    ``api`` or ``chat``). Raises ``ConversationNotFoundError`` / ``ContactNotFoundError``."""
    if s.get(Contact, contact_id) is None:
        raise ContactNotFoundError(contact_id)
    exists = s.scalar(select(Conversation.id).where(Conversation.id == conversation_id))
    if exists is None:
        raise ConversationNotFoundError(conversation_id)
    event = NewEvent("contact_linked", {"contact_id": contact_id, "source": source}, turn_id)
    stored = append_events(s, conversation_id, [event])
    update_conversation(s, conversation_id, contact_id=contact_id)
    return stored


def delete_contact(s: Session, contact_id: str) -> bool:
    """Erase a contact (GDPR); its conversations stay, unlinked. ``False`` if unknown."""
    s.execute(
        update(Conversation).where(Conversation.contact_id == contact_id).values(contact_id=None)
    )
    result = s.execute(delete(Contact).where(Contact.id == contact_id))
    return bool(getattr(result, "rowcount", 0))


def capture_lead(
    s: Session,
    conversation_id: str,
    *,
    email: str,
    name: str | None,
    consent: Consent,
    turn_id: str | None = None,
) -> CapturedLead:
    """The chat's lead capture: find the contact by email (or create it), record the consent,
    fill in a missing name, and link it to the conversation (``contact_linked`` event)."""
    normalised = normalise_email(email)
    assert normalised is not None
    existing = s.scalar(select(Contact).where(Contact.email == normalised))
    if existing is None:
        info = create_contact(
            s, email=normalised, name=name, consent=consent, conversation_id=conversation_id
        )
        created = True
    else:
        info = update_contact(
            s,
            existing.id,
            name=_clean(name) if name and not existing.name else UNSET,
            consent=consent,
        )
        created = False
    stored = link_contact(s, conversation_id, info.id, source="chat", turn_id=turn_id)
    return CapturedLead(info, created, stored)


# --- reads (async) ------------------------------------------------------------------------
async def get_contact(session: AsyncSession, contact_id: str) -> ContactInfo | None:
    c = await session.get(Contact, contact_id, populate_existing=True)
    return _info(c) if c is not None else None


async def find_contact(
    session: AsyncSession, *, email: str | None = None, external_id: str | None = None
) -> ContactInfo | None:
    """By normalised email, or by external CRM id (exactly one of them)."""
    if (email is None) == (external_id is None):
        raise ValueError("give exactly one of email, external_id")
    cond = (
        Contact.email == normalise_email(email)
        if email is not None
        else Contact.external_id == external_id
    )
    c = await session.scalar(select(Contact).where(cond))
    return _info(c) if c is not None else None


async def list_contacts(
    session: AsyncSession, *, limit: int = 50, cursor: str | None = None
) -> ContactPage:
    """Newest first by ``(created_at, id)``; raises ``BadCursorError`` for a foreign cursor."""
    limit = max(1, min(limit, MAX_LIMIT))
    stmt = select(Contact)
    if cursor:
        try:
            ts, cid = decode_cursor(cursor)
        except OverflowError as exc:  # a timestamp that cannot be expressed in UTC
            raise BadCursorError("malformed cursor") from exc
        stmt = stmt.where(
            or_(Contact.created_at < ts, and_(Contact.created_at == ts, Contact.id < cid))
        )
    stmt = stmt.order_by(Contact.created_at.desc(), Contact.id.desc()).limit(limit + 1)
    rows = [_info(c) for c in await session.scalars(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
    return ContactPage(rows, nxt)


__all__ = [
    "UNSET",
    "CapturedLead",
    "Consent",
    "ContactConflictError",
    "ContactInfo",
    "ContactNotFoundError",
    "ContactPage",
    "ConversationNotFoundError",
    "capture_lead",
    "create_contact",
    "delete_contact",
    "find_contact",
    "get_contact",
    "link_contact",
    "list_contacts",
    "normalise_email",
    "update_contact",
]
