"""sources.prefetched: a producer thread ahead of the consumer, in order, errors in place."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from paperradar.errors import SourceError
from paperradar.sources import prefetched


def test_items_arrive_in_order_and_the_switch_interval_is_restored() -> None:
    before = sys.getswitchinterval()
    assert list(prefetched(range(1000), depth=3)) == list(range(1000))
    assert sys.getswitchinterval() == before


def test_an_error_of_the_producer_comes_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise SourceError("truncated", source="test", location="f:3")

    got: list[int] = []
    with pytest.raises(SourceError, match="truncated"):
        for x in prefetched(items()):
            got.append(x)
    assert got == [1, 2]


def test_closing_early_stops_and_closes_the_producer() -> None:
    closed = threading.Event()

    def items() -> Iterator[int]:
        try:
            n = 0
            while True:
                n += 1
                yield n
        finally:
            closed.set()

    ahead = prefetched(items(), depth=2)
    assert next(ahead) == 1
    ahead.close()
    assert closed.is_set()
    assert not any(t.name == "paperradar-prefetch" for t in threading.enumerate())
