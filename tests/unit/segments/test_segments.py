"""Segment and cycle tables from arrays (no pipeline)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geis_pipeline.segments import _half_cycles, cycle_table, segment_table


def _table(labels: list[str], density: list[float], r: list[float]) -> dict[str, np.ndarray]:
    from geis_pipeline.kind import segment_index

    n = len(labels)
    return {
        "time_s": 10.0 * np.arange(n),
        "segment": np.array(labels, dtype=object),
        "segment_index": segment_index(np.array(labels, dtype=object)),
        "current_density_mA_cm2": np.array(density),
        "E_V": np.zeros(n),
        "fit_ok": np.ones(n, bool),
        "R_int_ohm_cm2": np.array(r),
        "C_int_F_cm2": 1e-6 * 100 / np.array(r),
    }


def test_without_a_dc_record_the_sweeps_currents_give_the_charge() -> None:
    table = _table(["strip"] * 3 + ["ocv"] * 2, [0.36] * 3 + [0.0] * 2, [100, 110, 120, 118, 117])
    rows = segment_table(table, 0).columns
    assert list(rows["label"]) == ["strip", "ocv"]
    # The strip segment spans 0..30 s (up to the rest's first sweep) at 0.36 mA/cm2.
    assert rows["charge_mAh_cm2"][0] == pytest.approx(0.36 * 30 / 3600)
    assert rows["R_int_end_ohm_cm2"][0] == 120
    # Two rest steps are too few for a relaxation fit: NaN, not a made-up number.
    assert np.isnan(rows["relaxation_tau_s"][1])


def test_unfit_steps_are_left_out_of_start_and_end_values() -> None:
    table = _table(["strip"] * 4, [0.1] * 4, [100, 110, 120, 130])
    table["fit_ok"] = np.array([False, True, True, False])
    rows = segment_table(table, 1).columns
    assert rows["R_int_start_ohm_cm2"][0] == 110 and rows["R_int_end_ohm_cm2"][0] == 120


def test_cycles_need_both_current_signs() -> None:
    time = np.arange(10.0)
    assert len(cycle_table(time, np.full(10, 0.1), np.zeros(10))) == 0
    density = np.array([0.1, 0.1, 0, -0.1, -0.1, 0, 0.1, 0.1, -0.1, -0.1])
    cycles = cycle_table(time, density, np.ones(10)).columns
    assert list(cycles["cycle"]) == [1, 2]
    assert list(cycles["complete"]) == [True, True]
    assert cycles["charge_strip_mAh_cm2"][0] == pytest.approx(0.2 / 3600)
    assert cycles["charge_plate_mAh_cm2"][1] == pytest.approx(-0.1 / 3600)


def test_an_unrecorded_current_gives_no_charge_and_no_cycles() -> None:
    table = _table(["unknown"] * 3, [np.nan] * 3, [100, 110, 120])
    rows = segment_table(table, 0).columns
    assert np.isnan(rows["charge_mAh_cm2"][0]) and np.isnan(rows["current_density_mA_cm2"][0])
    assert len(cycle_table(np.arange(3.0), np.full(3, np.nan), np.zeros(3))) == 0


def _reference_halves(state: np.ndarray) -> list[tuple[int, int, int]]:
    """The half cycles row by row: each maximal run of +1 or -1 (the loop it replaced)."""
    halves, start = [], None
    for index in range(state.size + 1):
        current = state[index] if index < state.size else 0
        if start is not None and current != state[start]:
            halves.append((int(state[start]), start, index))
            start = None
        if start is None and current in (1, -1):
            start = index
    return halves


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([-1, 0, 1, 2]), max_size=60))
def test_half_cycles_are_the_runs_of_one_current_sign(states: list[int]) -> None:
    state = np.array(states, dtype=np.int64)
    assert _half_cycles(state) == _reference_halves(state)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([-0.2, -1e-4, 0.0, 0.3, np.nan]), st.integers(1, 6)),
        min_size=1,
        max_size=12,
    )
)
def test_cycle_table_of_random_layouts_counts_every_half(runs) -> None:
    density = np.concatenate([np.full(length, value) for value, length in runs])
    time = np.arange(density.size, dtype=float)
    cycles = cycle_table(time, density, np.zeros(density.size)).columns
    halves = _reference_halves(
        np.where(
            np.isnan(density), 2, np.sign(np.where(np.abs(density) <= 1e-3, 0, density))
        ).astype(np.int64)
    )
    if not cycles:
        return
    # Every half belongs to exactly one cycle; complete cycles hold two.
    assert len(halves) == len(cycles["cycle"]) + int(np.sum(cycles["complete"]))
    assert cycles["start_s"][0] == halves[0][1]
