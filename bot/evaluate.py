"""Answer-quality evaluation: a YAML file of conversation test cases run through the engine.

Format::

    cases:
      - q: How long does delivery take?
        lang: en                      # optional language hint
        expect_sources: [en-ship-01]  # answered, first cited source is one of these
      - q: What's the weather in Oslo?
        expect: refuse                # not answered (fallback)
      - q: I want to talk to a person
        expect: handoff               # a handoff event
      - q: Where is my order NC-12345?
        expect: action                # the order action path
      - history: [How long does delivery to Germany take?]   # earlier messages, in order
        q: and to Austria?            # judged in that conversation
        expect_sources: [en-ship-01]
        kind: followup                # optional label: rates per kind (AnswerReport.by_kind)

Rates: ``correct_source`` over the ``expect_sources`` cases, ``correct_refusal`` over the
``refuse`` cases, ``false_answer`` over all cases — a case counts as a false answer when the
bot answered from knowledge although it should not have (refuse/handoff/action cases) or
cited a wrong first source. ``reachable`` (in :attr:`AnswerReport.extra`): share of the
``expect_sources`` cases answered correctly or refused with an expected entry among the
"Did you mean …?" suggestions — one click away; ``reachable_first``: the same with the expected
entry as the *first* suggestion (the button a visitor reads first).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import yaml

from bot.conversation import ChatEngine, ConversationContext, Turn
from bot.errors import ConfigError
from bot.events import Done, Handoff, Sources, Suggestions, Token

Expect = Literal["answer", "refuse", "handoff", "action"]
_EXPECTS = ("refuse", "handoff", "action")


@dataclass(frozen=True, slots=True)
class AnswerCase:
    q: str
    expect: Expect
    lang: str | None = None
    expect_sources: tuple[str, ...] = ()
    history: tuple[str, ...] = ()  # earlier user messages of the conversation, oldest first
    kind: str | None = None  # optional label (e.g. followup / switch): rates per kind


@dataclass(frozen=True, slots=True)
class CaseResult:
    q: str
    expect: Expect
    kind: str | None
    expected_sources: tuple[str, ...]
    mode: str
    answered: bool
    sources: tuple[str, ...]
    handoff: bool
    correct: bool
    false_answer: bool
    confidence: float
    ms: float
    suggested: tuple[str, ...] = ()  # entry ids offered as suggestions

    @property
    def reachable(self) -> bool:
        """Answered correctly, or refused with an expected entry among the suggestions."""
        if self.expect != "answer":
            return False
        return self.correct or (
            not self.answered and any(i in self.expected_sources for i in self.suggested)
        )

    @property
    def reachable_first(self) -> bool:
        """Answered correctly, or refused with an expected entry as the first suggestion."""
        if self.expect != "answer":
            return False
        return self.correct or (
            not self.answered
            and bool(self.suggested)
            and self.suggested[0] in self.expected_sources
        )

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class AnswerReport:
    results: tuple[CaseResult, ...]

    def _rate(self, expect: Expect) -> float:
        cases = [r for r in self.results if r.expect == expect]
        return sum(r.correct for r in cases) / len(cases) if cases else 0.0

    @property
    def summary(self) -> dict[str, float | int]:
        n = len(self.results)
        return {
            "correct_source": round(self._rate("answer"), 4),
            "correct_refusal": round(self._rate("refuse"), 4),
            "false_answer": round(sum(r.false_answer for r in self.results) / n, 4) if n else 0.0,
            "n": n,
        }

    def by_kind(self) -> dict[str, dict[str, float | int]]:
        """:attr:`summary` per case ``kind`` (cases without one left out)."""
        kinds = sorted({r.kind for r in self.results if r.kind})
        return {
            k: AnswerReport(tuple(r for r in self.results if r.kind == k)).summary for k in kinds
        }

    @property
    def extra(self) -> dict[str, float]:
        answerable = [r for r in self.results if r.expect == "answer"]
        n = len(answerable) or 1
        return {
            "correct_handoff": round(self._rate("handoff"), 4),
            "correct_action": round(self._rate("action"), 4),
            "reachable": round(sum(r.reachable for r in answerable) / n, 4),
            "reachable_first": round(sum(r.reachable_first for r in answerable) / n, 4),
        }


def load_cases(path: Path) -> list[AnswerCase]:
    """Read and validate a cases file; errors name the case number."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read answer cases {path}: {exc}") from exc
    raw = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{path}: expected a non-empty `cases:` list")
    cases: list[AnswerCase] = []
    for i, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("q"), str) or not item["q"]:
            raise ConfigError(f"{path}: case {i}: needs a question `q`")
        sources = item.get("expect_sources")
        expect = item.get("expect")
        lang = item.get("lang")
        history = item.get("history") or []
        if not isinstance(history, list) or not all(isinstance(h, str) and h for h in history):
            raise ConfigError(f"{path}: case {i}: `history` must be a list of messages")
        kind = item.get("kind")
        if kind is not None and not isinstance(kind, str):
            raise ConfigError(f"{path}: case {i}: `kind` must be a string")
        if sources:
            if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
                raise ConfigError(f"{path}: case {i}: `expect_sources` must be a list of ids")
            cases.append(
                AnswerCase(item["q"], "answer", lang, tuple(sources), tuple(history), kind)
            )
        elif expect in _EXPECTS:
            cases.append(AnswerCase(item["q"], expect, lang, (), tuple(history), kind))
        else:
            raise ConfigError(
                f"{path}: case {i}: needs `expect_sources: [...]` or "
                "`expect: refuse|handoff|action`"
            )
    return cases


