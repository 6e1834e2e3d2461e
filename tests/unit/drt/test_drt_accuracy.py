"""DRT accuracy against ground truth: exact ZARC DRTs, pyDRTtools, a simulated experiment."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import os
import sys
import types

import numpy as np
import pytest

from geis_pipeline.drt import invert_drt, invert_drt_batch, track_peaks
from geis_pipeline.drt.peaks import detect_peaks
from geis_pipeline.elements import zarc, zarc_drt
from geis_pipeline.simulate import SimulationSettings, simulate_experiment

# 10 decades at 10 points per decade; arcs at least 2 decades inside the data.
FREQ = np.geomspace(1e7, 1e-3, 101)
R_INF = 100.0
NOISE = 0.005
#: λ validated by these tests (fixed: the automatic choices are tested separately).
LAM = 1.0

# (R ohm, tau0 s, alpha) per ZARC: well separated (>= 3 decades), alpha 0.7-0.95.
CASES = {
    "one, alpha 0.7": [(100.0, 1e-3, 0.7)],
    "one, alpha 0.95": [(150.0, 1e-4, 0.95)],
    "one, alpha 0.85": [(200.0, 1e-2, 0.85)],
    "two": [(100.0, 1e-6, 0.9), (150.0, 1e-2, 0.8)],
    "two, alpha 0.7 beside 0.95": [(100.0, 1e-6, 0.95), (100.0, 1e-2, 0.7)],
    "three": [(80.0, 1e-6, 0.95), (100.0, 1e-3, 0.9), (120.0, 1.0, 0.85)],
}


def synthesise(arcs: list[tuple[float, float, float]], seed: int) -> np.ndarray:
    """R_inf + ZARCs (Q from τ0 = (R Q)^(1/α)) with 0.5 % Gaussian noise on Re and Im."""
    z = R_INF + sum(zarc(FREQ, R, tau0**alpha / R, alpha) for R, tau0, alpha in arcs)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(FREQ.size) + 1j * rng.standard_normal(FREQ.size)
    return z + NOISE * np.abs(z) * noise


def matched_peaks(result, arcs):
    """The detected peak nearest (in log τ) to each true ZARC."""
    taus = np.array([peak.tau for peak in result.peaks])
    return [result.peaks[int(np.argmin(np.abs(np.log10(taus / tau0))))] for _, tau0, _ in arcs]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", list(CASES))
def test_peaks_match_the_zarcs(case: str, seed: int) -> None:
    arcs = CASES[case]
    result = invert_drt(FREQ, synthesise(arcs, seed), lam=LAM)
    assert result.ok
    for (R, tau0, _), peak in zip(arcs, matched_peaks(result, arcs), strict=True):
        assert abs(math.log10(peak.tau / tau0)) < 0.1, "peak position within 0.1 decade"
        assert peak.R == pytest.approx(R, rel=0.05), "peak area within 5 % of R"
    assert result.R_inf == pytest.approx(R_INF, rel=0.02)
    assert len(result.peaks) <= len(arcs) + 3, "no forest of spurious peaks"


def test_gamma_follows_the_exact_zarc_drt() -> None:
    R, tau0, alpha = 100.0, 1e-3, 0.8
    z = R_INF + zarc(FREQ, R, tau0**alpha / R, alpha)
    result = invert_drt(FREQ, z, lam=1e-6, points_per_decade=20)
    exact = zarc_drt(result.tau, R, tau0, alpha)
    inside = (result.tau > 1e-6) & (result.tau < 1.0)
    assert np.max(np.abs(result.gamma - exact)[inside]) < 0.03 * exact.max()
    assert result.R_pol == pytest.approx(R, rel=0.01)


@pytest.mark.parametrize("method", ["gcv", "lcurve", "reim"])
def test_automatic_lambda_finds_a_single_zarc(method: str) -> None:
    arcs = [(150.0, 1e-4, 0.9)]
    result = invert_drt(FREQ, synthesise(arcs, 3), lam=method)
    assert 1e-7 <= result.lam <= 1e1
    (peak,) = matched_peaks(result, arcs)
    assert abs(math.log10(peak.tau / 1e-4)) < 0.1
    # Automatic λ regularises less than LAM: areas are looser (see the report).
    assert peak.R == pytest.approx(150.0, rel=0.15)


def load_pydrttools():
    """pyDRTtools' ``runs`` without its GUI: its __init__ imports PyQt5 unconditionally.

    The package module is stubbed so only the numerical submodules load;
    scikit-learn (needed only for its k-fold λ choice) is stubbed when missing.
    Needs cvxopt, which pyDRTtools uses for its QP.
    """
    os.environ.setdefault("MPLBACKEND", "Agg")
    if "pyDRTtools" not in sys.modules:
        spec = importlib.util.find_spec("pyDRTtools")
        if spec is None or importlib.util.find_spec("cvxopt") is None:
            pytest.skip("pyDRTtools (and cvxopt) not installed: pip install pyDRTtools cvxopt")
        package = types.ModuleType("pyDRTtools")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["pyDRTtools"] = package
    if "sklearn" not in sys.modules and importlib.util.find_spec("sklearn") is None:
        sklearn = types.ModuleType("sklearn")
        model_selection = types.ModuleType("sklearn.model_selection")
        model_selection.KFold = None
        sklearn.model_selection = model_selection
        sys.modules["sklearn"] = sklearn
        sys.modules["sklearn.model_selection"] = model_selection
    with contextlib.redirect_stdout(io.StringIO()):
        from pyDRTtools import runs
    return runs


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # pyDRTtools imports numpy.matlib
@pytest.mark.parametrize("case", ["two", "three"])
def test_peak_positions_agree_with_pydrttools(case: str) -> None:
    runs = load_pydrttools()
    arcs = CASES[case]
    z = synthesise(arcs, 4)
    entry = runs.EIS_object(FREQ, z.real, z.imag)
    with contextlib.redirect_stdout(io.StringIO()):
        runs.simple_run(
            entry,
            rbf_type="Gaussian",
            induct_used=1,
            der_used="1st order",
            cv_type="custom",
            reg_param=1e-3,
        )
    peer = detect_peaks(np.log(entry.out_tau_vec), np.asarray(entry.gamma).ravel(), {})
    ours = invert_drt(FREQ, z, lam=LAM)
    peer_taus = np.array([peak.tau for peak in peer])
    for peak in matched_peaks(ours, arcs):
        assert np.min(np.abs(np.log10(peer_taus / peak.tau))) < 0.15


@pytest.fixture(scope="module")
def operando():
    settings = SimulationSettings(n_sweeps=40, n_relaxation=0, seed=3)
    experiment = simulate_experiment(settings)
    results = invert_drt_batch(list(zip(experiment.freq, experiment.z, strict=True)))
    return experiment, results


def test_interface_peak_tracks_the_simulated_truth(operando) -> None:
    experiment, results = operando
    truth = experiment.truth
    assert all(result.ok for result in results)
    assert len({result.lam for result in results}) == 1, "λ chosen once per experiment"
    track = track_peaks(results)
    interface = track["int"]
    complete = ~truth.incomplete
    error = interface.R[complete] / truth.R_int_ohm[complete] - 1
    assert np.all(np.isfinite(error))
    assert np.max(np.abs(error)) < 0.05
    assert np.max(np.abs(np.log10(interface.tau[complete] / truth.tau_int_s[complete]))) < 0.15
    assert not [event for event in track.events if event.process == "int"]
    # The cut sweep shares the τ grid; its interface arc is barely measured.
    cut = int(np.flatnonzero(truth.incomplete)[0])
    assert results[cut].freq.size == truth.n_points[cut]
    assert np.array_equal(results[cut].tau, results[0].tau)
