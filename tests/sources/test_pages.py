"""Page dumps: the seed captures come out whole, chrome is ignored, bad files say what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from paperradar.errors import SourceError
from paperradar.model import Paper, ParseProblem, title_key
from paperradar.sources.pages import parse_page_dump

ABSTRACT = "We study a thing in considerable depth and report what we found about it in detail."


def seed_records(shared_dir: Path) -> list[Paper | ParseProblem]:
    out: list[Paper | ParseProblem] = []
    for f in sorted((shared_dir / "seeds").iterdir()):
        out += list(parse_page_dump(f.read_bytes(), location=f.name))
    return out


def test_seed_pages_give_439_entries_and_397_unique_papers(shared_dir: Path) -> None:
    records = seed_records(shared_dir)
    papers = [r for r in records if isinstance(r, Paper)]
    assert [r for r in records if isinstance(r, ParseProblem)] == []
    assert len(papers) == 439
    assert len({p.id for p in papers}) == 397
    for p in papers:
        assert p.title and p.abstract
        assert not p.title.startswith("Subscribe")
        assert len(p.abstract) > len(p.title)


def test_seed_titles_are_whole(shared_dir: Path) -> None:
    papers = [r for r in seed_records(shared_dir) if isinstance(r, Paper)]
    titles = {p.title for p in papers}
    # The first title of two captures is glued to "Subscribe" in the page text.
    assert (
        "Adaptive Graph Shrinking for Quantum Optimization of Constrained Combinatorial Problems"
        in titles
    )
    assert "Monotone deep Boltzmann machines" in titles
    # Blank-line variant with a date header and page chrome.
    assert (
        "An Overview of Diffusion Models: Applications, Guided Generation, Statistical Rates and Optimization"
        in titles
    )


def test_compact_and_blank_line_variants_agree() -> None:
    compact = f"Get trending papers in your email inbox!\nSubscribeFirst Title\n{ABSTRACT}\nSecond Title\n{ABSTRACT} Two.\n"
    spaced = f"new\n\nSubscribe\n\nbyAK and the research community\n\nMar 18\n\nFirst Title\n\n{ABSTRACT}\n\nSecond Title\n\n{ABSTRACT} Two.\n"
    a = [(p.title, p.abstract) for p in parse_page_dump(compact.encode()) if isinstance(p, Paper)]
    b = [(p.title, p.abstract) for p in parse_page_dump(spaced.encode()) if isinstance(p, Paper)]
    assert a == b == [("First Title", ABSTRACT), ("Second Title", ABSTRACT + " Two.")]


def test_a_title_without_abstract_is_reported_and_the_rest_kept() -> None:
    text = f"Lonely Title\nGood Title\n{ABSTRACT}\n"
    records = list(parse_page_dump(text.encode(), location="f.txt"))
    papers = [r for r in records if isinstance(r, Paper)]
    problems = [r for r in records if isinstance(r, ParseProblem)]
    assert [p.title for p in papers] == ["Good Title"]
    assert len(problems) == 1 and problems[0].location == "f.txt:1"
    assert "without an abstract" in problems[0].message


def test_hostile_html_in_titles_is_kept_as_text() -> None:
    text = f"<script>alert(1)</script> &amp; Title\n{ABSTRACT}\n"
    (p,) = parse_page_dump(text.encode())
    assert isinstance(p, Paper)
    assert p.title == "<script>alert(1)</script> &amp; Title"
    assert p.id == title_key(p.title)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"\x00\x01\x02binary\x00", "binary"),
        ("Titel\nAbstract é".encode("latin-1") + b"\xff\xfe" * 40, "UTF-8"),
        (b'{"json": true}\n{"more": 1}\n', "does not look like a page dump"),
    ],
)
def test_bad_files_get_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=message) as info:
        list(parse_page_dump(data, location="bad.txt"))
    assert "bad.txt" in str(info.value)


def test_truncated_file_keeps_the_complete_entries(shared_dir: Path) -> None:
    data = (shared_dir / "seeds" / "000_27b085f6df64a769.txt").read_bytes()
    cut = data[: len(data) // 2]
    cut = cut[: cut.rfind(b"\n")]  # the last line may be a title now
    records = list(parse_page_dump(cut))
    papers = [r for r in records if isinstance(r, Paper)]
    assert 80 < len(papers) < 193


def test_a_file_cut_mid_abstract_rejects_that_entry_and_keeps_the_rest(shared_dir: Path) -> None:
    data = (shared_dir / "seeds" / "001_14390e7cdf2d219c.txt").read_bytes()
    cut = data[:3000]  # inside the second abstract, mid-sentence, no final newline
    records = list(parse_page_dump(cut, location="cut.txt"))
    papers = [r for r in records if isinstance(r, Paper)]
    problems = [r for r in records if isinstance(r, ParseProblem)]
    assert len(papers) == 1 and papers[0].abstract.endswith(".")
    (problem,) = problems
    last_line = cut.decode().count("\n") + 1
    assert problem.location == f"cut.txt:{last_line}"
    assert "truncated" in problem.message and "HESSO" in problem.message


def test_a_file_cut_inside_a_utf8_character_is_truncated_not_misencoded() -> None:
    text = f"First Title\n{ABSTRACT}\nSecond Title\nWe study the caf\u00e9 culture of a city in depth and".encode()
    records = list(parse_page_dump(text[:-6] + "\u00e9".encode()[:1], location="cut.txt"))
    assert [r.title for r in records if isinstance(r, Paper)] == ["First Title"]
    (problem,) = [r for r in records if isinstance(r, ParseProblem)]
    assert problem.location == "cut.txt:4" and "truncated" in problem.message


@pytest.mark.parametrize(
    "last",
    [
        ABSTRACT,  # ends with a full stop
        "Code and data are available at https://github.com/example/repo",
        "We show that it works (see the appendix)",
    ],
)
def test_a_whole_last_abstract_without_final_newline_is_kept(last: str) -> None:
    text = f"First Title\n{ABSTRACT}\nSecond Title\n{last}"
    records = list(parse_page_dump(text.encode()))
    assert [r.abstract for r in records if isinstance(r, Paper)] == [ABSTRACT, last]


def test_a_title_without_letters_is_a_problem_not_a_crash() -> None:
    """Found by the mutation test: a "title" of punctuation only has nothing to key on."""
    records = list(
        parse_page_dump(f"{{\n{ABSTRACT}\nGood Title\n{ABSTRACT}\n".encode(), location="f.txt")
    )
    assert [r.title for r in records if isinstance(r, Paper)] == ["Good Title"]
    (problem,) = [r for r in records if isinstance(r, ParseProblem)]
    assert problem.location == "f.txt:1" and "letters or digits" in problem.message
