"""Peaks of a DRT, their assignment to processes and their tracking through time.

A peak is a local maximum of γ(ln τ) standing out by at least a fraction of
the largest γ (its prominence). Its resistance is the area of γ over ln τ
between the valleys (minima) on either side, or the grid ends; its position
is the τ of the maximum (refined by a parabola through the three samples
around it); its width the full width at half maximum, in decades.

Processes are named τ windows (``{"gb": (1e-7, 1e-5), "int": (1e-5, 1e-1)}``):
a peak belongs to the window holding its τ, or to none. Tracking follows every
process through the time steps and reports, rather than guesses, when its
window holds no peak, two or more peaks (a split), or when a peak outside
every window appears.

A tracked peak is *resolved* when its R is the refined ZARC's (γ's own
area misses the tails that spill into its neighbours: ~5 % low for a lone
arc) and its apex and those of its significant neighbours lie inside the
measured frequencies. An arc whose apex lies beyond the highest (or
lowest) frequency is seen only by one flank: how its resistance is shared
with the series resistance and with the process next to it is not in the
data. Nor is a peak sharing its window with another refined peak,
however small (a grain-boundary arc slower than the window's edge beside
the interface took the interface's place). On a Li | LLZO cell measured to 7 MHz, the bulk
arc peaks at ~26 MHz, and the DRT's grain-boundary R beside it is off by
9 % (median) to 80 %. The grain-boundary arc itself lies inside the range.
Such a value is reported and flagged unresolved; the circuit fit, whose
model names the bulk arc, is the number to use.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from geis_pipeline.errors import DRTError

__all__ = [
    "DEFAULT_WINDOWS",
    "EVENT_KINDS",
    "DRTPeak",
    "PeakEvent",
    "PeakTrack",
    "ProcessTrack",
    "assign_process",
    "detect_peaks",
    "peak_resolved",
    "track_peaks",
    "validate_windows",
    "window_events",
]

#: Typical Li | LLZO windows (DOMAIN.md), s: grain boundary and interface.
DEFAULT_WINDOWS: Mapping[str, tuple[float, float]] = {"gb": (1e-7, 1e-5), "int": (1e-5, 1e-1)}

#: What :func:`track_peaks` reports (see :class:`PeakEvent`).
EVENT_KINDS = ("appear", "vanish", "split", "merge", "unassigned", "failed")


@dataclass(frozen=True)
class DRTPeak:
    """One peak of a DRT.

    Attributes
    ----------
    tau
        Position (the maximum of γ), s.
    R
        Resistance, ohm: the area of γ over ln τ between the valleys around
        the peak, or, when the DRT was refined (``alpha`` is a number), the R
        of the ZARC fitted to the spectrum for this peak (tails included).
    width
        Full width at half maximum, decades of τ.
    height
        γ at the maximum, ohm.
    process
        Name of the τ window holding ``tau``, None if no window does.
    alpha
        Exponent of the ZARC the peak was refined to (NaN: not refined).
    R_gamma
        Area of γ between the valleys, ohm, when ``R`` is the refined value
        (NaN: not refined, ``R`` is that area).
    R_stderr
        Standard error of the refined ``R``, ohm (NaN: not refined).
    """

    tau: float
    R: float
    width: float
    height: float
    process: str | None = None
    alpha: float = math.nan
    R_gamma: float = math.nan
    R_stderr: float = math.nan


def validate_windows(windows: Mapping[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Check process windows: names to (τ_low, τ_high) in s, 0 < low < high, no overlap.

    Returns
    -------
    dict
        The windows as plain floats, sorted by τ_low.

    Raises
    ------
    DRTError
        (key ``windows``) on a malformed, empty or overlapping window.
    """
    if not isinstance(windows, Mapping):
        raise DRTError(
            f"must map process names to (tau_low, tau_high), got {windows!r}", key="windows"
        )
    checked: dict[str, tuple[float, float]] = {}
    for name, bounds in windows.items():
        try:
            low, high = (float(value) for value in bounds)
        except (TypeError, ValueError):
            raise DRTError(
                f"{name!r} must be (tau_low, tau_high) in s, got {bounds!r}", key="windows"
            ) from None
        if not (isinstance(name, str) and name and 0 < low < high < math.inf):
            raise DRTError(f"{name!r} needs 0 < tau_low < tau_high, got {bounds!r}", key="windows")
        checked[name] = (low, high)
    ordered = sorted(checked.items(), key=lambda item: item[1][0])
    for (name, (_, high)), (next_name, (next_low, _)) in itertools.pairwise(ordered):
        if next_low < high:
            raise DRTError(f"windows {name!r} and {next_name!r} overlap", key="windows")
    return dict(ordered)


