"""Tracking through the pipeline: per-experiment summaries and the study-level Sand fit.

Three simulated folders stripped at different current densities (D = 0.8e-11 cm2/s,
c0 = 76.8 mmol/cm3) go through ``pipeline.run``; the result file must hold each
experiment's depletion time and Sand diffusivity and the study's D_eff near the truth.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from geis_pipeline.config import parse_config
from geis_pipeline.pipeline import reprocess, run
from geis_pipeline.results import open_results
from geis_pipeline.simulate import SimulationSettings, write_experiment

D_TRUE = 0.8e-11
CURRENTS = {"Li_600uA": 0.6, "Li_800uA": 0.8, "Li_1000uA": 1.0}
TEMPERATURES = {"Li_600uA": 288.15, "Li_800uA": 298.15, "Li_1000uA": 308.15}
THRESHOLD = 10000.0


def _config(threshold: float = THRESHOLD):
    temperatures = "\n".join(
        f"[experiments.{name}]\ntemperature_K = {value}" for name, value in TEMPERATURES.items()
    )
    return parse_config(
        f"""
[executor]
kind = "serial"
chunk_size = 200
[drt]
solver = "NNLS"
lam = 0.3
[track]
r_int_threshold_ohm_cm2 = {threshold}
{temperatures}
"""
    )


def _settings(current: float, seed: int) -> SimulationSettings:
    # Short sweeps (little overhead per point) and a high current: t0 of 6-16 min.
    return SimulationSettings(
        current_density_mA_cm2=current,
        overhead_per_point_s=0.01,
        hold_s=2.0,
        n_relaxation=5,
        relaxation_interval_s=20.0,
        tau_relax_s=60.0,
        seed=seed,
    )


def _threshold_time(settings: SimulationSettings, threshold: float) -> float:
    phi = settings.R_int0_ohm_cm2 / threshold
    depletion = (phi - settings.contact_fraction_min) / (1 - settings.contact_fraction_min)
    return settings.sand_time_s * (1 - depletion) ** 2


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    folders = []
    settings = {}
    for seed, (name, current) in enumerate(CURRENTS.items()):
        settings[name] = _settings(current, seed)
        write_experiment(root / name, settings[name])
        folders.append(root / name)
    output = root / "study.h5"
    report = run(folders, _config(), output)
    return output, report, settings


def test_each_experiment_summary_has_t0_and_D(study) -> None:
    output, report, settings = study
    results = open_results(output)
    for name, simulated in settings.items():
        summary = results[name].summary
        expected = _threshold_time(simulated, THRESHOLD)
        assert summary["t0_reached"]
        assert summary["t0_s"] == pytest.approx(expected, rel=0.02), name
        assert summary["current_density_mA_cm2"] == pytest.approx(CURRENTS[name], rel=1e-3)
        assert summary["D_eff_cm2_s"] == pytest.approx(D_TRUE, rel=0.05), name
        assert summary["temperature_K"] == TEMPERATURES[name]
        assert summary["n_relaxation_steps"] == 5
        assert math.isfinite(summary["relaxation_tau_s"])
        table = results[name].tracking()
        for column in ("R_dcac_ohm_cm2", "C_int_reliable", "segment", "R_int_T0_ohm_cm2"):
            assert column in table, column
        assert set(table["segment"]) == {"strip", "ocv"}
    # The run report carries the summaries for the terminal.
    assert all("t0_s" in experiment.summary for experiment in report.experiments)


def test_study_sand_fit_gives_D_near_truth(study) -> None:
    output, _, _ = study
    with h5py.File(output, "r") as handle:
        sand = dict(handle["study/sand"].attrs)
        arrhenius = dict(handle["study/arrhenius"].attrs)
    assert sand["n_experiments"] == 3
    assert sand["D_eff_cm2_s"] == pytest.approx(D_TRUE, rel=0.05)
    assert 0 < sand["D_eff_stderr_cm2_s"] < 0.05 * D_TRUE
    assert sorted(json.loads(sand["experiments"])) == sorted(CURRENTS)
    # Arrhenius over the per-experiment temperatures (the simulator's R do not depend on T).
    assert arrhenius["n_experiments"] == 3
    for label in ("R_b", "R_gb", "R_int"):
        assert np.isfinite(arrhenius[f"E_A_{label}_eV"])
    assert abs(arrhenius["E_A_R_b_eV"]) < 0.1


def test_reprocess_recomputes_tracking_and_study(study, tmp_path: Path) -> None:
    output, _, settings = study
    lower = 5000.0
    report = reprocess(output, _config(lower), output=tmp_path / "lower.h5")
    assert all(experiment.stages_computed == () for experiment in report.experiments)
    results = open_results(tmp_path / "lower.h5")
    for name, simulated in settings.items():
        assert results[name].summary["t0_s"] == pytest.approx(
            _threshold_time(simulated, lower), rel=0.02
        )
    assert results.study["sand"]["n_experiments"] == 3
