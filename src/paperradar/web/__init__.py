"""The web layer: HTML pages, the JSON API (``/api/v1``) and RSS/Atom feeds, all on the Engine.

``create_app(engine)`` returns the FastAPI application; the CLI's ``serve`` and ``demo`` run it
under uvicorn. Routes are thin: they parse parameters, call the Engine and render.
"""

from __future__ import annotations

from paperradar.web.app import create_app

__all__ = ["create_app"]
