"""Fixtures of the web tests: a real SQLite engine over the test corpus, the app over it, and
the demo corpus (undated papers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from web_corpus import build_engine

from paperradar.engine import Engine, make_engine
from paperradar.web import create_app


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    eng = build_engine(
        tmp_path_factory.mktemp("web") / "web.db",
        rate_limit_per_minute=0,
        base_url="http://testserver",
    )
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as c:
        yield c


@pytest.fixture(scope="session")
def demo_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    eng = make_engine(str(tmp_path_factory.mktemp("demo") / "demo.db"), rate_limit_per_minute=0)
    eng.ingest_demo()
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def demo_client(demo_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(demo_engine)) as c:
        yield c
