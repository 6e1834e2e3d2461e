"""Kramers-Kronig check speed beside the targets of issue 17 and the peers, in one run.

* single call: :func:`geis_pipeline.kk.check_kk` on one 69-point spectrum (7 MHz
  to 1 Hz) after the first call on its grid (the per-grid cache holds the
  basis), median of ``--calls`` calls; target <= 10 ms. The first call on a
  new grid (builds the basis) beside it.
* batch: :func:`geis_pipeline.kk.check_kk_batch` on the sweeps of a simulated
  operando experiment in chunks of ``--chunk`` (200, as the pipeline calls it),
  per spectrum, median of ``--repeat`` runs (the grid's basis cached, as in a
  pipeline worker after its first chunk).
* peers, on the same spectra: impedance.py ``impedance.validation.linKK``
  (c = 0.85, complex fit, max_M = 50, modulus weighting). Under numpy 2 it
  fails: it builds its circuit as a Python string from ``repr`` of the
  parameters and ``eval``s it, and numpy 2 writes a scalar as ``np.float64(x)``
  (NEP 51), a name its namespace lacks. The script prints that error, then
  times linKK again with numpy's 1.25 printing (``np.printoptions(legacy=...)``),
  the workaround; pyimpspec (GPL, benchmark only) when installed.

Wall time and CPU time (the process's own, steadier on a shared machine) are
both printed, with the load average. Every figure is for one core
(OPENBLAS_NUM_THREADS=1 is set before numpy is imported).

Usage: python benchmarks/kk_speed.py [--sweeps 1000] [--chunk 200] [--repeat 5] [--calls 50]
"""

from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402 - after the thread settings, before numpy
import contextlib  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from geis_pipeline.kk import check_kk, check_kk_batch  # noqa: E402
from geis_pipeline.simulate import SimulationSettings, simulate_experiment  # noqa: E402

SINGLE_TARGET_MS = 10.0


def one_spectrum(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The spectrum of benchmarks/single_calls.py: R_inf and two CPE arcs, 0.5 % noise."""
    freq = np.geomspace(7e6, 1, 69)
    jw = 2j * np.pi * freq
    z = 60 + 50 / (1 + 50 * 3e-9 * jw**0.9) + 140 / (1 + 140 * 2e-6 * jw**0.85)
    rng = np.random.default_rng(seed)
    return freq, z * (1 + 0.005 * (rng.standard_normal(69) + 1j * rng.standard_normal(69)))


def timed(call: Callable[[], object], repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``repeats`` calls."""
    wall, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return wall, cpu


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.2f} ms"


def row(label: str, wall: list[float], cpu: list[float], target: str = "") -> None:
    print(f"{label:46s} {ms(statistics.median(wall))} {ms(statistics.median(cpu))}   {target}")


def impedance_py(pairs: list[tuple[np.ndarray, np.ndarray]], ours_ms: float) -> None:
    try:
        from impedance.validation import linKK
    except ImportError as error:
        print(f"impedance.py linKK: not importable ({error})")
        return

    def run(pair: tuple[np.ndarray, np.ndarray]) -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints every M it tries
            linKK(pair[0], pair[1], c=0.85, max_M=50, fit_type="complex")

    try:
        run(pairs[0])
    except Exception as error:
        print(
            f"impedance.py linKK fails under numpy {np.__version__}: "
            f"{type(error).__name__}: {error} (it eval()s a circuit string built from reprs, "
            "and numpy 2 writes np.float64(x))"
        )
        legacy = np.printoptions(legacy="1.25")
        note = "with numpy's 1.25 printing"
    else:
        legacy = contextlib.nullcontext()
        note = ""
    with legacy:
        try:
            wall, cpu = timed(lambda: [run(pair) for pair in pairs], 1)
        except Exception as error:
            print(f"impedance.py linKK fails {note}, too: {type(error).__name__}: {error}")
            return
    per_wall, per_cpu = wall[0] / len(pairs), cpu[0] / len(pairs)
    row(f"impedance.py linKK {note}", [per_wall], [per_cpu])
    print(f"{'':46s} (mean of {len(pairs)}; {per_wall * 1e3 / ours_ms:.0f}x our single call)")


def pyimpspec_peer(pairs: list[tuple[np.ndarray, np.ndarray]], ours_ms: float) -> None:
    try:
        import pyimpspec
    except ImportError:
        print("pyimpspec: not installed (pip install pyimpspec; GPL, benchmark only)")
        return
    data = [pyimpspec.DataSet(frequencies=freq, impedances=z) for freq, z in pairs]
    wall, cpu = timed(
        lambda: [pyimpspec.perform_kramers_kronig_test(item, num_procs=1) for item in data], 1
    )
    per_wall = wall[0] / len(data)
    row("pyimpspec KK test (automatic M)", [per_wall], [cpu[0] / len(data)])
    print(f"{'':46s} (mean of {len(data)}; {per_wall * 1e3 / ours_ms:.0f}x our single call)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--peer-spectra", type=int, default=5)
    arguments = parser.parse_args()
    load = os.getloadavg()
    print(f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

    settings = SimulationSettings(seed=1, n_sweeps=arguments.sweeps + 1, n_relaxation=0)
    simulated = simulate_experiment(settings)
    # Complete sweeps only (the last stripping sweep is cut short).
    pairs = [(f, z) for f, z in zip(simulated.freq, simulated.z, strict=True) if f.size == 69]
    pairs = pairs[: arguments.sweeps]
    chunks = [
        pairs[start : start + arguments.chunk] for start in range(0, len(pairs), arguments.chunk)
    ]

    print(f"{'':46s} {'wall':>11s} {'CPU':>11s}   target (issue 17)")
    freq, z = one_spectrum()
    first_wall, first_cpu = timed(lambda: check_kk(freq * 1.01, z), 1)
    row("check_kk, first call (imports scipy)", first_wall, first_cpu)
    new_wall, new_cpu = timed(lambda: check_kk(freq * 1.02, z), 1)
    row("check_kk, first call on a new grid", new_wall, new_cpu)
    check_kk(freq, z)
    wall, cpu = timed(lambda: check_kk(freq, z), arguments.calls)
    ours_ms = statistics.median(wall) * 1e3
    met = "met" if ours_ms <= SINGLE_TARGET_MS else "NOT met"
    row("check_kk, same grid (median)", wall, cpu, f"<= {SINGLE_TARGET_MS:g} ms: {met}")

    check_kk_batch(chunks[0][:2])  # the grid's basis, as after a worker's first chunk
    batch_wall, batch_cpu = [], []
    for _ in range(arguments.repeat):
        wall, cpu = timed(lambda: [check_kk_batch(chunk) for chunk in chunks], 1)
        batch_wall.append(wall[0] / len(pairs))
        batch_cpu.append(cpu[0] / len(pairs))
    results = [result for chunk in chunks for result in check_kk_batch(chunk)]
    row(
        f"check_kk_batch per spectrum, chunks of {arguments.chunk}",
        batch_wall,
        batch_cpu,
        "per-spectrum figure (no separate target)",
    )
    print(
        f"{'':46s} ({len(pairs)} spectra; {sum(r.ok for r in results)} ok, "
        f"{sum(r.truncated for r in results)} truncated; median of {arguments.repeat} runs)"
    )
    print("peers (same spectra):")
    impedance_py(pairs[: arguments.peer_spectra], ours_ms)
    pyimpspec_peer(pairs[: arguments.peer_spectra], ours_ms)


if __name__ == "__main__":
    main()
