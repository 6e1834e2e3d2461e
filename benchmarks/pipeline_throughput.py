"""End-to-end throughput: spectra per second through ingest, KK, fit, DRT, tracking and store.

Simulates an operando experiment of N sweeps (written as EC-Lab files, as users
have them), then runs `geis-pipeline run` in a fresh process with 1 and 2
worker processes and prints spectra/s and the peak memory of the largest single
process of the run (orchestrator or worker; the simulation is not counted).
Targets (issue 17): 30,000 sweeps with 2 workers in <= 60 s (>= 500 spectra/s),
peak <= 600 MB; each line prints its ratio to them.

Peers (``--peers``, default on): the same work done spectrum by spectrum with the
field's packages, impedance.py's ``CustomCircuit.fit`` (the package's default
circuit ``L0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)``, started from the truth of the
first sweep) and pyDRTtools'
``simple_run`` (fixed λ), timed on ``--peer-spectra`` of the experiment's
sweeps in one fresh process and scaled to all spectra on 2 cores (perfect
parallelism, no KK test, no reading, no storing: a lower bound for a peer
pipeline).

The machine may be shared: each line also gives the CPU the *other* processes used
during the run, in cores (Linux; from /proc/stat minus this run's own CPU time).
Compare runs only when that is near zero, or repeat them (--repeat).

Usage: python benchmarks/pipeline_throughput.py [--sweeps 3000] [--workers 1 2]
[--repeat 1] [--chunk-size 200] [--solver NNLS] [--drt-refine true false]
[--no-peers] [--peer-spectra 10]
(--sweeps 30000 is the full-size study; it takes a while).
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from geis_pipeline.config import Config, config_to_toml
from geis_pipeline.results import open_results
from geis_pipeline.simulate import SimulationSettings, write_experiment

#: Issue 17's targets.
TARGET_SPECTRA_PER_S = 500.0
TARGET_PEAK_MB = 600.0

# The peers' work per spectrum in a fresh process: impedance.py's fit of the
# default circuit and pyDRTtools' DRT (fixed λ), as a user of them would loop.
_PEER_CHILD = """
import contextlib, io, json, sys, time, warnings
import numpy as np
sys.path.insert(0, {here!r})
data = np.load({spectra!r})
pairs = [(data[f"freq{{i}}"], data[f"z{{i}}"]) for i in range(int(data["n"]))]
out = {{}}
def per_spectrum(call):
    # CPU seconds per spectrum of call(freq, z), after one warm-up call
    call(*pairs[0])
    started = time.process_time()
    for freq, z in pairs:
        call(freq, z)
    return (time.process_time() - started) / len(pairs)
try:
    from impedance.models.circuits import CustomCircuit
    def fit(freq, z):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            circuit = CustomCircuit({circuit!r}, initial_guess=list(data["guess"]))
            circuit.fit(freq, z, weight_by_modulus=True)
    out["impedance.py fit"] = per_spectrum(fit)
except Exception as error:
    out["impedance.py fit"] = f"failed: {{type(error).__name__}}: {{error}}"
try:
    from drt_speed import load_pydrttools
    runs = load_pydrttools()
    def drt(freq, z):
        entry = runs.EIS_object(freq, z.real, z.imag)
        with contextlib.redirect_stdout(io.StringIO()):
            runs.simple_run(entry, rbf_type="Gaussian", induct_used=1, der_used="1st order",
                            cv_type="custom", reg_param=1e-3)
    out["pyDRTtools DRT"] = per_spectrum(drt)
except BaseException as error:
    out["pyDRTtools DRT"] = f"failed: {{type(error).__name__}}: {{error}}"
print(json.dumps(out))
"""

# A small wrapper process runs the CLI and reports the CLI's peak RSS. Measuring the
# child from here would count the pages it shares with this (simulation-sized)
# process right after fork, before exec: a 30,000-sweep simulation is ~2 GB.
_WRAPPER = (
    "import resource, subprocess, sys; "
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def _busy_cpu_s() -> float:
    """CPU seconds all processes of the machine have used since boot (Linux; else NaN)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_in_subprocess(experiment: Path, config: Config, output: Path) -> tuple[float, float, float]:
    """Run the CLI in a fresh process.

    Returns
    -------
    seconds, peak RSS in MB of its largest process, cores used by other processes meanwhile
    """
    config_file = output.with_suffix(".toml")
    config_file.write_text(config_to_toml(config))
    command = [sys.executable, "-m", "geis_pipeline", "run", str(experiment),
               "-c", str(config_file), "-o", str(output), "-q"]  # fmt: skip
    busy, own = _busy_cpu_s(), _own_cpu_s()
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *command], check=True, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    others = ((_busy_cpu_s() - busy) - (_own_cpu_s() - own)) / elapsed
    return elapsed, int(completed.stdout.split()[-1]) / 1024, max(others, 0.0)


