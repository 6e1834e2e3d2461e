"""Splitting a long loop file into sweeps (DOMAIN.md's rule, not `cycle number`).

Keep the rows with freq > 0; a new sweep starts where

* rows stop being consecutive in the file (a rest or current-hold row, freq = 0,
  lies between them),
* the technique step (`Ns`) changes, or
* the frequency steps against the sweep direction: within a run of consecutive
  rows of one step, the direction is that of the majority of frequency steps
  (high-to-low for nearly every instrument), and a step the other way, or a
  repeated frequency, begins a new sweep.

`cycle number` / `z cycle` columns are ignored: BT-Lab writes 0 throughout and
some files count loops differently.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["incomplete_sweeps", "split_sweeps"]


def split_sweeps(
    freq: np.ndarray,
    row_number: np.ndarray | None = None,
    step: np.ndarray | None = None,
) -> list[slice]:
    """Find the sweeps in a sequence of impedance rows.

    Parameters
    ----------
    freq
        Frequencies of the impedance rows only (all > 0), Hz, in file order.
    row_number
        Position of each of those rows among all rows of the file; a gap means
        non-impedance rows were removed there. None: rows are consecutive.
    step
        Technique step (`Ns`) of each row, or None.

    Returns
    -------
    list of slice
        One slice into ``freq`` per sweep, in order, covering every row.
    """
    freq = np.asarray(freq, dtype=np.float64)
    n_rows = freq.size
    if n_rows == 0:
        return []
    starts = np.zeros(n_rows, dtype=bool)
    starts[0] = True
    if row_number is not None:
        starts[1:] |= np.diff(np.asarray(row_number)) != 1
    if step is not None:
        starts[1:] |= np.diff(np.asarray(step)) != 0
    freq_step = np.sign(np.diff(freq))
    run_starts = np.flatnonzero(starts)
    run_ends = np.append(run_starts[1:], n_rows)
    for run_start, run_end in zip(run_starts, run_ends, strict=True):
        run_steps = freq_step[run_start : run_end - 1]
        if run_steps.size == 0:
            continue
        direction = (
            -1.0 if np.count_nonzero(run_steps < 0) >= np.count_nonzero(run_steps > 0) else 1.0
        )
        against = np.flatnonzero(run_steps != direction)
        starts[run_start + 1 + against] = True
    boundaries = np.append(np.flatnonzero(starts), n_rows)
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(boundaries)]


def incomplete_sweeps(lengths: np.ndarray | list[int]) -> np.ndarray:
    """Mark sweeps with fewer points than the longest sweep of their file.

    Parameters
    ----------
    lengths
        Number of points of each sweep of one file.

    Returns
    -------
    numpy.ndarray of bool
        True for sweeps that stopped early.
    """
    lengths = np.asarray(lengths)
    if lengths.size == 0:
        return np.zeros(0, dtype=bool)
    return lengths < lengths.max()
