"""The Kaggle arXiv metadata snapshot (``arxiv-metadata-oai-snapshot.json``, JSON lines).

Streamed line by line in constant memory from a path (plain, ``.gz`` or ``.zip``) or a binary
file object. A bad line becomes a :class:`ParseProblem` naming the line number; the following
lines are kept. ``progress(bytes_read)`` is called every ``progress_every`` lines with the bytes
consumed from the file on disk (compressed bytes for .gz/.zip), so a bar over the file size works.

:func:`snapshot_batches` groups the stream into batches whose checkpoint is ``{"line": N}`` (lines
done); a re-run with that checkpoint skips those lines without parsing them.
"""

from __future__ import annotations

import gzip
import io
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any, cast

import orjson

from paperradar.errors import InvalidId, SourceError
from paperradar.model import Author, Paper, ParseProblem, Version, canonical_id, normalize_text
from paperradar.sources import Batch, Record, prefetched
from paperradar.sources.arxiv_authors import split_arxiv_authors
from paperradar.sources.timestamps import parse_rfc2822_utc

__all__ = ["SOURCE", "parse_snapshot", "parse_snapshot_line", "snapshot_batches"]

SOURCE = "arxiv_snapshot"

_EXTRA_KEYS = (
    ("comments", "comment"),
    ("journal-ref", "journal_ref"),
    ("report-no", "report_no"),
    ("license", "license"),
    ("submitter", "submitter"),
)


_PLAIN_NEW_ID = re.compile(r"\d{4}\.\d{4,5}")


def _fast_arxiv_key(raw: str) -> str | None:
    """The canonical key of a plain new-style id (the common case), else None to take the slow,
    general :func:`canonical_id` path. Same rules as the model: month 01-12, 5 digits from 2015."""
    if _PLAIN_NEW_ID.fullmatch(raw) is None:
        return None
    if not 1 <= int(raw[2:4]) <= 12 or (len(raw) == 10) != (int(raw[:2]) >= 15):
        return None
    return raw


def _authors(obj: dict[str, Any]) -> list[Author]:
    parsed = obj.get("authors_parsed")
    if isinstance(parsed, list) and parsed:
        out: list[Author] = []
        for entry in parsed:
            if type(entry) is list and len(entry) == 3:  # the usual [last, first, suffix]
                last, first, suffix = entry
                if type(last) is str and type(first) is str and type(suffix) is str:
                    # empty parts only add spaces, which normalize_text drops
                    if last or first or suffix:
                        out.append(Author(normalize_text(f"{first} {last} {suffix}")))
                    continue
            if not isinstance(entry, list) or not entry:
                continue
            last = entry[0] if isinstance(entry[0], str) else ""
            first = entry[1] if len(entry) > 1 and isinstance(entry[1], str) else ""
            suffix = entry[2] if len(entry) > 2 and isinstance(entry[2], str) else ""
            name = " ".join(p for p in (first, last, suffix) if p)
            if name:
                out.append(Author(normalize_text(name)))
        if out:
            return out
    raw = obj.get("authors")
    return split_arxiv_authors(raw) if isinstance(raw, str) else []


def parse_snapshot_line(line: bytes, location: str) -> Record | None:
    """One JSON line → a paper, a problem, or None for a blank line."""
    if not line or line.isspace():
        return None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return ParseProblem(SOURCE, location, f"invalid JSON: {exc}")
    if not isinstance(obj, dict):
        return ParseProblem(SOURCE, location, f"expected a JSON object, got {type(obj).__name__}")
    raw_id = obj.get("id")
    title = obj.get("title")
    if not isinstance(raw_id, str) or not raw_id:
        return ParseProblem(SOURCE, location, "missing 'id'")
    if not isinstance(title, str) or not title.strip():
        return ParseProblem(SOURCE, location, f"{raw_id}: missing 'title'")
    key = _fast_arxiv_key(raw_id)
    if key is None:
        try:
            pid = canonical_id(ids=[raw_id], title="")
        except InvalidId:
            pid = None
        if pid is None or pid.kind != "arxiv":
            return ParseProblem(SOURCE, location, f"'id' is not an arXiv id: {raw_id!r}")
        key = pid.key
    versions: list[Version] = []
    raw_versions = obj.get("versions")
    if isinstance(raw_versions, list):
        for v in raw_versions:
            if not isinstance(v, dict):
                continue
            label = v.get("version")
            if isinstance(label, str) and label[:1] == "v" and label[1:].isdigit():
                versions.append(Version(int(label[1:]), parse_rfc2822_utc(v.get("created"))))
    cats_raw = obj.get("categories")
    categories = cats_raw.split() if isinstance(cats_raw, str) else []
    extra: dict[str, Any] = {}
    for field_name, name in _EXTRA_KEYS:
        value = obj.get(field_name)
        if isinstance(value, str) and value:
            extra[name] = normalize_text(value)
    update_date = obj.get("update_date")
    if isinstance(update_date, str) and update_date:
        extra["update_date"] = update_date
    doi_raw = obj.get("doi")
    dois = doi_raw.lower().split() if isinstance(doi_raw, str) else []
    if len(dois) > 1:
        extra["dois"] = dois
    abstract = obj.get("abstract")
    return Paper(
        id=key,
        title=normalize_text(title),
        abstract=normalize_text(abstract) if isinstance(abstract, str) else "",
        authors=_authors(obj),
        arxiv_id=key,
        version=max((v.version for v in versions), default=None),
        doi=dois[0] if dois else None,
        categories=categories,
        primary_category=categories[0] if categories else None,
        published=versions[0].date if versions else None,
        updated=versions[-1].date if versions else None,
        sources=[SOURCE],
        versions=versions,
        extra=extra,
    )