def peer_seconds_per_spectrum(simulated, n_spectra: int, folder: Path) -> dict[str, float | str]:
    """CPU seconds per spectrum of each peer (or why it failed), in a fresh process."""
    import json

    import numpy as np

    step = max(len(simulated.freq) // n_spectra, 1)
    chosen = list(range(0, len(simulated.freq), step))[:n_spectra]
    arrays = {"n": len(chosen)}
    for number, index in enumerate(chosen):
        arrays[f"freq{number}"] = simulated.freq[index]
        arrays[f"z{number}"] = simulated.z[index]
    truth = simulated.truth
    arrays["guess"] = np.array(
        [max(truth.L_H[0], 1e-9), truth.R_b_ohm[0], truth.Q_b[0], truth.alpha_b[0],
         truth.R_gb_ohm[0], truth.Q_gb[0], truth.alpha_gb[0],
         truth.R_int_ohm[0], truth.Q_int[0], truth.alpha_int[0]]
    )  # fmt: skip
    spectra = folder / "peer_spectra.npz"
    np.savez(spectra, **arrays)
    code = _PEER_CHILD.format(
        here=str(Path(__file__).resolve().parent),
        spectra=str(spectra),
        circuit=Config().fit.circuit,
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        reason = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        return {"peers": f"failed: {reason}"}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=3000)
    parser.add_argument("--chunk-size", type=int, default=200)
    parser.add_argument(
        "--solver", default=Config().drt.solver, help="DRT solver (default: the config's)"
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1, help="runs per worker count")
    parser.add_argument(
        "--drt-refine",
        choices=("true", "false"),
        nargs="+",
        default=["true" if Config().drt.refine else "false"],
        help="the DRT's ZARC peak refinement, one run set per value (default: the config's)",
    )
    parser.add_argument("--no-peers", action="store_true", help="do not time the peers")
    parser.add_argument("--peer-spectra", type=int, default=10)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        experiment = Path(folder) / "experiment"
        started = time.perf_counter()
        simulated = write_experiment(
            experiment, SimulationSettings(seed=7, n_sweeps=arguments.sweeps, n_relaxation=12)
        )
        print(f"simulated {len(simulated.time_s)} spectra in {time.perf_counter() - started:.1f} s")
        n_total = len(simulated.time_s)
        peers = (
            {}
            if arguments.no_peers
            else peer_seconds_per_spectrum(simulated, arguments.peer_spectra, Path(folder))
        )
        del simulated  # the simulation's memory is not the pipeline's
        print(
            f"targets: >= {TARGET_SPECTRA_PER_S:.0f} spectra/s with 2 workers "
            f"({n_total / TARGET_SPECTRA_PER_S:.0f} s for these {n_total}), "
            f"peak <= {TARGET_PEAK_MB:.0f} MB"
        )
        for refine, workers in itertools.product(arguments.drt_refine, arguments.workers):
            config = Config()
            config = replace(
                config,
                executor=replace(
                    config.executor,
                    kind="process" if workers > 1 else "serial",
                    workers=workers,
                    chunk_size=arguments.chunk_size,
                    publish_interval_s=60.0,
                ),
                drt=replace(config.drt, solver=arguments.solver, refine=refine == "true"),
            )
            for _ in range(arguments.repeat):
                output = Path(folder) / f"run_{workers}.h5"
                output.unlink(missing_ok=True)
                elapsed, peak_mb, others = run_in_subprocess(experiment, config, output)
                n_spectra = len(open_results(output)["experiment"].spectra)
                rate = n_spectra / elapsed
                print(
                    f"drt.refine {refine:5s} {workers} worker(s): {elapsed:7.1f} s"
                    f"  {rate:6.1f} sp/s"
                    f" ({rate / TARGET_SPECTRA_PER_S:.2f} x target)"
                    f"  peak {peak_mb:5.0f} MB ({peak_mb / TARGET_PEAK_MB:.2f} x target)"
                    f"  file {output.stat().st_size / 1e6:.0f} MB"
                    f"  (other processes: {others:.2f} cores)",
                    flush=True,
                )
        if peers:
            print("peers, spectrum by spectrum (CPU per spectrum, scaled to 2 cores):")
            per_spectrum = 0.0
            for name, value in peers.items():
                if isinstance(value, str):
                    print(f"  {name}: {value}")
                    per_spectrum = float("nan")
                    continue
                per_spectrum += value
                print(f"  {name}: {1e3 * value:.1f} ms")
            if per_spectrum == per_spectrum and per_spectrum > 0:
                print(
                    f"  fit + DRT of all {n_total} spectra: {n_total * per_spectrum / 2:.0f} s"
                    f" on 2 cores, {2 / per_spectrum:.1f} sp/s"
                )


if __name__ == "__main__":
    main()
