"""Wrong-but-resolved DRT resistances on every cell type of the papers: none.

Each cell of :data:`geis_pipeline.cells.CELL_TYPES` (3-arc LLZO, a bulk arc written as a
series R, Mann's CPE tail, a Warburg tail, Li | PEO, the Li-In cell's four processes, the
symmetric cell, a blocking electrode, an inductive low-impedance cell) is simulated with
0.5 % noise; every process's DRT resistance that is flagged resolved must hold its truth
within its standard error's reach.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from geis_pipeline.cells import CELL_TYPES, simulate_cell
from geis_pipeline.drt import invert_drt_batch, track_peaks


def _tracked(name: str, seed: int):
    series = simulate_cell(name, n_steps=24, seed=seed)
    roles = [arc.role for arc in series.cell.arcs]
    taus = [float(np.median(series.truth[role]["tau_s"])) for role in roles]
    # One window per process, split half-way (in log τ) between neighbours.
    edges = [taus[0] / 30, *(math.sqrt(a * b) for a, b in itertools.pairwise(taus)), taus[-1] * 30]
    windows = {role: (edges[i], edges[i + 1]) for i, role in enumerate(roles)}
    results = invert_drt_batch([(series.freq, z) for z in series.z], windows=windows)
    return track_peaks(results, windows=windows), series.truth


@pytest.fixture(scope="module")
def outcomes() -> dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """cell -> role -> (resolved, relative error, |error| / stderr) over two seeds."""
    found: dict = {}
    for name in CELL_TYPES:
        per_role: dict = {}
        for seed in (0, 1):
            track, truth = _tracked(name, seed)
            for role in track.processes:
                true_r = np.asarray(truth[role]["R_ohm"])
                process = track[role]
                with np.errstate(invalid="ignore", divide="ignore"):
                    error = np.abs(process.R / true_r - 1)
                    z = np.abs(process.R - true_r) / process.R_stderr
                parts = per_role.setdefault(role, ([], [], []))
                for part, values in zip(parts, (process.resolved, error, z), strict=True):
                    part.append(values)
        found[name] = {role: tuple(map(np.concatenate, parts)) for role, parts in per_role.items()}
    return found


def test_no_resolved_drt_resistance_is_wrong(outcomes) -> None:
    n_resolved = wrong = 0
    for name, roles in outcomes.items():
        for role, (resolved, error, z) in roles.items():
            n_resolved += int(resolved.sum())
            bad = resolved & (error > 0.05) & (z > 4)
            assert not bad.any(), f"{name} {role}: {error[bad]} off, {z[bad]} standard errors"
            wrong += int(bad.sum())
    assert n_resolved > 600  # the check is not vacuous
    assert wrong == 0


def test_the_flag_follows_the_measured_window(outcomes) -> None:
    # 7 MHz: the bulk arc (~26 MHz) is beyond the top frequency, so gb beside it is not resolved ...
    assert not outcomes["llzo_3arc"]["gb"][0].any()
    # ... written as a series R (no arc outside the window), gb is.
    assert outcomes["llzo_series_bulk"]["gb"][0].mean() > 0.95
    # The interface, inside the window and away from the edges, is resolved in every cell
    # without a low-frequency tail beside it.
    for name in ("llzo_3arc", "llzo_series_bulk", "peo_1arc", "li_in_3proc", "inductive_tail"):
        assert outcomes[name]["int"][0].mean() > 0.95, name
