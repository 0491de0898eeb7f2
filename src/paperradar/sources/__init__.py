"""Sources: one module per source. Each has a pure ``parse_*(data: bytes)`` yielding papers and
problems, and a ``fetch_*`` that does the HTTP and yields :class:`Batch` es.

A batch is the unit of durability: ingest stores its papers *and* its checkpoint in one
transaction, so a run killed at any point resumes from the last stored checkpoint and ends with
exactly the database an uninterrupted run gives.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from paperradar.model import Paper, ParseProblem

__all__ = ["Batch", "Record", "prefetched"]

T = TypeVar("T")

Record = Paper | ParseProblem


@dataclass(slots=True)
class Batch:
    """Papers and problems from one request or file chunk, plus where to resume after it.

    ``checkpoint`` is a JSON-able dict stored per source (e.g. ``{"resumption_token": …}`` or
    ``{"start": 200}``); ``None`` means "no change". ``location`` names the URL/file and position
    for messages.
    """

    source: str
    records: list[Record] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None
    location: str = ""


def records_to_batches(
    source: str, records: Iterator[Record], *, size: int = 5000, location: str = ""
) -> Iterator[Batch]:
    """Group a record stream (e.g. a file parse) into batches of ``size``."""
    chunk: list[Record] = []
    for rec in records:
        chunk.append(rec)
        if len(chunk) >= size:
            yield Batch(source, chunk, None, location)
            chunk = []
    if chunk:
        yield Batch(source, chunk, None, location)


# How long a thread may hold the GIL while another waits for it, during a prefetch: the writer
# gets it back after each SQLite step within this time instead of Python's default 5 ms.
PREFETCH_SWITCH_INTERVAL_S = 0.0005
_prefetching = [0, 0.0]  # prefetches running, the switch interval before the first one
_prefetching_lock = threading.Lock()


def _short_switch_interval(enter: bool) -> None:
    """The first prefetch to start shortens the interval, the last to end restores it."""
    with _prefetching_lock:
        if enter:
            if _prefetching[0] == 0:
                _prefetching[1] = sys.getswitchinterval()
                sys.setswitchinterval(min(_prefetching[1], PREFETCH_SWITCH_INTERVAL_S))
            _prefetching[0] += 1
        else:
            _prefetching[0] -= 1
            if _prefetching[0] == 0:
                sys.setswitchinterval(_prefetching[1])


def prefetched(items: Iterable[T], depth: int = 1) -> Generator[T, None, None]:
    """``items``, produced on a thread of their own up to ``depth`` ahead of the consumer.

    For a file parse feeding the writer: the parse of the next batch runs while SQLite stores
    this one (the sqlite3 driver releases the GIL while a statement runs). Exceptions of the
    producer come out here, after every item produced before them. Closing this iterator stops
    the producer after its current item.
    """
    done = object()
    q: queue.Queue[tuple[object, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: object, value: Any) -> bool:
        while not stop.is_set():
            try:
                q.put((kind, value), timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        it = iter(items)
        try:
            for item in it:
                if not put(None, item):
                    return
            put(done, None)
        except BaseException as exc:  # handed over to the consumer, raised there
            put(BaseException, exc)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    _short_switch_interval(True)
    worker = threading.Thread(target=produce, name="paperradar-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = q.get()
            if kind is done:
                return
            if kind is BaseException:
                raise value
            yield value
    finally:
        stop.set()
        worker.join()
        _short_switch_interval(False)
