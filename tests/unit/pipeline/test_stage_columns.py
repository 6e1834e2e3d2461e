"""Chunks copied into place as they arrive give what concatenating them in order gives."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from geis_pipeline.config import Config
from geis_pipeline.pipeline.assembly import StageColumns


def _chunk(start: int, stop: int, offsets: np.ndarray, integer_rms: bool = False) -> dict:
    n_points = int(offsets[stop] - offsets[start])
    rows = np.arange(start, stop)
    return {
        "sweeps": {
            "ok": rows % 3 != 0,
            "rms": rows.astype(np.int64) if integer_rms else rows.astype(np.float64),
            "gamma_ohm": np.outer(rows, np.arange(4.0)),
            "reason": np.array([f"reason {row}" * (row % 4) for row in rows], dtype=object),
        },
        "points": {
            "residual": np.arange(offsets[start], offsets[stop]) * 0.25,
            "used": np.ones(n_points, dtype=bool),
        },
        "grid": {"tau_s": np.logspace(-6, 0, 4)},
    }


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(1, 9), min_size=1, max_size=40),
    st.integers(1, 7),
    st.randoms(use_true_random=False),
    st.integers(0, 100),
)
def test_out_of_order_chunks_give_the_concatenation(sizes, chunk_size, random, dropped) -> None:
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    n_sweeps = len(sizes)
    bounds = [(a, min(a + chunk_size, n_sweeps)) for a in range(0, n_sweeps, chunk_size)]
    missing = bounds[dropped % len(bounds)] if dropped < 50 else None  # a chunk not done yet
    arrived = [bound for bound in bounds if bound != missing]
    random.shuffle(arrived)
    columns = StageColumns(offsets)
    for index, (start, stop) in enumerate(arrived):
        # One chunk (e.g. read back from the chunk store) has integer values: promoted.
        columns.add(start, stop, _chunk(start, stop, offsets, integer_rms=index == 1))
    n_done = missing[0] if missing is not None else n_sweeps
    assert columns.done() == n_done
    data = columns.stage_data("kk", Config(), "hash")
    assert data.attrs["n_done"] == n_done and data.attrs["complete"] == (n_done == n_sweeps)
    done = [_chunk(a, b, offsets) for a, b in bounds if b <= n_done]
    if not done:
        assert data.sweeps == {} and data.points == {}
        return
    for name, values in data.sweeps.items():
        expected = np.concatenate([chunk["sweeps"][name] for chunk in done])
        assert values.shape == expected.shape
        assert values.tolist() == expected.tolist(), name
    for name, values in data.points.items():
        expected = np.concatenate([chunk["points"][name] for chunk in done])
        np.testing.assert_array_equal(values, expected)
    assert data.sweeps["reason"].dtype == object
    np.testing.assert_array_equal(data.grid["tau_s"], np.logspace(-6, 0, 4))
    start, stop = bounds[0]
    if bounds[0] != missing:
        chunk = columns.chunk(start, stop)
        np.testing.assert_array_equal(
            chunk["sweeps"]["rms"], _chunk(start, stop, offsets)["sweeps"]["rms"]
        )
