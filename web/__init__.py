"""The outside world: FastAPI app, websocket chat, widget pages (imports ``bot``; nothing
imports ``web``)."""
