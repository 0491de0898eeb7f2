"""Metrics in the Prometheus text exposition format (version 0.0.4), without a client library.

Two kinds of numbers:

* **collected** on each scrape from the database, so every web process reports the same,
  whichever one the proxy picks: :class:`Family` values built by ``Engine.metrics()``;
* **observed** in the processes: :class:`Histogram` and :class:`Counter` (search latency in the
  web app). With a shared ``directory`` (``serve --workers N`` makes one and names it in
  ``PAPERRADAR_METRICS_DIR``), each process writes its values to its own file there at every
  observation and a scrape sums every process's file, so whichever process answers reports the
  totals of all (the files of exited processes count on: counters never go back). Without one,
  a process reports its own.

A :class:`Registry` holds observed metrics and collectors (callables returning families);
``Registry.render()`` is the ``/metrics`` body. Adding a metric is one ``registry.counter(…)``
or one more family in a collector.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CONTENT_TYPE",
    "METRICS_DIR_ENV",
    "Counter",
    "Family",
    "Histogram",
    "Registry",
    "render",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Kind = Literal["counter", "gauge", "histogram", "summary", "untyped"]
Labels = dict[str, str]
METRICS_DIR_ENV = "PAPERRADAR_METRICS_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class Family:
    """One metric: a name, its type and help, and (suffix, labels, value) samples."""

    name: str
    kind: Kind
    help: str
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)

    def add(self, value: float, labels: Labels | None = None, *, suffix: str = "") -> Family:
        self.samples.append((suffix, dict(labels or {}), float(value)))
        return self


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def render(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for f in families:
        lines.append(
            f"# HELP {f.name} {f.help.replace(chr(92), chr(92) * 2).replace(chr(10), ' ')}"
        )
        lines.append(f"# TYPE {f.name} {f.kind}")
        for suffix, labels, value in f.samples:
            text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
            lines.append(
                f"{f.name}{suffix}{{{text}}} {_number(value)}"
                if text
                else f"{f.name}{suffix} {_number(value)}"
            )
    return "\n".join(lines) + "\n"


LabelKey = tuple[tuple[str, str], ...]


class _ProcessFiles:
    """One metric's values in every process: this process writes ``<name>.<token>.json`` in
    ``directory`` (atomically, at each change) and reads all ``<name>.*.json`` to report."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory, self.name = directory, name
        self.path = directory / f"{name}.{os.getpid()}-{secrets.token_hex(4)}.json"

    def write(self, values: dict[LabelKey, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps([[list(map(list, k)), v] for k, v in values.items()]))
        os.replace(tmp, self.path)

    def read_all(self) -> list[dict[LabelKey, Any]]:
        out = []
        for path in sorted(self.directory.glob(f"{self.name}.*.json")):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # removed or being replaced right now: the next scrape has it
            out.append({tuple((str(a), str(b)) for a, b in k): v for k, v in data})
        return out


class Counter:
    """A monotonically increasing count per label set (of this process, or with ``directory``
    of every process sharing it)."""

    def __init__(self, name: str, help: str, directory: Path | None = None) -> None:
        self.name, self.help = name, help
        self._values: dict[LabelKey, float] = {}
        self._lock = threading.Lock()
        self._files = _ProcessFiles(directory, name) if directory is not None else None

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount
            if self._files is not None:
                self._files.write(self._values)

    def _merged(self) -> dict[LabelKey, float]:
        if self._files is None:
            return dict(self._values)
        total: dict[LabelKey, float] = {}
        for values in self._files.read_all():
            for key, value in values.items():
                total[key] = total.get(key, 0.0) + float(value)
        return total

    def family(self) -> Family:
        f = Family(self.name, "counter", self.help)
        with self._lock:
            merged = self._merged()
        for key, value in sorted(merged.items()):
            f.add(value, dict(key), suffix="_total" if not self.name.endswith("_total") else "")
        return f


class Histogram:
    """Observations counted into cumulative buckets per label set (of this process, or with
    ``directory`` of every process sharing it)."""

    def __init__(
        self,
        name: str,
        help: str,
        buckets: Sequence[float] = LATENCY_BUCKETS,
        directory: Path | None = None,
    ) -> None:
        self.name, self.help = name, help
        self.buckets = tuple(sorted(buckets))
        self._data: dict[LabelKey, tuple[list[int], list[float]]] = {}
        self._lock = threading.Lock()
        self._files = _ProcessFiles(directory, name) if directory is not None else None

    def observe(self, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            counts, total = self._data.setdefault(key, ([0] * (len(self.buckets) + 1), [0.0]))
            counts[bisect.bisect_left(self.buckets, value)] += 1
            total[0] += value
            if self._files is not None:
                self._files.write(self._data)

    def _merged(self) -> dict[LabelKey, tuple[list[int], list[float]]]:
        if self._files is None:
            return {k: (list(c), list(t)) for k, (c, t) in self._data.items()}
        out: dict[LabelKey, tuple[list[int], list[float]]] = {}
        width = len(self.buckets) + 1
        for data in self._files.read_all():
            for key, (counts, total) in data.items():
                if len(counts) != width:
                    continue  # written with other buckets (an older version): not comparable
                mine = out.setdefault(key, ([0] * width, [0.0]))
                for i, n in enumerate(counts):
                    mine[0][i] += int(n)
                mine[1][0] += float(total[0])
        return out

    def family(self) -> Family:
        f = Family(self.name, "histogram", self.help)
        with self._lock:
            merged = self._merged()
        for key, (counts, total) in sorted(merged.items()):
            labels = dict(key)
            running = 0
            for bound, n in zip(self.buckets, counts, strict=False):
                running += n
                f.add(running, labels | {"le": _number(bound)}, suffix="_bucket")
            running += counts[-1]
            f.add(running, labels | {"le": "+Inf"}, suffix="_bucket")
            f.add(total[0], labels, suffix="_sum")
            f.add(running, labels, suffix="_count")
        return f


Collector = Callable[[], Iterable[Family]]


class Registry:
    """Observed metrics plus collectors run at each scrape. With ``directory`` (default: the
    folder named by ``PAPERRADAR_METRICS_DIR``, when set) the observed metrics are those of
    every process sharing the folder."""

    def __init__(self, directory: Path | None = None) -> None:
        if directory is None and os.environ.get(METRICS_DIR_ENV):
            directory = Path(os.environ[METRICS_DIR_ENV])
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._metrics: list[Counter | Histogram] = []
        self._collectors: list[Collector] = []

    def counter(self, name: str, help: str) -> Counter:
        c = Counter(name, help, self.directory)
        self._metrics.append(c)
        return c

    def histogram(
        self, name: str, help: str, buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> Histogram:
        h = Histogram(name, help, buckets, self.directory)
        self._metrics.append(h)
        return h

    def collector(self, fn: Collector) -> Collector:
        self._collectors.append(fn)
        return fn

    def families(self) -> list[Family]:
        out: list[Family] = []
        for fn in self._collectors:
            out.extend(fn())
        out.extend(m.family() for m in self._metrics)
        return out

    def render(self) -> str:
        return render(self.families())
