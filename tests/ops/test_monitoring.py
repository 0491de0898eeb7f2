"""``/healthz`` (database reachable, migrations at head, queue depth) and ``/metrics`` (the
Prometheus text format, parsed here line by line) on a real SQLite engine and app."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from paperradar.engine import Engine, make_engine
from paperradar.metrics import Registry
from paperradar.web import create_app

RSS = "arxiv_rss/laya_rss_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24.xml"

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*)?\}})? (\S+)$")


def parse_prometheus(text: str) -> dict[str, dict[str, object]]:
    """Families {name: {"type", "help", "samples": [(sample name, labels, value)]}}; raises on
    any line that is not valid text exposition format 0.0.4."""
    assert text.endswith("\n")
    families: dict[str, dict[str, object]] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert re.fullmatch(NAME, name) and name not in families, line
            families[name] = {"help": help_text, "type": None, "samples": []}
            current = name
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name == current and kind in {
                "counter",
                "gauge",
                "histogram",
                "summary",
                "untyped",
            }
            families[name]["type"] = kind
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            name, labels_text, value = m.groups()
            assert current is not None and name.startswith(current), line
            labels = dict(
                re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels_text or "")
            )
            number = float(value)  # accepts NaN, +Inf
            samples = families[current]["samples"]
            assert isinstance(samples, list)
            samples.append((name, labels, number))
    return families


@pytest.fixture
def engine(tmp_path: Path, fixtures_dir: Path) -> Iterator[Engine]:
    from paperradar.harvest import file_plan

    eng = make_engine(str(tmp_path / "web.db"), rate_limit_per_minute=0)
    eng.harvest(file_plan("arxiv_rss", fixtures_dir / RSS))
    yield eng
    eng.close()


def test_healthz_reports_database_migrations_and_queue(engine: Engine) -> None:
    engine.storage.enqueue("harvest", {"source": "hf-daily"})
    with TestClient(create_app(engine)) as client:
        r = client.get("/healthz")
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "ok" and body["database"] == "ok"
        assert body["migrations"]["at_head"] is True
        head = engine.storage.schema_revision()[1]
        assert body["migrations"]["current"] == body["migrations"]["head"] == head
        assert body["queue"] == {"queued": 1, "running": 0}

        # A database behind the code (migrations not run) is unhealthy: 503, and says why.
        with engine.storage.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0002'"))
        r = client.get("/healthz")
        assert r.status_code == 503
        assert r.json()["migrations"] == {"current": "0002", "head": head, "at_head": False}


def test_metrics_in_prometheus_text_format(engine: Engine) -> None:
    engine.storage.enqueue("harvest", {"source": "hf-daily"})
    engine.storage.enqueue("embed", {}, key="embed")
    with TestClient(create_app(engine)) as client:
        assert client.get("/api/v1/search", params={"q": "outlier detection"}).status_code == 200
        assert client.get("/api/v1/search", params={"q": "spectral"}).status_code == 200
        assert client.get("/search", params={"q": "anomaly"}).status_code == 200
        r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    fams = parse_prometheus(r.text)

    def values(name: str) -> dict[tuple[tuple[str, str], ...], float]:
        samples = fams[name]["samples"]
        assert isinstance(samples, list)
        return {tuple(sorted(lb.items())): v for n, lb, v in samples if n == name}

    assert fams["paperradar_ingest_lag_seconds"]["type"] == "gauge"
    (lag,) = values("paperradar_ingest_lag_seconds").values()
    assert 0 <= lag < 600
    depth = values("paperradar_queue_jobs")
    assert depth[(("state", "queued"),)] == 2 and depth[(("state", "failed"),)] == 0
    per_kind = values("paperradar_jobs")
    assert per_kind[(("kind", "embed"), ("state", "queued"))] == 1
    assert values("paperradar_papers") == {(): 4.0}
    assert values("paperradar_digests") == {(("state", "failed"),): 0, (("state", "sent"),): 0}
    assert values("paperradar_digest_attempts") == {(): 0}
    assert values("paperradar_source_error") == {(("source", "arxiv_rss:file"),): 0.0}

    hist = fams["paperradar_search_latency_seconds"]
    assert hist["type"] == "histogram"
    samples = hist["samples"]
    assert isinstance(samples, list)
    for route, n in (("api", 2), ("page", 1)):
        mine = [(name, lb, v) for name, lb, v in samples if lb.get("route") == route]
        buckets = [(lb["le"], v) for name, lb, v in mine if name.endswith("_bucket")]
        counts = [v for _, v in buckets]
        assert counts == sorted(counts)  # cumulative
        assert buckets[-1][0] == "+Inf" and buckets[-1][1] == n
        assert [v for name, _, v in mine if name.endswith("_count")] == [n]
        (total,) = [v for name, _, v in mine if name.endswith("_sum")]
        assert 0 < total < 60 and not math.isnan(total)
        assert {lb["status"] for _, lb, _ in mine} == {"2xx"}


def test_observed_metrics_sum_over_the_processes_sharing_a_folder(tmp_path: Path) -> None:
    """Two registries on one folder stand for two web processes: each reports both's values."""
    first, second = Registry(tmp_path), Registry(tmp_path)
    h1 = first.histogram("latency_seconds", "Latency.")
    h2 = second.histogram("latency_seconds", "Latency.")
    c1, c2 = first.counter("sends", "Sends."), second.counter("sends", "Sends.")
    h1.observe(0.003, route="api")
    h2.observe(0.2, route="api")
    h2.observe(30.0, route="page")
    c1.inc(kind="ok")
    c2.inc(2, kind="ok")
    c2.inc(kind="failed")
    for registry in (first, second):
        fams = parse_prometheus(registry.render())
        samples = fams["latency_seconds"]["samples"]
        assert isinstance(samples, list)
        got = {(n, lb.get("route"), lb.get("le")): v for n, lb, v in samples}
        assert got[("latency_seconds_count", "api", None)] == 2
        assert got[("latency_seconds_bucket", "api", "0.005")] == 1
        assert got[("latency_seconds_bucket", "api", "0.25")] == 2
        assert got[("latency_seconds_bucket", "page", "10")] == 0
        assert got[("latency_seconds_bucket", "page", "+Inf")] == 1
        assert got[("latency_seconds_sum", "api", None)] == pytest.approx(0.203)
        sends = fams["sends"]["samples"]
        assert isinstance(sends, list)
        assert {lb["kind"]: v for _, lb, v in sends} == {"ok": 3, "failed": 1}
    # a process on its own folder (or none) reports only its own
    alone = Registry(tmp_path / "other").histogram("latency_seconds", "Latency.")
    alone.observe(0.1)
    (count,) = [v for n, _, v in alone.family().samples if n == "_count"]
    assert count == 1
