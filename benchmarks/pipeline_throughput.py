"""End-to-end throughput: spectra per second through ingest, KK, fit, DRT, tracking and store.

Simulates an operando experiment of N sweeps (written as EC-Lab files, as users
have them), then runs `geis_pipeline.pipeline.run` with 1 and 2 worker
processes and prints spectra/s and the peak memory of the run (the orchestrator
and its workers). Issue goal: >= 150 spectra/s on 2 cores, < 1 GiB.

Usage: python benchmarks/pipeline_throughput.py [--sweeps 3000] [--solver CLARABEL]
(--sweeps 30000 is the full-size study; it takes a while).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from geis_pipeline.config import Config
from geis_pipeline.pipeline import run
from geis_pipeline.simulate import SimulationSettings, write_experiment


def peak_memory_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=3000)
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--solver", default="CLARABEL", help="DRT solver")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        experiment = Path(folder) / "experiment"
        started = time.perf_counter()
        simulated = write_experiment(
            experiment, SimulationSettings(seed=7, n_sweeps=arguments.sweeps, n_relaxation=12)
        )
        n_spectra = len(simulated.time_s)
        print(f"simulated {n_spectra} spectra in {time.perf_counter() - started:.1f} s")
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
            started = time.perf_counter()
            report = run([experiment], config, output)
            elapsed = time.perf_counter() - started
            print(
                f"{workers} worker(s): {elapsed:7.1f} s  {report.n_spectra / elapsed:6.1f} sp/s"
                f"  peak {peak_memory_mb():5.0f} MB  file {output.stat().st_size / 1e6:.0f} MB"
            )


if __name__ == "__main__":
    main()
