"""``GET /api/v1/feedback`` (scope ``read``): the widget's thumbs, newest first, filtered by
rating, date range and conversation, with the rated turn's question, answer and sources."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from bot.store.feedback import FeedbackFilter, FeedbackItem, list_feedback_page
from bot.store.listing import MAX_LIMIT
from web.api.auth import ReadKey
from web.api.errors import ApiError, responses
from web.deps import ServicesDep

router = APIRouter(prefix="/api/v1/feedback", tags=["feedback"])


class FeedbackOut(BaseModel):
    id: int
    conversation_id: str
    turn_id: str
    rating: str = Field(description="`up` or `down`.")
    comment: str | None
    created_at: datetime
    question: str | None = Field(description="The user message of the rated turn.")
    answer: str | None = Field(description="The bot's answer text of the rated turn.")
    sources: list[dict[str, Any]] | None = None
    mode: str | None = Field(None, description="Answer mode of the turn (`done.mode`).")
    confidence: float | None = None

    @classmethod
    def of(cls, i: FeedbackItem) -> FeedbackOut:
        return cls(
            id=i.id,
            conversation_id=i.conversation_id,
            turn_id=i.turn_id,
            rating=i.rating,
            comment=i.comment,
            created_at=i.created_at,
            question=i.question,
            answer=i.answer,
            sources=i.sources,
            mode=i.mode,
            confidence=i.confidence,
        )


class FeedbackPageOut(BaseModel):
    items: list[FeedbackOut]
    next_cursor: str | None


@router.get("", responses=responses(400, 401, 403, 422))
async def list_(
    services: ServicesDep,
    _key: ReadKey,
    rating: Literal["up", "down"] | None = None,
    conversation_id: Annotated[str | None, Query(max_length=64)] = None,
    created_after: Annotated[
        datetime | None, Query(description="Inclusive; ISO 8601 (UTC if no offset).")
    ] = None,
    created_before: Annotated[
        datetime | None, Query(description="Exclusive; ISO 8601 (UTC if no offset).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=500, description="`next_cursor`.")] = None,
) -> FeedbackPageOut:
    """Feedback, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""
    flt = FeedbackFilter(
        rating=rating,
        conversation_id=conversation_id,
        created_after=created_after,
        created_before=created_before,
    )
    try:
        async with services.db.session() as session:
            page = await list_feedback_page(session, flt, limit=limit, cursor=cursor)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+01:00 is before UTC's year 1
        raise ApiError(422, "invalid_request", "a timestamp is out of range") from exc
    return FeedbackPageOut(
        items=[FeedbackOut.of(i) for i in page.items], next_cursor=page.next_cursor
    )
