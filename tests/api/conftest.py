"""Fixtures of the REST API tests (defined in ``_apiutil`` and ``tests/web/_wsutil``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))

from _apiutil import api, api_pg, api_sqlite
from _wsutil import frame_validator, open_client, start_server

__all__ = ["api", "api_pg", "api_sqlite", "frame_validator", "open_client", "start_server"]
