""" "More like this" without vectors: the words it picks (tf-idf over a sample, common words left
out in a large collection) and the in-memory ranking among a digest run's candidates."""

from __future__ import annotations

from paperradar.model import Paper
from paperradar.search import similar
from paperradar.search.similar import PoolMoreLikeThis, TermStats, more_like_this_query


def _paper(i: int, title: str, abstract: str) -> Paper:
    return Paper.from_ids(ids=[f"2401.{i:05d}"], title=title, abstract=abstract, source="test")


def _collection(n: int) -> list[Paper]:
    """``n`` papers that all say "model" and "learning"; a few also say rarer words."""
    out = []
    for i in range(n):
        extra = ["zebrafish neurons"] if i % 200 == 0 else ["galaxy spectra"] if i % 7 == 0 else []
        out.append(_paper(i, f"Learning model {i}", " ".join(["model learning data", *extra])))
    return out


def test_rare_words_rank_first_and_common_ones_are_left_out_of_large_collections() -> None:
    stats = TermStats.from_papers(_collection(2000))
    seed = _paper(
        9, "Learning zebrafish neurons", "A model of zebrafish neurons and galaxy spectra."
    )
    terms = more_like_this_query([seed], stats).terms
    assert set(terms[:2]) == {"zebrafish", "neurons"}  # the rarest words first (0.5 %)
    assert "model" not in terms and "learning" not in terms  # in every paper: left out
    # Only two words are rare enough: the least common of the rest makes up MIN_TERMS.
    assert len(terms) == similar.MIN_TERMS and terms[2] in {"galaxy", "spectra"}


def test_small_collections_keep_every_word_ranked_by_rarity() -> None:
    stats = TermStats.from_papers(_collection(40))  # below CUTOFF_SAMPLE: nothing left out
    seed = _paper(9, "Learning zebrafish", "A model of zebrafish.")
    terms = more_like_this_query([seed], stats).terms
    assert terms[0] == "zebrafish" and "model" in terms and "learning" in terms


def test_a_paper_of_common_words_only_still_makes_a_query() -> None:
    stats = TermStats.from_papers(_collection(2000))
    seed = _paper(9, "Learning model", "model learning data")
    assert len(more_like_this_query([seed], stats).terms) == similar.MIN_TERMS


def test_in_memory_ranking_among_candidates_never_returns_a_seed() -> None:
    pool = [
        _paper(1, "Zebrafish neurons in motion", "Calcium imaging of zebrafish neurons."),
        _paper(2, "Galaxy spectra at high redshift", "Spectra of distant galaxies."),
        _paper(3, "Zebrafish larvae behaviour", "Larvae of zebrafish swim."),
        _paper(4, "Neurons and zebrafish neurons", "Zebrafish neurons, more zebrafish neurons."),
    ]
    ranker = PoolMoreLikeThis(pool, TermStats.from_papers(pool))
    found = ranker.similar([pool[0]], 10)
    assert pool[0].id not in found
    assert found[0] == pool[3].id and pool[2].id in found and pool[1].id not in found
    assert ranker.similar([pool[0]], 1) == [pool[3].id]
    assert ranker.similar([], 5) == []
    outside = _paper(9, "Zebrafish neurons elsewhere", "Not a candidate.")
    assert ranker.similar([outside], 10)[0] in {pool[0].id, pool[3].id}
    assert PoolMoreLikeThis([], TermStats.from_papers(pool)).similar([pool[0]], 5) == []
