"""Record the KK check's outputs on a fixed set of simulated spectra, or compare two records.

A refactoring or speed-up of :mod:`geis_pipeline.kk` must give the same
results as the code before it, within the solver's tolerance. This script runs
``check_kk_batch`` (and ``check_kk`` one spectrum at a time on a subset) on
simulated experiments that exercise every branch: several grids (points per
decade, top frequency, incomplete sweeps), noise levels, strong drift
(truncation, the τ extension), many outliers, and the options truncate=False,
include_capacitance and max_freq_hz. Run it once with the old code and once
with the new (each with its own PYTHONPATH), then compare:

    PYTHONPATH=/tmp/old python benchmarks/kk_outputs.py record /tmp/old.npz
    PYTHONPATH=$PWD python benchmarks/kk_outputs.py record /tmp/new.npz
    python benchmarks/kk_outputs.py compare /tmp/old.npz /tmp/new.npz

Records are plain arrays (npz), not expected outputs kept in the repository.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from geis_pipeline.kk import check_kk, check_kk_batch
from geis_pipeline.simulate import SimulationSettings, simulate_experiment

# (name, simulation changes, check options)
CASES: list[tuple[str, dict[str, float], dict[str, object]]] = [
    ("default", {"seed": 1}, {}),
    ("default-seed2", {"seed": 2}, {}),
    ("drift", {"seed": 3, "nonstationary_drift": 0.3, "nonstationary_fraction": 0.3}, {}),
    (
        "drift-notruncate",
        {"seed": 4, "nonstationary_drift": 0.3, "nonstationary_fraction": 0.3},
        {"truncate": False},
    ),
    ("outliers", {"seed": 5, "outlier_fraction": 0.4}, {"max_outliers": 3}),
    ("noisy", {"seed": 6, "noise_rel": 0.02}, {}),
    ("quiet", {"seed": 7, "noise_rel": 0.0005}, {}),
    ("grid7", {"seed": 8, "points_per_decade": 7, "f_max_Hz": 1e6}, {}),
    ("grid13", {"seed": 9, "points_per_decade": 13, "nonstationary_drift": 0.2}, {}),
    ("capacitance", {"seed": 10}, {"include_capacitance": True, "max_elements": 30}),
    ("cropped", {"seed": 11, "nonstationary_drift": 0.3}, {"max_freq_hz": 1e6}),
]
SINGLE_EVERY = 7  # check_kk one by one on every 7th spectrum of a case
FIELDS = ("ok", "mu", "n_elements", "truncated_below_hz", "rms", "tail_p_value")
POINT_FIELDS = ("mask", "outlier_flags", "residuals_real", "residuals_imag", "z_fit")


def spectra(changes: dict[str, float]) -> list[tuple[np.ndarray, np.ndarray]]:
    simulated = simulate_experiment(SimulationSettings(n_sweeps=60, n_relaxation=0, **changes))
    return list(zip(simulated.freq, simulated.z, strict=True))


def flatten(results, prefix: str) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for name in FIELDS:
        arrays[f"{prefix}/{name}"] = np.array([getattr(result, name) for result in results])
    arrays[f"{prefix}/reason"] = np.array([result.reason for result in results])
    for name in POINT_FIELDS:
        values = []
        for result in results:
            if name == "outlier_flags":
                flags = np.zeros(result.mask.size, dtype=bool)
                flags[result.outliers] = True
                values.append(flags)
            else:
                values.append(getattr(result, name))
        arrays[f"{prefix}/{name}"] = np.concatenate(values)
    return arrays


def record(path: str) -> None:
    arrays: dict[str, np.ndarray] = {}
    for name, changes, options in CASES:
        pairs = spectra(changes)
        arrays.update(flatten(check_kk_batch(pairs, **options), f"{name}/batch"))
        single = [check_kk(freq, z, **options) for freq, z in pairs[::SINGLE_EVERY]]
        arrays.update(flatten(single, f"{name}/single"))
        print(f"{name}: {len(pairs)} spectra", file=sys.stderr)
    np.savez_compressed(path, **arrays)


def compare(old_path: str, new_path: str, rtol: float) -> int:
    old, new = np.load(old_path), np.load(new_path)
    failures = 0
    if set(old.files) != set(new.files):
        print(f"different keys: {sorted(set(old.files) ^ set(new.files))}")
        return 1
    for key in sorted(old.files):
        a, b = old[key], new[key]
        if a.shape != b.shape:
            print(f"{key}: shapes {a.shape} vs {b.shape}")
            failures += 1
        elif a.dtype.kind in "fc":
            scale = np.maximum(np.abs(a), 1.0 if key.endswith("z_fit") else 1e-3)
            both_nan = np.isnan(a) & np.isnan(b)
            worst = np.where(both_nan, 0.0, np.abs(a - b) / scale)
            worst = np.nan_to_num(worst, nan=np.inf)
            if worst.size and worst.max() > rtol:
                print(f"{key}: max scaled difference {worst.max():.2e} at {np.argmax(worst)}")
                failures += 1
        elif not np.array_equal(a, b):
            print(f"{key}: {np.count_nonzero(a != b)} of {a.size} differ")
            failures += 1
    print(f"{len(old.files)} arrays compared, {failures} differ (rtol {rtol:g})")
    return int(failures > 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    recording = commands.add_parser("record")
    recording.add_argument("path")
    comparing = commands.add_parser("compare")
    comparing.add_argument("old")
    comparing.add_argument("new")
    comparing.add_argument("--rtol", type=float, default=1e-7)
    arguments = parser.parse_args()
    if arguments.command == "record":
        record(arguments.path)
        return 0
    return compare(arguments.old, arguments.new, arguments.rtol)


if __name__ == "__main__":
    raise SystemExit(main())
