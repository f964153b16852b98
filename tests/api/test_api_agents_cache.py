"""The agent-availability switch as the handoff path sees it, with a copy kept for an hour
(``handoff_availability_cache_s``): a change through this server's API applies to the very next
handoff; a change another replica made (straight in the shared database) only once this server
reads the switch again — here through ``GET /api/v1/agents/availability``."""

from __future__ import annotations

from typing import Any

import pytest
from _apiutil import Api
from _wsutil import OpenClient

from bot import texts
from bot.store.handoff_timeout import set_availability

AVAILABILITY = "/api/v1/agents/availability"


@pytest.fixture
def api_settings() -> dict[str, Any]:
    # no timeout fallback and a slow sweep: only the immediate (switch) fallback can happen
    return {
        "handoff_availability_cache_s": 3600.0,
        "handoff_timeout_s": 0,
        "handoff_sweep_interval_s": 600.0,
    }


async def _ask_human(open_client: OpenClient, url: str, n: int) -> list[dict[str, Any]]:
    """A new visitor asks for a human; the frames after the handoff's ``done`` (within 1.5 s)."""
    c = await open_client(url)
    await c.hello(lang="en")
    await c.send({"type": "request_human", "message_id": f"h{n}"})
    first = await c.until("done")
    assert first[0]["type"] == "handoff" and first[0]["state"] == "pending_human"
    try:
        after: list[dict[str, Any]] = await c.until("done", timeout=1.5)
    except TimeoutError:
        return []
    return after


def _fell_back(frames: list[dict[str, Any]]) -> bool:
    if not frames:
        return False
    assert (frames[0]["state"], frames[0]["reason"]) == ("bot", "no_agent_available")
    assert frames[1]["text"] == texts.text("no_agent", "en")
    return True


async def test_switch_through_the_api_applies_at_once_other_replicas_after_a_read(
    api_sqlite: Api, open_client: OpenClient
) -> None:
    api, url = api_sqlite, api_sqlite.server.ws_url
    assert not _fell_back(await _ask_human(open_client, url, 1))  # copy taken: available

    off = await api.call("POST", AVAILABILITY, "agent", json={"available": False})
    assert off.status_code == 200 and off.json()["accepting_handoffs"] is False
    assert _fell_back(await _ask_human(open_client, url, 2))  # at once, despite the hour

    on = await api.call("POST", AVAILABILITY, "agent", json={"available": True})
    assert on.status_code == 200 and on.json()["accepting_handoffs"] is True
    assert not _fell_back(await _ask_human(open_client, url, 3))

    # another replica switches agents off: this server keeps its copy…
    await api.db.write(lambda s: set_availability(s, available=False, updated_by="replica-b"))
    assert not _fell_back(await _ask_human(open_client, url, 4))
    # …until it reads the switch again
    got = (await api.call("GET", AVAILABILITY, "read")).json()
    assert (got["available"], got["updated_by"]) == (False, "replica-b")
    assert _fell_back(await _ask_human(open_client, url, 5))
