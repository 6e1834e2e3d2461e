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
    "FLAG_INCOMPLETE",
    "DCRecord",
    "Experiment",
    "ExperimentMetadata",
    "InstrumentFile",
    "SkippedFile",
    "SkippedSweep",
    "Spectrum",
    "screen_sweeps",
    "sweep_defect",
]

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

    def shifted(self, offset_s: float) -> Spectrum:
        """Return a copy with every time moved by ``offset_s`` seconds.

        The data were validated when this spectrum was made: the copy shares
        its read-only arrays and skips validation (a 30,000-sweep merge).
        """
        copy = object.__new__(Spectrum)
        for name in self.__dataclass_fields__:
            object.__setattr__(copy, name, getattr(self, name))
        object.__setattr__(copy, "time_s", self.time_s + offset_s)
        object.__setattr__(copy, "point_time_s", readonly(self.point_time_s + offset_s))
        return copy


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
    """

    time_s: np.ndarray
    potential_V: np.ndarray
    current_mA: np.ndarray
    charge_mAh: np.ndarray

    def __post_init__(self) -> None:
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
        """Return a copy with time moved by ``offset_s`` seconds."""
        return DCRecord(self.time_s + offset_s, self.potential_V, self.current_mA, self.charge_mAh)


_DC_FIELDS = ("time_s", "potential_V", "current_mA", "charge_mAh")


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
