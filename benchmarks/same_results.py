"""Do two checkouts store the same results? Every dataset and attribute of their result files.

Simulates one small experiment, runs ``geis-pipeline run`` on it with each checkout's code (its
own PYTHONPATH; e.g. a detached worktree of an older commit), and compares the two HDF5 files
object by object: the same groups, datasets of the same shape and dtype with equal values
(floats within ``--rtol``, NaN equal to NaN; text exactly), the same attributes (the root's
``created`` time aside). Prints every difference and exits 1 if there is one.

Reads the files with h5py directly (the package's own reader would hide layout differences).

Usage: python benchmarks/same_results.py OLD_CHECKOUT [NEW_CHECKOUT=.] [--sweeps 400]
       [--workers 2] [--rtol 1e-9]
e.g.   git worktree add --detach /tmp/base 27f27c4
       python benchmarks/same_results.py /tmp/base .
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
from _configs import run_config

from geis_pipeline.config import config_to_toml
from geis_pipeline.simulate import SimulationSettings, write_experiment

_IGNORED_ATTRS = {"/": {"created"}}


def _run(checkout: Path, experiment: Path, config_file: Path, output: Path) -> None:
    environment = os.environ | {"PYTHONPATH": str(checkout)}
    subprocess.run(
        [sys.executable, "-m", "geis_pipeline", "run", str(experiment), "-c", str(config_file),
         "-o", str(output), "-q"],
        check=True, cwd=checkout, env=environment, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def _same_values(a: np.ndarray, b: np.ndarray, rtol: float) -> bool:
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        return bool(np.allclose(a, b, rtol=rtol, atol=0.0, equal_nan=True))
    if a.dtype.kind == "O" or b.dtype.kind == "O":
        return a.tolist() == b.tolist()
    return bool(np.array_equal(a, b))


def _same_attr(a: object, b: object, rtol: float) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and _same_values(a, b, rtol)
    if isinstance(a, float | np.floating) and isinstance(b, float | np.floating):
        return bool(np.isclose(a, b, rtol=rtol, atol=0.0, equal_nan=True))
    return a == b


def compare(old: Path, new: Path, rtol: float) -> list[str]:
    """Every difference between two result files (empty: the same results)."""
    differences: list[str] = []
    with h5py.File(old, "r") as first, h5py.File(new, "r") as second:
        names_a: list[str] = []
        names_b: list[str] = []
        first.visit(names_a.append)
        second.visit(names_b.append)
        for name in sorted(set(names_a) ^ set(names_b)):
            differences.append(f"{name}: only in {'old' if name in names_a else 'new'}")
        for name in ["/", *sorted(set(names_a) & set(names_b))]:
            a, b = first[name], second[name]
            ignored = _IGNORED_ATTRS.get(name, set())
            for key in sorted((set(a.attrs) | set(b.attrs)) - ignored):
                if key not in a.attrs or key not in b.attrs:
                    differences.append(f"{name} attribute {key}: only in one file")
                elif not _same_attr(a.attrs[key], b.attrs[key], rtol):
                    differences.append(
                        f"{name} attribute {key}: {a.attrs[key]!r} != {b.attrs[key]!r}"
                    )
            if isinstance(a, h5py.Dataset):
                if a.shape != b.shape or a.dtype != b.dtype:
                    differences.append(f"{name}: {a.shape} {a.dtype} != {b.shape} {b.dtype}")
                    continue
                text = h5py.check_string_dtype(a.dtype) is not None
                values_a = a.asstr()[()] if text else a[()]
                values_b = b.asstr()[()] if text else b[()]
                if not _same_values(np.asarray(values_a), np.asarray(values_b), rtol):
                    differences.append(f"{name}: values differ")
    return differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path, nargs="?", default=Path("."))
    parser.add_argument("--sweeps", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rtol", type=float, default=1e-9)
    parser.add_argument("--refine", action="store_true", help="keep drt.refine (default off)")
    arguments = parser.parse_args()
    config = run_config(arguments.workers, chunk_size=100, refine=arguments.refine)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        experiment = folder / "experiment"
        write_experiment(
            experiment, SimulationSettings(seed=7, n_sweeps=arguments.sweeps, n_relaxation=12)
        )
        config_file = folder / "config.toml"
        config_file.write_text(config_to_toml(config))
        files = []
        for label, checkout in (("old", arguments.old), ("new", arguments.new)):
            output = folder / f"{label}.h5"
            _run(checkout.resolve(), experiment, config_file, output)
            files.append(output)
        differences = compare(*files, arguments.rtol)
    for line in differences:
        print(line)
    print(f"{len(differences)} difference(s) between {arguments.old} and {arguments.new}")
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
