"""Every DRT process follows its own truth (issue 15): a Li-In-like cell (Lu 2021) whose
grain-boundary, SEI and charge-transfer resistances evolve differently."""

from __future__ import annotations

import numpy as np

import geis_pipeline as gp
from geis_pipeline.elements import zarc

FREQ = np.logspace(6, -1, 71)
N_STEPS = 12
#: (tau s, alpha) per process: gb ~3e-7 s, SEI ~1e-4 s, charge transfer ~1e-2 s (Lu 2021).
PROCESSES = {"gb": (3e-7, 0.9), "sei": (1e-4, 0.85), "ct": (1e-2, 0.8)}
WINDOWS = {"gb": (3e-8, 3e-6), "sei": (1e-5, 1e-3), "ct": (1e-3, 1.0)}
#: Resistances per step, ohm: gb constant, SEI doubling, charge transfer rising 5x.
TRUTH = {
    "gb": np.full(N_STEPS, 60.0),
    "sei": np.linspace(30.0, 60.0, N_STEPS),
    "ct": np.linspace(200.0, 1000.0, N_STEPS),
}
R_INF_OHM = 150.0


def _spectrum(step: int, rng: np.random.Generator) -> np.ndarray:
    z = np.full(FREQ.size, R_INF_OHM, dtype=complex)
    for name, (tau, alpha) in PROCESSES.items():
        r = TRUTH[name][step]
        z = z + zarc(FREQ, r, tau**alpha / r, alpha)
    noise = 0.005 * np.abs(z)
    return z + noise * (rng.standard_normal(z.size) + 1j * rng.standard_normal(z.size))


def test_each_process_follows_its_truth() -> None:
    rng = np.random.default_rng(0)
    errors = {name: [] for name in TRUTH}
    for step in range(N_STEPS):
        result = gp.invert_drt(FREQ, _spectrum(step, rng), windows=WINDOWS)
        assert result.ok
        # gb's apex (~530 kHz) sits below the top frequency (1 MHz): its high-frequency tail
        # and R_inf share the intercept, which as a whole is right.
        gb = result.peak("gb")
        assert gb is not None
        intercept = R_INF_OHM + TRUTH["gb"][step]
        assert abs((result.R_inf + gb.R) / intercept - 1) < 0.02
        for name in TRUTH:
            peak = result.peak(name)
            assert peak is not None, (step, name)
            errors[name].append(peak.R / TRUTH[name][step] - 1)
    for name, values in errors.items():
        median = float(np.median(np.abs(values)))
        assert median < 0.05, (name, median)
    # The trends are told apart: gb stays, SEI doubles, charge transfer rises 5x.
    for name, values in errors.items():
        measured = TRUTH[name] * (1 + np.array(values))
        growth = np.median(measured[-3:]) / np.median(measured[:3])
        expected = np.median(TRUTH[name][-3:]) / np.median(TRUTH[name][:3])
        assert abs(growth / expected - 1) < 0.1, (name, growth, expected)
