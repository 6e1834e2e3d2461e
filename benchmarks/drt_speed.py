"""DRT speed: geis-pipeline (cvxpy, built once per grid) against pyDRTtools, one run.

Simulates a stripping experiment (default 1,000 GEIS sweeps, 69 points each,
the last one cut short), inverts every sweep with ``invert_drt_batch`` (λ
chosen once for the experiment by the L-curve, then fixed) for each solver,
and inverts the first ``--peer`` sweeps with pyDRTtools' ``simple_run``
(Gaussian RBF, 1st derivative, fixed λ: no λ search, its fastest mode). Prints
the amortised time per spectrum (problem build, compilation and λ choice
included), the ratio, and how far the interface peak positions of the two
packages are apart on the peer's spectra.

pyDRTtools 0.2 cannot be imported as published without a display stack: its
``__init__`` imports its PyQt5 GUI; the numerical modules also need cvxopt and
(for its k-fold λ choice only) scikit-learn. The benchmark loads the numerical
modules without the package ``__init__`` and stubs scikit-learn if missing.

By default it times DAQP (the default: cvxpy, each spectrum's block solved by
DAQP), Clarabel (cvxpy's interior point) and NNLS (the same problem without
cvxpy). OSQP and SCS can be timed with ``--solvers``; at the small λ the
L-curve picks for long experiments they need thousands of iterations.

BLAS threads are limited to one (``--blas-threads``) before numpy loads: the
matrices here are ~100 x 100, where threaded OpenBLAS only adds overhead
(on a 2-core VM it made small triangular solves 10-30x slower).

Usage: python benchmarks/drt_speed.py [--sweeps 1000] [--peer 50]
       [--solvers DAQP,CLARABEL,NNLS] [--batch-size 16] [--blas-threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":
    threads = "1"
    for number, argument in enumerate(sys.argv):
        if argument == "--blas-threads" and number + 1 < len(sys.argv):
            threads = sys.argv[number + 1]
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, threads)
    os.environ.setdefault("MPLBACKEND", "Agg")

import contextlib
import importlib.util
import io
import time
import types

import numpy as np

from geis_pipeline.drt import invert_drt_batch, track_peaks
from geis_pipeline.drt.peaks import DEFAULT_WINDOWS, detect_peaks
from geis_pipeline.simulate import SimulationSettings, simulate_experiment


def load_pydrttools() -> types.ModuleType:
    """pyDRTtools.runs without its GUI (see the module docstring)."""
    spec = importlib.util.find_spec("pyDRTtools")
    if spec is None:
        raise SystemExit("pyDRTtools is not installed: pip install pyDRTtools cvxopt")
    package = types.ModuleType("pyDRTtools")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["pyDRTtools"] = package
    if importlib.util.find_spec("sklearn") is None:
        sklearn = types.ModuleType("sklearn")
        model_selection = types.ModuleType("sklearn.model_selection")
        model_selection.KFold = None  # only its k-fold λ choice uses it
        sklearn.model_selection = model_selection
        sys.modules["sklearn"] = sklearn
        sys.modules["sklearn.model_selection"] = model_selection
    with contextlib.redirect_stdout(io.StringIO()):
        from pyDRTtools import runs
    return runs


def peer_interface_taus(runs: types.ModuleType, spectra, reg_param: float) -> tuple[float, list]:
    """Seconds per spectrum and the interface-window peak τ of each, pyDRTtools."""
    taus = []
    started = time.perf_counter()
    for freq, z in spectra:
        entry = runs.EIS_object(freq, z.real, z.imag)
        with contextlib.redirect_stdout(io.StringIO()):
            runs.simple_run(
                entry,
                rbf_type="Gaussian",
                induct_used=1,
                der_used="1st order",
                cv_type="custom",
                reg_param=reg_param,
            )
        peaks = detect_peaks(
            np.log(entry.out_tau_vec), np.asarray(entry.gamma).ravel(), DEFAULT_WINDOWS
        )
        found = [peak for peak in peaks if peak.process == "int"]
        taus.append(max(found, key=lambda peak: peak.R).tau if found else np.nan)
    return (time.perf_counter() - started) / len(spectra), taus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=1000)
    parser.add_argument("--peer", type=int, default=50, help="spectra for pyDRTtools")
    parser.add_argument("--solvers", default="DAQP,CLARABEL,NNLS", help="comma separated")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--blas-threads", default="1")
    parser.add_argument("--peer-lambda", type=float, default=1e-3, help="pyDRTtools reg_param")
    arguments = parser.parse_args()

    experiment = simulate_experiment(
        SimulationSettings(n_sweeps=arguments.sweeps, n_relaxation=0, seed=1)
    )
    spectra = list(zip(experiment.freq, experiment.z, strict=True))
    truth = experiment.truth
    complete = ~truth.incomplete
    print(
        f"experiment: {len(spectra)} GEIS sweeps x {experiment.freq[0].size} points "
        f"({int(truth.incomplete.sum())} cut short), BLAS threads {arguments.blas_threads}"
    )

    ours: dict[str, float] = {}
    results_by_solver = {}
    for solver in arguments.solvers.split(","):
        started, cpu_started = time.perf_counter(), time.process_time()
        results = invert_drt_batch(spectra, solver=solver, batch_size=arguments.batch_size)
        elapsed = time.perf_counter() - started
        # CPU time as well: on a shared machine it is the steadier of the two.
        cpu_ms = (time.process_time() - cpu_started) / len(spectra) * 1e3
        ours[solver] = elapsed / len(spectra)
        results_by_solver[solver] = results
        track = track_peaks(results)
        error = track["int"].R[complete] / truth.R_int_ohm[complete] - 1
        failed = sum(not result.ok for result in results)
        print(
            f"geis-pipeline {solver:8s}: {ours[solver] * 1e3:6.2f} ms/spectrum "
            f"(CPU {cpu_ms:.2f} ms; total {elapsed:.1f} s, lambda {results[0].lam:.3g}, "
            f"{failed} failed); "
            f"R_int vs truth: median {np.nanmedian(np.abs(error)) * 100:.1f} %, "
            f"max {np.nanmax(np.abs(error)) * 100:.1f} %"
        )

    runs = load_pydrttools()
    subset = spectra[: arguments.peer]
    peer_s, peer_taus = peer_interface_taus(runs, subset, arguments.peer_lambda)
    print(f"pyDRTtools simple_run  : {peer_s * 1e3:6.1f} ms/spectrum ({len(subset)} spectra)")
    for solver, per_spectrum in ours.items():
        print(f"ratio pyDRTtools / geis-pipeline {solver}: {peer_s / per_spectrum:.0f}x")
    reference = results_by_solver[next(iter(results_by_solver))][: arguments.peer]
    our_taus = np.array(track_peaks(reference)["int"].tau)
    offset = np.abs(np.log10(np.asarray(peer_taus) / our_taus))
    print(
        f"interface peak position, geis-pipeline vs pyDRTtools on {len(subset)} spectra: "
        f"max |delta log10 tau| = {np.nanmax(offset):.3f} decade"
    )


if __name__ == "__main__":
    main()
