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

from geis_pipeline.ingest._table import RowDefects
from geis_pipeline.spectrum import Spectrum, spectra_from_arrays

__all__ = ["incomplete_sweeps", "spectra_from_rows", "split_sweeps"]


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


def _sweep_means(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Mean of the finite values of every sweep (NaN where none), in one pass."""
    if starts.size == 0:
        return np.empty(0)
    finite = np.isfinite(values)
    with np.errstate(over="ignore", invalid="ignore"):  # sums beyond range give inf
        sums = np.add.reduceat(np.where(finite, values, 0.0), starts)
        counts = np.add.reduceat(finite.astype(np.int64), starts)
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def spectra_from_rows(
    freq: np.ndarray,
    z: np.ndarray,
    *,
    source: str,
    point_time_s: np.ndarray | None = None,
    current_mA: np.ndarray | None = None,
    potential_V: np.ndarray | None = None,
    charge_mAh: np.ndarray | None = None,
    row_number: np.ndarray | None = None,
    step: np.ndarray | None = None,
    last_incomplete: bool = False,
    defects: RowDefects | None = None,
    z_ce: np.ndarray | None = None,
    potential_ce_V: np.ndarray | None = None,
) -> tuple[Spectrum, ...]:
    """Split validated impedance rows into sweeps and build their spectra.

    Every reader ends here, so all formats split and flag sweeps alike.

    Parameters
    ----------
    freq, z
        Impedance rows only (freq > 0 Hz, Z in ohm), in file order. Z may be
        non-finite only in the rows ``defects`` names.
    source
        The file, recorded in each spectrum.
    point_time_s
        Time of each row, s; None: sweeps start at 0 s with NaN point times.
    current_mA, potential_V
        DC current (mA) and potential (V) of each row, averaged per sweep.
    charge_mAh
        Passed charge of each row, mAh; a sweep keeps the value at its start.
    row_number, step
        See :func:`split_sweeps`.
    last_incomplete
        Flag the last sweep incomplete whatever its length (the file says the
        measurement was aborted).
    defects
        Rows with a non-finite impedance: each sweep holding one is built as
        read with :attr:`Spectrum.defect` naming the first such line, so it is
        skipped and reported while the file's other sweeps are analysed.
    z_ce, potential_ce_V
        A 3-electrode file's counter-electrode impedance (ohm, per row) and
        potential (V, averaged per sweep); None: not recorded.

    Returns
    -------
    tuple of Spectrum
    """
    n_rows = freq.size
    nan_rows = np.full(n_rows, np.nan)
    times = nan_rows if point_time_s is None else point_time_s
    current = nan_rows if current_mA is None else current_mA
    potential = nan_rows if potential_V is None else potential_V
    charge = nan_rows if charge_mAh is None else charge_mAh
    sweeps = split_sweeps(freq, row_number, step)
    short = incomplete_sweeps([sweep.stop - sweep.start for sweep in sweeps])
    if last_incomplete and sweeps:
        short[-1] = True
    starts = np.array([sweep.start for sweep in sweeps], dtype=np.intp)
    mean_current = _sweep_means(current, starts)
    mean_potential = _sweep_means(potential, starts)
    defect = [""] * len(sweeps)
    if defects is not None and defects.positions.size:
        sweep_of = np.searchsorted(starts, defects.positions, side="right") - 1
        first = np.flatnonzero(np.r_[True, np.diff(sweep_of) != 0])  # first bad row per sweep
        for index, position in zip(sweep_of[first], defects.positions[first], strict=True):
            defect[index] = defects.describe(int(position))
    mean_potential_ce = _sweep_means(nan_rows if potential_ce_V is None else potential_ce_V, starts)
    # One copy of each column, every sweep a view of it: 30,000 sweeps are not 200,000 small
    # arrays scattered over the heap (which kept the parser's freed memory from the system).
    return spectra_from_arrays(
        freq,
        z,
        times,
        np.append(starts, n_rows),
        time_s=np.zeros(starts.size) if point_time_s is None else times[starts],
        current_mA=mean_current,
        potential_V=mean_potential,
        charge_mAh=charge[starts],
        source=[source] * starts.size,
        sweep_index=np.arange(starts.size),
        incomplete=short,
        defect=defect,
        z_ce=z_ce,
        potential_ce_V=mean_potential_ce,
    )
