"""``paperradar serve --workers N``: several stateless web processes on one port, built by the
app factory from the environment, all answering from the same database."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path
from typing import Any

import httpx

from paperradar.engine import make_engine

from .conftest import child_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_with_two_worker_processes(tmp_path: Path, spawn: Any) -> None:
    db = tmp_path / "web.db"
    with make_engine(str(db)) as eng:
        eng.ingest_demo()
    port = free_port()
    env = child_env(tmp_path, rate_limit_per_minute="0")
    proc = spawn(
        ["--db", str(db), "serve", "--workers", "2", "--port", str(port)],
        env,
        tmp_path / "serve.log",
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
        assert time.monotonic() < deadline, "the server did not come up"
        time.sleep(0.2)
    with httpx.Client(base_url=base, timeout=10) as client:
        totals = {client.get("/api/v1/stats").json()["papers"] for _ in range(8)}
        assert totals == {397}
        hits = client.get("/api/v1/search", params={"q": "neural"}).json()["hits"]
        assert hits
    # one connection per request, so that both processes answer some of them
    for q in ("graph", "learning", "vision", "robot", "speech"):
        assert httpx.get(f"{base}/api/v1/search", params={"q": q}, timeout=10).status_code == 200
    searched = re.compile(
        r'^paperradar_search_latency_seconds_count\{route="api",status="2xx"\} (\S+)$', re.M
    )
    for _ in range(8):  # every process reports the searches of both
        body = httpx.get(f"{base}/metrics", timeout=10).text
        assert [float(v) for v in searched.findall(body)] == [6.0], body
    proc.terminate()
    assert proc.wait(timeout=20) == 0
