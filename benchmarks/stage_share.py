"""Where a run's time goes, for several checkouts side by side: the chunks' stages and the rest.

Runs `geis-pipeline run` (serial, one process) under cProfile on one simulated experiment,
once per checkout given (a git worktree of another commit; default: this one), and prints per
checkout the seconds of the whole run, of the chunk processing and of its stages (fit, KK,
DRT), and of everything else: reading, screening, chunk store, lock, assembly of results and
the HDF5 write, the serial share that workers cannot spread. A checkout's code is the one on
its own PYTHONPATH.

cProfile slows pure-Python code more than BLAS-bound code, and a shared machine adds noise:
compare the columns within one run of this script, not with end-to-end figures.

Usage: python benchmarks/stage_share.py [--sweeps 2000] [--no-refine] [CHECKOUT ...]
e.g.   git worktree add --detach /tmp/base c7e735e
       python benchmarks/stage_share.py /tmp/base .
"""

from __future__ import annotations

import argparse
import os
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

from geis_pipeline.simulate import SimulationSettings, write_experiment

_CONFIG = '[executor]\nkind = "serial"\nchunk_size = 200\npublish_interval_s = 60.0\n'
#: Profile entries (file suffix, function) whose cumulative time each column reports.
_PARTS = {
    "run": (("pipeline/orchestrator.py", "run"), ("pipeline.py", "run")),
    "chunks": (("chunks.py", "_process_chunk"), ("pipeline.py", "_process_chunk")),
    "fit": (("fit/fitting.py", "fit_experiment"), ("fit/__init__.py", "fit_experiment")),
    "kk": (("kk/api.py", "check_kk_batch"), ("kk.py", "check_kk_batch")),
    "drt": (("drt/inversion.py", "invert_drt_batch"),),
}


def profile(
    checkout: Path, experiment: Path, folder: Path, refine: bool = True
) -> dict[str, float]:
    """Seconds per part of one profiled run of ``checkout``'s CLI."""
    config = folder / "config.toml"
    config.write_text(_CONFIG + ("" if refine else "[drt]\nrefine = false\n"))
    stats_file = folder / f"{checkout.name or 'here'}.prof"
    output = folder / f"{checkout.name or 'here'}.h5"
    environment = os.environ | {"PYTHONPATH": str(checkout)}
    subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(stats_file), "-m", "geis_pipeline", "run",
         str(experiment), "-c", str(config), "-o", str(output), "-q"],
        check=True, cwd=checkout, env=environment, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    stats = pstats.Stats(str(stats_file)).stats
    parts = {}
    for part, entries in _PARTS.items():
        parts[part] = sum(
            cumulative
            for (file, _, function), (_, _, _, cumulative, _) in stats.items()
            if any(file.endswith(suffix) and function == name for suffix, name in entries)
        )
    parts["rest"] = parts["run"] - parts["chunks"]
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=2000)
    parser.add_argument("--no-refine", action="store_true", help="drt.refine = false")
    parser.add_argument("checkouts", nargs="*", type=Path, default=[Path(".")])
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        experiment = folder / "experiment"
        write_experiment(
            experiment, SimulationSettings(seed=7, n_sweeps=arguments.sweeps, n_relaxation=12)
        )
        print(f"{arguments.sweeps} sweeps, serial, under cProfile (s)")
        print(f"{'checkout':<28}" + "".join(f"{part:>9}" for part in [*_PARTS, "rest"]))
        for checkout in arguments.checkouts:
            parts = profile(checkout.resolve(), experiment, folder, not arguments.no_refine)
            label = str(checkout)[-28:]
            print(f"{label:<28}" + "".join(f"{parts[part]:9.1f}" for part in [*_PARTS, "rest"]))


if __name__ == "__main__":
    main()
