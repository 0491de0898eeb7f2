"""The floor of JSON-lines ingest on this machine: what each unavoidable step costs by itself,
with none of paperradar's own logic around it (no `Paper` objects, no dedupe, no merge).

    python benchmarks/index_floor.py                  # 50,000 papers of make_corpus.py
    python benchmarks/index_floor.py --corpus F --n 100000

Each step runs alone on data prepared beforehand and is timed in CPU seconds of the whole
process (so the native threads of tantivy count too):

* ``parse``: ``orjson.loads`` of each line;
* ``rows``: one ``executemany`` of ready tuples into the real ``papers`` table (the product's
  schema, indexes and PRAGMAs);
* ``analysis``: the keyword analyzer on title, abstract and authors (Python, stem cache);
* ``documents``: building the tantivy documents of the product's schema from analyzed text;
* ``tantivy``: adding those documents to a fresh index and committing (writer threads 1, 2);
* ``tantivy, one field``: the abstract alone, no frequencies or positions (the cheapest index
  tantivy can build: no phrase search, no BM25 term frequencies);
* ``FTS5``: SQLite's own full-text index, contentless, ``detail=none`` (its cheapest).

The total of the steps a keyword-indexed ingest cannot skip (parse, rows, analysis, documents,
tantivy) against the budget of the target: 20,000 papers/s on 2 cores is 100 µs of CPU per
paper for everything, with both cores busy all the time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import tantivy
from host import describe_host, make_corpus_file

from paperradar.engine import make_engine
from paperradar.storage import keyword_index as ki

TARGET_RATE = 20_000


def _cpu_us(n: int, fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """CPU µs per paper and wall seconds of ``fn()``, and what it returned."""
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    return (time.process_time() - cpu) / n * 1e6, time.perf_counter() - wall, out


def _row(i: int, d: dict[str, Any]) -> tuple[Any, ...]:
    names = "; ".join(a["name"] for a in d.get("authors") or [])
    cats = d.get("categories") or []
    published = (d.get("published") or "2020-01-01T00:00:00")[:19].replace("T", " ")
    return (
        d["id"],
        d.get("arxiv_id"),
        1,
        d["title"],
        d["title"].lower(),
        d.get("abstract") or "",
        orjson.dumps(d.get("authors") or []).decode(),
        names,
        " " + " ".join(cats) + " ",
        d.get("primary_category"),
        published,
        " synthetic ",
        f"h{i}",
        published,
        published,
    )


_INSERT = (
    "INSERT INTO papers (id, arxiv_id, version, title, title_key, abstract, authors, "
    "author_names, categories, primary_category, published, sources, content_hash, "
    "first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _rows_step(tmp: Path, rows: list[tuple[Any, ...]]) -> float:
    eng = make_engine(f"sqlite:///{tmp}/floor.db")  # the product's schema and migrations
    eng.close()
    db = sqlite3.connect(tmp / "floor.db", isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-65536"):
        db.execute(f"PRAGMA {pragma}")

    def insert() -> None:
        db.execute("BEGIN")
        db.executemany(_INSERT, rows)
        db.execute("COMMIT")

    us, _, _ = _cpu_us(len(rows), insert)
    db.close()
    return us


def _report(name: str, us: float) -> None:
    print(f"  {name:<42} {us:8.1f} µs CPU/paper   {1e6 / us:>9,.0f} papers per CPU-second")


_steps: dict[str, float] = {}


def _add_all(writer: Any, docs: list[tantivy.Document]) -> None:
    """Add ``docs``, commit, and wait for the merges: the whole index write."""
    for doc in docs:
        writer.add_document(doc)
    writer.commit()
    writer.wait_merging_threads()


def _tantivy(tmp: Path, docs: list[tantivy.Document], threads: int) -> float:
    folder = tmp / f"tv{threads}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    index = tantivy.Index(ki._schema(), path=str(folder))
    index.register_tokenizer(ki.ANALYZER, ki._index_tokenizer())
    writer = index.writer(ki.WRITER_HEAP * threads, threads)
    us, wall, _ = _cpu_us(len(docs), lambda: _add_all(writer, docs))
    print(f"    ({threads} writer thread(s): {len(docs) / wall:,.0f} papers/s wall)")
    return us


def _tantivy_minimal(tmp: Path, abstracts: list[str]) -> float:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("abstract", tokenizer_name="ws", index_option="basic")
    folder = tmp / "tvmin"
    folder.mkdir()
    index = tantivy.Index(sb.build(), path=str(folder))
    index.register_tokenizer(
        "ws", tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build()
    )
    docs = []
    for text in abstracts:
        doc = tantivy.Document()
        doc.add_text("abstract", text)
        docs.append(doc)
    writer = index.writer(ki.WRITER_HEAP, 1)
    us, _, _ = _cpu_us(len(docs), lambda: _add_all(writer, docs))
    return us


def _fts5(tmp: Path, abstracts: list[str]) -> float:
    db = sqlite3.connect(tmp / "fts.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE VIRTUAL TABLE f USING fts5(a, content='', detail=none, tokenize='ascii')")
    texts = [(t,) for t in abstracts]

    def insert() -> None:
        db.execute("BEGIN")
        db.executemany("INSERT INTO f(a) VALUES (?)", texts)
        db.execute("COMMIT")

    us, _, _ = _cpu_us(len(texts), insert)
    db.close()
    return us


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=50_000, help="papers (default 50,000)")
    ap.add_argument("--corpus", type=Path, help="JSON lines (default: make_corpus.py output)")
    ap.add_argument("--tmp", type=Path, help="folder for the databases (default: the system's)")
    args = ap.parse_args()
    print(describe_host())
    with tempfile.TemporaryDirectory(dir=args.tmp) as name:
        tmp = Path(name)
        corpus = args.corpus or make_corpus_file(args.n, tmp / "corpus.jsonl")
        with open(corpus, "rb") as f:
            lines = [line for line, _ in zip(f, range(args.n), strict=False)]
        n = len(lines)
        print(f"{n:,} papers of {corpus}, {sum(map(len, lines)) / n:,.0f} bytes per line")
        us, _, dicts = _cpu_us(n, lambda: [orjson.loads(line) for line in lines])
        _report("parse (orjson.loads)", us)
        _steps["parse"] = us
        us = _rows_step(tmp, [_row(i, d) for i, d in enumerate(dicts)])
        _report("rows (executemany, real schema)", us)
        _steps["rows"] = us

        analyzer = ki.Analyzer()
        for d in dicts[:2000]:  # a warm stem cache, as in a long ingest
            analyzer.index_text(d["abstract"])

        def analyze() -> list[tuple[str, str, str]]:
            text = analyzer.index_text
            return [
                (
                    text(d["title"]),
                    text(d.get("abstract") or ""),
                    text("; ".join(a["name"] for a in d.get("authors") or [])),
                )
                for d in dicts
            ]

        us, _, analyzed = _cpu_us(n, analyze)
        _report("analysis (stem-cache analyzer, Python)", us)
        _steps["analysis"] = us

        def documents() -> list[tantivy.Document]:
            out = []
            for i, ((title, abstract, names), d) in enumerate(zip(analyzed, dicts, strict=True)):
                doc = tantivy.Document()
                doc.add_integer("pk", i + 1)
                doc.add_text("all", title)
                doc.add_text("all", abstract)
                doc.add_text("all", names)
                doc.add_text("title", title)
                doc.add_text("authors", names)
                doc.add_text("pid", d["id"])
                for cat in ki.category_terms(d.get("categories") or []):
                    doc.add_text("cat", cat)
                doc.add_text("src", "synthetic")
                doc.add_integer("pub", 1_400_000_000 + i)
                doc.add_integer("seen", 1_400_000_000 + i)
                out.append(doc)
            return out

        us, _, docs = _cpu_us(n, documents)
        _report("documents (tantivy.Document, Python)", us)
        _steps["documents"] = us
        for threads in (1, 2):
            us = _tantivy(tmp, docs, threads)
            _report(f"tantivy, product schema, {threads} thread(s)", us)
            _steps.setdefault("tantivy", us)
            _steps["tantivy"] = min(_steps["tantivy"], us)
        abstracts = [a for _, a, _ in analyzed]
        _report("tantivy, one field, no positions", _tantivy_minimal(tmp, abstracts))
        _report("FTS5 contentless, detail=none", _fts5(tmp, abstracts))

        total = sum(_steps.values())
        cores = os.cpu_count() or 1
        budget = cores / TARGET_RATE * 1e6
        print(
            f"\nfloor of a keyword-indexed ingest (parse + rows + analysis + documents + "
            f"tantivy): {total:.0f} µs CPU per paper = at most {cores / total * 1e6:,.0f} "
            f"papers/s on {cores} cores with every core busy all the time\n"
            f"budget of {TARGET_RATE:,} papers/s on {cores} cores: {budget:.0f} µs CPU per paper"
        )


if __name__ == "__main__":
    main()
