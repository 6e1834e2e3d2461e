"""The DRT columns of a run against the simulator's truth, with the default DRT options
(λ by L-curve, ZARC refinement warm-started from sweep to sweep, issue 17)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geis_pipeline.config import parse_config
from geis_pipeline.pipeline import run
from geis_pipeline.results import open_results
from geis_pipeline.simulate import SimulationSettings, write_experiment


def test_tracked_drt_resistances_follow_the_truth(tmp_path: Path) -> None:
    folder = tmp_path / "Li_LLZO_drt"
    write_experiment(folder, SimulationSettings(seed=7, n_sweeps=400, n_relaxation=12))
    config = parse_config('[executor]\nkind = "serial"\nchunk_size = 200\n')
    output = tmp_path / "run.h5"
    run([folder], config, output)
    table = open_results(output)["Li_LLZO_drt"].tracking()
    truth = np.load(folder / "truth.npz")
    r_int = np.abs(table["R_int_drt_ohm"].to_numpy() / truth["R_int_ohm"] - 1)
    assert np.mean(np.isfinite(r_int)) > 0.98
    assert np.nanmedian(r_int) < 0.005
    assert np.nanpercentile(r_int, 95) < 0.02
    # No run of sweeps carrying a wrong model along the warm start.
    assert np.mean(r_int > 0.05) < 0.01
    # The grain boundary beside a bulk arc whose apex lies above the top frequency:
    # how much of the bulk arc is R_inf is not in the data, so ~10 % is what it holds.
    r_gb = np.abs(table["R_gb_drt_ohm"].to_numpy() / truth["R_gb_ohm"] - 1)
    assert np.mean(np.isfinite(r_gb)) > 0.9
    assert np.nanmedian(r_gb) < 0.12
