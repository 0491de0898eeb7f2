"""``/metrics`` (Prometheus text format) and the search-latency timer of the web app.

Gauges come from ``Engine.metrics()`` (read from the database at each scrape, so every web
process answers alike); the search-latency histogram is observed by
:class:`SearchTimingMiddleware` around the search routes, in every web process sharing the
folder ``PAPERRADAR_METRICS_DIR`` (``serve --workers N`` makes one), else in this process.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from paperradar.engine import Engine
from paperradar.metrics import CONTENT_TYPE, Histogram, Registry

__all__ = ["SEARCH_ROUTES", "SearchTimingMiddleware", "make_registry", "router"]

router = APIRouter(tags=["ops"])

SEARCH_ROUTES = {"/api/v1/search": "api", "/search": "page"}


def make_registry(engine: Engine) -> tuple[Registry, Histogram]:
    """The app's registry: the engine's database gauges plus the search latency (of every web
    process when ``PAPERRADAR_METRICS_DIR`` names a shared folder)."""
    registry = Registry()
    registry.collector(engine.metrics)
    latency = registry.histogram(
        "paperradar_search_latency_seconds",
        "Time to answer a search request (route: api or page), in all web processes.",
    )
    return registry, latency


class SearchTimingMiddleware:
    """Times requests to the search routes into the latency histogram (ASGI, no buffering)."""

    def __init__(self, app: Any, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        route = SEARCH_ROUTES.get(scope.get("path", "")) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.histogram.observe(
                time.perf_counter() - started, route=route, status=f"{status // 100}xx"
            )


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=True)
async def metrics(request: Request) -> Response:
    """Ingest lag, queue depth per state, jobs per kind, source errors, search latency."""
    registry: Registry = request.app.state.metrics
    body = await run_in_threadpool(registry.render)
    return Response(body, media_type=CONTENT_TYPE)
