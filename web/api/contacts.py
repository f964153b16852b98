"""``/api/v1/contacts``: create, update (PATCH), get, find by ``email`` / ``external_id``, list
(cursor pagination), link to a conversation, delete (GDPR). Scopes: ``read`` for GETs,
``agent`` for writes, ``admin`` for delete. The conversations of a contact:
``GET /api/v1/conversations?contact_id=…``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from bot.store import StoredEvent
from bot.store import contacts as store
from bot.store.listing import MAX_LIMIT
from web.api.auth import AdminKey, AgentKey, ReadKey
from web.api.conversations import load_conversation
from web.api.errors import ApiError, responses
from web.api.transcript import ConversationOut
from web.deps import ServicesDep

router = APIRouter(prefix="/api/v1/contacts", tags=["contacts"])
T = TypeVar("T")


class ConsentIn(BaseModel):
    given: bool = Field(description="Whether the person agreed to be contacted.")
    source: str = Field(
        "api", min_length=1, max_length=100, description="Where it was given, e.g. `crm-form`."
    )
    text: str | None = Field(None, max_length=4000, description="The wording agreed to.")


class ContactIn(BaseModel):
    email: str | None = Field(None, max_length=320, description="Stored lower-cased; unique.")
    name: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=40)
    external_id: str | None = Field(
        None, min_length=1, max_length=200, description="The contact's id in your CRM; unique."
    )
    consent: ConsentIn | None = None


class ContactPatch(ContactIn):
    """Only the fields present change; ``null`` clears one."""


class ContactOut(BaseModel):
    id: str
    email: str | None
    name: str | None
    phone: str | None
    external_id: str | None
    consent: bool
    consent_at: datetime | None = Field(description="When the consent was last recorded.")
    consent_source: str | None
    consent_text: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: store.ContactInfo) -> ContactOut:
        return cls(**c.as_dict())


class ContactPage(BaseModel):
    items: list[ContactOut]
    next_cursor: str | None


class LinkIn(BaseModel):
    conversation_id: str = Field(min_length=1, max_length=64)


def _consent(c: ConsentIn | None) -> store.Consent | None:
    return store.Consent(c.given, c.source, c.text) if c is not None else None


async def _write(services: ServicesDep, fn: Callable[[Session], T]) -> T:
    try:
        return await services.db.write(fn)
    except store.ContactConflictError as exc:
        raise ApiError(409, "contact_exists", str(exc)) from exc
    except store.ContactNotFoundError as exc:
        raise ApiError(404, "not_found", f"no contact {exc.args[0]!r}") from exc
    except ValueError as exc:  # malformed email
        raise ApiError(422, "invalid_request", f"email: {exc}") from exc


@router.post("", status_code=201, responses=responses(401, 403, 409, 422))
async def create(body: ContactIn, services: ServicesDep, _key: AgentKey) -> ContactOut:
    """Create a contact (``contact.created`` webhook). 409 ``contact_exists`` if another contact
    has the email or external id."""
    info = await _write(
        services,
        lambda s: store.create_contact(
            s,
            email=body.email,
            name=body.name,
            phone=body.phone,
            external_id=body.external_id,
            consent=_consent(body.consent),
        ),
    )
    return ContactOut.of(info)


@router.get("", responses=responses(400, 401, 403, 422))
async def list_(
    services: ServicesDep,
    _key: ReadKey,
    email: Annotated[str | None, Query(max_length=320, description="Find by email.")] = None,
    external_id: Annotated[
        str | None, Query(max_length=200, description="Find by your CRM's id.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=500, description="`next_cursor`.")] = None,
) -> ContactPage:
    """Contacts, newest first; with ``email`` or ``external_id`` the (at most one) match."""
    if email is not None and external_id is not None:
        raise ApiError(422, "invalid_request", "give either email or external_id, not both")
    async with services.db.session() as session:
        if email is not None or external_id is not None:
            try:
                found = await store.find_contact(session, email=email, external_id=external_id)
            except ValueError:  # a malformed email matches nobody
                found = None
            return ContactPage(items=[ContactOut.of(found)] if found else [], next_cursor=None)
        page = await store.list_contacts(session, limit=limit, cursor=cursor)
    return ContactPage(items=[ContactOut.of(c) for c in page.items], next_cursor=page.next_cursor)


@router.get("/{contact_id}", responses=responses(401, 403, 404))
async def get(contact_id: str, services: ServicesDep, _key: ReadKey) -> ContactOut:
    async with services.db.session() as session:
        info = await store.get_contact(session, contact_id)
    if info is None:
        raise ApiError(404, "not_found", f"no contact {contact_id!r}")
    return ContactOut.of(info)


@router.patch("/{contact_id}", responses=responses(401, 403, 404, 409, 422))
async def update(
    contact_id: str, body: ContactPatch, services: ServicesDep, _key: AgentKey
) -> ContactOut:
    """Change the fields sent (``null`` clears one); a ``consent`` replaces the recorded one."""
    given = body.model_fields_set
    kw = {f: getattr(body, f) for f in ("email", "name", "phone", "external_id") if f in given}
    consent = _consent(body.consent)
    info = await _write(
        services, lambda s: store.update_contact(s, contact_id, consent=consent, **kw)
    )
    return ContactOut.of(info)


@router.post("/{contact_id}/conversations", responses=responses(401, 403, 404, 422))
async def link(
    contact_id: str, body: LinkIn, services: ServicesDep, _key: AgentKey
) -> ConversationOut:
    """Link the contact to a conversation (a ``contact_linked`` event in its transcript)."""
    cid = body.conversation_id

    def op(s: Session) -> tuple[list[StoredEvent], None]:
        return store.link_contact(s, cid, contact_id, source="api"), None

    try:
        await services.events.write(cid, op)
    except store.ContactNotFoundError as exc:
        raise ApiError(404, "not_found", f"no contact {contact_id!r}") from exc
    except store.ConversationNotFoundError as exc:
        raise ApiError(404, "not_found", f"no conversation {cid!r}") from exc
    return await load_conversation(services, cid)


@router.delete("/{contact_id}", status_code=204, responses=responses(401, 403, 404))
async def delete(contact_id: str, services: ServicesDep, _key: AdminKey) -> Response:
    """Erase the contact (GDPR); its conversations stay, unlinked."""
    if not await services.db.write(lambda s: store.delete_contact(s, contact_id)):
        raise ApiError(404, "not_found", f"no contact {contact_id!r}")
    return Response(status_code=204)
