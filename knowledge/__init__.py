"""Knowledge sources: schemas, loaders, change detection and the bundled demo shop.

This package imports nothing else of Klartext's (layering: web → bot → retrieval → knowledge).
"""

from knowledge.schema import Entry, EntryKind, KnowledgeBase, KnowledgeIssue

__all__ = ["Entry", "EntryKind", "KnowledgeBase", "KnowledgeIssue"]