def assign_process(tau: float, windows: Mapping[str, tuple[float, float]]) -> str | None:
    """Name of the window holding ``tau`` (low <= τ < high), None if none does."""
    for name, (low, high) in windows.items():
        if low <= tau < high:
            return name
    return None


def detect_peaks(
    log_tau: np.ndarray,
    gamma: np.ndarray,
    windows: Mapping[str, tuple[float, float]],
    min_prominence: float = 0.02,
) -> tuple[DRTPeak, ...]:
    """Peaks of γ sampled finely on a uniform ln τ grid.

    Parameters
    ----------
    log_tau
        ln τ (τ in s), uniform and ascending, fine enough to integrate γ
        with the trapezoid rule.
    gamma
        γ at ``log_tau``, ohm.
    windows
        Process windows (validated, see :func:`validate_windows`).
    min_prominence
        A maximum counts if it stands out of its surroundings by this
        fraction of max γ.

    Returns
    -------
    tuple of DRTPeak
        In ascending τ.
    """
    from scipy.signal import find_peaks, peak_widths  # on first use: a quick package import

    top = float(np.max(gamma)) if gamma.size else 0.0
    if not top > 0:
        return ()
    # Pad with zeros so a maximum at a grid end still counts as a peak.
    padded = np.concatenate(([0.0], gamma, [0.0]))
    indices, _ = find_peaks(padded, prominence=min_prominence * top)
    indices = indices - 1
    if indices.size == 0:
        return ()
    step = float(log_tau[1] - log_tau[0])
    widths = peak_widths(padded, indices + 1, rel_height=0.5)[0] * step / math.log(10.0)
    bounds = [0]
    for left, right in itertools.pairwise(indices):
        bounds.append(left + int(np.argmin(gamma[left : right + 1])))
    bounds.append(gamma.size - 1)
    peaks = []
    for number, index in enumerate(indices):
        start, stop = bounds[number], bounds[number + 1]
        area = float(np.trapezoid(gamma[start : stop + 1], dx=step))
        position = float(log_tau[index])
        if 0 < index < gamma.size - 1:
            # Vertex of the parabola through the three samples around the maximum.
            below, centre, above = gamma[index - 1 : index + 2]
            curvature = below - 2.0 * centre + above
            if curvature < 0:
                position += 0.5 * step * (below - above) / curvature
        tau = math.exp(position)
        peaks.append(
            DRTPeak(
                tau=tau,
                R=area,
                width=float(widths[number]),
                height=float(gamma[index]),
                process=assign_process(tau, windows),
            )
        )
    return tuple(peaks)


class _HasPeaks(Protocol):
    ok: bool
    peaks: tuple[DRTPeak, ...]
    # and, to tell resolved peaks: tau_measured_s, (1/ω_max, 1/ω_min) in s


def peak_resolved(
    peaks: Sequence[DRTPeak],
    index: int,
    tau_measured_s: tuple[float, float],
    split_fraction: float = 0.2,
) -> bool:
    """Whether ``peaks[index]`` and its neighbours peak inside the measured range.

    Parameters
    ----------
    peaks
        One spectrum's peaks, ascending τ.
    index
        The peak asked about.
    tau_measured_s
        (1/ω_max, 1/ω_min) of the measured points, s: the τ at which an
        arc's apex lies at the highest and the lowest frequency.
    split_fraction
        A neighbour outside the range matters when its R is at least this
        fraction of the peak's (a smaller one holds little to trade).

    Returns
    -------
    bool
        False when the peak's R is γ's area (not refined: ``alpha`` NaN), or
        when its own apex, or that of the next peak on either side (if it
        matters), lies outside the range: their shares are not in the data
        (see the module docstring). Peaks further away are shielded by the
        one in between.
    """
    low, high = tau_measured_s
    peak = peaks[index]
    if math.isnan(peak.alpha) or not low <= peak.tau <= high:
        return False
    for other in (index - 1, index + 1):
        if 0 <= other < len(peaks) and not low <= peaks[other].tau <= high:
            if peaks[other].R >= split_fraction * peak.R:
                return False
    return True


