"""The data model every stage works on: spectra, DC records and experiments.

Frozen dataclasses holding read-only numpy arrays; no I/O here (readers live in
:mod:`geis_pipeline.ingest`, the HDF5 store in :mod:`geis_pipeline.store`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from geis_pipeline._arrays import readonly

__all__ = [
    "ELECTRODES",
    "FLAG_INCOMPLETE",
    "DCRecord",
    "Experiment",
    "ExperimentMetadata",
    "InstrumentFile",
    "SkippedFile",
    "SkippedSweep",
    "Spectrum",
    "counter_electrode",
    "screen_sweeps",
    "spectra_from_arrays",
    "sweep_defect",
]

#: The electrodes a spectrum can belong to: the working electrode (``we``, the default
#: everywhere a single answer is shown) and, in a 3-electrode cell, the counter (``ce``).
ELECTRODES = ("we", "ce")

#: Flag set on a sweep that stopped before reaching the last frequency of the
#: file's full sweeps (fewer points than the longest sweep of its file).
FLAG_INCOMPLETE = "incomplete"


@dataclass(frozen=True, eq=False)
class Spectrum:
    """One impedance sweep.

    Attributes
    ----------
    freq
        Frequencies, Hz, float64, all finite and > 0, in measured order.
    z
        True complex impedance Z' + jZ'', ohm, complex128 (whatever sign
        convention the file used: capacitive arcs have ``z.imag < 0``).
    time_s
        Start of the sweep (first point), s since the experiment's start.
    point_time_s
        Time of every point, s since the experiment's start (NaN where the
        file has no time column).
    current_mA
        Mean DC current during the sweep, mA (NaN if the file has none).
    potential_V
        Mean DC working-electrode potential during the sweep, V (NaN if none).
    charge_mAh
        Charge passed since the start of the technique, at the start of the
        sweep, mAh (NaN if the file has none).
    source
        The file the sweep was read from.
    sweep_index
        0-based index of the sweep within ``source``.
    flags
        Quality flags, e.g. :data:`FLAG_INCOMPLETE`.
    defect
        Why the sweep as read cannot be analysed (e.g. a non-finite impedance
        on a named line), or "". A defective sweep keeps its values as read
        (so ``z`` may hold NaN or inf) for :func:`screen_sweeps` to report and
        leave out; the numeric stages never see it.
    z_ce
        The counter electrode's impedance at the same frequencies (a 3-electrode
        file's ``Re(Zce)``/``-Im(Zce)``), ohm, complex128; None when not recorded
        (or not finite throughout).
    potential_ce_V
        Mean DC counter-electrode potential (``<Ece>/V``) during the sweep, V.
    """

    freq: np.ndarray
    z: np.ndarray
    time_s: float
    point_time_s: np.ndarray
    current_mA: float = math.nan
    potential_V: float = math.nan
    charge_mAh: float = math.nan
    source: str = ""
    sweep_index: int = 0
    flags: frozenset[str] = frozenset()
    defect: str = ""
    z_ce: np.ndarray | None = None
    potential_ce_V: float = math.nan

    def __post_init__(self) -> None:
        freq = np.asarray(self.freq, dtype=np.float64)
        z = np.asarray(self.z, dtype=np.complex128)
        point_time = np.asarray(self.point_time_s, dtype=np.float64)
        if freq.ndim != 1 or freq.size == 0:
            raise ValueError("a spectrum needs a non-empty 1-D frequency array")
        if z.shape != freq.shape or point_time.shape != freq.shape:
            raise ValueError("freq, z and point_time_s must have the same shape")
        if not np.all(np.isfinite(freq)) or np.any(freq <= 0):
            raise ValueError("frequencies must be finite and > 0")
        if not self.defect and not np.all(np.isfinite(z)):
            raise ValueError("impedance values must be finite (or the sweep must name its defect)")
        object.__setattr__(self, "freq", readonly(freq))
        object.__setattr__(self, "z", readonly(z))
        object.__setattr__(self, "point_time_s", readonly(point_time))
        object.__setattr__(self, "flags", frozenset(self.flags))
        object.__setattr__(self, "time_s", float(self.time_s))
        if self.z_ce is not None:
            z_ce = np.asarray(self.z_ce, dtype=np.complex128)
            if z_ce.shape != freq.shape:
                raise ValueError("z_ce must have the shape of freq")
            # A counter spectrum that is not finite throughout (or all zero: EC-Lab's
            # columns of a 2-electrode set-up) is no counter spectrum.
            usable = bool(np.all(np.isfinite(z_ce)) and np.any(z_ce != 0))
            object.__setattr__(self, "z_ce", readonly(z_ce) if usable else None)

    @property
    def n_points(self) -> int:
        """Number of frequency points."""
        return int(self.freq.size)

    def __repr__(self) -> str:
        flags = f", flags {sorted(self.flags)}" if self.flags else ""
        return (
            f"Spectrum({self.n_points} points {self.freq.max():.3g}..{self.freq.min():.3g} Hz, "
            f"t = {self.time_s:.6g} s, I = {self.current_mA:.4g} mA, "
            f"sweep {self.sweep_index} of {Path(self.source).name or '?'}{flags})"
        )

    @property
    def incomplete(self) -> bool:
        """True when the sweep stopped early."""
        return FLAG_INCOMPLETE in self.flags

    @property
    def has_counter(self) -> bool:
        """Whether the sweep holds the counter electrode's spectrum."""
        return self.z_ce is not None

    def counter_view(self) -> Spectrum:
        """The counter electrode's sweep as if it were a working electrode.

        Z is ``z_ce``, the potential ``<Ece>``, and the current and charge are
        negated: the counter carries the opposite current (it plates while the
        working electrode strips), so labels and DC-AC gaps come out right for it.
        """
        if self.z_ce is None:
            raise ValueError("the sweep has no counter-electrode spectrum")
        copy = object.__new__(Spectrum)
        for name in self.__dataclass_fields__:
            object.__setattr__(copy, name, getattr(self, name))
        object.__setattr__(copy, "z", self.z_ce)
        object.__setattr__(copy, "z_ce", None)
        object.__setattr__(copy, "potential_V", self.potential_ce_V)
        object.__setattr__(copy, "potential_ce_V", math.nan)
        object.__setattr__(copy, "current_mA", -self.current_mA)
        object.__setattr__(copy, "charge_mAh", -self.charge_mAh)
        return copy

    def shifted(self, offset_s: float) -> Spectrum:
        """Return a copy with every time moved by ``offset_s`` seconds.

        The data were validated when this spectrum was made: the copy shares
        its read-only arrays and skips validation (a 30,000-sweep merge). No shift
        gives the spectrum itself (it is immutable): no copy of its point times.
        """
        if offset_s == 0:
            return self
        copy = object.__new__(Spectrum)
        for name in self.__dataclass_fields__:
            object.__setattr__(copy, name, getattr(self, name))
        object.__setattr__(copy, "time_s", self.time_s + offset_s)
        object.__setattr__(copy, "point_time_s", readonly(self.point_time_s + offset_s))
        return copy


