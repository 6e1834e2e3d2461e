"""Kramers-Kronig check speed: check_kk_batch against impedance.py's linKK and pyimpspec.

Simulates an operando experiment (69 points per sweep, 7 MHz to 1 Hz) and runs
geis_pipeline's complete check (μ-selected Lin-KK, outlier and tail tests,
truncation) on every sweep with :func:`geis_pipeline.kk.check_kk_batch`, then the
peers on the same sweeps in the same run:

* impedance.py ``impedance.validation.linKK`` (c = 0.85, modulus weighting): it
  fails under numpy 2; the script reports the error instead of a time;
* pyimpspec (GPL, benchmark only: ``pip install pyimpspec``)
  ``perform_kramers_kronig_test``: (a) its default automatic choice of the
  number of RC elements, on a few sweeps because it takes seconds each, and
  (b) a single linear Lin-KK fit with the number of elements fixed (what one
  step of a μ scan costs), on ``--peer-sweeps`` sweeps. Neither truncates.

Prints the per-spectrum medians (over ``--repeat`` runs of the whole batch for
ours) and the ratios. Goal: <= 2 ms per spectrum.

Usage: python benchmarks/kk_speed.py [--sweeps 1000] [--repeat 3] [--peer-sweeps 100]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from geis_pipeline.kk import check_kk_batch
from geis_pipeline.simulate import SimulationSettings, simulate_experiment


def per_spectrum_ms(function, items) -> list[float]:
    timings = []
    for item in items:
        started = time.perf_counter()
        function(item)
        timings.append((time.perf_counter() - started) * 1e3)
    return timings


def impedance_py(pairs) -> str:
    try:
        from impedance.validation import linKK
    except ImportError as error:  # pragma: no cover - impedance is a dependency
        return f"not importable ({error})"
    freq, z = pairs[0]
    try:
        linKK(freq, z, c=0.85, max_M=50, fit_type="complex")
    except Exception as error:
        return f"fails under numpy {np.__version__}: {type(error).__name__}: {error}"
    timings = per_spectrum_ms(
        lambda pair: linKK(pair[0], pair[1], c=0.85, max_M=50, fit_type="complex"), pairs
    )
    return f"{statistics.median(timings):.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peer-sweeps", type=int, default=100)
    parser.add_argument("--auto-sweeps", type=int, default=3)
    arguments = parser.parse_args()

    settings = SimulationSettings(seed=1, n_sweeps=arguments.sweeps + 1, n_relaxation=0)
    simulated = simulate_experiment(settings)
    # Complete sweeps only (the last stripping sweep is cut short).
    pairs = [(f, z) for f, z in zip(simulated.freq, simulated.z, strict=True) if f.size == 69]
    pairs = pairs[: arguments.sweeps]
    print(f"spectra: {len(pairs)} x {pairs[0][0].size} points ({settings.f_max_Hz:g}-1 Hz)")

    batch_ms = []
    for _ in range(arguments.repeat):
        started = time.perf_counter()
        results = check_kk_batch(pairs)
        batch_ms.append((time.perf_counter() - started) * 1e3 / len(pairs))
    ours = statistics.median(batch_ms)
    truncated = sum(result.truncated for result in results)
    passed = sum(result.ok for result in results)
    print(
        f"geis-pipeline check_kk_batch      : {ours:.3f} ms/spectrum "
        f"(median of {arguments.repeat} runs; {passed} ok, {truncated} truncated)"
    )
    print(f"impedance.py linKK                : {impedance_py(pairs[:20])}")

    try:
        import pyimpspec
    except ImportError:
        print("pyimpspec                         : not installed (pip install pyimpspec)")
        return
    data_sets = [
        pyimpspec.DataSet(frequencies=freq, impedances=z)
        for freq, z in pairs[: arguments.peer_sweeps]
    ]
    elements = [result.n_elements for result in results[: arguments.peer_sweeps]]
    fixed = []
    for data, n_elements in zip(data_sets, elements, strict=True):
        started = time.perf_counter()
        pyimpspec.perform_kramers_kronig_test(
            data, test="complex", num_RC=n_elements, num_F_ext_evaluations=0, num_procs=1
        )
        fixed.append((time.perf_counter() - started) * 1e3)
    fixed_ms = statistics.median(fixed)
    print(
        f"pyimpspec, one fit, M fixed       : {fixed_ms:.3f} ms/spectrum "
        f"(median of {len(fixed)}; ratio {fixed_ms / ours:.1f}x)"
    )
    auto = per_spectrum_ms(
        lambda data: pyimpspec.perform_kramers_kronig_test(data, test="complex", num_procs=1),
        data_sets[: arguments.auto_sweeps],
    )
    auto_ms = statistics.median(auto)
    print(
        f"pyimpspec, automatic M (default)  : {auto_ms:.1f} ms/spectrum "
        f"(median of {len(auto)}; ratio {auto_ms / ours:.0f}x)"
    )


if __name__ == "__main__":
    main()
