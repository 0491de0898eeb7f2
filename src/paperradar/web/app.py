"""``create_app(engine)``: the FastAPI application — pages, ``/api/v1``, feeds, static files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from paperradar import __version__
from paperradar.engine import Engine, make_engine
from paperradar.errors import InvalidQuery, PaperradarError
from paperradar.web import api, feeds, pages, subscriptions
from paperradar.web import metrics as metrics_routes
from paperradar.web.cache import ResponseCache, ResponseCacheMiddleware
from paperradar.web.errors import error_body, status_of
from paperradar.web.ratelimit import RateLimitMiddleware
from paperradar.web.render import (
    SIMILAR_TTL_S,
    STATIC_DIR,
    TRENDING_TTL_S,
    Renderer,
    TTLCache,
)

__all__ = ["create_app", "create_app_from_env"]

Scope = dict[str, Any]

# Pages run no inline script and load nothing from elsewhere.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]

HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    400: "bad_request",
    413: "too_large",
}


class SecurityHeadersMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(("/api/", "/feeds/", "/healthz")) or path == "/openapi.json"


def _error_response(
    request: Request, status: int, code: str, message: str, **more: Any
) -> Response:
    if _wants_json(request):
        return JSONResponse(error_body(code, message, **more), status_code=status)
    renderer: Renderer = request.app.state.renderer
    return renderer.page("error.html", status=status, status_code=status, message=message)


def _validation_message(exc: RequestValidationError) -> tuple[str, str]:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body")]
    field = ".".join(loc) or "request"
    return field, f"{field}: {first.get('msg', 'invalid value')}"


def create_app(engine: Engine) -> FastAPI:
    """The web application over ``engine``: HTML pages, JSON API, feeds."""
    settings = engine.settings

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Sync routes run on anyio's thread pool (40 threads): 16 concurrent searches all
        # progress together, so a slow query takes about 16 times its own time. A few threads
        # (PAPERRADAR_WEB_THREADS) make the rest wait in line instead, and still overlap the
        # time SQLite and tantivy run without the GIL.
        if settings.web_threads > 0:
            anyio.to_thread.current_default_thread_limiter().total_tokens = settings.web_threads
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="paperradar",
        version=__version__,
        description=(
            "Research-paper discovery: list, search and follow papers. Every error answers "
            '`{"error": {"code", "message"}}`. Listings page with opaque keyset cursors: pass '
            "`next_cursor` back as `cursor`."
        ),
        docs_url=None,  # our own /docs page: Swagger UI would load from a CDN
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.engine = engine
    app.state.renderer = Renderer(engine)
    app.state.facts = TTLCache(ttl_s=30.0)
    app.state.categories = TTLCache(ttl_s=api.CATEGORIES_TTL_S)
    app.state.trending = TTLCache(ttl_s=TRENDING_TTL_S)
    app.state.similar = TTLCache(ttl_s=SIMILAR_TTL_S, max_entries=4096)
    app.state.metrics, search_latency = metrics_routes.make_registry(engine)

    @app.exception_handler(PaperradarError)
    async def _on_error(request: Request, exc: PaperradarError) -> Response:
        status, code = status_of(exc)
        more: dict[str, Any] = {}
        if isinstance(exc, InvalidQuery) and exc.position is not None:
            more["position"] = exc.position
        field = getattr(exc, "field", None)
        if field:
            more["field"] = field
        return _error_response(request, status, code, str(exc), **more)

    @app.exception_handler(RequestValidationError)
    async def _on_invalid(request: Request, exc: RequestValidationError) -> Response:
        field, message = _validation_message(exc)
        return _error_response(request, 400, "invalid_parameter", message, field=field)

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, exc: StarletteHTTPException) -> Response:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"nothing at {request.url.path}"
        response = _error_response(request, exc.status_code, code, message)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    app.include_router(pages.router)
    app.include_router(subscriptions.router)
    app.include_router(api.router)
    app.include_router(api.health)
    app.include_router(feeds.router)
    app.include_router(metrics_routes.router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    # Added last runs first: CORS headers reach 429 answers too; cached answers are still
    # rate-limited and get the security headers.
    app.state.response_cache = ResponseCache(ttl_s=settings.web_cache_s)
    app.add_middleware(ResponseCacheMiddleware, cache=app.state.response_cache)
    app.add_middleware(RateLimitMiddleware, per_minute=settings.rate_limit_per_minute)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=["ETag", "Retry-After"],
        )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(metrics_routes.SearchTimingMiddleware, histogram=search_latency)
    return app


def create_app_from_env() -> FastAPI:
    """The app over the engine the environment configures (``PAPERRADAR_DATABASE_URL`` …): the
    factory ``paperradar serve --workers N`` gives uvicorn, one per worker process."""
    return create_app(make_engine())
