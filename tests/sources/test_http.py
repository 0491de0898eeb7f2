"""The polite client against a real local server: pacing, Retry-After, backoff, timeouts,
dropped connections, conditional requests, and a clear SourceError when it gives up."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta

import pytest

from paperradar.config import Settings
from paperradar.errors import SourceError
from paperradar.sources.http import PoliteClient, parse_retry_after

from .conftest import SleepLog
from .replay_server import ReplayServer, Reply


def test_retry_after_seconds_is_honoured_then_success(
    server: ReplayServer, client: PoliteClient, sleeps: SleepLog
) -> None:
    server.route(
        "/x",
        [Reply(503, b"<h1>Retry after 10 seconds</h1>", {"Retry-After": "10"}), Reply(200, b"ok")],
    )
    got = client.get(server.url("/x"), source="t")
    assert got.status == 200 and got.content == b"ok"
    assert sleeps.calls == [10.0]
    assert len(server.requests) == 2


def test_retry_after_http_date(server: ReplayServer, settings: Settings, sleeps: SleepLog) -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    when = email.utils.format_datetime(now + timedelta(seconds=7), usegmt=True)
    server.route("/x", [Reply(429, b"Rate exceeded", {"Retry-After": when}), Reply(200, b"ok")])
    with PoliteClient(settings, sleep=sleeps, now=lambda: now) as c:
        assert c.get(server.url("/x")).content == b"ok"
    assert sleeps.calls == [7.0]


def test_exponential_backoff_without_retry_after_then_give_up(
    server: ReplayServer, client: PoliteClient, sleeps: SleepLog
) -> None:
    server.route("/x", Reply(500, b"boom"))
    with pytest.raises(SourceError) as info:
        client.get(server.url("/x?a=1"), source="arxiv_api")
    msg = str(info.value)
    assert "arxiv_api" in msg and "/x?a=1" in msg and "HTTP 500" in msg and "4 attempts" in msg
    # rng fixed at 0.5: half of 1, 2, 4 seconds
    assert sleeps.calls == [0.5, 1.0, 2.0]
    assert len(server.requests) == 4


def test_client_error_is_not_retried_and_names_status(
    server: ReplayServer, client: PoliteClient
) -> None:
    server.route("/x", Reply(403, b'{"message":"Forbidden"}'))
    with pytest.raises(SourceError, match=r"HTTP 403.*Forbidden"):
        client.get(server.url("/x"), source="semantic_scholar")
    assert len(server.requests) == 1


def test_accepted_status_is_returned(server: ReplayServer, client: PoliteClient) -> None:
    server.route("/x", Reply(404, b"nope"))
    got = client.get(server.url("/x"), accept_statuses={404})
    assert got.status == 404 and got.content == b"nope"


def test_retry_after_longer_than_cap_fails_with_advice(
    server: ReplayServer, settings: Settings, sleeps: SleepLog
) -> None:
    server.route("/x", Reply(503, b"", {"Retry-After": "3600"}))
    with (
        PoliteClient(settings, sleep=sleeps, max_retry_after_s=60) as c,
        pytest.raises(SourceError, match="run again later"),
    ):
        c.get(server.url("/x"))
    assert sleeps.calls == []


def test_slow_server_times_out_and_is_retried(
    server: ReplayServer, settings: Settings, sleeps: SleepLog
) -> None:
    server.route("/x", [Reply(200, b"late", delay_s=1.0), Reply(200, b"fast")])
    fast = settings.model_copy(update={"request_timeout_s": 0.2})
    with PoliteClient(fast, sleep=sleeps, rng=lambda: 0.0) as c:
        got = c.get(server.url("/x"))
    assert got.content == b"fast"
    assert len(server.requests) == 2 and len(sleeps.calls) == 1


def test_connection_dropped_mid_body_is_retried(server: ReplayServer, client: PoliteClient) -> None:
    body = b"<feed>" + b"x" * 5000 + b"</feed>"
    server.route("/x", [Reply(200, body, drop_after=100), Reply(200, body)])
    assert client.get(server.url("/x")).content == body
    assert len(server.requests) == 2


def test_connection_refused_gives_up_with_url(settings: Settings, sleeps: SleepLog) -> None:
    with ReplayServer() as srv:
        dead = srv.url("/gone")
    with PoliteClient(settings, sleep=sleeps) as c, pytest.raises(SourceError) as info:
        c.get(dead, source="hf_daily")
    assert "connection failed" in str(info.value) and "/gone" in str(info.value)


class FakeClock:
    """A monotonic clock that only moves when told to or when the client sleeps."""

    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def test_per_host_minimum_interval(server: ReplayServer, settings: Settings) -> None:
    clock = FakeClock()
    server.route("/x", Reply(200, b"ok"))
    with PoliteClient(settings, min_interval_s=3.0, sleep=clock.sleep, clock=clock) as c:
        c.get(server.url("/x"))  # first request: no wait
        clock.t += 1.0
        c.get(server.url("/x"))  # 1 s later: waits the remaining 2 s
        clock.t += 9.0
        c.get(server.url("/x"))  # 9 s later: no wait
    assert clock.sleeps == [2.0]


def test_user_agent_and_conditional_headers(server: ReplayServer, client: PoliteClient) -> None:
    server.route(
        "/feed",
        [
            Reply(
                200, b"<rss/>", {"ETag": '"v1"', "Last-Modified": "Thu, 24 Sep 2026 08:58:05 GMT"}
            ),
            Reply(304),
        ],
    )
    first = client.get(server.url("/feed"))
    assert first.validators == {"etag": '"v1"', "last_modified": "Thu, 24 Sep 2026 08:58:05 GMT"}
    second = client.get(server.url("/feed"), **first.validators)
    assert second.not_modified and second.content == b""
    seen = server.requests[1].headers
    assert seen["If-None-Match"] == '"v1"'
    assert seen["If-Modified-Since"] == "Thu, 24 Sep 2026 08:58:05 GMT"
    assert "paperradar/" in seen["User-Agent"] and "tests@example.org" in seen["User-Agent"]


def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("10") == 10.0
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 31 Dec 2025 00:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
