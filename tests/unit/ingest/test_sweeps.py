"""Sweep splitting (DOMAIN.md's rule) as properties over random loop files."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from geis_pipeline.ingest.sweeps import incomplete_sweeps, split_sweeps

GRID = np.logspace(6, -1, 50)  # a high-to-low sweep grid, Hz


@st.composite
def loop_files(draw):
    """Back-to-back sweeps on one grid, some cut short, some separated by rest rows."""
    lengths = draw(st.lists(st.integers(1, GRID.size), min_size=1, max_size=12))
    gaps = draw(st.lists(st.integers(0, 3), min_size=len(lengths), max_size=len(lengths)))
    jitter = draw(st.floats(0.0, 0.001))
    freq, rows, starts = [], [], []
    row = 0
    for length, gap in zip(lengths, gaps, strict=True):
        row += gap  # rest rows (freq = 0) removed before splitting
        starts.append(len(freq))
        freq.extend(GRID[:length] * (1 + jitter))
        rows.extend(range(row, row + length))
        row += length
    return np.array(freq), np.array(rows), lengths, starts


@given(loop_files())
def test_split_recovers_the_sweeps(loop) -> None:
    freq, rows, lengths, starts = loop
    sweeps = split_sweeps(freq, rows)
    assert [sweep.start for sweep in sweeps] == starts
    assert [sweep.stop - sweep.start for sweep in sweeps] == lengths


@given(loop_files())
def test_rest_rows_are_not_needed_for_back_to_back_sweeps(loop) -> None:
    freq, _, lengths, _ = loop
    sweeps = split_sweeps(freq)
    # Without row gaps, only the frequency jump back up separates sweeps.
    assert sum(sweep.stop - sweep.start for sweep in sweeps) == freq.size
    assert len(sweeps) == len(lengths)


def test_step_change_splits_even_without_a_jump() -> None:
    freq = np.array([1e5, 1e4, 1e3, 1e2, 1e1])
    step = np.array([0, 0, 0, 1, 1])
    assert split_sweeps(freq, step=step) == [slice(0, 3), slice(3, 5)]


def test_low_to_high_sweeps() -> None:
    freq = np.concatenate([GRID[::-1], GRID[::-1][:10]])
    assert split_sweeps(freq) == [slice(0, 50), slice(50, 60)]


def test_cycle_number_is_not_used() -> None:
    # The signature takes no cycle number: two sweeps in one "cycle" still split.
    freq = np.concatenate([GRID, GRID])
    assert len(split_sweeps(freq)) == 2


def test_incomplete_is_shorter_than_longest() -> None:
    np.testing.assert_array_equal(incomplete_sweeps([41, 41, 39]), [False, False, True])
    assert incomplete_sweeps([]).size == 0
