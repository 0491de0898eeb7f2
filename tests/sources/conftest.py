"""Fixtures for source tests: a real local replay server, settings pointing at it, a polite
client whose sleeps are recorded instead of slept (timing is asserted, tests stay fast)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paperradar.config import Settings
from paperradar.sources.http import PoliteClient

from .replay_server import ReplayServer


class SleepLog:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as srv:
        yield srv


@pytest.fixture
def settings(server: ReplayServer) -> Settings:
    return Settings(
        arxiv_api_url=server.url("/api/query"),
        oai_url=server.url("/oai"),
        rss_url=server.url("/rss"),
        hf_url=server.url("/api/daily_papers"),
        semantic_scholar_url=server.url("/graph/v1"),
        openalex_url=server.url("/openalex"),
        contact_email="tests@example.org",
        request_delay_s=0.0,
        request_timeout_s=2.0,
        max_retries=3,
    )


@pytest.fixture
def sleeps() -> SleepLog:
    return SleepLog()


@pytest.fixture
def client(settings: Settings, sleeps: SleepLog) -> Iterator[PoliteClient]:
    with PoliteClient(settings, sleep=sleeps, rng=lambda: 0.5) as c:
        yield c
