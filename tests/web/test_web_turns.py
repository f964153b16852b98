from __future__ import annotations

from bot.events import Done, Sources, Token
from web.turn_stream import coalesce_tokens


def test_adjacent_tokens_are_coalesced_in_order() -> None:
    evs = [Token(text="a"), Token(text="b"), Sources(items=[]), Token(text="c"), Token(text="d")]
    done = Done(turn_id="t", mode="extractive", answered=True)
    out = coalesce_tokens([*evs, done])
    assert out == [Token(text="ab"), Sources(items=[]), Token(text="cd"), done]