@dataclass(frozen=True)
class PeakEvent:
    """Something :func:`track_peaks` could not turn into one value per process.

    Attributes
    ----------
    step
        Index of the time step (of the results given) where it happens.
    kind
        ``appear``: the process window held no peak at the previous usable step
        and holds one or more now; ``vanish``: the reverse; ``split``: one peak
        before, two or more now; ``merge``: two or more before, one now;
        ``unassigned``: more peaks outside every window than at the previous
        usable step; ``failed``: the inversion of this step failed (no peaks).
    process
        The process window concerned (None for ``unassigned`` and ``failed``).
    taus
        Positions of the peaks concerned at this step, s.
    """

    step: int
    kind: str
    process: str | None
    taus: tuple[float, ...] = ()


@dataclass(frozen=True, eq=False)
class ProcessTrack:
    """One process through time; arrays have one value per time step.

    Attributes
    ----------
    tau
        Position of the process's peak, s; NaN where its window holds no peak,
        several major peaks or the inversion failed.
    R
        Resistance of that peak, ohm; NaN where ``tau`` is.
    R_stderr
        Its standard error, ohm (NaN where ``R`` is, or not refined).
    width
        Its full width at half maximum, decades; NaN where ``tau`` is.
    n_peaks
        Major peaks inside the window (see ``split_fraction`` of
        :func:`track_peaks`; 0 where the inversion failed).
    R_window
        Sum of the resistances of all peaks inside the window, ohm (0 if
        none; NaN where the inversion failed): the process resistance even
        when its peak is split.
    resolved
        True where ``R`` is a measurement: the refined ZARC's R, with the
        peak's apex and its significant neighbours' inside the measured
        frequencies (:func:`peak_resolved`), and no other refined peak in
        the window (two processes the refinement told apart: which is this
        one, the window cannot say). False where ``R`` is NaN or γ's area, and
        for results that do not say what range they measured.
    """

    tau: np.ndarray
    R: np.ndarray
    width: np.ndarray
    n_peaks: np.ndarray
    R_window: np.ndarray
    resolved: np.ndarray
    R_stderr: np.ndarray

    def __post_init__(self) -> None:
        for name in ("tau", "R", "width", "n_peaks", "R_window", "resolved", "R_stderr"):
            values = np.array(getattr(self, name), copy=True)
            values.flags.writeable = False
            object.__setattr__(self, name, values)


@dataclass(frozen=True, eq=False)
class PeakTrack:
    """Every process followed through the time steps.

    Attributes
    ----------
    windows
        The process windows used, name -> (τ_low, τ_high) in s.
    processes
        Name -> :class:`ProcessTrack`.
    ok
        Whether the inversion of each step succeeded.
    events
        Splits, appearances, disappearances, unassigned peaks and failures,
        in step order.
    """

    windows: Mapping[str, tuple[float, float]]
    processes: Mapping[str, ProcessTrack]
    ok: np.ndarray
    events: tuple[PeakEvent, ...] = field(default=())

    def __getitem__(self, process: str) -> ProcessTrack:
        return self.processes[process]

    def __len__(self) -> int:
        return int(self.ok.size)


def _window_transition(before: int, now: int) -> str | None:
    if before == 0 and now > 0:
        return "appear"
    if before > 0 and now == 0:
        return "vanish"
    if before == 1 and now > 1:
        return "split"
    if before > 1 and now == 1:
        return "merge"
    return None


