"""Fixtures of the web tests (defined in ``_wsutil``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _wsutil import frame_validator, open_client, server, start_server, web_pg

__all__ = ["frame_validator", "open_client", "server", "start_server", "web_pg"]
