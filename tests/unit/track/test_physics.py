"""Experiment- and study-level physics of tracking against hand values and simulator truth.

DOMAIN.md formulas: Sand's time and diffusivity, stripped thickness, temperature
normalisation, Arrhenius; depletion time, relaxation and contact loss from fitted
simulated experiments with a known contact-loss history.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from geis_pipeline.fit import FitOptions, fit_experiment, role_table
from geis_pipeline.physics import BOLTZMANN_EV_K, stripped_thickness_um
from geis_pipeline.simulate import SimulationSettings, contact_fraction, simulate_experiment
from geis_pipeline.track import (
    arrhenius_fit,
    depletion_time,
    fit_relaxation,
    normalise_temperature,
    sand_diffusivity,
    sand_fit,
    sand_time_s,
    segment_labels,
    summarize_tracking,
    track,
)

CIRCUIT = "L0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)"
ROLES = {"L0": "cable", "R1": "bulk", "R2": "gb", "R3": "int"}
D_TRUE = 0.8e-11
C0_LI = 0.0768
#: A fast simulated cell: high current (t0 ~ 6-16 min), short sweeps (7 MHz-1 Hz, ~10 s each).
FAST = {"overhead_per_point_s": 0.01, "hold_s": 2.0}


# ------------------------------------------------------------------ the papers' checks


def test_sand_time_of_lithium_at_100_uA_is_9_6_hours() -> None:
    t0 = sand_time_s(0.1, D_TRUE, C0_LI)
    assert t0 / 3600 == pytest.approx(9.6, rel=0.01)
    # And back: the diffusivity from that t0 (i in mA/cm2, t0 in s).
    assert sand_diffusivity(t0, 0.1, C0_LI) == pytest.approx(D_TRUE, rel=1e-12)
    # Quadratic in 1/i: twice the current, a quarter of the time.
    assert sand_time_s(0.2, D_TRUE, C0_LI) == pytest.approx(t0 / 4, rel=1e-12)


def test_one_mAh_per_cm2_strips_4_85_um() -> None:
    assert stripped_thickness_um(1.0) == pytest.approx(4.85, rel=2e-3)


def test_temperature_normalisation_hand_computed() -> None:
    # R = 100 ohm cm2 at 0 C, E_A = 0.37 eV, to 25 C:
    # 100 * (298.15/273.15) * exp(0.37/8.617333e-5 * (1/298.15 - 1/273.15)) = 29.2 ohm cm2.
    colder = float(normalise_temperature(100.0, 273.15, 298.15, 0.37))
    assert colder == pytest.approx(29.22, rel=2e-3)
    assert colder < 100.0  # colder -> higher measured R -> R(T0) < R(T)
    warmer = float(normalise_temperature(100.0, 323.15, 298.15, 0.37))
    assert warmer > 100.0
    assert float(normalise_temperature(100.0, 298.15, 298.15, 0.37)) == pytest.approx(100.0)
    # The round trip: normalising back gives the measured value.
    assert float(normalise_temperature(colder, 298.15, 273.15, 0.37)) == pytest.approx(100.0)


def test_arrhenius_recovers_activation_energy() -> None:
    temperature = np.array([273.15, 298.15, 323.15, 348.15])
    e_a = 0.37
    resistance = temperature * np.exp(e_a / (BOLTZMANN_EV_K * temperature)) * 1e-5
    rng = np.random.default_rng(1)
    noisy = resistance * (1 + 0.01 * rng.standard_normal(temperature.size))
    fitted = arrhenius_fit(temperature, noisy)
    assert fitted.E_A_eV == pytest.approx(e_a, rel=0.03)
    assert 0 < fitted.E_A_stderr_eV < 0.02
    exact = arrhenius_fit(temperature, resistance)
    assert exact.E_A_eV == pytest.approx(e_a, rel=1e-9)
    assert math.isnan(arrhenius_fit([300.0, 300.0], [1.0, 2.0]).E_A_eV)


# ------------------------------------------------------------------ pure functions


def test_segment_labels_from_current_sign() -> None:
    density = np.array([0.0, 0.1, 0.1, 0.0, 0.0, -0.1, np.nan, 1e-5])
    labels, index = segment_labels(density, 1e-3)
    assert list(labels) == ["ocv", "strip", "strip", "ocv", "ocv", "plate", "unknown", "ocv"]
    assert list(index) == [0, 1, 1, 2, 2, 3, 4, 5]


def test_depletion_time_interpolates_and_reports_not_reached() -> None:
    time_s = np.array([0.0, 10.0, 20.0, 30.0])
    r = np.array([100.0, 500.0, 900.0, 1300.0])
    result = depletion_time(time_s, r, 1000.0, onset_s=-5.0)
    assert result.reached
    assert result.crossing_time_s == pytest.approx(22.5)
    assert result.t0_s == pytest.approx(27.5)
    assert result.t0_stderr_s == pytest.approx(5.0)
    # Invalid steps are skipped.
    skipped = depletion_time(time_s, r, 1000.0, valid=np.array([1, 1, 0, 1], bool))
    assert skipped.t0_s == pytest.approx(10 + 500 / 800 * 20)
    missed = depletion_time(time_s, r, 5000.0)
    assert not missed.reached and math.isnan(missed.t0_s)


def test_sand_fit_recovers_D_and_its_uncertainty_shrinks_with_precision() -> None:
    currents = np.array([0.1, 0.2, 0.3, 0.4])
    t0 = np.array([sand_time_s(i, D_TRUE, C0_LI) for i in currents])
    exact = sand_fit(t0, currents, C0_LI)
    assert exact.D_eff_cm2_s == pytest.approx(D_TRUE, rel=1e-9)
    assert exact.n_experiments == 4
    rng = np.random.default_rng(3)
    noisy = t0 * (1 + 0.02 * rng.standard_normal(t0.size))
    fitted = sand_fit(noisy, currents, C0_LI, t0_stderr_s=0.02 * t0)
    assert fitted.D_eff_cm2_s == pytest.approx(D_TRUE, rel=0.05)
    assert 0 < fitted.D_eff_stderr_cm2_s < 0.05 * D_TRUE
    free = sand_fit(t0, currents, C0_LI, through_origin=False)
    assert free.D_eff_cm2_s == pytest.approx(D_TRUE, rel=1e-6)
    assert free.intercept == pytest.approx(0.0, abs=1e-9)
    # One current density is not a study.
    assert math.isnan(sand_fit(t0[:1], currents[:1], C0_LI).D_eff_cm2_s)


@pytest.mark.parametrize("model", ["exponential", "stretched"])
def test_relaxation_fit_on_a_known_curve(model: str) -> None:
    t = np.linspace(0, 3000, 15)
    beta = 1.0 if model == "exponential" else 0.7
    y = 0.9 - (0.9 - 0.3) * np.exp(-((t / 600.0) ** beta))
    fitted = fit_relaxation(t + 100.0, y, start_s=100.0, reference=1.0, model=model)
    assert fitted.ok
    assert fitted.tau_s == pytest.approx(600.0, rel=1e-3)
    assert fitted.beta == pytest.approx(beta, rel=1e-3)
    assert fitted.recovered_fraction == pytest.approx((0.9 - 0.3) / (1 - 0.3), rel=1e-3)
    assert not fit_relaxation(t[:3], y[:3]).ok


# ------------------------------------------------------------------ ground truth


def _track_truth(simulated, **options):
    truth = simulated.truth
    area = simulated.settings.area_cm2
    zero = np.zeros_like(truth.R_int_ohm)
    roles = {
        role: {
            "R_ohm": getattr(truth, f"R_{label}_ohm"),
            "R_stderr_ohm": zero,
            "C_F": getattr(truth, f"C_{label}_F_cm2") * area,
            "C_stderr_F": zero,
            "alpha": getattr(truth, f"alpha_{label}"),
        }
        for role, label in (("bulk", "b"), ("gb", "gb"), ("int", "int"))
    }
    roles["int"]["tau_s"] = truth.tau_int_s
    return track(
        truth.time_s,
        roles=roles,
        fit_ok=np.ones(truth.time_s.size, dtype=bool),
        potential_V=truth.potential_V,
        charge_mAh=truth.charge_mAh,
        current_mA=truth.current_mA,
        area_cm2=simulated.settings.area_cm2,
        **options,
    )


@pytest.fixture(scope="module")
def relaxing():
    """Stripping for ~200 s (0.4 t0), then 24 open-circuit spectra every 20 s (tau = 120 s)."""
    settings = SimulationSettings(
        current_density_mA_cm2=0.8,
        n_sweeps=20,
        n_relaxation=24,
        relaxation_interval_s=20.0,
        tau_relax_s=120.0,
        recovered_fraction=0.6,
        nonstationary_fraction=0.0,
        outlier_fraction=0.0,
        seed=5,
        **FAST,
    )
    return simulate_experiment(settings)


def test_true_table_gap_segments_and_reliability(relaxing) -> None:
    columns = _track_truth(relaxing).columns
    settings = relaxing.settings
    n_strip = relaxing.n_stripping
    assert list(columns["segment"][:n_strip]) == ["strip"] * n_strip
    assert list(columns["segment"][n_strip:]) == ["ocv"] * relaxing.n_relaxation
    # DC-AC gap: E = i (R_b + R_gb + R_int + R_dcac) in the simulator (noise-free E here).
    np.testing.assert_allclose(
        columns["R_dcac_ohm_cm2"][:n_strip], settings.R_dcac_ohm_cm2, rtol=1e-9
    )
    assert np.all(np.isnan(columns["R_dcac_ohm_cm2"][n_strip:]))
    # Symmetric cell: the gap still uses the whole interface resistance.
    two = _track_truth(relaxing, interfaces=2).columns
    np.testing.assert_allclose(two["R_dcac_ohm_cm2"][:n_strip], settings.R_dcac_ohm_cm2)
    # The apex (~800 Hz) is inside 1 Hz..7 MHz: reliable; a band above it: not.
    n = columns["time_s"].size
    inside = np.tile([1.0, 7e6], (n, 1))
    above = np.tile([2e3, 7e6], (n, 1))
    assert _track_truth(relaxing, freq_band_hz=inside).columns["C_int_reliable"].all()
    assert not _track_truth(relaxing, freq_band_hz=above).columns["C_int_reliable"].any()
    # Temperature normalisation only when T is given, per step.
    assert "R_int_T0_ohm_cm2" not in columns
    cold = _track_truth(relaxing, temperature_K=273.15).columns
    np.testing.assert_allclose(
        cold["R_int_T0_ohm_cm2"], normalise_temperature(columns["R_int_ohm_cm2"], 273.15)
    )


@pytest.fixture(scope="module")
def fitted(relaxing):
    """The relaxing experiment fitted sweep by sweep (noise 0.5 % of |Z|)."""
    options = FitOptions.build(
        CIRCUIT,
        roles=ROLES,
        fixed={"CPE2_1": 0.9},
        area_cm2=relaxing.settings.area_cm2,
    )
    results = fit_experiment(list(zip(relaxing.freq, relaxing.z, strict=True)), options)
    truth = relaxing.truth
    return track(
        truth.time_s,
        roles=role_table(results),
        fit_ok=np.array([result.ok for result in results]),
        potential_V=truth.potential_V,
        charge_mAh=truth.charge_mAh,
        current_mA=truth.current_mA,
        area_cm2=relaxing.settings.area_cm2,
        freq_band_hz=np.array([[freq.min(), freq.max()] for freq in relaxing.freq]),
    )


def test_fitted_contact_loss_matches_truth(fitted, relaxing) -> None:
    phi = relaxing.truth.contact_fraction
    expected = 1 - phi / phi[fitted.reference_step]
    assert fitted.reference_step == 0
    ok = fitted.columns["fit_ok"]
    assert ok.mean() > 0.9
    np.testing.assert_allclose(fitted.columns["contact_loss_C"][ok], expected[ok], atol=0.02)
    np.testing.assert_allclose(fitted.columns["contact_loss_R"][ok], expected[ok], atol=0.02)
    assert fitted.columns["C_int_reliable"][ok].all()
    # Fitted DC-AC gap: the simulator's 20 ohm cm2 within the fit and potential noise.
    gap = fitted.columns["R_dcac_ohm_cm2"][: relaxing.n_stripping]
    assert np.nanmedian(gap) == pytest.approx(relaxing.settings.R_dcac_ohm_cm2, abs=2.0)


def test_fitted_relaxation_time_constant(fitted, relaxing) -> None:
    settings = relaxing.settings
    summary = summarize_tracking(fitted.columns, fitted.reference_step)
    assert summary["n_relaxation_steps"] == relaxing.n_relaxation
    assert summary["relaxation_start_s"] == pytest.approx(relaxing.current_stop_s)
    assert summary["relaxation_tau_s"] == pytest.approx(settings.tau_relax_s, rel=0.10)
    assert summary["relaxation_C_tau_s"] == pytest.approx(settings.tau_relax_s, rel=0.10)
    # Recovered share of the loss relative to the reference contact.
    phi_ref = relaxing.truth.contact_fraction[fitted.reference_step]
    phi_end = float(contact_fraction(relaxing.current_stop_s, settings))
    phi_rec = phi_end + settings.recovered_fraction * (1 - phi_end)
    expected = (phi_rec - phi_end) / (phi_ref - phi_end)
    assert summary["relaxation_recovered_fraction"] == pytest.approx(expected, abs=0.05)
    assert summary["relaxation_C_recovered_fraction"] == pytest.approx(expected, abs=0.05)
    # The current was not held to depletion: t0 not reached.
    assert not summary["t0_reached"] and math.isnan(summary["t0_s"])


def _threshold_time(settings: SimulationSettings, threshold_ohm_cm2: float) -> float:
    """When the simulator's R_int = R_int0 / phi crosses the threshold (from the model)."""
    phi = settings.R_int0_ohm_cm2 / threshold_ohm_cm2
    depletion = (phi - settings.contact_fraction_min) / (1 - settings.contact_fraction_min)
    return settings.sand_time_s * (1 - depletion) ** 2


