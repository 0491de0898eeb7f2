"""Highlighting marks the query's words in escaped text: the one-pass version (escape the whole
text, then mark words in it) gives exactly what escaping each piece between matches gave, for
any text — HTML specials, entities written out, ``#`` and ``&`` next to words, any letters."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup, escape

from paperradar.web.highlight import highlight


def _piecewise(text: str, terms: tuple[str, ...]) -> Markup:
    """The reference: escape the text between matches found in the raw text."""
    if not terms or not text:
        return escape(text)
    alternatives = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
    pattern = re.compile(rf"(?<!\w)(?:{alternatives})\w*", re.IGNORECASE)
    out: list[str] = []
    last = 0
    for m in pattern.finditer(text):
        out.append(escape(text[last : m.start()]))
        out.append(Markup("<mark>%s</mark>") % m.group())
        last = m.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


WORDS = ["amp", "lt", "gt", "quot", "34", "39", "3", "x", "model", "é", "Graph", "#", "&", ";", "_"]
pieces = st.one_of(
    st.sampled_from([*WORDS, " ", "<", ">", '"', "'", "&amp;", "&#39;", "&lt;b&gt;", "#39"]),
    st.text(max_size=6),
    st.text(alphabet="aAmMpPlLtTxX3-_#&;' ", max_size=8),
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(pieces, max_size=30).map("".join),
    st.lists(
        st.sampled_from(["amp", "lt", "gt", "quot", "34", "39", "3", "x", "model", "é", "graph"]),
        max_size=4,
    ),
)
def test_one_pass_highlight_is_the_piecewise_one(text: str, terms: list[str]) -> None:
    assert highlight(text, tuple(terms)) == _piecewise(text, tuple(terms))


def test_entities_are_never_marked_inside() -> None:
    out = highlight('Fish & "chips" <amp> lt 39 #39', ("amp", "lt", "39", "quot"))
    assert out == (
        "Fish &amp; &#34;chips&#34; &lt;<mark>amp</mark>&gt; <mark>lt</mark> <mark>39</mark> "
        "#<mark>39</mark>"
    )
