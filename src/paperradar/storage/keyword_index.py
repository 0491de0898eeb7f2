"""SQLite's keyword index: a tantivy (Rust, BM25) index next to the database.

FTS5's ``bm25()`` scores every row that matches and reads its length from ``%_docsize``: a
common word at 1,000,000 papers cost hundreds of milliseconds. tantivy scores every match too
(``Searcher.search`` of tantivy-py 0.27 collects through a ``MultiCollector``, which never takes
tantivy's block-max WAND path: the best 1 costs what counting every match costs), but in Rust
over compressed postings: ~15-20 ms for two words that are each in 40-85 % of 1 M papers, 1-9 ms
for everything else (``benchmarks/keyword_scale.py``: keyword p95 in README). tantivy-py releases
the GIL while it searches, so such a search runs as two halves on two threads when a core is
idle (``KeywordIndex._halves``): the same page, in ~0.7 of the time, for ~1.4 times the CPU.

Layout: the folder ``<db>.keywords`` (an in-memory database gets an in-memory index). Fields:

* ``all`` = title, abstract and authors in one text (ranking and unfielded phrases; one field
  keeps BM25 as FTS5 computed it over the whole row: SciFact nDCG@10 0.70 against 0.68 summing
  per-field BM25); ``title`` and ``authors`` for ``title:``/``author:``; ``abstract:`` matches
  in ``all`` and is checked against the stored abstract (indexing the abstract twice would
  double the write cost for a rare operator);
* filters as exact terms or numbers: ``cat`` (every category and its ``.``/``-`` prefixes, lower
  case), ``src``, ``pid`` (canonical id), ``pub`` (published, epoch seconds), ``seen``
  (published, else first seen);
* ``part`` ("0" or "1"): the half of the papers a split search scores (blocks of 4,096 pks
  alternate);
* ``pk`` (the papers row) and one meta document (pk 0) holding ``seq`` and ``maxpk``.

An index of another layout (a release before a field was added) is rebuilt from ``papers`` when
it is opened, once any process of the older release has let go of its writer.

Consistency. The write path (``SqliteStorage._fts_insert``/``_fts_delete``) appends the touched
pks to ``keyword_changes`` inside the papers transaction; the index applies them in ``seq`` order
afterwards and commits the highest applied ``seq`` in the meta document together with the
documents, atomically. So a crash between the two commits, a second process writing the same
database, or a lost index folder all end the same way: the next reader or writer catches up from
``keyword_changes`` (or rebuilds from ``papers`` when the folder is missing, damaged, or belongs
to another database). tantivy allows one writer per folder: a process that finds it taken serves
the last commit and leaves the changes to the holder (which applies everything up to the newest
``seq`` before it lets go); ``close()`` waits for it.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
import tantivy

from paperradar.querylang import Query
from paperradar.storage.base import Cursor, PaperFilter
from paperradar.storage.fts import MAX_OR_TERMS, ranking_words
from paperradar.storage.schema import papers

__all__ = ["KEYWORD_CHANGES", "KeywordIndex", "index_path_for"]

log = logging.getLogger(__name__)

KEYWORD_CHANGES = sa.table("keyword_changes", sa.column("seq"), sa.column("pk"))
ANALYZER = "paperradar"
WRITER_HEAP = 64_000_000
COMMIT_EVERY_S = 2.0  # the write path commits at most this often (search and close() always do)
APPLY_BATCH = 20_000  # changes read from keyword_changes per round
PRUNE_AFTER = 100_000  # applied change rows kept before they are deleted
STAMP_TRUST_S = 1.0  # unchanged database files skip the catch-up check this long at most
IDLE_RELEASE_S = 3.0  # a writer unused this long is committed, merged and released
LOCK_WAIT_S = 60.0  # a rebuild waits this long for another process's writer
CLOSE_WAIT_S = 5.0  # close() this long; then the holder (or the next search) indexes the rest
FIRST_DEPTH = 64
# Newest-first listings search the newest LISTING_WINDOW papers' matches first, then ten times
# as many, then all (see ``newest``).
LISTING_WINDOW = 20_000
META_PK = 0
# The two parts of the papers that an expensive search runs on in parallel (see ``search``):
# blocks of 2**PART_SHIFT pks alternate between them, so that in every segment (documents in pk
# order) each part is long runs of doc ids that an intersection skips whole.
PART_SHIFT = 12
_PARTS = ("0", "1")
# A search is split when every word of its intersection is in at least this many papers (below
# it the whole costs under ~8 ms of CPU and halves would not pay for their thread).
SPLIT_MIN_DOCS = 250_000


def index_path_for(database: Path | None) -> Path | None:
    return None if database is None else database.with_name(database.name + ".keywords")


# Tokens longer than this many bytes are dropped (ids, sequences, URLs run together).
LONG_TOKEN = 60
STEM_CACHE = 200_000  # distinct words whose stems are kept (cleared when full: memory stays flat)
# ASCII text, for ``str.translate``: letters and digits lower-cased, everything else a space.
_ASCII_WORDS = str.maketrans({i: chr(i).lower() if chr(i).isalnum() else " " for i in range(128)})


def _reference_analyzer() -> tantivy.TextAnalyzer:
    """The chain whose tokens :class:`Analyzer` gives: letter/digit runs, long ones dropped, case
    and accents folded, Snowball English stems -- what FTS5's "porter unicode61
    remove_diacritics 2" did (without stemming SciFact nDCG@10 drops to 0.67). Indexes built
    with it as their tokenizer hold the same terms at the same positions."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(LONG_TOKEN))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


