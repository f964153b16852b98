"""The conversation engine: NLU, answering engine, LLM providers, persistence and the admin CLI."""
