"""End-to-end throughput: spectra per second through ingest, KK, fit, DRT, tracking and store.

Simulates an operando experiment of N sweeps (written as EC-Lab files, as users
have them), then runs `geis-pipeline run` in a fresh process with 1 and 2
worker processes and prints spectra/s and the peak memory of the largest single
process of the run (orchestrator or worker; the simulation is not counted).
Issue goal: >= 150 spectra/s on 2 cores, < 1 GiB.

Usage: python benchmarks/pipeline_throughput.py [--sweeps 3000] [--solver CLARABEL]
(--sweeps 30000 is the full-size study; it takes a while).
"""

from __future__ import annotations

import argparse
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


def run_in_subprocess(experiment: Path, config: Config, output: Path) -> tuple[float, float]:
    """Run the CLI in a fresh process: (seconds, peak RSS in MB of its largest process)."""
    config_file = output.with_suffix(".toml")
    config_file.write_text(config_to_toml(config))
    command = [sys.executable, "-m", "geis_pipeline", "run", str(experiment),
               "-c", str(config_file), "-o", str(output), "-q"]  # fmt: skip
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *command], check=True, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    return elapsed, int(completed.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=3000)
    parser.add_argument("--chunk-size", type=int, default=200)
    parser.add_argument("--solver", default="NNLS", help="DRT solver")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
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
            output = Path(folder) / f"run_{workers}.h5"
            elapsed, peak_mb = run_in_subprocess(experiment, config, output)
            n_spectra = len(open_results(output)["experiment"].spectra)
            print(
                f"{workers} worker(s): {elapsed:7.1f} s  {n_spectra / elapsed:6.1f} sp/s"
                f"  peak {peak_mb:5.0f} MB  file {output.stat().st_size / 1e6:.0f} MB"
            )


if __name__ == "__main__":
    main()
