"""spaCy-based NLU: language id, intents with out-of-scope detection, entities."""
