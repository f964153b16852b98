"""``GET /metrics``: Prometheus text exposition of this process's metrics (``web.metrics``).
Only mounted with ``metrics_enabled``; keep it off the public internet (proxy rule)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from web.metrics import metrics_of

router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    m = metrics_of(request.app.state)
    if m is None:  # not mounted without metrics; kept total for safety
        return Response(status_code=404)
    body, content_type = m.exposition()
    return Response(body, media_type=content_type)