# In the index's text, a dropped (long) token is this word, which the index drops in turn: its
# position stays taken, as with remove_long. Folded words never come near this length (a word
# under LONG_TOKEN bytes as written folds to at most ~3 times as many).
_DROPPED = "_" * 256


def _index_tokenizer() -> tantivy.TextAnalyzer:
    """What the index runs on :meth:`Analyzer.index_text`: words already analyzed, split at
    spaces; the stand-in of a long token (kept in the text for its position) dropped."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace())
        .filter(tantivy.Filter.remove_long(len(_DROPPED)))
        .build()
    )


class _Stems(dict[str, str]):
    """Folded word -> stem, filled on a miss by tantivy's own Snowball stemmer. Used as is
    (``__getitem__``) for ASCII words, whose length as written is their length."""

    def __init__(self) -> None:
        super().__init__()
        self._stemmer = (
            tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw())
            .filter(tantivy.Filter.stemmer("english"))
            .build()
        )

    def __missing__(self, word: str) -> str:
        if len(word) >= LONG_TOKEN:  # ASCII: dropped by remove_long, never stemmed
            return _DROPPED
        return self.stem(word)

    def stem(self, word: str) -> str:
        """The stem of a folded word, whatever its length (never ``_DROPPED``)."""
        stem = self.get(word)
        if stem is None:
            stem = self._stemmer.analyze(word)[0]
            if len(word) < LONG_TOKEN:  # longer ones stay out: as ASCII they are dropped
                if len(self) >= STEM_CACHE:
                    self.clear()
                self[word] = stem
        return stem


class Analyzer:
    """The keyword analyzer of both sides: the tokens of :func:`_reference_analyzer`, computed
    here with a stem cache.

    Snowball stemming was most of the index's build cost (each occurrence of each word stemmed
    again, allocations included); the vocabulary is Zipfian, so a dict of stems hits almost
    always. ASCII text (nearly all) is split with ``str.translate``; other text goes through
    tantivy's own tokenizer, lower-caser and ASCII folding, so both give what the chain gives.
    The index gets the stems joined by spaces (:meth:`index_text`) and only splits them."""

    def __init__(self) -> None:
        self._stems = _Stems()
        self._plain = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).build()
        self._folded = (
            tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.ascii_fold())
            .build()
        )

    def _stemmed(self, text: str) -> list[str]:
        """The stems of ``text``'s words in order, ``_DROPPED`` for each long one."""
        if text.isascii():
            return list(map(self._stems.__getitem__, text.translate(_ASCII_WORDS).split()))
        folded = self._folded.analyze(text)
        stem = self._stems.stem
        if all(len(w) * 4 < LONG_TOKEN for w in folded):  # none was long as written
            return [stem(w) for w in folded]
        # remove_long judged each word as written, before folding changed its length
        original = self._plain.analyze(text)
        return [
            _DROPPED if len(o.encode()) >= LONG_TOKEN else stem(f)
            for o, f in zip(original, folded, strict=True)
        ]

    def index_text(self, text: str) -> str:
        """``text`` analyzed, as the index's whitespace tokenizer reads it."""
        if text.isascii():
            return " ".join(map(self._stems.__getitem__, text.translate(_ASCII_WORDS).split()))
        return " ".join(self._stemmed(text))

    def analyze(self, text: str) -> list[str]:
        """The tokens of ``text`` (long ones dropped), as the index holds them."""
        return [w for w in self._stemmed(text) if w is not _DROPPED]


def _schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("pk", indexed=True, fast=True)  # i64: Python ints delete by term
    for name in ("all", "title", "authors"):
        sb.add_text_field(name, tokenizer_name=ANALYZER, index_option="position")
    for name in ("cat", "src", "pid", "part"):
        sb.add_text_field(name, tokenizer_name="raw", index_option="basic")
    sb.add_integer_field("pub", indexed=True, fast=True)
    sb.add_integer_field("seen", indexed=True, fast=True)
    sb.add_integer_field("seq", fast=True)
    sb.add_integer_field("maxpk", fast=True)
    return sb.build()


def category_terms(categories: Iterable[str]) -> set[str]:
    """Each category with every prefix ending before a ``.``/``-``: what ``cat:`` may name
    (``cs.LG`` -> ``cs.lg``, ``cs``; ``q-bio.NC`` -> ``q-bio.nc``, ``q-bio``, ``q``)."""
    out: set[str] = set()
    for cat in categories:
        c = cat.lower()
        out.add(c)
        for i, ch in enumerate(c):
            if ch in ".-" and i:
                out.add(c[:i])
    return out


@functools.lru_cache(maxsize=1 << 12)
def _category_terms(categories: str) -> tuple[str, ...]:
    """:func:`category_terms` of a stored ``categories`` column (few distinct values)."""
    return tuple(sorted(category_terms(categories.split())))


def _epoch(dt: datetime | None) -> int | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


# A papers row as the index reads it: one JSON array per row, a batch of rows in one step.
_COLUMNS = "pk, id, title, abstract, author_names, categories, sources, published, first_seen"
READ_BATCH = 4000  # rows per read


def _driver(conn: sa.Connection) -> sqlite3.Connection:
    db = conn.connection.driver_connection
    assert isinstance(db, sqlite3.Connection)
    return db


def _rows(db: sqlite3.Connection, where: str, params: Sequence[Any]) -> list[list[Any]]:
    """``[pk, id, title, abstract, author_names, categories, sources, published, first_seen]``
    of the papers ``WHERE where``, fetched in one step as one JSON document."""
    (doc,) = db.execute(
        f"SELECT json_group_array(json_array({_COLUMNS})) "
        f"FROM (SELECT {_COLUMNS} FROM papers WHERE {where})",
        params,
    ).fetchone()
    rows: list[list[Any]] = orjson.loads(doc)
    return rows


