"""``/api/v1/knowledge``: FAQ entries (list / get / create / update / delete) and the reindex.

Entries written through the API live in the knowledge folder's managed file
``_api/faq.yaml`` (:mod:`bot.knowledge_admin`); entries of hand-written files are read-only here
(409 ``read_only_entry``). Changes reach the answers after a reindex: ``POST …/reindex`` runs
it in the background (:mod:`bot.reindex_job`, the same code as ``klartext reindex``) and the
running server swaps the new index in as soon as it is built. Scopes: ``read`` for GETs,
``admin`` for everything that writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal, ParamSpec, TypeVar

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, StringConstraints

from bot import knowledge_admin as ka
from bot.reindex_job import ReindexJob, ReindexRunningError, ReindexStatus
from knowledge.schema import Entry
from web.api.auth import AdminKey, ReadKey
from web.api.errors import ApiError, responses
from web.deps import Services, ServicesDep
from web.scaleout import announce_reindex

log = logging.getLogger("klartext.api.knowledge")
router = APIRouter(prefix="/api/v1/knowledge", tags=["knowledge"])
P = ParamSpec("P")
T = TypeVar("T")

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20000)]
Lang = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
Url = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\S+$", max_length=2000)]
EntryId = Annotated[str, StringConstraints(pattern=r"^[^\s#]+$", max_length=128)]


class EntryOut(BaseModel):
    id: str
    kind: Literal["faq", "passage"]
    question: str
    alt_questions: list[str]
    answer: str
    tags: list[str]
    lang: str
    url: str | None
    title: str | None
    source: str = Field(description="File (relative to the knowledge folder) the entry is in.")
    line: int
    content_hash: str
    editable: bool = Field(description="Whether the API may change it (managed file only).")

    @classmethod
    def of(cls, e: Entry) -> EntryOut:
        return cls(
            id=e.id,
            kind=e.kind.value,
            question=e.question,
            alt_questions=list(e.alt_questions),
            answer=e.answer,
            tags=list(e.tags),
            lang=e.lang,
            url=e.url,
            title=e.title,
            source=e.source,
            line=e.line,
            content_hash=e.content_hash,
            editable=ka.is_managed(e),
        )


class EntryPageOut(BaseModel):
    items: list[EntryOut]
    total: int
    offset: int
    next_offset: int | None = Field(description="`offset` of the next page; null on the last.")
    skipped_problems: int = Field(
        0, description="Invalid entries/files in the folder, left out (see `klartext reindex`)."
    )


class EntryIn(BaseModel):
    question: Text
    answer: LongText
    lang: Lang | None = Field(None, description="Two-letter code; default: default_language.")
    alt_questions: list[Text] = Field(default_factory=list, max_length=50)
    tags: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20
    )
    url: Url | None = None
    title: Annotated[str, StringConstraints(min_length=1, max_length=300)] | None = None


class EntryCreate(EntryIn):
    id: EntryId | None = Field(None, description="Stable id; default `api-<12 hex>`.")


class EntryPatch(BaseModel):
    question: Text | None = None
    answer: LongText | None = None
    lang: Lang | None = None
    alt_questions: list[Text] | None = Field(None, max_length=50)
    tags: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] | None = Field(
        None, max_length=20
    )
    url: Url | None = None
    title: Annotated[str, StringConstraints(min_length=1, max_length=300)] | None = None


class ReindexOut(BaseModel):
    state: Literal["idle", "running", "succeeded", "failed"]
    started_at: datetime | None
    finished_at: datetime | None
    added: int
    changed: int
    removed: int
    unchanged: int
    entries: int
    index_written: bool
    nlu_retrained: bool
    runtime_reloaded: bool = Field(description="The running server answers from the new build.")
    error: str | None
    issues: list[str] = Field(description="Knowledge problems that failed the run (file:line).")

    @classmethod
    def of(cls, s: ReindexStatus) -> ReindexOut:
        return cls(
            state=s.state,
            started_at=s.started_at,
            finished_at=s.finished_at,
            added=s.added,
            changed=s.changed,
            removed=s.removed,
            unchanged=s.unchanged,
            entries=s.entries,
            index_written=s.index_written,
            nlu_retrained=s.nlu_retrained,
            runtime_reloaded=s.runtime_reloaded,
            error=s.error,
            issues=list(s.issues),
        )


# --- per-app state -------------------------------------------------------------------------
def _admin(services: Services) -> ka.KnowledgeAdmin:
    return ka.KnowledgeAdmin(services.settings.knowledge_dir)


def _job(request: Request, services: Services) -> ReindexJob:
    job = getattr(request.app.state, "reindex_job", None)
    if not isinstance(job, ReindexJob):
        job = ReindexJob(services.settings)
        request.app.state.reindex_job = job
    return job


def _fields(body: EntryIn, default_lang: str) -> ka.FaqFields:
    return ka.FaqFields(
        question=body.question,
        answer=body.answer,
        lang=body.lang or default_lang,
        alt_questions=tuple(body.alt_questions),
        tags=tuple(t.strip() for t in body.tags),
        url=body.url,
        title=body.title.strip() if body.title else None,
    )


async def _call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a KnowledgeAdmin call in a thread, its refusals as API errors."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except ka.EntryNotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    except ka.ReadOnlyEntryError as exc:
        raise ApiError(409, "read_only_entry", str(exc)) from exc
    except ka.DuplicateEntryIdError as exc:
        raise ApiError(409, "duplicate_id", str(exc)) from exc
    except ka.InvalidEntryError as exc:
        raise ApiError(422, "invalid_entry", str(exc)) from exc
    except ka.ManagedFileError as exc:
        raise ApiError(409, "managed_file_invalid", str(exc)) from exc
    except OSError as exc:  # e.g. a read-only knowledge folder in a container image
        log.error("knowledge folder not writable: %s", exc)
        raise ApiError(
            503, "knowledge_not_writable", f"cannot write the knowledge folder: {exc.strerror}"
        ) from exc


# --- entries -------------------------------------------------------------------------------
@router.get("/entries", responses=responses(401, 403, 422))
async def list_entries(
    services: ServicesDep,
    _key: ReadKey,
    lang: Annotated[str | None, Query(pattern=r"^[a-z]{2}$")] = None,
    source: Annotated[
        str | None,
        Query(max_length=500, description="A file (`faq.en.yaml`) or a folder ending in `/`."),
    ] = None,
    kind: Literal["faq", "passage"] | None = None,
    editable: Annotated[bool | None, Query(description="Only API-managed entries.")] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> EntryPageOut:
    """Entries of the knowledge folder (FAQ entries and help-page passages) in file order."""
    query = ka.EntryQuery(lang=lang, source=source, kind=kind, q=q, editable=editable)
    page = await _call(_admin(services).find, query, offset=offset, limit=limit)
    return EntryPageOut(
        items=[EntryOut.of(e) for e in page.items],
        total=page.total,
        offset=page.offset,
        next_offset=page.next_offset,
        skipped_problems=len(page.issues),
    )


@router.get("/entries/{entry_id:path}", responses=responses(401, 403, 404))
async def get_entry(entry_id: str, services: ServicesDep, _key: ReadKey) -> EntryOut:
    return EntryOut.of(await _call(_admin(services).get, entry_id))


@router.post("/entries", status_code=201, responses=responses(401, 403, 409, 422, 503))
async def create_entry(
    body: EntryCreate, services: ServicesDep, _key: AdminKey, response: Response
) -> EntryOut:
    """Add an FAQ entry to the managed file (answers use it after the next reindex)."""
    fields = _fields(body, services.settings.default_language)
    entry = await _call(_admin(services).create, fields, body.id)
    response.headers["Location"] = f"{router.prefix}/entries/{entry.id}"
    return EntryOut.of(entry)


@router.put("/entries/{entry_id:path}", responses=responses(401, 403, 404, 409, 422, 503))
async def replace_entry(
    entry_id: str, body: EntryIn, services: ServicesDep, _key: AdminKey
) -> EntryOut:
    """Replace a managed entry (fields left out are cleared)."""
    fields = _fields(body, services.settings.default_language)
    return EntryOut.of(await _call(_admin(services).update, entry_id, fields))


@router.patch("/entries/{entry_id:path}", responses=responses(401, 403, 404, 409, 422, 503))
async def patch_entry(
    entry_id: str, body: EntryPatch, services: ServicesDep, _key: AdminKey
) -> EntryOut:
    """Change some fields of a managed entry (``null`` clears ``url``/``title``)."""
    admin = _admin(services)
    current = await _call(admin.current_fields, entry_id)
    changes = body.model_dump(exclude_unset=True)
    for name in ("question", "answer", "lang", "alt_questions", "tags"):
        if name in changes and changes[name] is None:
            raise ApiError(422, "invalid_request", f"body.{name}: may not be null")
    merged = EntryIn(
        question=changes.get("question", current.question),
        answer=changes.get("answer", current.answer),
        lang=changes.get("lang", current.lang),
        alt_questions=changes.get("alt_questions", list(current.alt_questions)),
        tags=changes.get("tags", list(current.tags)),
        url=changes.get("url", current.url),
        title=changes.get("title", current.title),
    )
    fields = _fields(merged, services.settings.default_language)
    return EntryOut.of(await _call(admin.update, entry_id, fields))


@router.delete(
    "/entries/{entry_id:path}", status_code=204, responses=responses(401, 403, 404, 409, 503)
)
async def delete_entry(entry_id: str, services: ServicesDep, _key: AdminKey) -> Response:
    await _call(_admin(services).delete, entry_id)
    return Response(status_code=204)


# --- reindex ---------------------------------------------------------------------------------
def _pick_up(services: Services, status: ReindexStatus) -> bool:
    """On the reindex thread: make the running server answer from the new build now (not at
    the reload loop's next tick). True if the runtime was swapped or reloaded."""
    if services.reload_task is None:
        return False  # an injected runtime (tests, embedding apps) is left alone, like the loop
    runtime = services.runtime
    if runtime is None or status.nlu_retrained or not runtime.ready().get("index", True):
        from bot.runtime import build_runtime

        services.runtime = build_runtime(services.settings, allow_missing=True)
        services.runtime_error = None
        log.info("runtime rebuilt after an API reindex")
        return True
    reload = getattr(runtime, "reload_if_changed", None)
    swapped = bool(reload()) if status.index_written and callable(reload) else False
    if swapped:  # several replicas (Redis): the others reload now, not at their next poll
        announce_reindex(services.hub)
    return swapped


@router.post("/reindex", status_code=202, responses=responses(401, 403, 409))
async def start_reindex(request: Request, services: ServicesDep, _key: AdminKey) -> ReindexOut:
    """Start a reindex in the background (409 ``reindex_running`` while one runs); poll
    ``GET /api/v1/knowledge/reindex``."""
    job = _job(request, services)
    try:
        status = job.begin()
    except ReindexRunningError as exc:
        raise ApiError(409, "reindex_running", str(exc)) from exc
    task = asyncio.create_task(asyncio.to_thread(job.execute, lambda st: _pick_up(services, st)))
    request.app.state.reindex_task = task  # keep a reference while it runs
    return ReindexOut.of(status)


@router.get("/reindex", responses=responses(401, 403))
async def reindex_status(request: Request, services: ServicesDep, _key: ReadKey) -> ReindexOut:
    """The latest reindex run started through the API (this server process)."""
    return ReindexOut.of(_job(request, services).status())
