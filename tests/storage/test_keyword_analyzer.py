"""The keyword analyzer (Python side, with a stem cache) gives exactly the tokens of tantivy's
analyzer chain that built the index before it, and an index fed its text holds the same terms at
the same positions: old index folders stay valid and queries analyze as documents did."""

from __future__ import annotations

import itertools

import pytest
import tantivy
from hypothesis import given, settings
from hypothesis import strategies as st

from paperradar.storage import keyword_index
from paperradar.storage.keyword_index import (
    LONG_TOKEN,
    Analyzer,
    _index_tokenizer,
    _reference_analyzer,
)

SAMPLES = [
    "We propose the Transformer, based solely on attention mechanisms.",
    "Réseaux de neurones profonds: l'apprentissage à grande échelle",
    "深度学习 综述 and ÆSIR Straße naïve café Ångström",
    "COVID-19 mRNA-1273 vaccines; p<0.05; 3.14159; x_1 + y_2",
    "İstanbul ΣΊΣΥΦΟΣ ﬁnance ① ½ ⅷ",
    "O'Brien's models' generalization, running runs ran easily fairly",
    "alpha " + "x" * LONG_TOKEN + " beta " + "y" * (LONG_TOKEN - 1) + " gamma",
    "alpha " + "é" * 30 + " beta " + "é" * 29 + "e gamma",  # 60 and 59 bytes as written
    "alpha " + "½" * 29 + " beta " + "ﬃ" * 19 + " gamma",  # under 60 bytes, longer folded
    "tab\tseparated\nlines\r\nand\x0bodd\x0cspaces\x1c\x1d\x1e\x1f end",
    "",
    "   ",
    "!!! ??? ...",
]


@pytest.fixture(scope="module")
def reference() -> tantivy.TextAnalyzer:
    return _reference_analyzer()


@pytest.mark.parametrize("text", SAMPLES)
def test_tokens_are_the_reference_chains(reference: tantivy.TextAnalyzer, text: str) -> None:
    assert Analyzer().analyze(text) == reference.analyze(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_analyzes_as_the_reference_chain(text: str) -> None:
    assert ANALYZER.analyze(text) == REFERENCE.analyze(text)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(["Models", "modeling", "naïve", "ÉCOLE", "x" * 70, "a1b2"]), max_size=30
    )
)
def test_words_in_any_order_analyze_as_the_reference_chain(words: list[str]) -> None:
    text = " ".join(words)
    assert ANALYZER.analyze(text) == REFERENCE.analyze(text)


ANALYZER = Analyzer()
REFERENCE = _reference_analyzer()


def _index(texts: list[str], *, reference: bool) -> tantivy.Searcher:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("all", tokenizer_name="t", index_option="position")
    index = tantivy.Index(sb.build())
    index.register_tokenizer("t", _reference_analyzer() if reference else _index_tokenizer())
    writer = index.writer(15_000_000, 1)
    an = Analyzer()
    for text in texts:
        doc = tantivy.Document()
        doc.add_text("all", text if reference else an.index_text(text))
        doc.add_text("all", "second value" if reference else an.index_text("second value"))
        writer.add_document(doc)
    writer.commit()
    index.reload()
    return index.searcher()


def test_an_index_fed_analyzed_text_has_the_same_terms_and_positions() -> None:
    old = _index(SAMPLES, reference=True)
    new = _index(SAMPLES, reference=False)
    schema = tantivy.SchemaBuilder().add_text_field("all").build()
    an = Analyzer()
    words = sorted({w for text in SAMPLES for w in an.analyze(text)} | {"valu", "second"})
    queries = [tantivy.Query.term_query(schema, "all", w) for w in words]
    # every pair of words as a phrase, and with one position between them (the long-token gap)
    for a, b in itertools.product(words, repeat=2):
        queries.append(tantivy.Query.phrase_query(schema, "all", [a, b]))
        queries.append(tantivy.Query.phrase_query(schema, "all", [(0, a), (2, b)]))
    for q in queries:
        hits_old = sorted(addr.doc for _, addr in old.search(q, 100).hits)
        hits_new = sorted(addr.doc for _, addr in new.search(q, 100).hits)
        assert hits_old == hits_new, q
    long_gap = tantivy.Query.phrase_query(schema, "all", [(0, "alpha"), (2, "beta")])
    # one word between them, dropped (6, 7: still a position) or kept (8)
    assert sorted(a.doc for _, a in new.search(long_gap, 10).hits) == [6, 7, 8]
    # BM25 lengths too: the same scores
    q = tantivy.Query.term_query(schema, "all", "model")
    assert [s for s, _ in old.search(q, 10).hits] == [s for s, _ in new.search(q, 10).hits]


def test_the_stem_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyword_index, "STEM_CACHE", 50)
    an = Analyzer()
    for i in range(500):
        assert an.analyze(f"runnings{i}x") == REFERENCE.analyze(f"runnings{i}x")
    assert len(an._stems) <= 50