def _score(
    case: AnswerCase, done: Done, sources: Sequence[str], handoff: bool
) -> tuple[bool, bool]:
    knowledge_answer = done.answered and done.mode in ("extractive", "generative")
    if case.expect == "answer":
        first_ok = bool(sources) and sources[0] in case.expect_sources
        return knowledge_answer and first_ok, knowledge_answer and not first_ok
    if case.expect == "refuse":
        return not done.answered, done.answered
    if case.expect == "handoff":
        return handoff, knowledge_answer and not handoff
    return done.mode == "action", knowledge_answer


async def _say(engine: ChatEngine, ctx: ConversationContext, text: str) -> None:
    """One earlier message of the case's conversation: its reply joins the history."""
    reply: list[str] = []
    async for event in engine.turn(text, ctx, turn_id=uuid.uuid4().hex[:12]):
        if isinstance(event, Token):
            reply.append(event.text)
        elif isinstance(event, Done) and event.lang:
            ctx.lang = event.lang  # as the web layer keeps the conversation's language
    ctx.history += [Turn("user", text), Turn("bot", "".join(reply))]


async def run_case(engine: ChatEngine, case: AnswerCase) -> CaseResult:
    ctx = ConversationContext(conversation_id=f"eval-{uuid.uuid4().hex[:8]}", lang=case.lang)
    for earlier in case.history:
        await _say(engine, ctx, earlier)
    done: Done | None = None
    sources: list[str] = []
    suggested: list[str] = []
    handoff = False
    async for event in engine.turn(case.q, ctx, turn_id=uuid.uuid4().hex[:12]):
        if isinstance(event, Sources):
            sources.extend(s.id for s in event.items)
        elif isinstance(event, Suggestions):
            suggested.extend(event.ids)
        elif isinstance(event, Handoff):
            handoff = True
        elif isinstance(event, Done):
            done = event
    if done is None:
        raise RuntimeError("engine turn ended without a done event")
    correct, false_answer = _score(case, done, sources, handoff)
    return CaseResult(
        q=case.q,
        expect=case.expect,
        kind=case.kind,
        expected_sources=case.expect_sources,
        mode=done.mode,
        answered=done.answered,
        sources=tuple(sources),
        handoff=handoff,
        correct=correct,
        false_answer=false_answer,
        confidence=done.confidence,
        ms=done.timing_ms.get("total", 0.0),
        suggested=tuple(suggested),
    )


async def evaluate_answers(engine: ChatEngine, cases: Sequence[AnswerCase]) -> AnswerReport:
    return AnswerReport(tuple([await run_case(engine, c) for c in cases]))
