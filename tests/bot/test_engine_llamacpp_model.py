"""bot.llm.llamacpp.LlamaCppChatModel over a fake ``Llama`` (the real one is optional)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from bot.llm.llamacpp import LlamaCppChatModel


class FakeLlama:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def create_chat_completion(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.requests.append(kwargs)
        yield {"choices": [{"delta": {"role": "assistant"}}]}
        for piece in ("Orders ", "arrive ", "soon."):
            yield {"choices": [{"delta": {"content": piece}}]}

    def tokenize(self, data: bytes) -> list[int]:
        return list(range(len(data.split())))


async def test_streams_chunks_with_usage_and_roles() -> None:
    llama = FakeLlama()
    model = LlamaCppChatModel(llama=llama, max_tokens=16)
    messages = [SystemMessage("rules here"), HumanMessage("when?"), AIMessage("earlier")]
    chunks = [c async for c in model.astream(messages)]
    assert "".join(c.text for c in chunks) == "Orders arrive soon."
    usage = [c.usage_metadata for c in chunks if c.usage_metadata]
    assert usage == [{"input_tokens": 4, "output_tokens": 3, "total_tokens": 7}]
    sent = llama.requests[0]
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant"]
    assert sent["stream"] is True and sent["max_tokens"] == 16


def test_invoke_collects_the_stream() -> None:
    result = LlamaCppChatModel(llama=FakeLlama()).invoke([HumanMessage("when?")])
    assert result.content == "Orders arrive soon."
    assert result.usage_metadata is not None and result.usage_metadata["output_tokens"] == 3
