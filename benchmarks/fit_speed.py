"""Fitting speed: geis-pipeline's fit_experiment against impedance.py's CustomCircuit.fit.

Both fit the same simulated operando spectra with the same circuit; impedance.py
is warm-started from the previous spectrum's result (its best case: it needs an
initial guess, which we give it from the truth for the first spectrum), ours
runs as users run it: automatic start, then warm starts. Prints per-spectrum
medians, the ratio, our warm fits' iterations, and both fits' interface-resistance
error against truth. Wall-clock times: on a shared machine, run it a few times.

Usage: python benchmarks/fit_speed.py [--sweeps 200] [--peer-sweeps 60]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from geis_pipeline.fit import FitOptions, fit_circuit
from geis_pipeline.simulate import SimulationSettings, simulate_experiment

CIRCUIT = "L0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=200)
    parser.add_argument("--peer-sweeps", type=int, default=60)
    arguments = parser.parse_args()
    from impedance.models.circuits import CustomCircuit

    simulated = simulate_experiment(SimulationSettings(seed=5, n_sweeps=arguments.sweeps))
    truth = simulated.truth
    options = FitOptions.build(CIRCUIT, roles={"R3": "int"}, area_cm2=simulated.settings.area_cm2)
    n_spectra = len(simulated.freq)

    ours_times, ours_r, warm_iterations = [], [], []
    previous = None
    for freq, z in zip(simulated.freq, simulated.z, strict=True):
        started = time.perf_counter()
        if previous is None or not previous.ok:
            result = fit_circuit(freq, z, options)
        else:
            result = fit_circuit(freq, z, options, initial=previous.vector)
            if result.ok:
                warm_iterations.append(result.n_iterations)
            else:
                result = fit_circuit(freq, z, options)
        ours_times.append(time.perf_counter() - started)
        ours_r.append(result.parameters["R3"])
        previous = result

    first = 0
    guess = [
        truth.L_H[first],
        truth.R_b_ohm[first], truth.Q_b[first], truth.alpha_b[first],
        truth.R_gb_ohm[first], truth.Q_gb[first], truth.alpha_gb[first],
        truth.R_int_ohm[first], truth.Q_int[first], truth.alpha_int[first],
    ]  # fmt: skip
    peer_times, peer_r = [], []
    n_peer = min(arguments.peer_sweeps, n_spectra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for freq, z in zip(simulated.freq[:n_peer], simulated.z[:n_peer], strict=True):
            circuit = CustomCircuit(CIRCUIT, initial_guess=guess)
            started = time.perf_counter()
            circuit.fit(freq, z, weight_by_modulus=True)
            peer_times.append(time.perf_counter() - started)
            guess = list(circuit.parameters_)
            peer_r.append(guess[7])

    ours_ms = 1e3 * np.median(ours_times)
    peer_ms = 1e3 * np.median(peer_times)
    ours_error = np.abs(np.array(ours_r) / truth.R_int_ohm - 1)
    peer_error = np.abs(np.array(peer_r) / truth.R_int_ohm[:n_peer] - 1)
    print(f"spectra: {n_spectra} (69 points, 10 parameters), impedance.py on the first {n_peer}")
    ours_mean_ms = 1e3 * np.mean(ours_times)
    print(f"geis-pipeline fit : median {ours_ms:6.2f} ms/spectrum, mean {ours_mean_ms:6.2f}")
    print(
        f"warm starts       : {len(warm_iterations)}, "
        f"Levenberg-Marquardt iterations mean {np.mean(warm_iterations):.2f}, "
        f"max {max(warm_iterations)}"
    )
    print(f"impedance.py fit  : median {peer_ms:6.2f} ms/spectrum (warm-started)")
    print(f"ratio (peer/ours) : {peer_ms / ours_ms:.1f}x")
    print(
        "R_int error vs truth, median/max: "
        f"ours {np.median(ours_error):.4f}/{ours_error.max():.4f}, "
        f"impedance.py {np.median(peer_error):.4f}/{peer_error.max():.4f}"
    )


if __name__ == "__main__":
    main()
