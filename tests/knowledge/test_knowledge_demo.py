"""The bundled demo shop must load strictly and meet the size the product promises."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import knowledge
from knowledge.botfiles import load_bot_files
from knowledge.changes import find_exact_duplicates
from knowledge.loaders import load_knowledge
from knowledge.schema import EntryKind

DEMO = Path(knowledge.__file__).parent / "demo"


def test_demo_knowledge_loads_strictly_with_enough_content() -> None:
    kb = load_knowledge(DEMO)  # strict: raises KnowledgeError listing any problem
    assert kb.issues == []
    faq = Counter(e.lang for e in kb.entries if e.kind is EntryKind.FAQ)
    assert faq["en"] >= 60, faq
    assert faq["de"] >= 40, faq
    pages = {e.source for e in kb.entries if e.kind is EntryKind.PASSAGE}
    assert len(pages) >= 3, pages
    assert find_exact_duplicates(kb.entries) == []
    bot = load_bot_files(DEMO)
    assert bot.intents is not None
    assert {"greeting", "thanks", "goodbye", "human_handoff", "order_status"} <= set(
        bot.intents.intents
    )
    assert bot.intents.languages >= {"en", "de"}
    assert bot.products and bot.orders
