"""``create_app`` with the tests' scripted fake engine, for a server in its own process
(``uvicorn --factory --app-dir tests/api _webhook_server:app``; settings from the env)."""

from __future__ import annotations

import sys
from pathlib import Path

from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))

from _wsfakes import FakeRuntime

from bot.config import Settings
from web.app import create_app


def app() -> FastAPI:
    return create_app(Settings(), runtime=FakeRuntime())
