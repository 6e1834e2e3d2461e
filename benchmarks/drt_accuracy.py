"""DRT peak resistances against the simulated circuit truth, with and without refinement.

Simulates a stripping experiment (default 200 GEIS sweeps), inverts every sweep
with ``invert_drt_batch`` (λ chosen once by the L-curve) with ``refine=False``
(the areas of γ between valleys) and with the default ZARC refinement, tracks
the peaks and prints the median and largest relative errors of the interface
and grain-boundary R against the circuit's values, and the time per spectrum.

Usage: python benchmarks/drt_accuracy.py [--sweeps 200] [--seed 5]
"""

from __future__ import annotations

import argparse
import os
import time

if __name__ == "__main__":  # one BLAS thread (small matrices), before numpy loads
    for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_variable, "1")

import numpy as np

from geis_pipeline.drt import invert_drt_batch, track_peaks
from geis_pipeline.simulate import SimulationSettings, simulate_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=5)
    arguments = parser.parse_args()
    experiment = simulate_experiment(
        SimulationSettings(n_sweeps=arguments.sweeps, n_relaxation=0, seed=arguments.seed)
    )
    truth = experiment.truth
    complete = ~truth.incomplete
    pairs = list(zip(experiment.freq, experiment.z, strict=True))
    print(f"{arguments.sweeps} sweeps, 0.5 % noise (simulator), load {os.getloadavg()[0]:.2f}")
    for refine in (False, True):
        started = time.perf_counter()
        results = invert_drt_batch(pairs, refine=refine)
        per_spectrum = (time.perf_counter() - started) / len(pairs)
        tracks = track_peaks(results)
        line = [f"refine={refine!s:5s} {per_spectrum * 1e3:6.1f} ms/spectrum"]
        for process, true_r in (("int", truth.R_int_ohm), ("gb", truth.R_gb_ohm)):
            error = np.abs(tracks[process].R[complete] / true_r[complete] - 1)
            line.append(
                f"R_{process} error median {np.nanmedian(error):.2%} max {np.nanmax(error):.2%}"
            )
        print("  ".join(line))


if __name__ == "__main__":
    main()
