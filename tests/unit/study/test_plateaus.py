"""The current staircase's plateaus: the windowed search finds what a row-by-row scan finds."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from geis_pipeline.study import _plateaus


def _row_by_row(density: np.ndarray, loaded: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive loaded rows within 1 % of the plateau's first row, one row at a time."""
    plateaus, start = [], None
    for index in range(density.size + 1):
        same = (
            index < density.size
            and loaded[index]
            and start is not None
            and abs(density[index] - density[start]) <= 0.01 * abs(density[start])
        )
        if same:
            continue
        if start is not None:
            plateaus.append((start, index))
        start = index if index < density.size and loaded[index] else None
    return plateaus


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0.0, 0.05, 0.1, 0.2, np.nan]), st.integers(1, 300)),
        min_size=1,
        max_size=30,
    ),
    st.floats(0.0, 0.02),
    st.integers(0, 9),
)
def test_windowed_plateaus_are_the_row_by_row_ones(levels, noise, seed) -> None:
    rng = np.random.default_rng(seed)
    density = np.concatenate([np.full(count, level) for level, count in levels])
    density = density * (1 + noise * rng.standard_normal(density.size))
    loaded = np.isfinite(density) & (np.abs(density) > 1e-3)
    assert _plateaus(density, loaded) == _row_by_row(density, loaded)
