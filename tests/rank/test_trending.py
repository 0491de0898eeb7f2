"""The trending score is monotone in every signal and decays with age (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paperradar.rank.trending import HALF_LIFE, TrendingWeights, ages_in_hours, trending_score

SIGNALS = ["upvotes", "comments", "stars", "star_growth", "citations", "clicks", "saves"]
counts = st.integers(min_value=0, max_value=10**6)
ages = st.floats(min_value=0.0, max_value=24 * 365, allow_nan=False)
windows = st.sampled_from(sorted(HALF_LIFE))


def one(age: float, window: str, **signals: int) -> float:
    return float(
        trending_score(np.array([age]), window=window, **{k: [v] for k, v in signals.items()})[0]
    )


@given(
    signal=st.sampled_from(SIGNALS),
    base=st.fixed_dictionaries({s: counts for s in SIGNALS}),
    more=st.integers(min_value=1, max_value=10**5),
    age=ages,
    window=windows,
)
def test_monotone_in_each_signal(
    signal: str, base: dict[str, int], more: int, age: float, window: str
) -> None:
    higher = {**base, signal: base[signal] + more}
    assert one(age, window, **higher) >= one(age, window, **base)
    if age < 24 * 30:  # not yet decayed to nothing: strictly better
        assert one(age, window, **higher) > one(age, window, **base)


@given(
    base=st.fixed_dictionaries({s: counts for s in SIGNALS}),
    age=ages,
    older=st.floats(min_value=0.5, max_value=24 * 30, allow_nan=False),
    window=windows,
)
def test_decays_with_age(base: dict[str, int], age: float, older: float, window: str) -> None:
    young, old = one(age, window, **base), one(age + older, window, **base)
    assert old <= young
    if age + older < 24 * 60:
        assert old < young


@given(base=st.fixed_dictionaries({s: counts for s in SIGNALS}), window=windows)
def test_one_half_life_halves_the_score(base: dict[str, int], window: str) -> None:
    h = HALF_LIFE[window].total_seconds() / 3600
    assert one(h, window, **base) == pytest.approx(one(0.0, window, **base) / 2, rel=1e-9)


def test_missing_values_count_as_zero_and_future_dates_as_new() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    ages_h = ages_in_hours([now + timedelta(hours=5), now - timedelta(hours=24), None], now)
    assert ages_h[0] == 0.0 and ages_h[1] == pytest.approx(24.0) and ages_h[2] > 10**5
    scores = trending_score(ages_h, upvotes=[None, 3, 3])
    assert scores[0] > 0 and scores[2] == pytest.approx(0.0, abs=1e-12)


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        TrendingWeights(upvotes=-1)
    with pytest.raises(ValueError, match="window"):
        trending_score(np.zeros(1), window="year")
    with pytest.raises(ValueError, match="2 values"):
        trending_score(np.zeros(2), upvotes=[1])
