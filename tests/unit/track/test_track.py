"""Per-step tracking against the simulator's ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from geis_pipeline.fit import parse_circuit
from geis_pipeline.simulate import SimulationSettings, simulate_experiment
from geis_pipeline.track import track

CIRCUIT = parse_circuit("L0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)")
ROLES = {"R1": "bulk", "R2": "gb", "R3": "int"}


@pytest.fixture(scope="module")
def simulated():
    return simulate_experiment(SimulationSettings(seed=2, n_sweeps=60))


def _true_parameters(truth) -> np.ndarray:
    return np.column_stack(
        [truth.L_H, truth.R_b_ohm, truth.Q_b, truth.alpha_b, truth.R_gb_ohm, truth.Q_gb,
         truth.alpha_gb, truth.R_int_ohm, truth.Q_int, truth.alpha_int]
    )  # fmt: skip


def _track(simulated, **options):
    truth = simulated.truth
    parameters = _true_parameters(truth)
    return track(
        truth.time_s,
        parameters=parameters,
        stderr=np.zeros_like(parameters),
        parameter_names=CIRCUIT.parameter_names,
        zarcs=CIRCUIT.zarcs,
        roles=ROLES,
        fit_ok=np.ones(truth.time_s.size, dtype=bool),
        potential_V=truth.potential_V,
        charge_mAh=truth.charge_mAh,
        area_cm2=simulated.settings.area_cm2,
        **options,
    )


def test_true_parameters_give_the_true_table(simulated) -> None:
    truth = simulated.truth
    columns = _track(simulated).columns
    np.testing.assert_allclose(columns["R_int_ohm_cm2"], truth.R_int_ohm_cm2, rtol=1e-10)
    np.testing.assert_allclose(columns["R_b_ohm_cm2"], truth.R_b_ohm_cm2, rtol=1e-10)
    np.testing.assert_allclose(columns["R_gb_ohm_cm2"], truth.R_gb_ohm_cm2, rtol=1e-10)
    np.testing.assert_allclose(columns["C_int_F_cm2"], truth.C_int_F_cm2, rtol=1e-10)
    np.testing.assert_allclose(columns["tau_int_s"], truth.tau_int_s, rtol=1e-10)
    # Contact loss from C and from R both equal 1 - phi (relative to the first step).
    phi = truth.contact_fraction / truth.contact_fraction[0]
    np.testing.assert_allclose(columns["contact_loss_C"], 1 - phi, atol=1e-12)
    np.testing.assert_allclose(columns["contact_loss_R"], 1 - phi, atol=1e-12)
    area = simulated.settings.area_cm2
    np.testing.assert_allclose(columns["charge_mAh_cm2"], truth.charge_mAh / area)
    # 1 mAh/cm2 strips 4.85 um of lithium.
    np.testing.assert_allclose(
        columns["stripped_Li_um"] / columns["charge_mAh_cm2"], 4.85, rtol=2e-3
    )


def test_symmetric_cell_reports_per_interface(simulated) -> None:
    one = _track(simulated).columns
    two = _track(simulated, interfaces=2).columns
    np.testing.assert_allclose(two["R_int_ohm_cm2"], one["R_int_ohm_cm2"] / 2)
    np.testing.assert_allclose(two["C_int_F_cm2"], one["C_int_F_cm2"] * 2)
    np.testing.assert_allclose(two["contact_loss_R"], one["contact_loss_R"])


def test_reference_step_skips_failed_fits(simulated) -> None:
    truth = simulated.truth
    parameters = _true_parameters(truth)
    fit_ok = np.ones(truth.time_s.size, dtype=bool)
    fit_ok[:3] = False
    result = track(
        truth.time_s, parameters=parameters, stderr=np.zeros_like(parameters),
        parameter_names=CIRCUIT.parameter_names, zarcs=CIRCUIT.zarcs, roles=ROLES,
        fit_ok=fit_ok, area_cm2=1.0,
    )  # fmt: skip
    assert result.reference_step == 3
    assert result.columns["contact_loss_C"][3] == 0.0
