"""End-to-end throughput: spectra per second through ingest, KK, fit, DRT, tracking and store.

Simulates an operando experiment of N sweeps (written as EC-Lab files, as users
have them), then runs `geis-pipeline run` in a fresh process with 1 and 2
worker processes and prints spectra/s and the peak memory of the largest single
process of the run (orchestrator or worker; the simulation is not counted).
Issue goal: >= 150 spectra/s on 2 cores, < 1 GiB.

The machine may be shared: each line also gives the CPU the *other* processes used
during the run, in cores (Linux; from /proc/stat minus this run's own CPU time).
Compare runs only when that is near zero, or repeat them (--repeat).

Usage: python benchmarks/pipeline_throughput.py [--sweeps 3000] [--workers 1 2]
[--repeat 1] [--chunk-size 200] [--solver NNLS]
(--sweeps 30000 is the full-size study; it takes a while).
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=3000)
    parser.add_argument("--chunk-size", type=int, default=200)
    parser.add_argument(
        "--solver", default=Config().drt.solver, help="DRT solver (default: the config's)"
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1, help="runs per worker count")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        experiment = Path(folder) / "experiment"
        started = time.perf_counter()
        simulated = write_experiment(
            experiment, SimulationSettings(seed=7, n_sweeps=arguments.sweeps, n_relaxation=12)
        )
        print(f"simulated {len(simulated.time_s)} spectra in {time.perf_counter() - started:.1f} s")
        del simulated  # the simulation's memory is not the pipeline's
        for workers in arguments.workers:
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
                drt=replace(config.drt, solver=arguments.solver),
            )
            for _ in range(arguments.repeat):
                output = Path(folder) / f"run_{workers}.h5"
                output.unlink(missing_ok=True)
                elapsed, peak_mb, others = run_in_subprocess(experiment, config, output)
                n_spectra = len(open_results(output)["experiment"].spectra)
                print(
                    f"{workers} worker(s): {elapsed:7.1f} s  {n_spectra / elapsed:6.1f} sp/s"
                    f"  peak {peak_mb:5.0f} MB  file {output.stat().st_size / 1e6:.0f} MB"
                    f"  (other processes: {others:.2f} cores)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
