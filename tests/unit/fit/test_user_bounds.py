"""A bound the user set (fit.bounds) that holds a parameter is never waved through.

An arc the data do not resolve may sit at a default bound (it is not there); at a
bound the user set, the bound put it there. R3 held above 1e6 ohm moved the
interface's role to the grain-boundary arc: R_int 6 % low and R_b 22 % high, every
fit ok (found by a fault-injection pass).
"""

from __future__ import annotations

import numpy as np

from geis_pipeline.fit import FitOptions, fit_experiment
from geis_pipeline.kk import check_kk_batch
from geis_pipeline.simulate import SimulationSettings, simulate_experiment

CIRCUIT = "L0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)"
ROLES = {"L0": "cable", "R1": "bulk", "R2": "gb", "R3": "int"}


def test_user_bounded_lists_the_bounds_tighter_than_the_defaults() -> None:
    options = FitOptions.build(CIRCUIT, bounds={"R3": (1e6, 1e10), "R2": (1e-4, 1e10)})
    assert options.user_bounded == {"R3"}


def test_a_binding_user_bound_gives_no_wrong_ok_fit() -> None:
    experiment = simulate_experiment(SimulationSettings(n_sweeps=6, n_relaxation=0, seed=1))
    pairs = [(experiment.freq[i], experiment.z[i]) for i in range(6)]
    kk = check_kk_batch(pairs)
    results = fit_experiment(
        pairs,
        CIRCUIT,
        kk_ok=[k.ok for k in kk],
        noise_rms=[k.rms for k in kk],
        roles=ROLES,
        fixed={"CPE2_1": 0.9},
        area_cm2=experiment.settings.area_cm2,
        bounds={"R3": (1e6, 1e10)},
    )
    truth = experiment.truth
    for step, result in enumerate(results):
        if result.ok:
            for role, expected in (("int", truth.R_int_ohm), ("bulk", truth.R_b_ohm)):
                got = result.roles[role].R_ohm
                assert abs(got / np.asarray(expected)[step] - 1) < 0.05, (step, role, got)
