"""Per-step tracking against the simulator's ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from geis_pipeline.simulate import SimulationSettings, simulate_experiment
from geis_pipeline.track import track


@pytest.fixture(scope="module")
def simulated():
    return simulate_experiment(SimulationSettings(seed=2, n_sweeps=60))


def _true_roles(truth, area_cm2: float) -> dict[str, dict[str, np.ndarray]]:
    """The simulator's truth as the role table the fit hands to the tracking."""
    zero = np.zeros_like(truth.R_int_ohm)
    table = {}
    for role, label in (("bulk", "b"), ("gb", "gb"), ("int", "int")):
        table[role] = {
            "R_ohm": getattr(truth, f"R_{label}_ohm"),
            "R_stderr_ohm": zero,
            "C_F": getattr(truth, f"C_{label}_F_cm2") * area_cm2,
            "C_stderr_F": zero,
            "alpha": getattr(truth, f"alpha_{label}"),
        }
    table["int"]["tau_s"] = truth.tau_int_s
    return table


def _track(simulated, **options):
    truth = simulated.truth
    return track(
        truth.time_s,
        roles=_true_roles(truth, simulated.settings.area_cm2),
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
    fit_ok = np.ones(truth.time_s.size, dtype=bool)
    fit_ok[:3] = False
    result = track(truth.time_s, roles=_true_roles(truth, 1.0), fit_ok=fit_ok, area_cm2=1.0)
    assert result.reference_step == 3
    assert result.columns["contact_loss_C"][3] == 0.0


def test_no_area_keeps_the_absolute_twins(simulated) -> None:
    """Without an area the per-cm2 columns are NaN and the ohm / F columns carry the values."""
    truth = simulated.truth
    columns = track(
        truth.time_s,
        roles=_true_roles(truth, simulated.settings.area_cm2),
        fit_ok=np.ones(truth.time_s.size, dtype=bool),
        area_cm2=None,
    ).columns
    assert np.isnan(columns["R_int_ohm_cm2"]).all() and np.isnan(columns["C_int_F_cm2"]).all()
    np.testing.assert_allclose(columns["R_int_ohm"], truth.R_int_ohm, rtol=1e-12)
    np.testing.assert_allclose(columns["R_b_ohm"], truth.R_b_ohm, rtol=1e-12)
    np.testing.assert_allclose(
        columns["C_int_F"], truth.C_int_F_cm2 * simulated.settings.area_cm2, rtol=1e-12
    )
    # Contact loss is a ratio: it needs no area.
    phi = truth.contact_fraction / truth.contact_fraction[0]
    np.testing.assert_allclose(columns["contact_loss_C"], 1 - phi, atol=1e-12)


def test_dcac_gap_subtracts_every_resistance_of_the_circuit() -> None:
    """A series R the roles do not name still counts: R_dcac = E/i - sum of all resistances."""
    steps = 4
    current = np.full(steps, 0.1)  # mA
    potential = np.full(steps, 0.05)  # V: E/i = 500 ohm
    roles = {"int": {"R_ohm": np.full(steps, 200.0)}}
    total = np.full(steps, 350.0)  # int + a 150 ohm series R with no role
    columns = track(
        np.arange(steps, dtype=float),
        roles=roles,
        fit_ok=np.ones(steps, dtype=bool),
        total_resistance_ohm=total,
        potential_V=potential,
        current_mA=current,
        area_cm2=0.5,
    ).columns
    np.testing.assert_allclose(columns["R_dcac_ohm"], 150.0)
    np.testing.assert_allclose(columns["R_dcac_ohm_cm2"], 75.0)
    # Without the total, only the roles' resistances are known: a bulk the circuit lacks is 0.
    partial = track(
        np.arange(steps, dtype=float),
        roles=roles,
        fit_ok=np.ones(steps, dtype=bool),
        potential_V=potential,
        current_mA=current,
        area_cm2=0.5,
    ).columns
    np.testing.assert_allclose(partial["R_dcac_ohm"], 300.0)


def test_given_segments_give_the_dcac_gap_without_an_area() -> None:
    """Labels from the DC record (kind.spectra_labels) need no area; the density's do."""
    steps = 4
    current = np.array([0.0, 0.1, 0.1, 0.0])  # mA: rest, strip, strip, a bias
    potential = np.array([0.01, 0.06, 0.06, 0.2])  # V: (E - 0.01 V)/0.1 mA = 500 ohm
    common = dict(
        roles={"int": {"R_ohm": np.full(steps, 200.0)}},
        fit_ok=np.ones(steps, dtype=bool),
        potential_V=potential,
        current_mA=current,
        area_cm2=None,
    )
    labels = np.array(["ocv", "strip", "strip", "bias"], dtype=object)
    columns = track(np.arange(steps, dtype=float), segment=labels, **common).columns
    np.testing.assert_allclose(columns["R_dcac_ohm"], [np.nan, 300.0, 300.0, np.nan])
    assert np.isnan(columns["R_dcac_ohm_cm2"]).all()
    assert list(columns["segment_index"]) == [0, 1, 1, 2]
    from_density = track(np.arange(steps, dtype=float), **common).columns
    assert set(from_density["segment"]) == {"unknown"}  # no area: no density to label from
    with pytest.raises(ValueError, match="3 labels for 4 steps"):
        track(np.arange(steps, dtype=float), segment=labels[:3], **common)


def test_every_drt_window_is_tracked() -> None:
    steps = 3
    r = np.array([10.0, 20.0, 40.0])
    tau = np.array([1e-4, 1e-4, 1e-4])
    columns = track(
        np.arange(steps, dtype=float),
        roles={},
        fit_ok=np.ones(steps, dtype=bool),
        area_cm2=0.5,
        drt_processes={"sei": (r, tau), "gb": (r / 2, tau / 100)},
    ).columns
    np.testing.assert_allclose(columns["R_sei_drt_ohm_cm2"], r * 0.5)
    np.testing.assert_allclose(columns["tau_gb_drt_s"], tau / 100)
    np.testing.assert_allclose(columns["C_sei_drt_F_cm2"], tau / r / 0.5)


def test_a_drt_resistance_is_a_measurement_only_where_resolved_and_the_spectrum_passes_kk() -> None:
    steps = 4
    r = np.array([10.0, 20.0, 40.0, 80.0])
    columns = track(
        np.arange(steps, dtype=float),
        roles={},
        fit_ok=np.ones(steps, dtype=bool),
        kk_ok=np.array([True, True, False, True]),
        area_cm2=0.5,
        drt_processes={"int": (r, np.full(steps, 1e-4))},
        drt_resolved={"int": np.array([True, False, True, True])},
        drt_R_stderr_ohm={"int": r / 100},
        interfaces=2,
    ).columns
    assert list(columns["R_int_drt_resolved"]) == [True, False, False, True]
    # Per interface, like R itself.
    np.testing.assert_allclose(columns["R_int_drt_stderr_ohm"], r / 200)
    np.testing.assert_allclose(columns["R_int_drt_stderr_ohm_cm2"], r / 200 * 0.5)


def test_penetration_raises_the_short_circuit_flag_at_the_right_step() -> None:
    """R_b and R_gb falling over the last 10 % of the steps: lithium penetrating the electrolyte."""
    steps = 50
    falling = np.ones(steps)
    falling[45:] = np.linspace(0.8, 0.1, 5)  # below half of the start from step 47
    roles = {
        "bulk": {"R_ohm": 400.0 * falling},
        "gb": {"R_ohm": 80.0 * falling},
        "int": {"R_ohm": np.full(steps, 200.0), "C_F": np.full(steps, 1e-6)},
    }
    current = np.full(steps, 0.1)
    resistance = 400.0 * falling + 80.0 * falling + 200.0
    columns = track(
        np.arange(steps, dtype=float),
        roles=roles,
        fit_ok=np.ones(steps, dtype=bool),
        current_mA=current,
        potential_V=current * 1e-3 * resistance,
        area_cm2=0.5,
    ).columns
    flagged = np.flatnonzero(columns["short_circuit"])
    assert flagged[0] == int(np.flatnonzero(falling < 0.5)[0])
    assert flagged.tolist() == list(range(flagged[0], steps))
