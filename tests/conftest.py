"""Shared test fixtures: the real instrument files in ../shared/realdata."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

#: shared/ sits beside the checkout (CI clones the repo next to it).
REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


@pytest.fixture(scope="session")
def realdata() -> Path:
    """Folder holding the real instrument files; the suite fails loudly without it."""
    if not REALDATA.is_dir():
        pytest.fail(f"real instrument files not found at {REALDATA}: clone next to shared/")
    return REALDATA


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Path:
    """A result file from a short simulated run (40 stripping + 4 relaxation sweeps).

    Shared by the figure, report and notebook tests: one pipeline run for all.
    """
    from geis_pipeline.config import Config
    from geis_pipeline.pipeline import run
    from geis_pipeline.simulate import SimulationSettings, write_experiment

    folder = tmp_path_factory.mktemp("small_run") / "experiment"
    write_experiment(folder, SimulationSettings(seed=1, n_sweeps=40, n_relaxation=4))
    config = Config()
    config = replace(
        config,
        executor=replace(config.executor, kind="serial"),
        drt=replace(config.drt, solver="NNLS"),
    )
    output = folder.parent / "run.h5"
    run([folder], config, output)
    return output
