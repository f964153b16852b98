"""LLM providers by name (``none``, ``openai``, ``llamacpp``) behind one small protocol.

A provider builds the LangChain chat model once and says whether it does tool calling;
the engine never imports a vendor SDK itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from bot.config import Settings
from bot.errors import ConfigError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel


@runtime_checkable
class ChatModelProvider(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def supports_tools(self) -> bool: ...

    def chat_model(self) -> BaseChatModel:
        """The (cached) LangChain chat model; raises ``ConfigError`` if misconfigured."""
        ...


@dataclass(slots=True)
class StaticProvider:
    """Wraps an already-built chat model (tests, embedding Klartext in another app)."""

    model: BaseChatModel
    name: str = "static"
    supports_tools: bool = True

    def chat_model(self) -> BaseChatModel:
        return self.model


def _openai(settings: Settings) -> ChatModelProvider:
    from langchain_openai import ChatOpenAI

    if not settings.llm_base_url and settings.llm_api_key.get_secret_value() == "not-needed":
        raise ConfigError(
            "llm_provider=openai needs KLARTEXT_LLM_BASE_URL (an OpenAI-compatible …/v1 URL) "
            "or KLARTEXT_LLM_API_KEY for api.openai.com"
        )
    model = ChatOpenAI(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key,
        model=settings.llm_model,
        timeout=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
        temperature=settings.llm_temperature,
        max_completion_tokens=settings.llm_max_tokens,
        streaming=True,
        stream_usage=True,
    )
    return StaticProvider(model, name="openai", supports_tools=settings.llm_supports_tools)


def _llamacpp(settings: Settings) -> ChatModelProvider:
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ConfigError(
            "llm_provider=llamacpp needs llama-cpp-python: pip install 'klartext[local]'"
        ) from exc
    path = settings.llm_model_path
    if path is None or not path.is_file():
        raise ConfigError(
            f"llm_provider=llamacpp needs KLARTEXT_LLM_MODEL_PATH (a GGUF file): {path}"
        )
    from bot.llm.llamacpp import LlamaCppChatModel

    llama = Llama(model_path=str(path), n_ctx=4096, verbose=False)
    model = LlamaCppChatModel(
        llama=llama, temperature=settings.llm_temperature, max_tokens=settings.llm_max_tokens
    )
    return StaticProvider(model, name="llamacpp", supports_tools=False)


PROVIDERS: dict[str, Callable[[Settings], ChatModelProvider]] = {
    "openai": _openai,
    "llamacpp": _llamacpp,
}


def make_provider(settings: Settings) -> ChatModelProvider | None:
    """The configured provider, or ``None`` for ``llm_provider=none`` (extractive mode)."""
    if settings.llm_provider == "none":
        return None
    factory = PROVIDERS.get(settings.llm_provider)
    if factory is None:
        raise ConfigError(f"unknown llm_provider {settings.llm_provider!r}")
    return factory(settings)