def _open(
    source: str | Path | IO[bytes], stack: ExitStack
) -> tuple[IO[bytes], Callable[[], int], str]:
    """The decompressed line stream, a function giving the on-disk bytes read, and a name."""
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            raw: IO[bytes] = stack.enter_context(open(path, "rb"))  # noqa: SIM115
        except OSError as exc:
            raise SourceError(
                f"cannot open: {exc.strerror}", source=SOURCE, location=str(path)
            ) from exc
        name = str(path)
    else:
        raw = source
        name = getattr(source, "name", "") or "<stream>"
        name = str(name)
    head = raw.peek(4)[:4] if hasattr(raw, "peek") else b""
    if not head and raw.seekable():
        pos = raw.tell()
        head = raw.read(4)
        raw.seek(pos)

    def on_disk() -> int:
        try:
            return raw.tell()
        except (OSError, ValueError):
            return 0

    if head[:2] == b"\x1f\x8b":
        gz = gzip.GzipFile(fileobj=raw, mode="rb")
        stack.callback(gz.close)
        return cast(IO[bytes], gz), on_disk, name
    if head[:4] == b"PK\x03\x04":
        try:
            archive = stack.enter_context(zipfile.ZipFile(raw))
        except zipfile.BadZipFile as exc:
            raise SourceError(f"bad zip file: {exc}", source=SOURCE, location=name) from exc
        members = [m for m in archive.infolist() if not m.is_dir()]
        if not members:
            raise SourceError("zip file is empty", source=SOURCE, location=name)
        member = max(members, key=lambda m: m.file_size)
        return stack.enter_context(archive.open(member)), on_disk, f"{name}!{member.filename}"
    return raw, on_disk, name


def _numbered(
    source: str | Path | IO[bytes] | bytes,
    location: str | None,
    skip_lines: int,
    progress: Callable[[int], None] | None,
    progress_every: int,
) -> Iterator[tuple[int, Record | None]]:
    """(line number, record or None for blank/skipped lines), with read errors as SourceError."""
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(bytes(source))
    with ExitStack() as stack:
        stream, on_disk, name = _open(source, stack)
        where = location or name
        lineno = 0
        try:
            for line in stream:
                lineno += 1
                if lineno <= skip_lines:
                    continue
                yield lineno, parse_snapshot_line(line, f"{where}:{lineno}")
                if progress is not None and lineno % progress_every == 0:
                    progress(on_disk())
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            raise SourceError(
                f"read failed after line {lineno}: {exc}", source=SOURCE, location=where
            ) from exc
        if progress is not None:
            progress(on_disk())


def parse_snapshot(
    source: str | Path | IO[bytes] | bytes,
    *,
    location: str | None = None,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 10_000,
    skip_lines: int = 0,
) -> Iterator[Record]:
    """Stream papers and problems from the snapshot (a path, a binary file object, or bytes)."""
    for _, rec in _numbered(source, location, skip_lines, progress, progress_every):
        if rec is not None:
            yield rec


def snapshot_batches(
    source: str | Path | IO[bytes] | bytes,
    *,
    batch_size: int = 5000,
    checkpoint: Mapping[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
    location: str | None = None,
) -> Iterator[Batch]:
    """Batches of up to ``batch_size`` lines, each with checkpoint ``{"line": lines_done}``,
    parsed on a thread of their own while the caller stores the previous ones."""
    return prefetched(_batches(source, batch_size, checkpoint, progress, location))


def _batches(
    source: str | Path | IO[bytes] | bytes,
    batch_size: int,
    checkpoint: Mapping[str, Any] | None,
    progress: Callable[[int], None] | None,
    location: str | None,
) -> Iterator[Batch]:
    done = int((checkpoint or {}).get("line", 0))
    chunk: list[Record] = []
    lineno = done
    where = location or (str(source) if isinstance(source, str | Path) else "<stream>")
    for lineno, rec in _numbered(source, location, done, progress, batch_size):
        if rec is not None:
            chunk.append(rec)
        if lineno % batch_size == 0:
            yield Batch(SOURCE, chunk, {"line": lineno}, f"{where}:{lineno}")
            chunk = []
    if chunk or lineno % batch_size:
        yield Batch(SOURCE, chunk, {"line": lineno}, f"{where}:{lineno}")