@functools.lru_cache(maxsize=1 << 14)
def _stored_epoch(value: str) -> int:
    """A stored (naive UTC) datetime as epoch seconds."""
    return int(datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp())


def _document(row: Sequence[Any], text: Callable[[str], str], part_shift: int) -> tantivy.Document:
    pk, pid, title, abstract, names, categories, sources, published, first_seen = row
    title = text(title)
    names = text(names)
    doc = tantivy.Document()
    doc.add_integer("pk", pk)
    doc.add_text("part", _PARTS[pk >> part_shift & 1])
    # Three values of one field: one length for BM25, and a phrase never spans two of them.
    doc.add_text("all", title)
    doc.add_text("all", text(abstract))
    doc.add_text("all", names)
    doc.add_text("title", title)
    doc.add_text("authors", names)
    doc.add_text("pid", pid)
    for cat in _category_terms(categories):
        doc.add_text("cat", cat)
    for src in sources.split():
        doc.add_text("src", src)
    if published is not None:
        seen = _stored_epoch(published)
        doc.add_integer("pub", seen)
    else:
        seen = _stored_epoch(first_seen)  # NOT NULL
    doc.add_integer("seen", seen)
    return doc


class _Busy(Exception):
    """Another process holds the index's writer."""


@dataclass(frozen=True, slots=True)
class _Plan:
    query: tantivy.Query
    abstract_phrases: tuple[tuple[str, ...], ...]  # ``abstract:`` terms, checked on the text
    authors: tuple[str, ...]  # substring filters checked in SQL
    # (field, term) of every word that each match holds (what an intersection walks)
    required_words: tuple[tuple[str, str], ...] = ()
    scored: int = 0  # clauses of ``query`` that score (the others are filters and exclusions)
    # ``query``'s clauses when they are all required or excluded and at most two of them score
    # (``_halves`` may add one there); else ``None``
    flat: tuple[tuple[tantivy.Occur, tantivy.Query], ...] | None = None


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _busy() -> tuple[float, int]:
    """The load average of the last minute and the tasks running or runnable now, this one
    included (``/proc/loadavg``); 0 for what is not known."""
    try:
        with open("/proc/loadavg", "rb") as fh:
            fields = fh.read().split()
        return float(fields[0]), int(fields[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return 0.0, 0


def _hits(searcher: tantivy.Searcher, query: tantivy.Query, depth: int) -> list[tuple[float, int]]:
    """(score, pk) of ``query``'s best ``depth`` matches, best first."""
    hits = searcher.search(query, depth, count=False).hits
    pks = searcher.fast_field_values("pk", [a for _, a in hits])
    return [(float(s), int(pk or 0)) for (s, _), pk in zip(hits, pks, strict=True)]


class KeywordIndex:
    """The keyword index of one SQLite database (see the module docstring)."""

    def __init__(self, engine: sa.Engine, path: Path | None, database: Path | None = None) -> None:
        self.engine = engine
        self.path = path
        self.database = database
        self._stamp: tuple[int, ...] | None = None  # the database files when last caught up
        self._stamped_at = 0.0
        self.schema = _schema()
        self.analyzer = Analyzer()
        self._lock = threading.RLock()
        self._writer: Any | None = None
        self._pending_seq = 0  # applied to the writer, not yet committed
        self._pending_maxpk = 0
        self._last_commit = 0.0
        self._pruned_to = 0
        self._used = 0.0  # when the writer was last used
        self._idle_thread: threading.Thread | None = None
        self.part_shift = PART_SHIFT
        self.split_min_docs = SPLIT_MIN_DOCS
        # split while fewer tasks than this run now, and ran in the last minute (less 0.5)
        self.split_below_running = _cores()
        self.split_searches = 0  # searches that ran as two halves (benchmarks report them)
        self.split_declined = 0  # searches that would have, but found every core busy
        self._split_pool: ThreadPoolExecutor | None = None
        self._split_pid = 0  # the process whose thread that pool has (a fork has none)
        self._split_busy = threading.Lock()
        self._discarded = "missing"  # why a folder without an index has none (for the log)
        self._index = self._open()
        self._checked = False
        self.listing_window = LISTING_WINDOW

    # -- opening, rebuilding ---------------------------------------------------------------------
    def _new_index(self, reuse: bool) -> tantivy.Index:
        if self.path is None:
            index = tantivy.Index(self.schema)
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            index = tantivy.Index(self.schema, path=str(self.path), reuse=reuse)
        index.register_tokenizer(ANALYZER, _index_tokenizer())
        return index

    def _open(self) -> tantivy.Index:
        try:
            return self._new_index(reuse=True)
        except (ValueError, OSError) as exc:
            if "schema does not match" in str(exc):
                log.warning("the keyword index %s has an older layout: rebuilding it", self.path)
                self._wait_for_old_writer()
                self._discarded = "an older layout"
            else:
                log.warning(
                    "the keyword index %s is unreadable (%s): rebuilding it", self.path, exc
                )
                self._discarded = "unreadable"
            self._discard()
            return self._new_index(reuse=True)

    def _wait_for_old_writer(self) -> None:
        """Wait (LOCK_WAIT_S at most) until no process of an older release writes the index's
        folder, which goes: that process indexes every change up to the newest before it lets
        go, and the rebuild reads them all from ``papers`` anyway."""
        try:
            old = tantivy.Index.open(str(self.path))
            old.register_tokenizer(ANALYZER, _index_tokenizer())
        except (ValueError, OSError):
            return
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                writer = old.writer(WRITER_HEAP, 1)
            except ValueError as exc:
                if "lock" not in str(exc).lower():
                    return
                if time.monotonic() >= deadline:
                    log.warning("another process still writes %s: rebuilding it anyway", self.path)
                    return
                time.sleep(0.05)
            else:
                writer.rollback()
                self._finish(writer)  # frees the lock
                return

    def _discard(self) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)

    def _meta(self, searcher: tantivy.Searcher) -> tuple[int, int] | None:
        """(seq, maxpk) of the last commit; ``None`` for an index without its meta document."""
        hits = searcher.search(tantivy.Query.term_query(self.schema, "pk", META_PK), 1).hits
        if not hits:
            return None
        addr = [hits[0][1]]
        return int(searcher.fast_field_values("seq", addr)[0] or 0), int(
            searcher.fast_field_values("maxpk", addr)[0] or 0
        )

    def _head(self, conn: sa.Connection) -> int:
        return int(conn.execute(sa.select(sa.func.max(KEYWORD_CHANGES.c.seq))).scalar() or 0)

    def _check(self) -> None:
        """First use: rebuild an index that is empty, foreign or out of step with ``papers``."""
        with self.engine.connect() as conn:
            head = self._head(conn)
            count = int(conn.execute(sa.select(sa.func.count()).select_from(papers)).scalar_one())
        searcher = self._index.searcher()
        meta = self._meta(searcher)
        if meta is None or meta[0] > head:
            why = self._discarded if meta is None else "from another database"
            self._rebuild(why, count)
            return
        self._catch_up(commit=True)
        searcher = self._searcher()
        if searcher.num_docs - 1 != count and self._pending_seq == 0:
            meta = self._meta(searcher)
            if meta is not None and meta[0] >= head:
                self._rebuild(f"out of step ({searcher.num_docs - 1:,} of {count:,} papers)", count)

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Build the index again from ``papers``; returns the number of papers indexed.
        ``progress(done, total)`` is called after each batch of papers."""
        with self._lock:
            with self.engine.connect() as conn:
                count = int(
                    conn.execute(sa.select(sa.func.count()).select_from(papers)).scalar_one()
                )
            self._rebuild("asked for", count, progress)
            self._checked = True
            return count

    def _rebuild(
        self, why: str, count: int, progress: Callable[[int, int], None] | None = None
    ) -> None:
        if count:
            log.warning(
                "building the keyword index of %s papers (%s; index %s): search waits for it",
                f"{count:,}",
                why,
                self.path or "in memory",
            )
        started = time.perf_counter()
        self._drop_writer()
        # Two indexing threads beside this one reading rows (one for small updates).
        writer = self._take_writer(wait=LOCK_WAIT_S, threads=2)
        try:
            writer.delete_all_documents()
            done = 0
            maxpk = 0
            text = self.analyzer.index_text
            with self.engine.connect() as conn:
                conn.exec_driver_sql("BEGIN")  # one snapshot for the head seq and the rows
                head = self._head(conn)
                db = _driver(conn)
                while True:
                    rows = _rows(
                        db,
                        "pk > ? ORDER BY pk LIMIT ?",
                        (maxpk, READ_BATCH),
                    )
                    if not rows:
                        break
                    for row in rows:
                        writer.add_document(_document(row, text, self.part_shift))
                    maxpk = rows[-1][0]
                    done += len(rows)
                    if progress is not None:
                        progress(done, max(count, done))
                    if done % 200_000 < len(rows):
                        log.warning("keyword index: %s of %s papers", f"{done:,}", f"{count:,}")
                conn.rollback()
            self._add_meta(writer, head, maxpk)
            writer.commit()
        except BaseException:
            self._drop_writer()
            raise
        self._writer = None
        self._pending_seq = 0
        self._finish(writer)
        self._index.reload()
        if count:
            log.warning(
                "keyword index ready: %s papers in %.1f s",
                f"{done:,}",
                time.perf_counter() - started,
            )

    # -- the writer ------------------------------------------------------------------------------
    def _take_writer(self, wait: float = 0.0, threads: int = 1) -> Any:
        if self._writer is not None:
            return self._writer
        deadline = time.monotonic() + wait
        while True:
            try:
                self._writer = self._index.writer(WRITER_HEAP * threads, threads)
                self._used = time.monotonic()
                self._watch_idle()
                return self._writer
            except ValueError as exc:
                if "lock" not in str(exc).lower():
                    raise
                if time.monotonic() >= deadline:
                    raise _Busy(str(exc)) from exc
                time.sleep(0.05)

    def _release(self) -> Any | None:
        """Commit and let go of the writer; the caller finishes it (``_finish``) outside the lock.
        Dropping a tantivy writer cancels its merges, so it is kept while writes go on and
        finished, merges done, once idle (IDLE_RELEASE_S) or at close()."""
        writer = self._writer
        if writer is None:
            return None
        self._commit()
        self._writer = None
        return writer

    def _finish(self, writer: Any | None) -> None:
        if writer is not None:
            try:
                writer.wait_merging_threads()  # frees the lock file when it returns
            except ValueError as exc:
                log.info("keyword index merge stopped: %s", exc)

    def _watch_idle(self) -> None:
        """Release the writer of a process that stopped writing, so others can index."""
        if self._idle_thread is not None:
            return
        thread = threading.Thread(target=self._idle_loop, name="keyword-index-idle", daemon=True)
        self._idle_thread = thread
        thread.start()

    def _idle_loop(self) -> None:
        while True:
            time.sleep(0.5)
            with self._lock:
                if self._writer is not None and time.monotonic() - self._used < IDLE_RELEASE_S:
                    continue
                try:
                    if self._writer is not None:  # other processes' changes too, while it holds it
                        self._catch_up(commit=False)
                    writer = self._release()
                except (ValueError, OSError, sa.exc.SQLAlchemyError) as exc:
                    log.warning("keyword index commit failed (the next use catches up): %s", exc)
                    self._drop_writer()
                    writer = None
                self._idle_thread = None
            self._finish(writer)
            return

    def _drop_writer(self) -> None:
        if self._writer is not None:
            self._writer.rollback()
            self._writer = None
        self._pending_seq = 0

    def _add_meta(self, writer: Any, seq: int, maxpk: int) -> None:
        writer.delete_documents_by_term("pk", META_PK)
        doc = tantivy.Document()
        doc.add_integer("pk", META_PK)
        doc.add_integer("seq", seq)
        doc.add_integer("maxpk", maxpk)
        writer.add_document(doc)

    # -- catching up -----------------------------------------------------------------------------
    def _searcher(self) -> tantivy.Searcher:
        return self._index.searcher()

    def _catch_up(self, *, commit: bool, wait: float = 0.0) -> bool:
        """Apply the changes after the index's ``seq``; commit when asked (or when the last
        commit is older than COMMIT_EVERY_S). Another process's writer: keep the last commit and
        return False."""
        with self.engine.connect() as conn:
            head = self._head(conn)
        meta = self._meta(self._searcher())
        committed = meta[0] if meta else 0
        if head > committed and self._writer is None:
            self._index.reload()  # another process may have committed them
            meta = self._meta(self._searcher())
            committed = meta[0] if meta else 0
        applied = max(committed, self._pending_seq)
        if head <= applied:
            if self._writer is not None and (commit or self._commit_due()):
                self._commit()
            return True
        try:
            writer = self._take_writer(wait=wait)
        except _Busy:
            return False
        self._used = time.monotonic()
        if self._pending_seq == 0:  # nothing uncommitted: start from what is on disk
            self._index.reload()
            meta = self._meta(self._searcher())
            applied, maxpk = meta if meta else (0, 0)
            self._pending_maxpk = maxpk
        text = self.analyzer.index_text
        with self.engine.connect() as conn:
            db = _driver(conn)
            while True:
                (changed, last) = db.execute(
                    "SELECT json_group_array(pk), max(seq) FROM (SELECT seq, pk FROM "
                    "keyword_changes WHERE seq > ? ORDER BY seq LIMIT ?)",
                    (applied, APPLY_BATCH),
                ).fetchone()
                if last is None:
                    break
                pks = sorted(set(orjson.loads(changed)))
                for pk in pks:
                    if pk <= self._pending_maxpk:
                        writer.delete_documents_by_term("pk", pk)
                for start in range(0, len(pks), READ_BATCH):
                    chunk = orjson.dumps(pks[start : start + READ_BATCH]).decode()
                    where = "pk IN (SELECT value FROM json_each(?))"
                    for row in _rows(db, where, (chunk,)):
                        writer.add_document(_document(row, text, self.part_shift))
                self._pending_maxpk = max(self._pending_maxpk, pks[-1])
                applied = int(last)
                self._pending_seq = applied
        if commit or self._commit_due():
            self._commit()
        return True

    def _commit_due(self) -> bool:
        return time.monotonic() - self._last_commit >= COMMIT_EVERY_S

    def _commit(self) -> None:
        writer = self._writer
        if writer is None:
            return
        if self._pending_seq:
            self._add_meta(writer, self._pending_seq, self._pending_maxpk)
        writer.commit()
        seq = self._pending_seq
        self._pending_seq = 0
        self._last_commit = self._used = time.monotonic()
        self._index.reload()
        if seq - self._pruned_to >= PRUNE_AFTER:
            self._prune(seq)

    def _prune(self, seq: int) -> None:
        """Delete the change rows the committed index already holds (their pks are in it)."""
        try:
            with self.engine.begin() as conn:
                # The newest row stays: max(seq) is how far the database has gone.
                conn.execute(sa.delete(KEYWORD_CHANGES).where(KEYWORD_CHANGES.c.seq < seq))
            self._pruned_to = seq
        except sa.exc.OperationalError as exc:  # busy: the next commit prunes
            log.info("keyword_changes not pruned yet: %s", exc)

    # -- the public surface ----------------------------------------------------------------------
    def _files_stamp(self) -> tuple[int, ...] | None:
        """Size and mtime of the database and its WAL: every commit changes them."""
        if self.database is None:
            return None
        out: list[int] = []
        for name in (str(self.database), f"{self.database}-wal"):
            try:
                st = os.stat(name)
            except OSError:
                out += [-1, -1]
            else:
                out += [st.st_size, st.st_mtime_ns]
        return tuple(out)

    def _unchanged(self, stamp: tuple[int, ...] | None) -> bool:
        return (
            stamp is not None
            and stamp == self._stamp
            and self._pending_seq == 0
            and time.monotonic() - self._stamped_at < STAMP_TRUST_S
        )

    def ensure_current(self) -> None:
        """Make the committed index hold every committed change this process can apply.
        Cheap when nothing was written: the database files are as they were at the last check
        (re-checked at least every STAMP_TRUST_S, as mtimes are coarse). That answer needs no
        lock: concurrent searches only queue behind the one that catches up."""
        if self._unchanged(self._files_stamp()):
            return
        with self._lock:
            stamp = self._files_stamp()
            if self._unchanged(stamp):
                return
            if not self._checked:
                self._check()
                self._checked = True
                done = True
            else:
                done = self._catch_up(commit=True)
            if done:
                self._stamp, self._stamped_at = stamp, time.monotonic()

    def prepare(self) -> None:
        """Check the index once before the first write (a new database's is built silently)."""
        with self._lock:
            if not self._checked:
                self._check()
                self._checked = True

    def after_write(self) -> None:
        """Called after a papers transaction committed: index its changes (commit now and then)."""
        with self._lock:
            if not self._checked:
                self._check()
                self._checked = True
            else:
                self._catch_up(commit=False)

    def close(self) -> None:
        writer = None
        with self._lock:
            try:
                if self._checked or self._writer is not None:
                    self._catch_up(commit=True, wait=CLOSE_WAIT_S)
                writer = self._release()
            except (_Busy, ValueError, OSError, sa.exc.SQLAlchemyError) as exc:
                log.warning("keyword index left behind (the next search catches up): %s", exc)
                self._drop_writer()
            idle = self._idle_thread
        self._finish(writer)
        if idle is not None:
            idle.join()
        with self._split_busy:
            pool, self._split_pool = self._split_pool, None
        if pool is not None:
            pool.shutdown()

    def search(
        self,
        query: Query,
        flt: PaperFilter,
        *,
        limit: int,
        after: Cursor | None,
        require_all: bool,
    ) -> list[tuple[int, float]]:
        """(pk, score) best first, ties by pk descending, after ``after``.

        tantivy scores every match (module docstring): two words that are each in most papers
        cost ~20 ms. Such a search runs as two halves on two threads (``_halves``), each
        scoring the matches in one part of the papers, and the two lists are merged: every
        match has the score it has in the whole, so the page is the same."""
        plan = self._plan(query, flt, require_all=require_all)
        if plan is None:
            return []
        self.ensure_current()
        searcher = self._searcher()
        halves = self._halves(plan, searcher)
        # Not just the page and one more: BM25 ties are common (short texts of common words)
        # and a tie at the cut means searching again, deeper; asking for 21 instead of 64 hits
        # made half the benchmark queries run twice (1 M papers: CPU p95 24 -> 37 ms).
        depth = max(FIRST_DEPTH, 2 * limit)
        while True:
            found = self._best(searcher, plan.query, halves, depth)
            ranked = sorted((hit for hits in found for hit in hits), key=lambda t: (-t[0], -t[1]))
            # Every match scoring more than ``cut`` is in ``ranked`` (a list cut at ``depth``
            # may lack ties of its last score, and anything lower); None: every match is.
            cut = max((hits[-1][0] for hits in found if len(hits) >= depth), default=None)
            if after is not None and isinstance(after.value, float | int):
                ranked = [
                    (s, pk)
                    for s, pk in ranked
                    if s < after.value or (s == after.value and pk < after.pk)
                ]
            kept = self._verified(plan, ranked)
            if cut is None or (len(kept) >= limit and cut < kept[limit - 1][1]):
                return [(pk, s) for pk, s in kept[:limit]]
            depth *= 4

    def _halves(
        self, plan: _Plan, searcher: tantivy.Searcher
    ) -> tuple[tantivy.Query, tantivy.Query] | None:
        """``plan.query`` as two queries whose matches are its matches in one part of the papers
        each (the ``part`` field), with the same scores -- when that pays: every word that each
        match holds is in ``split_min_docs`` papers or more, and something is looked up for
        each of them (a second word or clause; one word alone is a cheap walk down its
        postings), and a core is idle: now, and in the last minute's load average (a busy
        machine runs the halves one after the other, at ~1.5 times the whole's CPU; a neighbour
        that runs now and then takes the core back within a search).

        A half costs ~0.7 of the whole, not 0.5: the intersection seeks the part's postings for
        every match it finds. The part clause scores 0 (a boost of 0), so a match's score is
        its score in the whole: ``x + 0.0 == x`` exactly, and tantivy sums an intersection's
        scores in the order of its clauses' sizes, which the added clause may change -- harmless
        when at most two clauses score (``plan.flat``), else the whole query is nested in the
        half, which adds 0 to its score."""
        words = plan.required_words
        if not words or len(words) + plan.scored < 3:
            return None
        if searcher.num_docs < 2 * self.split_min_docs:
            return None
        if min(searcher.doc_freq(field, w) for field, w in words) < self.split_min_docs:
            return None
        load, running = _busy()
        if running >= self.split_below_running or load >= self.split_below_running - 0.5:
            self.split_declined += 1
            return None
        halves = []
        for part in _PARTS:
            only = tantivy.Query.boost_query(
                tantivy.Query.term_query(self.schema, "part", part), 0.0
            )
            if plan.flat is not None:
                clauses = [*plan.flat, (tantivy.Occur.Must, only)]
            else:
                clauses = [(tantivy.Occur.Must, plan.query), (tantivy.Occur.Must, only)]
            halves.append(tantivy.Query.boolean_query(clauses))
        return halves[0], halves[1]

    def _best(
        self,
        searcher: tantivy.Searcher,
        query: tantivy.Query,
        halves: tuple[tantivy.Query, tantivy.Query] | None,
        depth: int,
    ) -> list[list[tuple[float, int]]]:
        """The best ``depth`` matches of ``query`` (one list), or of each half (two lists: one
        searched on this thread, one on the split thread; tantivy lets go of the GIL). While
        another search holds the split thread, the whole is searched here."""
        if halves is None or not self._split_busy.acquire(blocking=False):
            return [_hits(searcher, query, depth)]
        try:
            if self._split_pool is None or self._split_pid != os.getpid():
                self._split_pool = ThreadPoolExecutor(1, thread_name_prefix="keyword-split")
                self._split_pid = os.getpid()
            other = self._split_pool.submit(_hits, searcher, halves[1], depth)
            try:
                first = _hits(searcher, halves[0], depth)
            finally:
                wait_for([other])
            self.split_searches += 1
            return [first, other.result()]
        finally:
            self._split_busy.release()

    def newest(
        self, query: Query, flt: PaperFilter, *, limit: int, after: Cursor | None
    ) -> list[int]:
        """The pks of a set of papers matching all of ``query``'s words that holds the page of
        ``list_papers``' ``published`` order (published, else first seen; then pk) after
        ``after``, for the caller to order exactly.

        Every match is a candidate whose date is later than the ``limit``-th newest match's
        (the index holds dates as whole seconds: the papers of that second are all in or all
        out; those of the cursor's second are all in and not counted, as they may be before
        the cursor). Scanning every match costs as much as scoring it (a common word: most of
        the corpus), so when every word is common the newest ``listing_window`` papers are
        searched first (a date range, which the index answers from that range's postings), then
        ten times as many, then all.
        """
        plan = self._plan(query, flt, require_all=True)
        if plan is None:
            return []
        self.ensure_current()
        searcher = self._searcher()
        bound: int | None = None  # the cursor's second
        if after is not None and isinstance(after.value, str):
            try:
                bound = _stored_epoch(after.value)
            except ValueError:
                bound = None  # not a date: list_papers says so
        words = [
            w
            for text in (*ranking_words(query), *query.phrases)
            for w in self.analyzer.analyze(text)
        ]
        rarest = min((searcher.doc_freq("all", w) for w in words), default=0)
        # A rare word: scanning its postings whole costs less than the windows' date ranges.
        window = self.listing_window if rarest > 10 * self.listing_window else 0
        while True:
            lo = self._window_start(window, bound) if window else None
            q = plan.query
            if lo is not None or bound is not None:
                dates = _range(self.schema, "seen", lo, None if bound is None else bound + 1)
                q = tantivy.Query.boolean_query(
                    [
                        (tantivy.Occur.Must, q),
                        (tantivy.Occur.Must, tantivy.Query.const_score_query(dates, 0.0)),
                    ]
                )
            # a window's matches are cheap to list: all of them at once (papers often share a
            # date, and a short first list would end inside one and be asked for again)
            depth = 4096 if lo is not None else max(FIRST_DEPTH, 2 * limit)
            kept, enough = self._newest_in(searcher, plan, q, limit, bound, depth)
            if enough or lo is None:
                return kept
            window *= 10

    def _newest_in(
        self,
        searcher: tantivy.Searcher,
        plan: _Plan,
        q: tantivy.Query,
        limit: int,
        bound: int | None,
        depth: int,
    ) -> tuple[list[int], bool]:
        """``newest``'s candidates among ``q``'s matches, and whether they hold a full page
        (else they are every match, fewer than a page)."""
        while True:
            hits = searcher.search(
                q, depth, count=False, order_by_field="seen", order=tantivy.Order.Desc
            ).hits
            pks = searcher.fast_field_values("pk", [a for _, a in hits])
            exhausted = len(hits) < depth
            cut = hits[-1][0] if hits else 0
            seen = {
                int(pk or 0): int(value)
                for (value, _), pk in zip(hits, pks, strict=True)
                if exhausted or value > cut
            }
            kept = [pk for pk, _ in self._verified(plan, [(0.0, pk) for pk in seen])]
            # newest first; only the seconds down to the page's last one are needed
            kept.sort(key=seen.__getitem__, reverse=True)
            counted = [pk for pk in kept if bound is None or seen[pk] < bound]
            if len(counted) >= limit:
                last = seen[counted[limit - 1]]
                return [pk for pk in kept if seen[pk] >= last], True
            if exhausted:
                return kept, False
            depth *= 8

    def _window_start(self, window: int, bound: int | None) -> int | None:
        """The date (whole seconds) of the ``window``-th newest paper before the second after
        ``bound``; ``None`` when there are not that many."""
        where = ""
        params: list[Any] = [window]
        if bound is not None:
            where = "WHERE coalesce(published, first_seen) < ?"
            params.insert(0, datetime.fromtimestamp(bound + 1, UTC).strftime("%Y-%m-%d %H:%M:%S"))
        with self.engine.connect() as conn:
            row = (
                _driver(conn)
                .execute(
                    f"SELECT coalesce(published, first_seen) FROM papers {where} "
                    "ORDER BY coalesce(published, first_seen) DESC LIMIT 1 OFFSET ?",
                    params,
                )
                .fetchone()
            )
        return None if row is None else _stored_epoch(row[0])

    def _verified(self, plan: _Plan, ranked: list[tuple[float, int]]) -> list[tuple[int, float]]:
        """The hits that pass what the index cannot check itself (author substrings,
        ``abstract:`` terms), in order."""
        if not (plan.authors or plan.abstract_phrases) or not ranked:
            return [(pk, s) for s, pk in ranked]
        ok: set[int] = set()
        cols = [papers.c.pk, papers.c.abstract, papers.c.author_names]
        with self.engine.connect() as conn:
            for start in range(0, len(ranked), 4000):
                chunk = [pk for _, pk in ranked[start : start + 4000]]
                for row in conn.execute(sa.select(*cols).where(papers.c.pk.in_(chunk))):
                    names = row.author_names.lower()
                    if plan.authors and not any(a.lower() in names for a in plan.authors):
                        continue
                    if plan.abstract_phrases:
                        toks = self.analyzer.analyze(row.abstract)
                        if not all(_contains(toks, p) for p in plan.abstract_phrases):
                            continue
                    ok.add(row.pk)
        return [(pk, s) for s, pk in ranked if pk in ok]

    def matching_pks(self, query: Query) -> list[int]:
        """Every pk a query's ``-exclusions`` match (for listings of exclusions only)."""
        parts = self._excluded(query)
        if not parts:
            return []
        self.ensure_current()
        searcher = self._searcher()
        q = parts[0] if len(parts) == 1 else _should(parts)
        hits = searcher.search(q, max(1, searcher.num_docs), count=False).hits
        return [int(pk or 0) for pk in searcher.fast_field_values("pk", [a for _, a in hits])]

    def info(self) -> dict[str, Any]:
        with self._lock:
            searcher = self._searcher()
            meta = self._meta(searcher)
            return {
                "path": str(self.path) if self.path else None,
                "papers": max(0, searcher.num_docs - 1),
                "seq": meta[0] if meta else None,
            }

    # -- compiling a query -----------------------------------------------------------------------
    def _text(self, text: str, field: str) -> tantivy.Query | None:
        toks = self.analyzer.analyze(text)
        if not toks:
            return None
        if len(toks) == 1:
            return tantivy.Query.term_query(self.schema, field, toks[0])
        words: list[str | tuple[int, str]] = list(toks)
        return tantivy.Query.phrase_query(self.schema, field, words)

    def _excluded(self, query: Query) -> list[tantivy.Query]:
        texts = (*query.excluded_terms, *query.excluded_phrases)
        return [q for q in (self._text(t, "all") for t in texts) if q is not None]

    def _ranking(self, query: Query) -> list[tantivy.Query]:
        compiled = (self._text(term, "all") for term in ranking_words(query))
        return [q for q in compiled if q is not None][:MAX_OR_TERMS]

    def _plan(self, query: Query, flt: PaperFilter, *, require_all: bool) -> _Plan | None:
        analyze = self.analyzer.analyze
        required = [q for q in (self._text(p, "all") for p in query.phrases) if q is not None]
        words = [("all", w) for p in query.phrases for w in analyze(p)]
        abstract: list[tuple[str, ...]] = []
        for ft in query.field_terms:
            field = "all" if ft.field == "abstract" else ft.field
            q = self._text(ft.text, field)
            if q is not None:
                required.append(q)
                words += [(field, w) for w in analyze(ft.text)]
                if ft.field == "abstract":
                    abstract.append(tuple(analyze(ft.text)))
        authors = [q for q in (self._text(a, "authors") for a in query.authors) if q is not None]
        if authors:
            required.append(authors[0] if len(authors) == 1 else _should(authors))
            if len(authors) == 1:
                words += [("authors", w) for w in analyze(query.authors[0])]
        terms = self._ranking(query)
        if not required and not terms:
            return None
        clauses: list[tuple[tantivy.Occur, tantivy.Query]] = [
            (tantivy.Occur.Must, q) for q in required
        ]
        occur = tantivy.Occur.Must if require_all else tantivy.Occur.Should
        excluded = self._excluded(query)
        filters = self._filters(flt)
        if terms and not required and not require_all:
            if not excluded and not filters:  # a plain disjunction
                return _Plan(_should(terms), (), tuple(flt.authors))
            clauses.append((tantivy.Occur.Must, _should(terms)))
        else:
            clauses += [(occur, q) for q in terms]
            if require_all:
                words += [("all", w) for t in ranking_words(query) for w in analyze(t)]
        scored = len(clauses)
        flat = scored <= 2 and all(o == tantivy.Occur.Must for o, _ in clauses)
        clauses += [(tantivy.Occur.MustNot, q) for q in excluded]
        clauses += [(tantivy.Occur.Must, f) for f in filters]  # they score 0
        return _Plan(
            tantivy.Query.boolean_query(clauses),
            tuple(abstract),
            tuple(query.authors) + tuple(a for a in flt.authors if a not in query.authors),
            tuple(dict.fromkeys(words)),
            scored,
            tuple(clauses) if flat else None,
        )

    def _filters(self, flt: PaperFilter) -> list[tantivy.Query]:
        s = self.schema
        out: list[tantivy.Query] = []

        def terms(field: str, values: Iterable[str]) -> tantivy.Query:
            return tantivy.Query.term_set_query(s, field, sorted(set(values)))

        if flt.categories:
            out.append(terms("cat", (c.lower().rstrip(".-") for c in flt.categories)))
        if flt.sources:
            out.append(terms("src", flt.sources))
        if flt.ids:
            out.append(terms("pid", flt.ids))
        if flt.years:
            ranges = []
            for start, end in flt.years:
                lo = _epoch(datetime(start, 1, 1)) if start is not None else None
                hi = _epoch(datetime(end + 1, 1, 1)) if end is not None else None
                ranges.append(_range(s, "pub", lo, hi))
            out.append(ranges[0] if len(ranges) == 1 else _should(ranges))
        if flt.since is not None:
            out.append(_range(s, "seen", _epoch(flt.since), None))
        if flt.published_from is not None or flt.published_to is not None:
            out.append(_range(s, "pub", _epoch(flt.published_from), _epoch(flt.published_to)))
        return [tantivy.Query.const_score_query(q, 0.0) for q in out]


def _should(queries: Sequence[tantivy.Query]) -> tantivy.Query:
    return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in queries])


def _range(schema: tantivy.Schema, field: str, lo: int | None, hi: int | None) -> tantivy.Query:
    """``lo <= field < hi`` (either end open); a document without the field never matches."""
    if lo is None and hi is None:
        return tantivy.Query.exists_query(field)
    return tantivy.Query.range_query(
        schema,
        field,
        tantivy.FieldType.Integer,
        lo,
        hi,
        include_lower=True,
        include_upper=hi is None,
    )


def _contains(tokens: list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(tuple(tokens[i : i + n]) == phrase for i in range(len(tokens) - n + 1))