@pytest.mark.parametrize("current", [0.6, 1.0])
def test_fitted_depletion_time_and_sand_D(current: float) -> None:
    settings = SimulationSettings(
        current_density_mA_cm2=current,
        n_relaxation=0,
        nonstationary_fraction=0.0,
        outlier_fraction=0.0,
        seed=7,
        **FAST,
    )
    simulated = simulate_experiment(settings)
    options = FitOptions.build(
        CIRCUIT, roles=ROLES, fixed={"CPE2_1": 0.9}, area_cm2=settings.area_cm2
    )
    results = fit_experiment(list(zip(simulated.freq, simulated.z, strict=True)), options)
    truth = simulated.truth
    result = track(
        truth.time_s,
        roles=role_table(results),
        fit_ok=np.array([fit.ok for fit in results]),
        potential_V=truth.potential_V,
        charge_mAh=truth.charge_mAh,
        current_mA=truth.current_mA,
        area_cm2=settings.area_cm2,
    )
    summary = summarize_tracking(result.columns, result.reference_step, c0_mol_cm3=C0_LI)
    expected = _threshold_time(settings, 10000.0)
    assert summary["t0_reached"]
    assert summary["current_onset_s"] == pytest.approx(0.0, abs=1e-6)
    assert summary["t0_s"] == pytest.approx(expected, rel=0.02)
    assert summary["current_density_mA_cm2"] == pytest.approx(current, rel=1e-6)
    # Sand's D from the threshold t0 (which precedes Sand's time by ~1 %).
    assert summary["D_eff_cm2_s"] == pytest.approx(D_TRUE, rel=0.05)
    # An override of the current density is used as given.
    override = summarize_tracking(
        result.columns, result.reference_step, current_density_mA_cm2=2 * current
    )
    assert override["D_eff_cm2_s"] == pytest.approx(4 * summary["D_eff_cm2_s"], rel=1e-9)


def test_sand_D_from_three_simulated_currents() -> None:
    """t0 from the truth's R_int curve of three simulated currents -> D within 5 %."""
    currents = [0.6, 0.8, 1.0]
    t0 = []
    for current in currents:
        settings = SimulationSettings(
            current_density_mA_cm2=current, n_relaxation=0, seed=1, **FAST
        )
        simulated = simulate_experiment(settings)
        truth = simulated.truth
        crossing = depletion_time(truth.time_s, truth.R_int_ohm_cm2, 10000.0)
        assert crossing.t0_s == pytest.approx(_threshold_time(settings, 10000.0), rel=0.02)
        assert simulated.t0_s == pytest.approx(settings.sand_time_s)
        # Sand's time of the truth gives D back (i, t0, c0 in the units).
        assert sand_diffusivity(simulated.t0_s, current, C0_LI) == pytest.approx(D_TRUE, rel=1e-9)
        t0.append(crossing.t0_s)
    fitted = sand_fit(np.array(t0), np.array(currents), C0_LI)
    assert fitted.D_eff_cm2_s == pytest.approx(D_TRUE, rel=0.05)
    assert fitted.n_experiments == 3