def track_peaks(
    results: Sequence[_HasPeaks],
    windows: Mapping[str, tuple[float, float]] | None = None,
    split_fraction: float = 0.2,
    progress: Callable[[int, int], None] | None = None,
) -> PeakTrack:
    """Follow each process's DRT peak through a time series of DRT results.

    Parameters
    ----------
    results
        DRT results in time order (anything with ``ok`` and ``peaks``, e.g.
        :class:`~geis_pipeline.drt.DRTResult`; ``tau_measured_s`` too, for
        :attr:`ProcessTrack.resolved`).
    windows
        Process name -> (τ_low, τ_high), s; peaks are (re)assigned by their
        τ. Defaults to :data:`DEFAULT_WINDOWS`.
    split_fraction
        A window holds several (major) peaks, i.e. the process is split, when
        the second largest has at least this fraction of the largest's area;
        smaller ones are noise ripples beside the process's peak (still
        counted in ``R_window``).
    progress
        Called as ``progress(done, total)`` after each step.

    Returns
    -------
    PeakTrack
        Per-process arrays (one value per step) and the events. A step whose
        window holds several peaks gets NaN position and resistance (and the
        sum in ``R_window``), never one of the peaks picked at random.
    """
    windows = validate_windows(DEFAULT_WINDOWS if windows is None else windows)
    if not 0 < split_fraction <= 1:
        raise DRTError(f"must be in (0, 1], got {split_fraction!r}", key="split_fraction")
    n_steps = len(results)
    names = list(windows)
    tau = np.full((len(names), n_steps), np.nan)
    resistance = np.full((len(names), n_steps), np.nan)
    resistance_stderr = np.full((len(names), n_steps), np.nan)
    width = np.full((len(names), n_steps), np.nan)
    window_R = np.full((len(names), n_steps), np.nan)
    counts = np.zeros((len(names), n_steps), dtype=np.int64)
    resolved = np.zeros((len(names), n_steps), dtype=bool)
    ok = np.zeros(n_steps, dtype=bool)
    events: list[PeakEvent] = []
    previous_counts: list[int] | None = None
    previous_unassigned = 0
    for step, result in enumerate(results):
        ok[step] = bool(result.ok)
        if not ok[step]:
            events.append(PeakEvent(step, "failed", None))
            if progress is not None:
                progress(step + 1, n_steps)
            continue
        measured = getattr(result, "tau_measured_s", None)
        ordered = sorted(result.peaks, key=lambda peak: peak.tau)
        grouped: dict[str | None, list[DRTPeak]] = {}
        for peak in result.peaks:
            grouped.setdefault(assign_process(peak.tau, windows), []).append(peak)
        for row, name in enumerate(names):
            inside = sorted(grouped.get(name, []), key=lambda peak: -peak.R)
            window_R[row, step] = sum(peak.R for peak in inside)
            # Minor peaks beside a dominant one (noise ripples) do not make a split.
            major = [peak for peak in inside if peak.R >= split_fraction * inside[0].R]
            counts[row, step] = len(major)
            if len(major) == 1:
                tau[row, step] = major[0].tau
                resistance[row, step] = major[0].R
                resistance_stderr[row, step] = major[0].R_stderr
                width[row, step] = major[0].width
                # A second refined ZARC in the window is a process the model search kept,
                # however small beside the largest (a grain-boundary arc slower than the
                # window's edge next to the interface's): which is this process, the
                # window cannot say.
                alone = not any(
                    other is not major[0] and not math.isnan(other.alpha) for other in inside
                )
                if measured is not None and alone:
                    index = next(i for i, other in enumerate(ordered) if other is major[0])
                    resolved[row, step] = peak_resolved(ordered, index, measured, split_fraction)
            if previous_counts is not None:
                kind = _window_transition(previous_counts[row], len(major))
                if kind is not None:
                    events.append(PeakEvent(step, kind, name, tuple(p.tau for p in major)))
        outside = grouped.get(None, [])
        if len(outside) > previous_unassigned:
            events.append(PeakEvent(step, "unassigned", None, tuple(p.tau for p in outside)))
        previous_unassigned = len(outside)
        previous_counts = [int(count) for count in counts[:, step]]
        if progress is not None:
            progress(step + 1, n_steps)
    processes = {
        name: ProcessTrack(
            tau=tau[row],
            R=resistance[row],
            width=width[row],
            n_peaks=counts[row],
            R_window=window_R[row],
            resolved=resolved[row],
            R_stderr=resistance_stderr[row],
        )
        for row, name in enumerate(names)
    }
    ok.flags.writeable = False
    return PeakTrack(windows=windows, processes=processes, ok=ok, events=tuple(events))


def window_events(
    n_peaks: Mapping[str, np.ndarray], ok: np.ndarray | None = None
) -> tuple[PeakEvent, ...]:
    """The appear / vanish / split / merge events of whole experiment's peak counts.

    :func:`track_peaks` runs on chunks of sweeps; this finds the same window
    transitions from the stored per-step counts over the whole experiment
    (across chunk boundaries too).

    Parameters
    ----------
    n_peaks
        Process -> major peaks in its window per step (:attr:`ProcessTrack.n_peaks`).
    ok
        Whether each step's inversion succeeded (failed steps are skipped: a
        transition is counted against the previous usable step).

    Returns
    -------
    tuple of PeakEvent
        In step order, then process order; ``taus`` empty (the counts do not hold them).
    """
    names = list(n_peaks)
    if not names:
        return ()
    counts = np.array([np.asarray(n_peaks[name], dtype=np.int64) for name in names])
    usable = np.ones(counts.shape[1], bool) if ok is None else np.asarray(ok, dtype=bool)
    events = []
    previous = None
    for step in np.flatnonzero(usable):
        if previous is not None:
            for row, name in enumerate(names):
                kind = _window_transition(int(counts[row, previous]), int(counts[row, step]))
                if kind is not None:
                    events.append(PeakEvent(int(step), kind, name))
        previous = step
    return tuple(events)
