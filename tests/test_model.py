"""Canonical ids: every form of an arXiv id or DOI maps to one key."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paperradar.errors import InvalidId
from paperradar.model import (
    Paper,
    canonical_id,
    normalize_text,
    paper_from_dict,
    paper_to_dict,
    parse_paper_id,
    title_key,
)


@pytest.mark.parametrize(
    ("raw", "key", "version"),
    [
        ("2403.01234", "2403.01234", None),
        ("2403.01234v2", "2403.01234", 2),
        ("arXiv:2403.01234v3", "2403.01234", 3),
        ("ARXIV:2403.01234", "2403.01234", None),
        ("https://arxiv.org/abs/2403.01234v2", "2403.01234", 2),
        ("http://arxiv.org/pdf/2403.01234v1.pdf", "2403.01234", 1),
        ("https://arxiv.org/pdf/2403.01234", "2403.01234", None),
        ("https://arxiv.org/html/2403.01234v1", "2403.01234", 1),
        ("https://export.arxiv.org/abs/1605.08386", "1605.08386", None),
        ("0704.0001", "0704.0001", None),
        ("hep-th/9901001", "hep-th/9901001", None),
        ("hep-th/9901001v3", "hep-th/9901001", 3),
        ("math.GT/0309136", "math/0309136", None),
        ("arXiv:quant-ph/0201082v1", "quant-ph/0201082", 1),
        ("http://arxiv.org/abs/astro-ph/0601001", "astro-ph/0601001", None),
        ("10.48550/arXiv.2403.01234", "2403.01234", None),
        ("https://doi.org/10.48550/arXiv.2403.01234", "2403.01234", None),
        ("10.1103/PhysRevD.76.013009", "doi:10.1103/physrevd.76.013009", None),
        ("doi:10.1000/XYZ123", "doi:10.1000/xyz123", None),
        ("https://dx.doi.org/10.1000/xyz123", "doi:10.1000/xyz123", None),
    ],
)
def test_every_id_form_maps_to_one_key(raw: str, key: str, version: int | None) -> None:
    pid = parse_paper_id(raw)
    assert (pid.key, pid.version) == (key, version)


@pytest.mark.parametrize(
    "raw", ["", "abc", "2413.01234", "1401.12345", "1501.1234", "hello/world", "10.1/x"]
)
def test_non_ids_are_rejected_with_a_clear_error(raw: str) -> None:
    with pytest.raises(InvalidId):
        parse_paper_id(raw)


new_ids = st.builds(
    lambda y, m, n, five: f"{y:02d}{m:02d}.{n:05d}" if five else f"{y:02d}{m:02d}.{n % 10000:04d}",
    st.integers(7, 14),
    st.integers(1, 12),
    st.integers(0, 99999),
    st.just(False),
) | st.builds(
    lambda y, m, n: f"{y:02d}{m:02d}.{n:05d}",
    st.integers(15, 99),
    st.integers(1, 12),
    st.integers(0, 99999),
)


@given(
    new_ids,
    st.one_of(st.none(), st.integers(1, 30)),
    st.sampled_from(["", "arXiv:", "https://arxiv.org/abs/", "http://arxiv.org/pdf/"]),
)
def test_key_is_stable_under_prefixes_and_versions(
    arxiv_id: str, version: int | None, prefix: str
) -> None:
    raw = prefix + arxiv_id + (f"v{version}" if version else "")
    pid = parse_paper_id(raw)
    assert pid.key == arxiv_id
    assert pid.version == version
    assert parse_paper_id(pid.key).key == pid.key  # the key is a fixed point


@given(st.text(max_size=60))
def test_parse_never_fails_unexpectedly(text: str) -> None:
    try:
        pid = parse_paper_id(text)
    except InvalidId:
        return
    assert (
        parse_paper_id(pid.key.removeprefix("doi:") if pid.kind == "doi" else pid.key).key
        == pid.key
    )


@given(st.text(min_size=1, max_size=80).filter(lambda t: any(c.isalnum() for c in t)))
def test_title_key_ignores_case_spacing_and_accents(title: str) -> None:
    assert title_key(title) == title_key("  " + title.upper().replace(" ", "  ") + " ")


@given(st.text(alphabet=st.characters(max_codepoint=127), min_size=1, max_size=80))
def test_title_key_of_ascii_is_the_hash_of_its_lower_case_letters_and_digits(title: str) -> None:
    letters = "".join(c for c in title.lower() if c.isalnum())
    if not letters:
        with pytest.raises(InvalidId):
            title_key(title)
        return
    assert title_key(title) == "title:" + hashlib.sha1(letters.encode()).hexdigest()[:16]
    # the same key as the accented spelling (the general path)
    assert title_key(title + "\u0301") == title_key(title) or not title[-1].isalnum()


def test_canonical_id_prefers_arxiv_then_doi_then_title() -> None:
    assert canonical_id(ids=["10.1000/xyz", "2403.01234"], title="T").key == "2403.01234"
    assert canonical_id(ids=["10.1000/xyz", "junk"], title="T").key == "doi:10.1000/xyz"
    assert canonical_id(ids=["junk"], title="A Title").key.startswith("title:")


def test_paper_dict_round_trip() -> None:
    p = Paper.from_ids(
        ids=["2403.01234v2", "10.1000/x"], title="A  paper", source="test", abstract="Text."
    )
    assert p.doi == "10.1000/x"
    assert p.version == 2
    assert p.title == "A paper"
    back = paper_from_dict(paper_to_dict(p))
    assert paper_to_dict(back) == paper_to_dict(p)


_SPACEY = st.text(alphabet=st.sampled_from(list("ab .\t\n\r\x0b\x0c\x1c\x1f\x85\xa0e\u0301")))


@given(_SPACEY)
def test_normalize_text_fast_path_is_nfc_with_collapsed_whitespace(text: str) -> None:
    import unicodedata

    assert normalize_text(text) == " ".join(unicodedata.normalize("NFC", text).split())


@given(
    st.from_regex(r"\A[0-9]{4}\.[0-9]{4,5}(v[0-9]{1,3})?\Z")
    | st.from_regex(r"\A[a-z\-]{0,12}[0-9]{0,3}\Z")
)
def test_id_shortcuts_agree_with_the_general_rules(raw: str) -> None:
    """The shortcuts of parse_paper_id (a bare new-style id; no "/" and no "." → not an id)
    give what the general rules give: the same key, or InvalidId."""
    from paperradar.model import _match_arxiv

    general = _match_arxiv(raw.strip())
    try:
        got = parse_paper_id(raw)
    except InvalidId:
        assert general is None
    else:
        assert general is not None
        assert (got.kind, got.key, got.version) == (general.kind, general.key, general.version)
