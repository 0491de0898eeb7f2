"""Metrics in the Prometheus text exposition format (version 0.0.4), without a client library.

Two kinds of numbers:

* **collected** on each scrape from the database, so every web process reports the same,
  whichever one the proxy picks: :class:`Family` values built by ``Engine.metrics()``;
* **observed** in this process: :class:`Histogram` and :class:`Counter` (search latency in the
  web app). With ``serve --workers N`` each process keeps its own; a scrape sees one of them.

A :class:`Registry` holds observed metrics and collectors (callables returning families);
``Registry.render()`` is the ``/metrics`` body. Adding a metric is one ``registry.counter(…)``
or one more family in a collector.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "CONTENT_TYPE",
    "Counter",
    "Family",
    "Histogram",
    "Registry",
    "render",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Kind = Literal["counter", "gauge", "histogram", "summary", "untyped"]
Labels = dict[str, str]
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


class Counter:
    """A monotonically increasing count per label set, in this process."""

    def __init__(self, name: str, help: str) -> None:
        self.name, self.help = name, help
        self._values: dict[tuple[tuple[str, str], ...], float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def family(self) -> Family:
        f = Family(self.name, "counter", self.help)
        with self._lock:
            for key, value in sorted(self._values.items()):
                f.add(value, dict(key), suffix="_total" if not self.name.endswith("_total") else "")
        return f


class Histogram:
    """Observations counted into cumulative buckets per label set, in this process."""

    def __init__(self, name: str, help: str, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.name, self.help = name, help
        self.buckets = tuple(sorted(buckets))
        self._data: dict[tuple[tuple[str, str], ...], tuple[list[int], list[float]]] = {}
        self._lock = threading.Lock()

    def observe(self, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            counts, total = self._data.setdefault(key, ([0] * (len(self.buckets) + 1), [0.0]))
            counts[bisect.bisect_left(self.buckets, value)] += 1
            total[0] += value

    def family(self) -> Family:
        f = Family(self.name, "histogram", self.help)
        with self._lock:
            for key, (counts, total) in sorted(self._data.items()):
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
    """Observed metrics of this process plus collectors run at each scrape."""

    def __init__(self) -> None:
        self._metrics: list[Counter | Histogram] = []
        self._collectors: list[Collector] = []

    def counter(self, name: str, help: str) -> Counter:
        c = Counter(name, help)
        self._metrics.append(c)
        return c

    def histogram(
        self, name: str, help: str, buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> Histogram:
        h = Histogram(name, help, buckets)
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
