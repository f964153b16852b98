"""What the NLU hands the engine: :class:`ParsedMessage`, and the :class:`IntentParser` seam."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Entity:
    """A recognised entity. ``value`` is normalised: ISO date ``2026-11-28``, E.164 phone
    ``+4930123456``, money ``{"amount": "19.99", "currency": "EUR"}`` as ``"19.99 EUR"``,
    order number upper-cased, email lower-cased, product as its catalog name."""

    label: str  # ORDER_NUMBER | EMAIL | PHONE | DATE | MONEY | PRODUCT | (PERSON/ORG/… from NER)
    text: str
    start: int  # character offsets in the original text
    end: int
    value: str


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    text: str
    lang: str  # ISO 639-1, one of the supported languages
    intent: str | None  # None when out of scope
    confidence: float  # calibrated probability of ``intent`` (top-1 when out of scope)
    ranking: tuple[tuple[str, float], ...] = ()  # top 3 (intent, probability)
    entities: tuple[Entity, ...] = field(default_factory=tuple)
    out_of_scope: bool = False

    def entity(self, label: str) -> Entity | None:
        return next((e for e in self.entities if e.label == label), None)


@runtime_checkable
class IntentParser(Protocol):
    def parse(self, text: str, lang: str | None = None) -> ParsedMessage: ...
