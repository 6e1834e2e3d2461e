"""How fast a user sees a big result file: `geis-pipeline report`, `info`, and a notebook read.

Simulates an operando experiment (default 30,000 sweeps, EC-Lab files), runs the pipeline on it
once (2 workers, ``drt.refine = false``: the file's contents, not the DRT refinement, are what
this benchmark is about) and keeps the result file in ``--keep`` (default /tmp/geis_report_speed),
so later calls reuse it. Then times, each in a fresh interpreter (wall and the process's own CPU
seconds): ``geis-pipeline report``, ``geis-pipeline info``, and ``open_results`` with reading the
tracking table, as a notebook does. ``--checkout DIR`` times another checkout's code (e.g. a
detached worktree of an older commit) beside this one, on the same file.

Issue 17 target: the report on the 30,000-sweep file in <= 10 s.

Usage: python benchmarks/report_speed.py [--sweeps 30000] [--keep DIR] [--repeat 1]
       [--checkout DIR ...]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _configs import run_config

from geis_pipeline.config import config_to_toml
from geis_pipeline.simulate import SimulationSettings, write_experiment

_NOTEBOOK = (
    "import sys; from geis_pipeline.results import open_results; "
    "results = open_results(sys.argv[1]); experiment = next(iter(results)); "
    "table = experiment.tracking(as_frame=True); "
    "print(len(table))"
)


def make_file(folder: Path, n_sweeps: int) -> Path:
    """The result file of an ``n_sweeps`` experiment in ``folder`` (made once, then reused)."""
    output = folder / f"run_{n_sweeps}.h5"
    if output.exists():
        return output
    folder.mkdir(parents=True, exist_ok=True)
    experiment = folder / f"experiment_{n_sweeps}"
    if not experiment.exists():
        started = time.perf_counter()
        write_experiment(experiment, SimulationSettings(seed=7, n_sweeps=n_sweeps, n_relaxation=12))
        print(f"simulated {n_sweeps} sweeps in {time.perf_counter() - started:.0f} s", flush=True)
    config = run_config(2)
    config_file = folder / f"run_{n_sweeps}.toml"
    config_file.write_text(config_to_toml(config))
    started = time.perf_counter()
    partial = output.with_suffix(".partial.h5")
    subprocess.run(
        [sys.executable, "-m", "geis_pipeline", "run", str(experiment), "-c", str(config_file),
         "-o", str(partial), "-q"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    partial.rename(output)
    print(f"ran the pipeline in {time.perf_counter() - started:.0f} s", flush=True)
    return output


def timed(command: list[str], checkout: Path) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of ``command`` run with ``checkout``'s code."""
    environment = os.environ | {"PYTHONPATH": str(checkout), "MPLBACKEND": "Agg"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=checkout, env=environment, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=30000)
    parser.add_argument("--keep", type=Path, default=Path("/tmp/geis_report_speed"))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--checkout", type=Path, nargs="*", default=[])
    arguments = parser.parse_args()
    results = make_file(arguments.keep, arguments.sweeps)
    print(f"{results}: {results.stat().st_size / 1e6:.0f} MB; load {os.getloadavg()[0]:.1f}")
    checkouts = [Path(".").resolve(), *(path.resolve() for path in arguments.checkout)]
    with tempfile.TemporaryDirectory() as name:
        python = [sys.executable, "-m", "geis_pipeline"]
        calls = {
            "report": lambda out: [*python, "report", str(results), "-o", str(out), "-q"],
            "info": lambda out: [*python, "info", str(results)],
            "open_results + tracking table": lambda out: [
                sys.executable,
                "-c",
                _NOTEBOOK,
                str(results),
            ],
        }
        print(f"{'call':<32}{'checkout':<30}{'wall s':>9}{'CPU s':>9}")
        for call, command in calls.items():
            for checkout in checkouts:
                for repeat in range(arguments.repeat):
                    out = Path(name) / f"{checkout.name}_{repeat}"
                    wall, cpu = timed(command(out), checkout)
                    print(f"{call:<32}{str(checkout)[-29:]:<30}{wall:9.2f}{cpu:9.2f}", flush=True)
    print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
