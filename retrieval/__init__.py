"""Embeddings and search over a knowledge base. Imports ``knowledge``, never ``bot`` or ``web``."""