_NO_FLAGS: frozenset[str] = frozenset()
_INCOMPLETE_FLAGS = frozenset({FLAG_INCOMPLETE})


def spectra_from_arrays(
    freq: np.ndarray,
    z: np.ndarray,
    point_time_s: np.ndarray,
    offsets: np.ndarray,
    *,
    time_s: np.ndarray,
    current_mA: np.ndarray,
    potential_V: np.ndarray,
    charge_mAh: np.ndarray,
    source: Sequence[str],
    sweep_index: np.ndarray,
    incomplete: np.ndarray,
    defect: Sequence[str] | None = None,
    z_ce: np.ndarray | None = None,
    potential_ce_V: np.ndarray | None = None,
) -> tuple[Spectrum, ...]:
    """Many spectra at once from their concatenated points: the :class:`Spectrum` checks in one
    vectorised pass, and every spectrum's arrays read-only views of one copy of each column.

    Builds what ``Spectrum(...)`` per sweep would (same values, flags and checks; a 30,000-sweep
    experiment in a fraction of the time). Sweep ``i`` is points ``offsets[i]:offsets[i + 1]``;
    the per-sweep arguments have one entry per sweep (``source``: the file name of each).

    Raises
    ------
    ValueError
        As :class:`Spectrum` would, naming the first sweep at fault.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    n_sweeps = offsets.size - 1
    freq = readonly(np.asarray(freq, dtype=np.float64))
    z = readonly(np.asarray(z, dtype=np.complex128))
    point_time = readonly(np.asarray(point_time_s, dtype=np.float64))
    if n_sweeps < 0 or offsets[0] != 0 or int(offsets[-1]) != freq.size:
        raise ValueError("offsets must run from 0 to the number of points")
    sizes = np.diff(offsets)
    if np.any(sizes <= 0):
        raise ValueError(f"sweep {int(np.argmax(sizes <= 0))}: a spectrum needs a non-empty "
                         "1-D frequency array")  # fmt: skip
    if z.shape != freq.shape or point_time.shape != freq.shape:
        raise ValueError("freq, z and point_time_s must have the same shape")
    if n_sweeps == 0:
        return ()
    starts = offsets[:-1]

    def first_sweep(bad_point: np.ndarray) -> int:
        return int(np.searchsorted(offsets, np.argmax(bad_point), side="right") - 1)

    bad_freq = ~np.isfinite(freq) | (freq <= 0)
    if bad_freq.any():
        raise ValueError(f"sweep {first_sweep(bad_freq)}: frequencies must be finite and > 0")
    defects = [""] * n_sweeps if defect is None else [str(item) for item in defect]
    nonfinite = ~np.isfinite(z)
    if nonfinite.any():
        defective = np.repeat(np.array([bool(item) for item in defects]), sizes)
        if (nonfinite & ~defective).any():
            raise ValueError(
                f"sweep {first_sweep(nonfinite & ~defective)}: impedance values must be finite "
                "(or the sweep must name its defect)"
            )
    counter: np.ndarray | None = None
    usable = np.zeros(n_sweeps, dtype=bool)
    if z_ce is not None:
        counter = readonly(np.asarray(z_ce, dtype=np.complex128))
        if counter.shape != freq.shape:
            raise ValueError("z_ce must have the shape of freq")
        # As Spectrum: a counter spectrum not finite throughout, or all zero, is none.
        with np.errstate(invalid="ignore"):
            finite = np.logical_and.reduceat(np.isfinite(counter), starts)
            nonzero = np.logical_or.reduceat(counter != 0, starts)
        usable = finite & nonzero
    nan = np.full(n_sweeps, np.nan)
    columns = [
        np.asarray(values, dtype=np.float64).tolist()
        for values in (time_s, current_mA, potential_V, charge_mAh,
                       nan if potential_ce_V is None else potential_ce_V)
    ]  # fmt: skip
    indices = np.asarray(sweep_index).tolist()
    short = np.asarray(incomplete, dtype=bool).tolist()
    bounds = offsets.tolist()
    usable_list = usable.tolist()
    spectra = []
    new = object.__new__
    for index in range(n_sweeps):
        window = slice(bounds[index], bounds[index + 1])
        spectrum = new(Spectrum)
        # A frozen dataclass without slots: its fields live in __dict__ (no __setattr__ per field).
        spectrum.__dict__.update(
            freq=freq[window],
            z=z[window],
            time_s=columns[0][index],
            point_time_s=point_time[window],
            current_mA=columns[1][index],
            potential_V=columns[2][index],
            charge_mAh=columns[3][index],
            source=source[index],
            sweep_index=int(indices[index]),
            flags=_INCOMPLETE_FLAGS if short[index] else _NO_FLAGS,
            defect=defects[index],
            z_ce=counter[window] if usable_list[index] else None,
            potential_ce_V=columns[4][index],
        )
        spectra.append(spectrum)
    return tuple(spectra)


@dataclass(frozen=True, eq=False)
class DCRecord:
    """The DC record: potential, current and charge versus time.

    Rows from current holds, rests (OCV), galvanostatic cycling files and the
    impedance rows themselves (their <Ewe> and <I>) where a file has them.
    All arrays share one length and are sorted by time; NaN marks a quantity
    the source file did not record.

    Attributes
    ----------
    time_s
        s since the experiment's start.
    potential_V
        Working-electrode potential, V.
    current_mA
        DC current, mA (positive = anodic, as the instrument writes it).
    charge_mAh
        Passed charge as the file records it, mAh (EC-Lab's ``(Q-Qo)``: real
        files count it from the start of each technique; the bundled
        simulator carries it across linked techniques). Tracking integrates
        the current itself where it needs the total.
    potential_ce_V
        Counter-electrode potential (``<Ece>/V``), V; NaN where not recorded
        (None when constructed: all NaN).
    """

    time_s: np.ndarray
    potential_V: np.ndarray
    current_mA: np.ndarray
    charge_mAh: np.ndarray
    potential_ce_V: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.potential_ce_V is None:
            object.__setattr__(
                self, "potential_ce_V", np.full(np.shape(self.time_s), np.nan, dtype=np.float64)
            )
        arrays = [np.asarray(getattr(self, name), dtype=np.float64) for name in _DC_FIELDS]
        if any(values.ndim != 1 for values in arrays):
            raise ValueError("DC record columns must be 1-D")
        if len({values.size for values in arrays}) != 1:
            raise ValueError("DC record columns must have one length")
        order = np.argsort(arrays[0], kind="stable")
        for name, values in zip(_DC_FIELDS, arrays, strict=True):
            object.__setattr__(self, name, readonly(values[order]))

    def __len__(self) -> int:
        return int(self.time_s.size)

    def __repr__(self) -> str:
        if not len(self):
            return "DCRecord(0 rows)"
        return f"DCRecord({len(self)} rows, {self.time_s[0]:.6g}..{self.time_s[-1]:.6g} s)"

    @classmethod
    def empty(cls) -> DCRecord:
        """A record with no rows."""
        return cls(*(np.empty(0) for _ in _DC_FIELDS))

    @classmethod
    def concatenate(cls, records: Iterable[DCRecord]) -> DCRecord:
        """Merge records into one, sorted by time."""
        records = list(records)
        if not records:
            return cls.empty()
        return cls(
            *(np.concatenate([getattr(record, name) for record in records]) for name in _DC_FIELDS)
        )

    def shifted(self, offset_s: float) -> DCRecord:
        """Return a copy with time moved by ``offset_s`` seconds (no shift: the record itself,
        which is immutable; a DC record is millions of rows)."""
        if offset_s == 0:
            return self
        return DCRecord(
            self.time_s + offset_s,
            self.potential_V,
            self.current_mA,
            self.charge_mAh,
            self.potential_ce_V,
        )

    def counter_view(self) -> DCRecord:
        """The record as the counter electrode sees it (its potential, the opposite current)."""
        return DCRecord(
            self.time_s, self.potential_ce_V, -self.current_mA, -self.charge_mAh, self.potential_V
        )


_DC_FIELDS = ("time_s", "potential_V", "current_mA", "charge_mAh", "potential_ce_V")


@dataclass(frozen=True)
class InstrumentFile:
    """Everything read from one instrument file.

    Attributes
    ----------
    path
        The file.
    format
        Reader that read it: ``eclab-mpt``, ``eclab-mpr``, ``gamry-dta``,
        ``zplot-z`` or ``csv``.
    spectra
        Its sweeps, in file order; times are s since ``start_time`` (or since
        the file's first row when the file states no start time).
    dc_record
        Its DC rows (may be empty).
    start_time
        Absolute start of the acquisition the file's time column counts from,
        if the file states it (naive local time, as instruments write it).
    area_cm2
        Electrode area from the file header, cm2, if stated.
    current_setpoint_mA
        DC current setpoint from the header (galvanostatic techniques), mA.
    technique
        Technique name, e.g. ``GEIS``, ``PEIS``, ``OCV``, ``GCPL``.
    settings
        Raw header settings, key -> text value, for provenance.
    """

    path: str
    format: str
    spectra: tuple[Spectrum, ...]
    dc_record: DCRecord = field(default_factory=DCRecord.empty)
    start_time: datetime | None = None
    area_cm2: float | None = None
    current_setpoint_mA: float | None = None
    technique: str | None = None
    settings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SkippedFile:
    """A file :func:`~geis_pipeline.read_experiment` could not read."""

    path: str
    reason: str


@dataclass(frozen=True)
class SkippedSweep:
    """A sweep left out of the analysis because its data cannot be right.

    Attributes
    ----------
    source
        The file it was read from.
    sweep_index
        0-based index of the sweep within ``source`` (as :attr:`Spectrum.sweep_index`).
    time_s
        Its start, s since the experiment's start.
    reason
        What is wrong (see :func:`sweep_defect`).
    """

    source: str
    sweep_index: int
    time_s: float
    reason: str


#: Fewest points a sweep must have: fewer cannot constrain a circuit or a KK check.
MIN_POINTS = 8
#: Frequencies outside this band (Hz) are not an impedance measurement.
PLAUSIBLE_FREQ_HZ = (1e-6, 1e9)
#: |Z| outside this band (ohm) is not an impedance measurement.
PLAUSIBLE_MODULUS_OHM = (1e-9, 1e15)


def sweep_defect(spectrum: Spectrum) -> str | None:
    """What makes a sweep unusable, or None.

    Too few points (< :data:`MIN_POINTS`), a repeated frequency, a zero or
    non-finite impedance, a frequency outside :data:`PLAUSIBLE_FREQ_HZ` or
    ``|Z|`` outside :data:`PLAUSIBLE_MODULUS_OHM`. The bands are wide (no real
    cell is outside them) and bound every allocation that grows with a value
    read from a file (the DRT's tau grid spans the frequency range).
    """
    freq, z = spectrum.freq, spectrum.z
    if spectrum.defect:
        return spectrum.defect
    if freq.size < MIN_POINTS:
        return f"{freq.size} point(s), fewer than {MIN_POINTS}"
    low, high = PLAUSIBLE_FREQ_HZ
    outside = np.flatnonzero((freq < low) | (freq > high))
    if outside.size:
        return f"implausible frequency {freq[outside[0]]:.3g} Hz (outside {low:g}..{high:g} Hz)"
    if np.unique(freq).size != freq.size:
        return "repeated frequency within the sweep"
    if not np.all(np.isfinite(z)):
        return "non-finite impedance"
    with np.errstate(over="ignore"):
        modulus = np.abs(z)
    if np.any(modulus == 0):
        return "zero impedance"
    low, high = PLAUSIBLE_MODULUS_OHM
    outside = np.flatnonzero((modulus < low) | (modulus > high))
    if outside.size:
        return f"implausible |Z| {modulus[outside[0]]:.3g} ohm (outside {low:g}..{high:g} ohm)"
    return None


@dataclass(frozen=True)
class ExperimentMetadata:
    """What is known about the experiment as a whole.

    Attributes
    ----------
    area_cm2
        Electrode area, cm2 (from the option given, else the file headers;
        None when neither states it).
    current_setpoint_mA
        DC current setpoint of the first galvanostatic file, mA (None if none).
    techniques
        Technique of each source file, in time order.
    start_time
        Absolute start of the experiment (earliest file start), if known.
    sources
        The files read, in time order.
    setpoints_mA
        DC current setpoint each source file states, mA (NaN where it states
        none), in the order of ``sources``; empty when unknown (results written
        before it was recorded).
    warnings
        What the files leave unknown or state wrongly (no area, EC-Lab's
        placeholder area), each naming the file and what to do.
    """

    area_cm2: float | None
    current_setpoint_mA: float | None
    techniques: tuple[str, ...]
    start_time: datetime | None
    sources: tuple[str, ...]
    setpoints_mA: tuple[float, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def current_density_mA_cm2(self) -> float | None:
        """DC current setpoint per electrode area, mA/cm2."""
        if self.current_setpoint_mA is None or not self.area_cm2:
            return None
        return self.current_setpoint_mA / self.area_cm2


@dataclass(frozen=True)
class Experiment:
    """One time-ordered experiment read from a folder.

    Attributes
    ----------
    spectra
        All sweeps of all files, sorted by start time.
    dc_record
        The merged DC record of all files.
    metadata
        Area, setpoint, techniques, start time, sources.
    skipped
        Files that could not be read (with the reason).
    skipped_sweeps
        Sweeps left out because their data cannot be right (see
        :func:`screen_sweeps`); not in ``spectra``.
    """

    spectra: tuple[Spectrum, ...]
    dc_record: DCRecord
    metadata: ExperimentMetadata
    skipped: tuple[SkippedFile, ...] = ()
    skipped_sweeps: tuple[SkippedSweep, ...] = ()

    def __len__(self) -> int:
        return len(self.spectra)

    def __repr__(self) -> str:
        metadata = self.metadata
        area = f"{metadata.area_cm2:.4g} cm2" if metadata.area_cm2 else "unknown area"
        techniques = ", ".join(sorted(set(metadata.techniques))) or "no technique"
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        return (
            f"Experiment({len(self.spectra)} sweeps from {len(metadata.sources)} file(s) "
            f"({techniques}){skipped}, {area}, DC record {len(self.dc_record)} rows)"
        )

    @property
    def time_s(self) -> np.ndarray:
        """Start time of every sweep, s."""
        return np.array([spectrum.time_s for spectrum in self.spectra], dtype=np.float64)

    @property
    def flagged(self) -> tuple[Spectrum, ...]:
        """Sweeps carrying any quality flag."""
        return tuple(spectrum for spectrum in self.spectra if spectrum.flags)

    @property
    def has_counter(self) -> bool:
        """Whether every sweep holds the counter electrode's spectrum (a 3-electrode cell)."""
        return bool(self.spectra) and all(spectrum.has_counter for spectrum in self.spectra)


def counter_electrode(experiment: Experiment) -> Experiment:
    """The counter electrode of a 3-electrode experiment, as an experiment of its own.

    Every sweep is :meth:`Spectrum.counter_view` (Z = Zce, E = Ece, current and
    charge negated), the DC record :meth:`DCRecord.counter_view` and the current
    setpoints are negated, so that every stage treats the counter like a working
    electrode: its ``strip`` segments are where it is stripped.

    Raises
    ------
    ValueError
        A sweep has no counter spectrum (see :attr:`Experiment.has_counter`).
    """
    metadata = experiment.metadata
    setpoint = metadata.current_setpoint_mA
    return dataclasses.replace(
        experiment,
        spectra=tuple(spectrum.counter_view() for spectrum in experiment.spectra),
        dc_record=experiment.dc_record.counter_view(),
        metadata=dataclasses.replace(
            metadata,
            current_setpoint_mA=None if setpoint is None else -setpoint,
            setpoints_mA=tuple(-value for value in metadata.setpoints_mA),
        ),
    )


def screen_sweeps(experiment: Experiment) -> Experiment:
    """The experiment without its defective sweeps, which go to ``skipped_sweeps``.

    Idempotent: a screened experiment comes back unchanged.
    """
    spectra = experiment.spectra
    if not spectra:
        return experiment
    # One vectorised pass flags the suspects (30,000 sweeps: a fraction of a second); only they
    # are examined one by one for the reason.
    sizes = np.array([spectrum.n_points for spectrum in spectra])
    freq = np.concatenate([spectrum.freq for spectrum in spectra])
    z = np.concatenate([spectrum.z for spectrum in spectra])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    with np.errstate(over="ignore", invalid="ignore"):
        modulus = np.abs(z)
        bad_point = ~(
            (freq >= PLAUSIBLE_FREQ_HZ[0])
            & (freq <= PLAUSIBLE_FREQ_HZ[1])
            & (modulus >= PLAUSIBLE_MODULUS_OHM[0])
            & (modulus <= PLAUSIBLE_MODULUS_OHM[1])
        )
    suspect = (sizes < MIN_POINTS) | np.logical_or.reduceat(bad_point, starts)
    suspect |= np.array([bool(spectrum.defect) for spectrum in spectra])
    # A strictly monotonic sweep repeats no frequency; any other is examined exactly.
    sweep_of_point = np.repeat(np.arange(sizes.size), sizes)
    within = sweep_of_point[1:] == sweep_of_point[:-1]  # steps inside one sweep
    step = np.sign(np.diff(freq))
    turn = (step == 0) & within
    turn[1:] |= within[1:] & within[:-1] & (step[1:] != step[:-1])
    suspect[sweep_of_point[1:][turn]] = True
    if not suspect.any():
        return experiment
    kept: list[Spectrum] = []
    skipped = list(experiment.skipped_sweeps)
    for spectrum, flagged in zip(spectra, suspect, strict=True):
        reason = sweep_defect(spectrum) if flagged else None
        if reason is None:
            kept.append(spectrum)
        else:
            skipped.append(
                SkippedSweep(spectrum.source, spectrum.sweep_index, spectrum.time_s, reason)
            )
    return dataclasses.replace(experiment, spectra=tuple(kept), skipped_sweeps=tuple(skipped))


def sort_spectra(spectra: Sequence[Spectrum]) -> tuple[Spectrum, ...]:
    """Sort sweeps by start time, keeping file order for equal times."""
    return tuple(sorted(spectra, key=lambda spectrum: spectrum.time_s))
