"""check_kk_batch on the simulated operando experiment, against its ground truth.

The simulator's default drift (``nonstationary_drift`` = 0.05 R_int, below
10 Hz) is 0.2-3 σ per point at 0.5 % noise, and a Lin-KK fit absorbs ~75 % of
it: the χ² it leaves is 8-13 σ² per sweep at 80 sweeps, within the noise of any
KK test. The truncation tests therefore use a drift of 0.3 (1-10 % of |Z| on the
tail), where the violation is real evidence; the default settings test the
false-positive side.
"""

from __future__ import annotations

import numpy as np
import pytest

from geis_pipeline.kk import KKResult, check_kk_batch
from geis_pipeline.simulate import SimulatedExperiment, SimulationSettings, simulate_experiment

SEEDS = (1, 2, 3)


def checked(seed: int, **changes: float) -> tuple[SimulatedExperiment, list[KKResult]]:
    simulated = simulate_experiment(SimulationSettings(seed=seed, n_sweeps=80, **changes))
    return simulated, check_kk_batch(list(zip(simulated.freq, simulated.z, strict=True)))


@pytest.fixture(scope="module", params=SEEDS)
def default_run(request: pytest.FixtureRequest) -> tuple[SimulatedExperiment, list[KKResult]]:
    return checked(request.param)


@pytest.fixture(scope="module", params=SEEDS)
def drifting_run(request: pytest.FixtureRequest) -> tuple[SimulatedExperiment, list[KKResult]]:
    return checked(request.param, nonstationary_drift=0.3)


def test_stationary_sweeps_pass_and_are_not_truncated(default_run) -> None:
    simulated, results = default_run
    stationary = [
        result
        for result, moving in zip(results, simulated.truth.nonstationary, strict=True)
        if not moving
    ]
    passed = np.mean([result.ok for result in stationary])
    truncated = np.mean([result.truncated for result in stationary])
    assert passed >= 0.95
    assert truncated <= 0.05


def test_outliers_are_reported(default_run) -> None:
    simulated, results = default_run
    bad_points = simulated.truth.outlier_index
    sweeps = np.flatnonzero(bad_points >= 0)
    assert sweeps.size > 0
    found = [
        bad_points[sweep] in results[sweep].outliers or not results[sweep].mask[bad_points[sweep]]
        for sweep in sweeps
    ]
    assert np.mean(found) >= 0.8
    # And hardly any good point is called bad.
    false_alarms = sum(
        len(set(result.outliers.tolist()) - {int(bad)})
        for result, bad in zip(results, bad_points, strict=True)
    )
    assert false_alarms <= 0.02 * len(results)


def test_nonstationary_sweeps_are_truncated_near_the_drift_start(drifting_run) -> None:
    simulated, results = drifting_run
    below_hz = simulated.settings.nonstationary_below_Hz
    moving = np.flatnonzero(simulated.truth.nonstationary)
    assert moving.size >= 3
    for sweep in moving:
        result, freq = results[sweep], simulated.freq[sweep]
        assert result.truncated, f"sweep {sweep} not truncated"
        # Near the drift start: the strongly drifting half decade is always dropped,
        # at most the first (weakest) 3 drifting points are kept, at most ~half a
        # decade of good points dropped. Most sweeps are cut exactly at it (see below).
        assert not result.mask[freq < below_hz / 2].any(), f"sweep {sweep} keeps drifting points"
        assert np.count_nonzero(result.mask & (freq < below_hz)) <= 3
        assert result.truncated_below_hz <= 3 * below_hz
        assert result.ok, result.reason
    exact = [not results[sweep].mask[simulated.freq[sweep] < below_hz].any() for sweep in moving]
    assert np.mean(exact) >= 0.5


def test_stationary_sweeps_stay_whole_next_to_drifting_ones(drifting_run) -> None:
    simulated, results = drifting_run
    for result, moving in zip(results, simulated.truth.nonstationary, strict=True):
        if not moving:
            assert not result.truncated
