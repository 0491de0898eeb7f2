"""Kaggle snapshot: real lines, .gz and .zip, bad lines kept apart, resume, progress, memory."""

from __future__ import annotations

import gzip
import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from paperradar.errors import SourceError
from paperradar.model import Paper, ParseProblem, canonical_id
from paperradar.sources.arxiv_snapshot import parse_snapshot, snapshot_batches

from .mutations import check_parser, mutated


@pytest.fixture
def head200(fixtures_dir: Path) -> Path:
    return fixtures_dir / "kaggle_arxiv_snapshot/arxiv-metadata-oai-snapshot.head200.jsonl"


def test_first_record_fields(head200: Path) -> None:
    recs = list(parse_snapshot(head200))
    assert len(recs) == 200 and all(isinstance(r, Paper) for r in recs)
    p = recs[0]
    assert isinstance(p, Paper)
    assert p.id == "0704.0001" and p.sources == ["arxiv_snapshot"]
    assert (
        p.title
        == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    )
    assert p.authors[0].name == "C. Balázs"  # from authors_parsed (Unicode)
    assert [v.version for v in p.versions] == [1, 2] and p.version == 2
    assert p.published == datetime(2007, 4, 2, 19, 18, 42, tzinfo=UTC)
    assert p.updated == datetime(2007, 7, 24, 20, 10, 27, tzinfo=UTC)
    assert p.doi == "10.1103/physrevd.76.013009"
    assert p.extra["journal_ref"] == "Phys.Rev.D76:013009,2007"
    assert p.extra["submitter"] == "Pavel Nadolsky"
    assert p.abstract.startswith("A fully differential calculation")
    second = recs[1]
    assert isinstance(second, Paper)
    assert second.categories == ["math.CO", "cs.CG"] and second.primary_category == "math.CO"


def test_ids_agree_with_canonical_id(head200: Path) -> None:
    for rec in parse_snapshot(head200):
        assert isinstance(rec, Paper)
        assert rec.id == canonical_id(ids=[rec.id]).key


def test_old_style_id_and_bad_lines(head200: Path) -> None:
    lines = head200.read_bytes().splitlines()[:3]
    old = lines[0].replace(b'"id":"0704.0001"', b'"id":"hep-th/9901001"')
    data = b"\n".join([lines[0], b'{"id": "0704.0002", "title": ', old, b"[1,2]", b"", lines[2]])
    recs = list(parse_snapshot(data, location="snap.json"))
    assert [type(r).__name__ for r in recs] == [
        "Paper",
        "ParseProblem",
        "Paper",
        "ParseProblem",
        "Paper",
    ]
    assert isinstance(recs[1], ParseProblem) and recs[1].location == "snap.json:2"
    assert "invalid JSON" in recs[1].message
    assert isinstance(recs[2], Paper) and recs[2].id == "hep-th/9901001"
    assert isinstance(recs[3], ParseProblem) and recs[3].location == "snap.json:4"


def test_gzip_and_zip_and_file_object(head200: Path, tmp_path: Path) -> None:
    raw = head200.read_bytes()
    gz = tmp_path / "snap.json.gz"
    gz.write_bytes(gzip.compress(raw))
    zp = tmp_path / "snap.zip"
    with zipfile.ZipFile(zp, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("arxiv-metadata-oai-snapshot.json", raw)
    want = [r.id for r in parse_snapshot(head200) if isinstance(r, Paper)]
    for source in (gz, zp, str(gz)):
        assert [r.id for r in parse_snapshot(source) if isinstance(r, Paper)] == want
    with open(gz, "rb") as fh:
        assert len(list(parse_snapshot(fh))) == 200
    assert len(list(parse_snapshot(io.BytesIO(raw)))) == 200


def test_progress_reports_bytes_read_up_to_file_size(head200: Path, tmp_path: Path) -> None:
    gz = tmp_path / "snap.json.gz"
    gz.write_bytes(gzip.compress(head200.read_bytes()))
    for path in (head200, gz):
        seen: list[int] = []
        list(parse_snapshot(path, progress=seen.append, progress_every=50))
        assert seen == sorted(seen) and len(seen) >= 2
        assert seen[-1] == path.stat().st_size


def test_batches_checkpoint_and_resume(head200: Path) -> None:
    full = list(snapshot_batches(head200, batch_size=64))
    assert [b.checkpoint for b in full] == [
        {"line": 64},
        {"line": 128},
        {"line": 192},
        {"line": 200},
    ]
    # killed after the second batch was stored: resume from its checkpoint
    resumed = list(snapshot_batches(head200, batch_size=64, checkpoint={"line": 128}))
    ids_full = [r.id for b in full for r in b.records if isinstance(r, Paper)]
    ids_resumed = [r.id for b in full[:2] for r in b.records if isinstance(r, Paper)] + [
        r.id for b in resumed for r in b.records if isinstance(r, Paper)
    ]
    assert ids_resumed == ids_full


def test_missing_file_and_truncated_gzip(tmp_path: Path, head200: Path) -> None:
    with pytest.raises(SourceError, match="cannot open"):
        list(parse_snapshot(tmp_path / "nope.json"))
    gz = tmp_path / "cut.json.gz"
    gz.write_bytes(gzip.compress(head200.read_bytes())[:20000])
    recs: list[object] = []
    with pytest.raises(SourceError, match="read failed after line"):
        for r in parse_snapshot(gz):
            recs.append(r)
    assert recs  # lines before the damage came out


@given(data=st.data())
@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_mutated_snapshot_never_crashes(fixtures_dir: Path, data: st.DataObject) -> None:
    raw = (
        fixtures_dir / "kaggle_arxiv_snapshot/arxiv-metadata-oai-snapshot.head5.jsonl"
    ).read_bytes()
    check_parser(parse_snapshot, data.draw(mutated(raw)))


@given(
    line=st.dictionaries(
        st.sampled_from(
            [
                "id",
                "title",
                "authors",
                "authors_parsed",
                "versions",
                "categories",
                "doi",
                "abstract",
                "journal-ref",
                "update_date",
            ]
        ),
        st.none()
        | st.text(max_size=12)
        | st.integers()
        | st.lists(
            st.none()
            | st.text(max_size=4)
            | st.lists(st.text(max_size=4), max_size=3)
            | st.dictionaries(st.sampled_from(["version", "created"]), st.text(max_size=8)),
            max_size=3,
        ),
    )
)
@hsettings(max_examples=200, deadline=None)
def test_any_line_shape_never_crashes(line: dict[str, object]) -> None:
    import json

    check_parser(parse_snapshot, json.dumps(line).encode())
