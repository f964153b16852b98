"""LLM providers (``openai``-compatible, in-process ``llamacpp``, ``none``) and the circuit
breaker that sends the engine to extractive answers while the LLM is failing."""

from bot.llm.breaker import CircuitBreaker
from bot.llm.providers import ChatModelProvider, StaticProvider, make_provider

__all__ = ["ChatModelProvider", "CircuitBreaker", "StaticProvider", "make_provider"]
