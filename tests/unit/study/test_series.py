"""Study series: D_eff(T) of a composition, the pressure series, constriction, cutoff errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from geis_pipeline.physics import arrhenius_extrapolate, constriction_resistance_ohm
from geis_pipeline.study import (
    constriction_column,
    cutoff_end_point,
    diffusivity_arrhenius,
    pressure_series,
    value_at_time,
)

CELSIUS = 273.15
# krauskopf2020, section 3: D(25 C) = 3e-11 cm2/s and E_A = 0.57 eV, printed to two digits.
KRAUSKOPF2020_D = [(0, 3.9e-12), (50, 1.7e-10), (80, 9.5e-10), (100, 2.6e-9)]


def test_diffusivity_arrhenius_reproduces_krauskopf2020() -> None:
    """Experiments at 25, 40 and 60 C with D from 0.57 eV: E_A back, and D at 0-100 C."""
    temperatures = CELSIUS + np.array([25.0, 40.0, 60.0])
    values = [arrhenius_extrapolate(3e-11, 298.15, 0.57, t) for t in temperatures]
    fitted = diffusivity_arrhenius(temperatures, values)
    assert fitted.E_A_eV == pytest.approx(0.57, rel=1e-9)
    assert fitted.D_ref_cm2_s == pytest.approx(3e-11, rel=1e-9)
    assert fitted.E_A_stderr_eV == pytest.approx(0.0, abs=1e-9)  # exact points
    for celsius, printed in KRAUSKOPF2020_D:
        assert fitted.at(CELSIUS + celsius) == pytest.approx(printed, rel=0.02), celsius


def test_diffusivity_arrhenius_errors_from_the_d_errors() -> None:
    """2 % errors on each D: E_A's stderr is what propagating them gives, and covers the truth."""
    rng = np.random.default_rng(1)
    temperatures = CELSIUS + np.array([25.0, 40.0, 60.0, 80.0])
    exact = np.array([arrhenius_extrapolate(3e-11, 298.15, 0.57, t) for t in temperatures])
    errors = []
    for _ in range(200):
        noisy = exact * (1 + 0.02 * rng.standard_normal(exact.size))
        fitted = diffusivity_arrhenius(temperatures, noisy, D_eff_stderr_cm2_s=0.02 * noisy)
        errors.append((fitted.E_A_eV - 0.57) / fitted.E_A_stderr_eV)
    assert np.std(errors) == pytest.approx(1.0, abs=0.15)
    assert abs(np.mean(errors)) < 0.2


def test_diffusivity_arrhenius_needs_two_temperatures() -> None:
    fitted = diffusivity_arrhenius([300.0, 300.0], [1e-11, 2e-11])
    assert math.isnan(fitted.E_A_eV) and fitted.n_points == 2


def test_constriction_column_from_pressure_and_area() -> None:
    """1 MPa on 0.5 cm2 is 50 N; R in ohm cm2 is R times the area."""
    column = constriction_column(
        area_cm2=0.5, stack_pressure_MPa=1.0, conductivity_S_cm=4.6e-4, hardness_MPa=5.0
    )
    assert column["force_N"] == pytest.approx(50.0)
    resistance = constriction_resistance_ohm(50.0, 4.6e-4, 5.0)
    assert column["R_constriction_ohm"] == pytest.approx(resistance)
    assert column["R_constriction_ohm_cm2"] == pytest.approx(0.5 * resistance)
    # A force given wins over the pressure; no area: no column.
    forced = constriction_column(
        area_cm2=0.5, force_N=200.0, stack_pressure_MPa=1.0, conductivity_S_cm=4.6e-4,
        hardness_MPa=5.0,
    )  # fmt: skip
    assert forced["R_constriction_ohm"] == pytest.approx(resistance / 2)
    assert (
        constriction_column(
            area_cm2=None, stack_pressure_MPa=1.0, conductivity_S_cm=4.6e-4, hardness_MPa=5.0
        )
        == {}
    )


def test_pressure_series_orders_by_pressure_and_fits_the_power_law() -> None:
    """R_int(0) ~ p^(-1/2) (constriction): the exponent comes back."""
    pressures = [8.0, 2.0, 32.0, 0.5]
    summaries = {
        f"p{pressure:g}": {
            "stack_pressure_MPa": pressure,
            "R_int_ref_ohm_cm2": 100.0 * pressure**-0.5,
            "t0_s": 100.0 * pressure,
            "contact_loss_C_t0": 0.9,
        }
        for pressure in pressures
    }
    series = pressure_series(summaries)
    assert series["stack_pressure_MPa"] == sorted(pressures)
    assert series["experiments"] == [f"p{pressure:g}" for pressure in sorted(pressures)]
    assert series["t0_s"] == [100.0 * pressure for pressure in sorted(pressures)]
    assert series["R_int_pressure_exponent"] == pytest.approx(-0.5)
    assert math.isnan(series["contact_loss_R_t0"][0])  # a key a summary lacks is NaN
    assert pressure_series({"a": {"stack_pressure_MPa": 1.0}, "b": {}}) == {}


@given(st.floats(0.0, 100.0))
def test_value_at_time_interpolates_valid_steps(at: float) -> None:
    time_s = np.linspace(0.0, 100.0, 11)
    values = 2 * time_s
    valid = np.ones(11, bool)
    valid[5] = False
    values[5] = 1e9  # not valid: never seen
    assert value_at_time(time_s, values, valid, at) == pytest.approx(2 * at)
    assert math.isnan(value_at_time(time_s, values, valid, 101.0))


def test_cutoff_is_interpolated_with_a_sampling_error() -> None:
    """A potential ramp sampled every 10 s: the crossing between samples, stderr 10/sqrt(12) s."""
    time_s = np.arange(0.0, 1000.0, 10.0)
    potential = 0.001 * time_s  # V: 1 V at 1000 s... the cutoff 0.555 V is at 555 s
    density = np.full(time_s.size, 0.5)
    end = cutoff_end_point(time_s, potential, density, 0.555, c0_mol_cm3=0.0768)
    assert end.t_cutoff_s == pytest.approx(555.0)
    assert end.q_cutoff_mAh_cm2 == pytest.approx(0.5 * 555.0 / 3600)
    assert end.t_cutoff_stderr_s == pytest.approx(10 / math.sqrt(12))
    assert end.D_eff_stderr_cm2_s / end.D_eff_cm2_s == pytest.approx(end.t_cutoff_stderr_s / 555)
    assert end.q_cutoff_stderr_mAh_cm2 / end.q_cutoff_mAh_cm2 == pytest.approx(
        end.t_cutoff_stderr_s / 555
    )
