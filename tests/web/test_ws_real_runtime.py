"""The websocket against the REAL runtime: the server's lifespan indexes a small knowledge
folder (``prepare_on_start``), loads the embedder, NLU and engine, and answers extractively."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml
from _wsutil import OpenClient, StartServer

from bot.config import DEMO_KNOWLEDGE_DIR


def _small_knowledge(dest: Path) -> Path:
    """The first shipping FAQs of the demo shop in English and German."""
    dest.mkdir()
    for lang in ("en", "de"):
        faq = yaml.safe_load((DEMO_KNOWLEDGE_DIR / f"faq.{lang}.yaml").read_text())
        small = {"lang": lang, "entries": faq["entries"][:4]}
        (dest / f"faq.{lang}.yaml").write_text(yaml.safe_dump(small, allow_unicode=True))
    return dest


async def test_real_runtime_answers_with_sources_in_both_languages(
    start_server: StartServer, open_client: OpenClient, tmp_path: Path
) -> None:
    kb = _small_knowledge(tmp_path / "kb")
    server = start_server(
        real=True,
        data_dir=tmp_path / "data",
        knowledge_dir=kb,
        prepare_on_start=True,
        llm_provider="none",
    )
    async with httpx.AsyncClient(base_url=server.url) as http:
        ready = (await http.get("/readyz")).json()
    assert ready["checks"]["index"] is True and ready["checks"]["database"] is True

    c = await open_client(server.ws_url)
    await c.hello(lang="en")
    await c.send({"type": "message", "message_id": "en-1", "text": "How long does delivery take?"})
    frames = await c.until("done", timeout=60)
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "user_message" and kinds.count("token") >= 1 and "sources" in kinds
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    sources = next(f for f in frames if f["type"] == "sources")
    assert sources["items"][0]["id"] == "en-ship-01"
    done = frames[-1]
    assert done["answered"] is True and done["mode"] == "extractive" and done["lang"] == "en"
    answer = "".join(f["text"] for f in frames if f["type"] == "token")
    assert "Germany 1–3" in answer

    await c.send(
        {"type": "message", "message_id": "de-1", "text": "Wie lange dauert die Lieferung?"}
    )
    frames = await c.until("done", timeout=60)
    assert frames[-1]["lang"] == "de" and frames[-1]["answered"] is True
    de_sources = next(f for f in frames if f["type"] == "sources")
    assert de_sources["items"][0]["id"].startswith("de-")
