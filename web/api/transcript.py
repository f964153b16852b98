"""Conversation events → a readable transcript (user / bot / agent / system entries) and its
Markdown export. A bot entry joins the ``token`` texts of its turn and collects the turn's
``sources``, ``suggestions``, ``action``s, ``done`` fields and ``error``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from bot.store.listing import ConversationRow, TimedEvent

_BOT_EVENTS = ("token", "sources", "suggestions", "action", "error")


class ConversationOut(BaseModel):
    id: str
    created_at: datetime
    updated_at: datetime
    status: str
    handoff_state: str
    lang: str | None
    contact_id: str | None
    last_seq: int = Field(description="Sequence number of the newest event.")

    @classmethod
    def of(cls, row: ConversationRow) -> ConversationOut:
        return cls(
            id=row.id,
            created_at=row.created_at,
            updated_at=row.updated_at,
            status=row.status,
            handoff_state=row.handoff_state,
            lang=row.lang,
            contact_id=row.contact_id,
            last_seq=row.last_seq,
        )


class Entry(BaseModel):
    role: Literal["user", "bot", "agent", "system"]
    seq: int = Field(description="Sequence number of the entry's first event.")
    at: datetime
    text: str | None = None
    turn_id: str | None = None
    message_id: str | None = None
    agent_name: str | None = None
    sources: list[dict[str, Any]] | None = None
    suggestions: list[str] | None = None
    suggestion_ids: list[str] | None = Field(
        None, description="Knowledge entries behind the first suggestions (the event's `ids`)."
    )
    actions: list[dict[str, Any]] | None = None
    mode: str | None = None
    answered: bool | None = None
    confidence: float | None = None
    lang: str | None = None
    partial: bool | None = None
    error: dict[str, Any] | None = None
    event: str | None = Field(None, description="For system entries: the event type.")
    state: str | None = None
    reason: str | None = None
    contact_id: str | None = Field(None, description="For `contact_linked` entries.")
    summary: dict[str, Any] | None = Field(
        None, description="For handoffs to a human: the conversation summary for the agent."
    )


class Transcript(BaseModel):
    conversation: ConversationOut
    entries: list[Entry]


def render_entries(events: list[TimedEvent]) -> list[Entry]:
    entries: list[Entry] = []
    bot: dict[str, Entry] = {}
    for e in events:
        p = e.payload
        if e.type == "user_message":
            entries.append(
                Entry(
                    role="user",
                    seq=e.seq,
                    at=e.created_at,
                    text=str(p.get("text", "")),
                    turn_id=e.turn_id,
                    message_id=p.get("message_id"),
                )
            )
        elif e.type == "agent_message":
            entries.append(
                Entry(
                    role="agent",
                    seq=e.seq,
                    at=e.created_at,
                    text=str(p.get("text", "")),
                    agent_name=p.get("agent_name"),
                )
            )
        elif e.type == "handoff":
            entries.append(
                Entry(
                    role="system",
                    seq=e.seq,
                    at=e.created_at,
                    event="handoff",
                    state=p.get("state"),
                    reason=p.get("reason"),
                    agent_name=p.get("agent_name"),
                    turn_id=e.turn_id,
                    summary=p.get("summary") if isinstance(p.get("summary"), dict) else None,
                )
            )
        elif e.type == "contact_linked":
            entries.append(
                Entry(
                    role="system",
                    seq=e.seq,
                    at=e.created_at,
                    event="contact_linked",
                    reason=p.get("source"),
                    contact_id=p.get("contact_id"),
                    turn_id=e.turn_id,
                )
            )
        elif e.turn_id is not None and (e.type in _BOT_EVENTS or e.turn_id in bot):
            _bot_event(entries, bot, e)
    return entries


def _bot_event(entries: list[Entry], bot: dict[str, Entry], e: TimedEvent) -> None:
    assert e.turn_id is not None
    entry = bot.get(e.turn_id)
    if entry is None:
        entry = Entry(role="bot", seq=e.seq, at=e.created_at, text="", turn_id=e.turn_id)
        bot[e.turn_id] = entry
        entries.append(entry)
    p = e.payload
    if e.type == "token":
        entry.text = (entry.text or "") + str(p.get("text", ""))
    elif e.type == "sources":
        entry.sources = list(p.get("items", []))
    elif e.type == "suggestions":
        entry.suggestions = [str(s) for s in p.get("items", [])]
        entry.suggestion_ids = [str(i) for i in p.get("ids", [])] or None
    elif e.type == "action":
        entry.actions = [*(entry.actions or []), {k: p.get(k) for k in ("name", "status")}]
    elif e.type == "error":
        entry.error = {"code": p.get("code"), "message": p.get("message")}
    elif e.type == "done":
        entry.mode = p.get("mode")
        entry.answered = p.get("answered")
        entry.confidence = p.get("confidence")
        entry.lang = p.get("lang")
        entry.partial = p.get("partial")


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines() or [""])


def to_markdown(t: Transcript) -> str:
    c = t.conversation
    lines = [
        f"# Conversation {c.id}",
        "",
        f"- Created: {c.created_at.isoformat()}",
        f"- Status: {c.status}; handoff state: {c.handoff_state}; language: {c.lang or '-'}",
        "",
    ]
    for e in t.entries:
        at = e.at.strftime("%Y-%m-%d %H:%M:%S")
        if e.role == "system" and e.event == "contact_linked":
            lines += [f"*{at} — contact {e.contact_id} linked ({e.reason})*", ""]
            continue
        if e.role == "system":
            who = f" by {e.agent_name}" if e.agent_name else ""
            lines += [f"*{at} — handoff → {e.state} ({e.reason}){who}*", ""]
            if e.summary and e.summary.get("text"):
                lines += [f"> _Summary: {e.summary['text']}_", ""]
            continue
        who = {"user": "User", "bot": "Bot"}.get(e.role) or f"Agent {e.agent_name or ''}".strip()
        lines += [f"**{who}** · {at}", "", _quote(e.text or "")]
        if e.error:
            lines += [">", f"> _error {e.error.get('code')}: {e.error.get('message')}_"]
        for s in e.sources or []:
            title, url = s.get("title") or s.get("id"), s.get("url")
            lines.append(f"> - source: [{title}]({url})" if url else f"> - source: {title}")
        lines.append("")
    return "\n".join(lines)
