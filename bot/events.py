"""Typed events of one turn. The engine yields them; the websocket and REST layers only
serialise them (``event.model_dump(mode="json")``; the ``type`` field discriminates).

``token | sources | suggestions | action | handoff | done | error``
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

AnswerMode = Literal["generative", "extractive", "fallback", "handoff", "action", "smalltalk"]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)


class Token(_Event):
    type: Literal["token"] = "token"
    text: str


class SourceRef(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    title: str
    url: str | None = None
    score: float = 0.0


class Sources(_Event):
    type: Literal["sources"] = "sources"
    items: list[SourceRef]


class Suggestions(_Event):
    type: Literal["suggestions"] = "suggestions"
    items: list[str]
    ids: list[str] = Field(default_factory=list)  # knowledge entries behind the first items


class ActionEvent(_Event):
    type: Literal["action"] = "action"
    name: str
    status: Literal["started", "ok", "not_found", "error"]
    data: dict[str, object] = Field(default_factory=dict)


class Handoff(_Event):
    type: Literal["handoff"] = "handoff"
    reason: Literal["user_request", "low_confidence", "out_of_scope", "complaint", "llm_error"]


class Done(_Event):
    type: Literal["done"] = "done"
    turn_id: str
    mode: AnswerMode
    answered: bool
    confidence: float = 0.0
    lang: str = "en"
    timing_ms: dict[str, float] = Field(default_factory=dict)
    partial: bool = False  # the answer was cut short (e.g. LLM failed mid-stream)
    usage: dict[str, int] = Field(default_factory=dict)


class Error(_Event):
    type: Literal["error"] = "error"
    code: str
    message: str


Event = Annotated[
    Token | Sources | Suggestions | ActionEvent | Handoff | Done | Error,
    Field(discriminator="type"),
]
