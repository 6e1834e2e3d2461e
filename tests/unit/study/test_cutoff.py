"""End points from the DC record: the voltage cutoff of Mann 2024, Table 1."""

from __future__ import annotations

import numpy as np
import pytest

from geis_pipeline.study import critical_current_density, cutoff_end_point, sand_by_composition


def test_cutoff_gives_the_capacity_and_sand_d_of_mann_table_1() -> None:
    """LiNa at 0.1 mA/cm2 stripped 11.527 mAh/cm2 to the cutoff: D_eff 9.7e-11 cm2/s, 56.0 um."""
    current = 0.1  # mA/cm2
    t_cut = 3600 * 11.527 / current
    time_s = np.concatenate([np.linspace(0, 600, 7), 600 + np.linspace(0, t_cut, 20001)])
    density = np.where(time_s >= 600, current, 0.0)
    potential = np.where(time_s >= 600, 0.05 + 0.95 * ((time_s - 600) / t_cut) ** 8, 0.0)
    end = cutoff_end_point(time_s, potential, density, 1.0, c0_mol_cm3=0.0768)
    assert end.reached
    assert end.t_cutoff_s == pytest.approx(t_cut, rel=1e-3)
    assert end.q_cutoff_mAh_cm2 == pytest.approx(11.527, rel=1e-3)
    assert end.stripped_um == pytest.approx(56.0, abs=0.2)
    assert end.D_eff_cm2_s == pytest.approx(9.7e-11, rel=0.02)


def test_cutoff_not_reached_or_no_current() -> None:
    time_s = np.linspace(0, 100, 11)
    assert not cutoff_end_point(time_s, np.zeros(11), np.ones(11), 1.0, c0_mol_cm3=0.0768).reached
    assert not cutoff_end_point(time_s, np.ones(11), np.zeros(11), 0.5, c0_mol_cm3=0.0768).reached


def test_sand_needs_two_currents_per_composition() -> None:
    summaries = {
        "a": {"t0_s": 100.0, "current_density_mA_cm2": 1.0},
        "b": {"t0_s": 400.0, "current_density_mA_cm2": 0.5},
        "c": {"t0_s": 300.0, "current_density_mA_cm2": 1.0},
    }
    fits = sand_by_composition(
        summaries,
        compositions={"a": "Li", "b": "Li", "c": "LiMg"},
        c0_mol_cm3={"Li": 0.0768, "LiMg": 0.0696},
    )
    assert np.isfinite(fits["Li"]["D_eff_cm2_s"]) and fits["Li"]["n_experiments"] == 2
    assert np.isnan(fits["LiMg"]["D_eff_cm2_s"])
    assert "two currents" in fits["LiMg"]["reason"]


def test_staircase_gives_its_ccd_within_one_step() -> None:
    """50 uA/cm2 steps (Mann 2024); above 0.35 mA/cm2 the interface stops being ohmic."""
    rng = np.random.default_rng(0)
    steps = np.arange(1, 11) * 0.05  # mA/cm2
    true_ccd = 0.35
    time_s, potential, density = [], [], []
    for index, current in enumerate(steps):
        t = index * 600 + np.linspace(0, 590, 60)
        resistance = 100.0 if current < true_ccd else 100.0 * (1 + 20 * (current - 0.3))
        eta = current * 1e-3 * resistance * (1 + 0.01 * rng.standard_normal(t.size))
        time_s.append(t)
        potential.append(0.02 + eta)
        density.append(np.full(t.size, current))
    result = critical_current_density(
        np.concatenate(time_s), np.concatenate(potential), np.concatenate(density), ocv_V=0.02
    )
    assert result.found, result.reason
    assert abs(result.ccd_mA_cm2 - true_ccd) <= 0.05 + 1e-9
    assert len(result.step_currents_mA_cm2) == steps.size
    # A constant current is no staircase.
    flat = critical_current_density(
        np.arange(100.0), np.full(100, 0.05), np.full(100, 0.1), ocv_V=0.0
    )
    assert not flat.found and "staircase" in flat.reason
