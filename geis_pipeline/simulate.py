"""Simulated operando GEIS experiment on Li | LLZO, with known truth, as EC-Lab files.

The example data set of geis-pipeline and the ground truth of its tests: a Li
working electrode on LLZO against a 400 MPa-pressed Li counter/reference (so
every change of the spectrum belongs to the working electrode) is stripped at
a constant anodic current while GEIS sweeps run back to back, then left at
open circuit while PEIS spectra follow the relaxation.

Time line (t in s since the acquisition start, which is also the current onset)
-----------------------------------------------------------------------------
1. Current hold, ``0 <= t < hold_s``: DC rows every ``hold_interval_s``
   (freq = 0 rows of the GEIS file, as EC-Lab writes them).
2. Stripping: ``n_stripping`` GEIS sweeps back to back, ``f_max_Hz`` ->
   ``f_min_Hz``, ``points_per_decade`` log-spaced points. A point at frequency
   f lasts ``periods_per_point / f + overhead_per_point_s``. The last sweep is
   cut short after a random 60-80 % of its points; the current stops when its
   last point ends (``current_stop_s``).
3. Relaxation at open circuit: a PEIS spectrum every ``relaxation_interval_s``
   starting at ``current_stop_s``, OCV rest rows every ``rest_interval_s``
   between them.

Contact-loss model
------------------
The load-bearing contact area fraction φ follows Sand-type depletion of
lithium at the interface under stripping at current density i:

    t0 = π D c0² F² / (4 i²)                                (Sand's time)
    φ(t) = φ_min + (1 - φ_min) · max(0, 1 - sqrt(t / t0))    (t < t_stop)

The double-layer capacitance scales with the contact area and charge transfer
goes through the remaining contact:

    C_int = C_int0 · φ,    R_int = R_int0 / φ

so the contact loss from capacitance (1 - C/C0) and from resistance
(1 - R0/R) both equal 1 - φ. Bulk and grain-boundary arcs are constant. After
the current stops the contact creeps back:

    φ(t) = φ_end + (φ_rec - φ_end) (1 - exp(-(t - t_stop) / tau_relax_s)),
    φ_rec = φ_end + recovered_fraction · (1 - φ_end).

Circuit: L + ZARC_b + ZARC_gb + ZARC_int (:mod:`geis_pipeline.elements`).
Absolute resistances are area-specific / area; Q comes from the absolute
capacitance C_asr · area via :func:`~geis_pipeline.elements.cpe_q_from_capacitance`.
The parameters of a sweep are those at its start (a stationary spectrum).
DC potential while stripping: E = E_ocv + i (R_b + R_gb + R_int + R_DC-AC) (area
specific, i in A/cm2; an alloy electrode sits at its OCV); at open circuit
E = ``ocv_V``; both with Gaussian noise
of ``potential_noise_V``. Passed charge (Q-Qo)/mA.h = I t / 3600 since the
onset, constant at its end value during relaxation (EC-Lab carries it across
linked techniques).

Imperfections (reproducible from ``seed``)
-----------------------------------------
* noise: Re and Im each get ``noise_rel`` · |Z| · N(0, 1);
* a ``nonstationary_fraction`` of stripping sweeps get a growing drift in the
  low-frequency tail: for f < ``nonstationary_below_Hz``,
  Z += drift · R_int · (t_point - t_sweep_start) / sweep_duration;
* an ``outlier_fraction`` of all sweeps get one random point multiplied by
  1 + e·exp(jθ), e uniform in [``outlier_error_min``, ``outlier_error_max``];
* the last stripping sweep is incomplete (see above).

:func:`simulate_experiment` computes everything (no files);
:func:`write_experiment` also writes the EC-Lab linked-technique text files
(``{name}_01_GEIS_C01.mpt``, ``{name}_02_PEIS_C01.mpt``,
``{name}_03_OCV_C01.mpt``) plus ``truth.npz`` and ``truth.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from geis_pipeline.elements import (
    apex_frequency,
    cpe_q_from_capacitance,
    inductor,
    time_constant,
    zarc,
)
from geis_pipeline.errors import SimulationError
from geis_pipeline.physics import FARADAY_C_MOL, sand_diffusivity_from_capacity

__all__ = [
    "ACQUISITION_START",
    "DCOnlyTruth",
    "DCRows",
    "SimulatedExperiment",
    "SimulationSettings",
    "SimulationTruth",
    "contact_fraction",
    "frequency_grid",
    "sand_time_s",
    "simulate_experiment",
    "write_dc_experiment",
    "write_experiment",
]

#: Acquisition start written in every file: EC-Lab linked techniques share it.
ACQUISITION_START = datetime(2026, 11, 20, 10, 0, 0)

ProgressCallback = Callable[[int, int], None]


def sand_time_s(current_density_mA_cm2: float, D_eff_cm2_s: float, c0_mol_cm3: float) -> float:
    """Sand's depletion time t0 = π D c0² F² / (4 i²).

    Parameters
    ----------
    current_density_mA_cm2
        Stripping current density i, mA/cm2.
    D_eff_cm2_s
        Effective diffusion coefficient of Li in the electrode, cm2/s.
    c0_mol_cm3
        Li concentration in the electrode, mol/cm3 (Li metal: 0.0768).

    Returns
    -------
    float
        t0, s.
    """
    current_A_cm2 = current_density_mA_cm2 * 1e-3
    return math.pi * D_eff_cm2_s * (c0_mol_cm3 * FARADAY_C_MOL) ** 2 / (4.0 * current_A_cm2**2)


def frequency_grid(f_max_Hz: float, f_min_Hz: float, points_per_decade: int) -> np.ndarray:
    """Log-spaced sweep from ``f_max_Hz`` down to ``f_min_Hz``, both included.

    Parameters
    ----------
    f_max_Hz, f_min_Hz
        First and last frequency, Hz.
    points_per_decade
        Nominal density; the count is rounded so both ends are hit exactly.

    Returns
    -------
    numpy.ndarray
        Frequencies, Hz, high to low.
    """
    n_points = round(points_per_decade * math.log10(f_max_Hz / f_min_Hz)) + 1
    return np.geomspace(f_max_Hz, f_min_Hz, n_points)


@dataclass(frozen=True)
class SimulationSettings:
    """Everything the simulated experiment depends on (defaults: Li | LLZO at 0.3 mA/cm2).

    Area-specific values are per cm2 of the working electrode; ``_ohm_cm2``
    resistances, ``_F_cm2`` capacitances. Invalid values raise
    :class:`~geis_pipeline.errors.SimulationError` whose ``key`` is the field.

    Attributes
    ----------
    area_cm2
        Electrode area, cm2.
    current_density_mA_cm2
        Stripping current density, mA/cm2 (> 0, anodic).
    c0_mol_cm3
        Li concentration of the electrode, mol/cm3 (76.8 mmol/cm3 for Li).
    D_eff_cm2_s
        Effective Li diffusivity for Sand's time, cm2/s.
    R_b_ohm_cm2, C_b_F_cm2, alpha_b
        Bulk arc: resistance, Brug capacitance, CPE exponent.
    R_gb_ohm_cm2, C_gb_F_cm2, alpha_gb
        Grain-boundary arc.
    R_int0_ohm_cm2, C_int0_F_cm2, alpha_int
        Interface arc at full contact (φ = 1).
    L_H
        Series (cable) inductance, H (absolute).
    R_dcac_ohm_cm2
        DC-AC gap: DC overpotential the spectrum does not explain, ohm cm2.
    contact_fraction_min
        φ_min, the contact left after depletion (R_int -> R_int0 / φ_min).
    f_max_Hz, f_min_Hz, points_per_decade
        Sweep, high to low.
    periods_per_point
        Na: sine periods measured per frequency.
    overhead_per_point_s
        Instrument time per point on top of the periods, s.
    ac_amplitude_fraction
        GEIS AC amplitude Ia as a fraction of the DC current (header only).
    peis_amplitude_mV
        PEIS amplitude Va, mV (header only).
    noise_rel
        Relative noise σ: Re and Im each get σ |Z| N(0, 1).
    potential_noise_V
        Gaussian noise on every DC potential, V.
    hold_s, hold_interval_s
        Current hold before the first sweep and its row interval, s.
    n_sweeps
        Stripping sweeps; None: enough to cover ``stripping_span_t0`` · t0.
    sweep_interval_s
        Start-to-start interval of the stripping sweeps, s (at least one sweep's
        duration; the current flows on between them, without DC rows); None:
        back to back. Lets a slow protocol (50 uA/cm2: t0 of hours) have few sweeps.
    stripping_span_t0
        Stripping duration in units of Sand's time when ``n_sweeps`` is None.
    relaxation_interval_s, n_relaxation
        PEIS spectra at open circuit: interval between starts, s, and count
        (0: no relaxation).
    rest_interval_s
        Row interval of the OCV rests between PEIS spectra, s.
    tau_relax_s
        Time constant of the contact recovery at open circuit, s.
    recovered_fraction
        Share of the lost contact that recovers (φ_rec).
    ocv_V
        Open-circuit potential, V vs. Li.
    nonstationary_fraction, nonstationary_drift, nonstationary_below_Hz
        Share of stripping sweeps with a low-frequency drift, its size in
        units of R_int at the end of the sweep, and the frequency below which
        it applies, Hz.
    outlier_fraction, outlier_error_min, outlier_error_max
        Share of sweeps with one bad point and the range of its relative error.
    incomplete_fraction_min, incomplete_fraction_max
        Share of points the last stripping sweep keeps (drawn uniformly).
    seed
        Seed of the numpy random generator.
    """

    area_cm2: float = 0.785
    current_density_mA_cm2: float = 0.3
    c0_mol_cm3: float = 0.0768
    D_eff_cm2_s: float = 0.8e-11
    R_b_ohm_cm2: float = 200.0
    C_b_F_cm2: float = 3e-11
    alpha_b: float = 0.95
    R_gb_ohm_cm2: float = 40.0
    C_gb_F_cm2: float = 5e-9
    alpha_gb: float = 0.9
    R_int0_ohm_cm2: float = 100.0
    C_int0_F_cm2: float = 2e-6
    alpha_int: float = 0.85
    L_H: float = 2e-7
    R_dcac_ohm_cm2: float = 20.0
    contact_fraction_min: float = 0.005
    f_max_Hz: float = 7e6
    f_min_Hz: float = 1.0
    points_per_decade: int = 10
    periods_per_point: int = 2
    overhead_per_point_s: float = 0.05
    ac_amplitude_fraction: float = 0.1
    peis_amplitude_mV: float = 10.0
    noise_rel: float = 0.005
    potential_noise_V: float = 1e-4
    hold_s: float = 30.0
    hold_interval_s: float = 1.0
    n_sweeps: int | None = None
    sweep_interval_s: float | None = None
    stripping_span_t0: float = 1.1
    relaxation_interval_s: float = 300.0
    n_relaxation: int = 12
    rest_interval_s: float = 10.0
    tau_relax_s: float = 1200.0
    recovered_fraction: float = 0.6
    ocv_V: float = 0.0
    nonstationary_fraction: float = 0.05
    nonstationary_drift: float = 0.05
    nonstationary_below_Hz: float = 10.0
    outlier_fraction: float = 0.03
    outlier_error_min: float = 0.05
    outlier_error_max: float = 0.15
    incomplete_fraction_min: float = 0.6
    incomplete_fraction_max: float = 0.8
    seed: int = 0

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if spec.name in ("n_sweeps", "sweep_interval_s") and value is None:
                continue
            if spec.name in _INTEGER_FIELDS:
                if isinstance(value, bool) or not isinstance(value, int | np.integer):
                    raise SimulationError(f"must be a whole number, got {value!r}", key=spec.name)
            elif isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise SimulationError(f"must be a number, got {value!r}", key=spec.name)
            elif not math.isfinite(value):
                raise SimulationError(f"must be finite, got {value!r}", key=spec.name)
        for name, (check, requirement) in _RULES.items():
            value = getattr(self, name)
            if value is not None and not check(value):
                raise SimulationError(f"must be {requirement}, got {value!r}", key=name)
        if self.f_max_Hz <= self.f_min_Hz:
            raise SimulationError(
                f"must be above f_min_Hz = {self.f_min_Hz!r}, got {self.f_max_Hz!r}",
                key="f_max_Hz",
            )
        if self.frequencies_Hz.size < 2:
            raise SimulationError(
                "the sweep needs at least 2 points: raise points_per_decade or widen the range",
                key="points_per_decade",
            )
        if self.outlier_error_max < self.outlier_error_min:
            raise SimulationError(
                f"must be >= outlier_error_min = {self.outlier_error_min!r}",
                key="outlier_error_max",
            )
        if self.incomplete_fraction_max < self.incomplete_fraction_min:
            raise SimulationError(
                f"must be >= incomplete_fraction_min = {self.incomplete_fraction_min!r}",
                key="incomplete_fraction_max",
            )
        if self.sweep_interval_s is not None and self.sweep_interval_s < self.sweep_duration_s:
            raise SimulationError(
                f"must be at least one sweep's duration ({self.sweep_duration_s:.1f} s), "
                f"got {self.sweep_interval_s!r}",
                key="sweep_interval_s",
            )
        if self.n_relaxation > 0 and self.relaxation_interval_s <= self.sweep_duration_s:
            raise SimulationError(
                f"must exceed one sweep's duration ({self.sweep_duration_s:.1f} s), "
                f"got {self.relaxation_interval_s!r}",
                key="relaxation_interval_s",
            )

    @property
    def frequencies_Hz(self) -> np.ndarray:
        """The sweep's frequencies, Hz, high to low."""
        return frequency_grid(self.f_max_Hz, self.f_min_Hz, self.points_per_decade)

    @property
    def point_durations_s(self) -> np.ndarray:
        """Duration of each point of a full sweep, s."""
        return self.periods_per_point / self.frequencies_Hz + self.overhead_per_point_s

    @property
    def sweep_duration_s(self) -> float:
        """Duration of one full sweep, s."""
        return float(self.point_durations_s.sum())

    @property
    def sand_time_s(self) -> float:
        """Sand's depletion time t0 for these settings, s."""
        return sand_time_s(self.current_density_mA_cm2, self.D_eff_cm2_s, self.c0_mol_cm3)

    @property
    def current_mA(self) -> float:
        """Absolute stripping current, mA."""
        return self.current_density_mA_cm2 * self.area_cm2

    @property
    def n_stripping(self) -> int:
        """Number of stripping sweeps (``n_sweeps`` or the number covering the span)."""
        if self.n_sweeps is not None:
            return int(self.n_sweeps)
        span_s = self.stripping_span_t0 * self.sand_time_s - self.hold_s
        return max(1, math.ceil(span_s / self.stripping_interval_s))

    @property
    def stripping_interval_s(self) -> float:
        """Start-to-start interval of the stripping sweeps, s."""
        return self.sweep_duration_s if self.sweep_interval_s is None else self.sweep_interval_s


def _positive(value: float) -> bool:
    return value > 0


def _non_negative(value: float) -> bool:
    return value >= 0


def _unit_open_closed(value: float) -> bool:
    return 0 < value <= 1


def _unit_closed(value: float) -> bool:
    return 0 <= value <= 1


_INTEGER_FIELDS = frozenset(
    {"points_per_decade", "periods_per_point", "n_sweeps", "n_relaxation", "seed"}
)
_POSITIVE = "> 0"
_NON_NEGATIVE = ">= 0"
_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "area_cm2": (_positive, _POSITIVE),
    "current_density_mA_cm2": (_positive, "> 0 (stripping is anodic)"),
    "c0_mol_cm3": (_positive, _POSITIVE),
    "D_eff_cm2_s": (_positive, _POSITIVE),
    "R_b_ohm_cm2": (_positive, _POSITIVE),
    "C_b_F_cm2": (_positive, _POSITIVE),
    "alpha_b": (_unit_open_closed, "in (0, 1]"),
    "R_gb_ohm_cm2": (_positive, _POSITIVE),
    "C_gb_F_cm2": (_positive, _POSITIVE),
    "alpha_gb": (_unit_open_closed, "in (0, 1]"),
    "R_int0_ohm_cm2": (_positive, _POSITIVE),
    "C_int0_F_cm2": (_positive, _POSITIVE),
    "alpha_int": (_unit_open_closed, "in (0, 1]"),
    "L_H": (_non_negative, _NON_NEGATIVE),
    "R_dcac_ohm_cm2": (_non_negative, _NON_NEGATIVE),
    "contact_fraction_min": (_unit_open_closed, "in (0, 1]"),
    "f_max_Hz": (_positive, _POSITIVE),
    "f_min_Hz": (_positive, _POSITIVE),
    "points_per_decade": (_positive, _POSITIVE),
    "periods_per_point": (_positive, _POSITIVE),
    "overhead_per_point_s": (_non_negative, _NON_NEGATIVE),
    "ac_amplitude_fraction": (_positive, _POSITIVE),
    "peis_amplitude_mV": (_positive, _POSITIVE),
    "noise_rel": (_non_negative, _NON_NEGATIVE),
    "potential_noise_V": (_non_negative, _NON_NEGATIVE),
    "hold_s": (_non_negative, _NON_NEGATIVE),
    "hold_interval_s": (_positive, _POSITIVE),
    "n_sweeps": (_positive, ">= 1"),
    "sweep_interval_s": (_positive, _POSITIVE),
    "stripping_span_t0": (_positive, _POSITIVE),
    "relaxation_interval_s": (_positive, _POSITIVE),
    "n_relaxation": (_non_negative, _NON_NEGATIVE),
    "rest_interval_s": (_positive, _POSITIVE),
    "tau_relax_s": (_positive, _POSITIVE),
    "recovered_fraction": (_unit_closed, "in [0, 1]"),
    "nonstationary_fraction": (_unit_closed, "in [0, 1]"),
    "nonstationary_drift": (_non_negative, _NON_NEGATIVE),
    "nonstationary_below_Hz": (_positive, _POSITIVE),
    "outlier_fraction": (_unit_closed, "in [0, 1]"),
    "outlier_error_min": (_non_negative, _NON_NEGATIVE),
    "outlier_error_max": (_non_negative, _NON_NEGATIVE),
    "incomplete_fraction_min": (_unit_open_closed, "in (0, 1]"),
    "incomplete_fraction_max": (_unit_open_closed, "in (0, 1]"),
    "seed": (_non_negative, _NON_NEGATIVE),
}


def _readonly(values: np.ndarray | Sequence) -> np.ndarray:
    values = np.array(values, copy=True)
    values.flags.writeable = False
    return values


@dataclass(frozen=True, eq=False)
class SimulationTruth:
    """The true state behind every sweep: 1-D arrays, one value per sweep, in time order.

    Absolute values (``_ohm``, Q in F s^(α-1), ``L_H`` in H) are what the
    circuit in the files uses; ``_ohm_cm2`` and ``_F_cm2`` are area specific.

    Attributes
    ----------
    time_s
        Sweep start (its first point), s since the acquisition start.
    technique
        ``GEIS`` (stripping) or ``PEIS`` (relaxation at open circuit).
    n_points
        Points in the sweep (fewer in the incomplete one).
    contact_fraction
        φ at the sweep start.
    R_b_ohm, R_gb_ohm, R_int_ohm, Q_b, Q_gb, Q_int, alpha_b, alpha_gb, alpha_int, L_H
        Circuit parameters of the sweep.
    R_b_ohm_cm2, R_gb_ohm_cm2, R_int_ohm_cm2, C_b_F_cm2, C_gb_F_cm2, C_int_F_cm2
        Area-specific resistances, ohm cm2, and Brug capacitances, F/cm2.
    tau_int_s, f_apex_int_Hz
        Interface time constant, s, and apex frequency, Hz.
    current_mA, potential_V, charge_mAh
        DC current (mA), noise-free DC potential (V) and passed charge since
        the onset (mAh) at the sweep start.
    nonstationary
        The sweep carries the low-frequency drift.
    outlier_index
        Index of the bad point within the sweep, -1 if none.
    incomplete
        The sweep was cut short.
    """

    time_s: np.ndarray
    technique: np.ndarray
    n_points: np.ndarray
    contact_fraction: np.ndarray
    R_b_ohm: np.ndarray
    R_gb_ohm: np.ndarray
    R_int_ohm: np.ndarray
    Q_b: np.ndarray
    Q_gb: np.ndarray
    Q_int: np.ndarray
    alpha_b: np.ndarray
    alpha_gb: np.ndarray
    alpha_int: np.ndarray
    L_H: np.ndarray
    R_b_ohm_cm2: np.ndarray
    R_gb_ohm_cm2: np.ndarray
    R_int_ohm_cm2: np.ndarray
    C_b_F_cm2: np.ndarray
    C_gb_F_cm2: np.ndarray
    C_int_F_cm2: np.ndarray
    tau_int_s: np.ndarray
    f_apex_int_Hz: np.ndarray
    current_mA: np.ndarray
    potential_V: np.ndarray
    charge_mAh: np.ndarray
    nonstationary: np.ndarray
    outlier_index: np.ndarray
    incomplete: np.ndarray

    def __post_init__(self) -> None:
        lengths = set()
        for spec in dataclasses.fields(self):
            values = _readonly(getattr(self, spec.name))
            object.__setattr__(self, spec.name, values)
            lengths.add(values.shape)
        if len(lengths) != 1 or len(next(iter(lengths))) != 1:
            raise ValueError("truth arrays must be 1-D and of one length")

    def __len__(self) -> int:
        return int(self.time_s.size)

    def as_dict(self) -> dict[str, np.ndarray]:
        """Field name -> array (what ``truth.npz`` holds)."""
        return {spec.name: getattr(self, spec.name) for spec in dataclasses.fields(self)}


@dataclass(frozen=True, eq=False)
class DCRows:
    """DC rows without impedance (current hold, OCV rests), sorted by time.

    Attributes
    ----------
    time_s
        s since the acquisition start.
    potential_V
        Working-electrode potential, V.
    current_mA
        DC current, mA.
    charge_mAh
        Passed charge since the current onset, mAh.
    """

    time_s: np.ndarray
    potential_V: np.ndarray
    current_mA: np.ndarray
    charge_mAh: np.ndarray

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            object.__setattr__(
                self, spec.name, _readonly(np.asarray(getattr(self, spec.name), dtype=np.float64))
            )

    def __len__(self) -> int:
        return int(self.time_s.size)


@dataclass(frozen=True, eq=False)
class SimulatedExperiment:
    """A simulated experiment: every sweep (stripping then relaxation) and its truth.

    Attributes
    ----------
    settings
        What it was simulated from.
    freq
        Frequencies of each sweep, Hz, high to low.
    z
        Measured complex impedance of each sweep, ohm (noise and
        imperfections included; capacitive arcs have ``z.imag < 0``).
    z_model
        Noise-free impedance of each sweep's circuit (no drift, no outlier), ohm.
    time_s
        Start of each sweep, s since the acquisition start.
    point_time_s
        Time of each point, s since the acquisition start.
    point_potential_V
        DC potential recorded with each point, V (noise included).
    technique
        ``GEIS`` or ``PEIS`` per sweep.
    truth
        Per-sweep true parameters.
    hold
        Current-hold rows before the first sweep.
    rest
        OCV rest rows between relaxation spectra.
    t0_s
        Sand's depletion time, s.
    current_stop_s
        When the stripping current stops, s since the acquisition start.
    """

    settings: SimulationSettings
    freq: tuple[np.ndarray, ...]
    z: tuple[np.ndarray, ...]
    z_model: tuple[np.ndarray, ...]
    time_s: np.ndarray
    point_time_s: tuple[np.ndarray, ...]
    point_potential_V: tuple[np.ndarray, ...]
    technique: tuple[str, ...]
    truth: SimulationTruth
    hold: DCRows
    rest: DCRows
    t0_s: float
    current_stop_s: float
    files: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.freq)

    @property
    def n_stripping(self) -> int:
        """Number of stripping (GEIS) sweeps."""
        return self.technique.count("GEIS")

    @property
    def n_relaxation(self) -> int:
        """Number of relaxation (PEIS) sweeps."""
        return self.technique.count("PEIS")

    @property
    def n_points(self) -> int:
        """Impedance points over all sweeps."""
        return int(sum(freq.size for freq in self.freq))


def contact_fraction(
    time_s: np.ndarray | float,
    settings: SimulationSettings,
    current_stop_s: float = math.inf,
) -> np.ndarray:
    """Contact area fraction φ(t) of the model (see the module docstring).

    Parameters
    ----------
    time_s
        Time since the current onset (= acquisition start), s.
    settings
        The simulation settings.
    current_stop_s
        When the current stops, s; later times relax at open circuit.

    Returns
    -------
    numpy.ndarray
        φ, dimensionless, in [``contact_fraction_min``, 1].
    """
    time_s = np.asarray(time_s, dtype=np.float64)
    t0_s = settings.sand_time_s
    phi_min = settings.contact_fraction_min

    def stripping(t: np.ndarray) -> np.ndarray:
        depletion = np.clip(1.0 - np.sqrt(np.clip(t, 0.0, None) / t0_s), 0.0, None)
        return phi_min + (1.0 - phi_min) * depletion

    phi = stripping(np.minimum(time_s, current_stop_s))
    if math.isfinite(current_stop_s):
        phi_end = stripping(np.asarray(current_stop_s))
        phi_recovered = phi_end + settings.recovered_fraction * (1.0 - phi_end)
        elapsed = np.clip(time_s - current_stop_s, 0.0, None)
        relaxed = phi_end + (phi_recovered - phi_end) * -np.expm1(-elapsed / settings.tau_relax_s)
        phi = np.where(time_s > current_stop_s, relaxed, phi)
    return phi


def _circuit_truth(phi: np.ndarray, settings: SimulationSettings) -> dict[str, np.ndarray]:
    """Absolute and area-specific circuit parameters for contact fractions ``phi``."""
    area = settings.area_cm2
    ones = np.ones_like(phi)
    R_int_ohm_cm2 = settings.R_int0_ohm_cm2 / phi
    C_int_F_cm2 = settings.C_int0_F_cm2 * phi
    values: dict[str, np.ndarray] = {
        "contact_fraction": phi,
        "R_b_ohm_cm2": settings.R_b_ohm_cm2 * ones,
        "R_gb_ohm_cm2": settings.R_gb_ohm_cm2 * ones,
        "R_int_ohm_cm2": R_int_ohm_cm2,
        "C_b_F_cm2": settings.C_b_F_cm2 * ones,
        "C_gb_F_cm2": settings.C_gb_F_cm2 * ones,
        "C_int_F_cm2": C_int_F_cm2,
        "alpha_b": settings.alpha_b * ones,
        "alpha_gb": settings.alpha_gb * ones,
        "alpha_int": settings.alpha_int * ones,
        "L_H": settings.L_H * ones,
    }
    for arc in ("b", "gb", "int"):
        R_ohm = values[f"R_{arc}_ohm_cm2"] / area
        values[f"R_{arc}_ohm"] = R_ohm
        values[f"Q_{arc}"] = cpe_q_from_capacitance(
            values[f"C_{arc}_F_cm2"] * area, R_ohm, values[f"alpha_{arc}"]
        )
    values["tau_int_s"] = time_constant(values["R_int_ohm"], values["Q_int"], values["alpha_int"])
    values["f_apex_int_Hz"] = apex_frequency(
        values["R_int_ohm"], values["Q_int"], values["alpha_int"]
    )
    return values


def _circuit_impedance(freq: np.ndarray, params: Mapping[str, np.ndarray]) -> np.ndarray:
    """Z of L + ZARC_b + ZARC_gb + ZARC_int, one row per parameter set, ohm."""
    freq = freq[np.newaxis, :]

    def column(name: str) -> np.ndarray:
        return np.asarray(params[name])[:, np.newaxis]

    impedance = inductor(freq, column("L_H"))
    for arc in ("b", "gb", "int"):
        impedance = impedance + zarc(
            freq, column(f"R_{arc}_ohm"), column(f"Q_{arc}"), column(f"alpha_{arc}")
        )
    return impedance


def simulate_experiment(settings: SimulationSettings | None = None) -> SimulatedExperiment:
    """Simulate the experiment: sweeps, DC rows and truth (no files).

    Parameters
    ----------
    settings
        Physics, timing and imperfections; defaults to ``SimulationSettings()``.

    Returns
    -------
    SimulatedExperiment
        Stripping sweeps then relaxation sweeps, in time order, with truth.
    """
    settings = settings or SimulationSettings()
    rng = np.random.default_rng(settings.seed)
    freq = settings.frequencies_Hz
    n_freq = freq.size
    durations = settings.point_durations_s
    # A point's time stamp is when its measurement starts: the sweep start is its first point.
    offsets = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    sweep_duration = float(durations.sum())
    t0_s = settings.sand_time_s
    current_mA = settings.current_mA
    current_A_cm2 = settings.current_density_mA_cm2 * 1e-3

    n_stripping = settings.n_stripping
    stripping_start = settings.hold_s + np.arange(n_stripping) * settings.stripping_interval_s
    kept_share = rng.uniform(settings.incomplete_fraction_min, settings.incomplete_fraction_max)
    n_kept_last = int(np.clip(round(kept_share * n_freq), 1, n_freq))
    current_stop_s = float(
        stripping_start[-1] + offsets[n_kept_last - 1] + durations[n_kept_last - 1]
    )
    n_relaxation = settings.n_relaxation
    relaxation_start = current_stop_s + np.arange(n_relaxation) * settings.relaxation_interval_s
    start = np.concatenate([stripping_start, relaxation_start])
    n_total = start.size
    is_stripping = np.arange(n_total) < n_stripping

    phi = contact_fraction(start, settings, current_stop_s)
    params = _circuit_truth(phi, settings)
    z_model = _circuit_impedance(freq, params)

    # Imperfections, drawn in a fixed order so that one seed gives one experiment.
    z_measured = z_model.copy()
    nonstationary = np.zeros(n_total, dtype=bool)
    # The cut last sweep never reaches the low-frequency tail: it cannot show the drift.
    n_complete = n_stripping - 1
    n_nonstationary = min(round(settings.nonstationary_fraction * n_stripping), n_complete)
    nonstationary[rng.choice(n_complete, size=n_nonstationary, replace=False)] = True
    low_frequency = freq < settings.nonstationary_below_Hz
    # R_int grows during a sweep: the slow points, measured last, see it as an added resistance.
    drift = (
        settings.nonstationary_drift
        * params["R_int_ohm"][nonstationary, np.newaxis]
        * (offsets / sweep_duration)[np.newaxis, :]
    )
    z_measured[nonstationary] += np.where(low_frequency, drift, 0.0)

    noise_scale = settings.noise_rel * np.abs(z_measured)
    z_measured += noise_scale * (
        rng.standard_normal(z_measured.shape) + 1j * rng.standard_normal(z_measured.shape)
    )

    n_points = np.full(n_total, n_freq)
    n_points[n_stripping - 1] = n_kept_last
    outlier_index = np.full(n_total, -1)
    n_outliers = round(settings.outlier_fraction * n_total)
    for sweep in np.sort(rng.choice(n_total, size=n_outliers, replace=False)):
        point = int(rng.integers(n_points[sweep]))
        error = rng.uniform(settings.outlier_error_min, settings.outlier_error_max)
        z_measured[sweep, point] *= 1.0 + error * np.exp(1j * rng.uniform(0.0, 2.0 * np.pi))
        outlier_index[sweep] = point

    R_total_ohm_cm2 = params["R_b_ohm_cm2"] + params["R_gb_ohm_cm2"] + params["R_int_ohm_cm2"]
    potential = np.where(
        is_stripping,
        settings.ocv_V + current_A_cm2 * (R_total_ohm_cm2 + settings.R_dcac_ohm_cm2),
        settings.ocv_V,
    )
    point_potential = potential[:, np.newaxis] + settings.potential_noise_V * rng.standard_normal(
        (n_total, n_freq)
    )
    charge_at_stop = current_mA * current_stop_s / 3600.0
    charge = np.where(is_stripping, current_mA * start / 3600.0, charge_at_stop)

    # The small tolerance keeps hold_s = 30, interval 1 at 30 rows despite rounding.
    n_hold = math.floor(settings.hold_s / settings.hold_interval_s + 1e-9)
    hold_time = np.arange(n_hold) * settings.hold_interval_s
    hold_params = _circuit_truth(contact_fraction(hold_time, settings), settings)
    hold_potential = settings.ocv_V + current_A_cm2 * (
        hold_params["R_b_ohm_cm2"]
        + hold_params["R_gb_ohm_cm2"]
        + hold_params["R_int_ohm_cm2"]
        + settings.R_dcac_ohm_cm2
    )
    hold = DCRows(
        time_s=hold_time,
        potential_V=hold_potential
        + settings.potential_noise_V * rng.standard_normal(hold_time.size),
        current_mA=np.full(hold_time.size, current_mA),
        charge_mAh=current_mA * hold_time / 3600.0,
    )

    rest_time = np.concatenate(
        [
            np.arange(rest_start, next_start, settings.rest_interval_s)
            for rest_start, next_start in zip(
                relaxation_start[:-1] + sweep_duration, relaxation_start[1:], strict=True
            )
        ]
        or [np.empty(0)]
    )
    rest = DCRows(
        time_s=rest_time,
        potential_V=settings.ocv_V
        + settings.potential_noise_V * rng.standard_normal(rest_time.size),
        current_mA=np.zeros(rest_time.size),
        charge_mAh=np.full(rest_time.size, charge_at_stop),
    )

    technique = tuple("GEIS" if stripping else "PEIS" for stripping in is_stripping)
    truth = SimulationTruth(
        time_s=start,
        technique=np.array(technique),
        n_points=n_points,
        current_mA=np.where(is_stripping, current_mA, 0.0),
        potential_V=potential,
        charge_mAh=charge,
        nonstationary=nonstationary,
        outlier_index=outlier_index,
        incomplete=n_points < n_freq,
        **params,
    )
    return SimulatedExperiment(
        settings=settings,
        freq=tuple(_readonly(freq[:count]) for count in n_points),
        z=tuple(_readonly(row[:count]) for row, count in zip(z_measured, n_points, strict=True)),
        z_model=tuple(_readonly(row[:count]) for row, count in zip(z_model, n_points, strict=True)),
        time_s=_readonly(start),
        point_time_s=tuple(
            _readonly(sweep_start + offsets[:count])
            for sweep_start, count in zip(start, n_points, strict=True)
        ),
        point_potential_V=tuple(
            _readonly(row[:count]) for row, count in zip(point_potential, n_points, strict=True)
        ),
        technique=technique,
        truth=truth,
        hold=hold,
        rest=rest,
        t0_s=t0_s,
        current_stop_s=current_stop_s,
    )


# --------------------------------------------------------------------------- EC-Lab writing

_EXPONENT = re.compile(r"E([+-])(\d\d)(?!\d)")
_SETTING_WIDTH = 20
_IMPEDANCE_COLUMNS = (
    "freq/Hz",
    "Re(Z)/Ohm",
    "-Im(Z)/Ohm",
    "|Z|/Ohm",
    "Phase(Z)/deg",
    "time/s",
    "<Ewe>/V",
    "<I>/mA",
    "cycle number",
    "I Range",
    "(Q-Qo)/mA.h",
)
# EC-Lab writes measured values with 8 significant digits, time-like columns with 16.
_IMPEDANCE_FORMAT = "\t".join(["%.7E"] * 5 + ["%.15E", "%.7E", "%.7E", "%.15E", "%d", "%.15E"])
_OCV_COLUMNS = (
    "mode",
    "ox/red",
    "error",
    "control changes",
    "counter inc.",
    "time/s",
    "Ewe/V",
    "I/mA",
    "(Q-Qo)/mA.h",
)
_OCV_FORMAT = "\t".join(["%d"] * 5 + ["%.15E", "%.7E", "%.7E", "%.15E"])
_TITLES = {
    "GEIS": "Galvano Electrochemical Impedance Spectroscopy",
    "PEIS": "Potentio Electrochemical Impedance Spectroscopy",
    "OCV": "Open Circuit Voltage",
    "CP": "Chronopotentiometry",
}
# EC-Lab's code for the 1 mA current range, as in shared/realdata/geis.mpt.
_I_RANGE_CODE = 12
_REST_MODE = 3


def _setting(key: str, value: str) -> str:
    return f"{key:<{_SETTING_WIDTH}}{value:<{_SETTING_WIDTH}}"


def _hms(seconds: float) -> str:
    """EC-Lab duration ``h:mm:ss.ssss``."""
    hours, remainder = divmod(seconds, 3600.0)
    minutes, secs = divmod(remainder, 60.0)
    return f"{int(hours)}:{int(minutes):02d}:{secs:07.4f}"


def _with_unit(value: float, units: Sequence[tuple[float, str]]) -> tuple[str, str]:
    """Value and unit as EC-Lab shows them: the largest unit keeping the value >= 1."""
    for scale, unit in units:
        if abs(value) >= scale:
            return f"{value / scale:.3f}", unit
    scale, unit = units[-1]
    return f"{value / scale:.3f}", unit


_FREQ_UNITS = ((1e6, "MHz"), (1e3, "kHz"), (1.0, "Hz"), (1e-3, "mHz"))
_CURRENT_UNITS_MA = ((1e3, "A"), (1.0, "mA"), (1e-3, "µA"), (1e-6, "nA"))


def _sweep_block(settings: SimulationSettings) -> list[str]:
    fi, fi_unit = _with_unit(settings.f_max_Hz, _FREQ_UNITS)
    ff, ff_unit = _with_unit(settings.f_min_Hz, _FREQ_UNITS)
    return [
        _setting("fi", fi),
        _setting("unit fi", fi_unit),
        _setting("ff", ff),
        _setting("unit ff", ff_unit),
        _setting("Nd", str(settings.points_per_decade)),
        _setting("Points", "per decade"),
        _setting("spacing", "Logarithmic"),
    ]


def _tail_block(settings: SimulationSettings, n_cycles: int) -> list[str]:
    return [
        _setting("pw", "0.10"),
        _setting("Na", str(settings.periods_per_point)),
        _setting("corr", "0"),
        _setting("E range min (V)", "-10.000"),
        _setting("E range max (V)", "10.000"),
        _setting("I Range", "1 mA"),
        _setting("Bandwidth", "5"),
        _setting("nc cycles", str(n_cycles)),
        _setting("goto Ns'", "0"),
        _setting("nr cycles", "0"),
        _setting("inc. cycle", "0"),
    ]


def _geis_block(
    settings: SimulationSettings, n_sweeps: int, current_mA: float | None = None
) -> list[str]:
    """The GEIS settings block; ``current_mA`` (signed, negative: plating) overrides Is."""
    setpoint_mA = settings.current_mA if current_mA is None else current_mA
    # Is in a unit where 3 decimals are exact enough (0.2355 mA -> 235.500 µA).
    current, current_unit = _with_unit(setpoint_mA, _CURRENT_UNITS_MA)
    amplitude, amplitude_unit = _with_unit(
        abs(setpoint_mA) * settings.ac_amplitude_fraction, _CURRENT_UNITS_MA
    )
    return [
        _setting("Mode", "Single sine"),
        _setting("Is", current),
        _setting("unit Is", current_unit),
        _setting("vs.", "<None>"),
        _setting("tIs (h:m:s)", _hms(settings.hold_s)),
        _setting("record", "1"),
        _setting("dE (mV)", "0.000"),
        _setting("dt (s)", f"{settings.hold_interval_s:.3f}"),
        *_sweep_block(settings),
        _setting("Ia/Va", "Ia"),
        _setting("Ia", amplitude),
        _setting("unit  Ia", amplitude_unit),
        _setting("va pourcent", f"{settings.ac_amplitude_fraction:.2f}"),
        *_tail_block(settings, max(n_sweeps - 1, 0)),
    ]


def _peis_block(settings: SimulationSettings, n_sweeps: int) -> list[str]:
    return [
        _setting("Mode", "Single sine"),
        _setting("E (V)", f"{settings.ocv_V:.4f}"),
        _setting("vs.", "Eoc"),
        _setting("tE (h:m:s)", _hms(0.0)),
        _setting("record", "0"),
        _setting("dI", "0.000"),
        _setting("unit dI", "mA"),
        _setting("dt (s)", "0.000"),
        *_sweep_block(settings),
        _setting("Va (mV)", f"{settings.peis_amplitude_mV:.1f}"),
        *_tail_block(settings, max(n_sweeps - 1, 0)),
    ]


def _ocv_block(settings: SimulationSettings) -> list[str]:
    rest_s = settings.relaxation_interval_s - settings.sweep_duration_s
    return [
        _setting("tR (h:m:s)", _hms(rest_s)),
        _setting("dER/dt (mV/h)", "0.0"),
        _setting("record", "<Ewe>"),
        _setting("dER (mV)", "0.00"),
        _setting("dtR (s)", f"{settings.rest_interval_s:.3f}"),
        _setting("E range min (V)", "-10.000"),
        _setting("E range max (V)", "10.000"),
    ]


def _header(
    technique: str,
    stem: str,
    block: list[str],
    columns: Sequence[str],
    settings: SimulationSettings,
) -> list[str]:
    """Every header line, the column header last; line 2 counts them all."""
    lines = [
        "EC-Lab ASCII FILE",
        "",  # Nb header lines, filled in below
        "",
        _TITLES[technique],
        "",
        "Run on channel : 1 (SN 20001)",
        "User : ",
        "CE vs. WE compliance from -10 V to 10 V",
        "Electrode connection : standard",
        "Potential control : Ewe",
        "Ewe ctrl range : min = -10.00 V, max = 10.00 V",
        "Safety Limits :",
        "\tEwe min = -10.00 V",
        "\tEwe max = 10.00 V",
        "\tfor t > 10 ms",
        "\tDo not start on E overload",
        f"Acquisition started on : {ACQUISITION_START:%m/%d/%Y %H:%M:%S}.000",
        "Loaded Setting File : NONE",
        "Saved on :",
        f"\tFile : {stem}.mpr",
        "\tDirectory : C:\\Users\\lab\\Documents\\EC-Lab\\Data\\Li_LLZO\\",
        "\tHost : 192.168.0.10",
        "Device : VMP-300 (SN 0001)",
        "Address : 192.168.0.11",
        "EC-Lab for windows v11.50 (software)",
        "Internet server v11.50 (firmware)",
        "Command interpretor v11.50 (firmware)",
        "Electrode material : Li metal",
        "Initial state : pristine",
        "Electrolyte : LLZO (Ta-doped garnet), Li counter/reference pressed at 400 MPa",
        f"Comments : simulated by geis_pipeline.simulate, seed {settings.seed}",
        "Mass of active material : 0.001 mg",
        " at x = 0.000",
        "Molecular weight of active material (at x = 0) : 0.001 g/mol",
        "Atomic weight of intercalated ion : 6.941 g/mol",
        "Acquisition started at : xo = 0.000",
        "Number of e- transfered per intercalated ion : 1",
        "Battery capacity : 0.000 mA.h",
        f"Electrode surface area : {settings.area_cm2:.3f} cm²",
        "Characteristic mass : 0.001 mg",
        "Volume (V) : 0.000 cm³",
        "Cycle Definition : Charge/Discharge alternance",
        *block,
        "",
        "\t".join(columns) + "\t",  # EC-Lab ends the column line with a tab
    ]
    lines[1] = f"{'Nb header lines : ' + str(len(lines)):<46}"
    return lines


def _format_rows(row_format: str, columns: Sequence[np.ndarray]) -> list[str]:
    """Rows as EC-Lab text: ``%E`` numbers with three-digit exponents (``E+004``)."""
    # tolist() gives Python numbers: %-formatting them is several times faster than numpy scalars.
    rows = [
        row_format % values for values in zip(*(column.tolist() for column in columns), strict=True)
    ]
    text = "\n".join(rows)
    magnitudes = np.abs(
        np.concatenate([np.asarray(column, dtype=np.float64) for column in columns])
    )
    if np.all((magnitudes == 0) | ((magnitudes >= 1e-99) & (magnitudes < 1e100))):
        # %E writes exactly two exponent digits in this range: padding every one is safe
        # and ~10x faster than a regular expression.
        text = text.replace("E+", "E+0").replace("E-", "E-0")
    else:
        text = _EXPONENT.sub(lambda match: f"E{match[1]}0{match[2]}", text)
    return text.split("\n")


def _write_mpt(path: Path, header: list[str], rows: list[str]) -> None:
    # Windows EC-Lab writes CRLF line ends and the ANSI (latin-1) code page.
    path.write_bytes(("\r\n".join([*header, *rows]) + "\r\n").encode("latin-1"))


def _impedance_rows(
    experiment: SimulatedExperiment, sweeps: Sequence[int], leading: DCRows | None
) -> list[str]:
    """Rows of a GEIS/PEIS file: optional freq = 0 DC rows, then the sweeps back to back."""
    truth = experiment.truth
    pieces: dict[str, list[np.ndarray]] = {name: [] for name in _IMPEDANCE_COLUMNS}

    def add(name: str, values: np.ndarray) -> None:
        pieces[name].append(np.asarray(values))

    if leading is not None and len(leading):
        zeros = np.zeros(len(leading))
        for name in ("freq/Hz", "Re(Z)/Ohm", "-Im(Z)/Ohm", "|Z|/Ohm", "Phase(Z)/deg"):
            add(name, zeros)
        add("time/s", leading.time_s)
        add("<Ewe>/V", leading.potential_V)
        add("<I>/mA", leading.current_mA)
        add("cycle number", np.ones(len(leading)))
        add("(Q-Qo)/mA.h", leading.charge_mAh)
    for cycle, sweep in enumerate(sweeps, start=1):
        z = experiment.z[sweep]
        point_time = experiment.point_time_s[sweep]
        add("freq/Hz", experiment.freq[sweep])
        add("Re(Z)/Ohm", z.real)
        add("-Im(Z)/Ohm", -z.imag)  # EC-Lab writes the negated imaginary part
        add("|Z|/Ohm", np.abs(z))
        add("Phase(Z)/deg", np.degrees(np.angle(z)))
        add("time/s", point_time)
        add("<Ewe>/V", experiment.point_potential_V[sweep])
        current = truth.current_mA[sweep]
        add("<I>/mA", np.full(z.size, current))
        add("cycle number", np.full(z.size, float(cycle)))
        if truth.technique[sweep] == "GEIS":
            add("(Q-Qo)/mA.h", current * point_time / 3600.0)
        else:
            add("(Q-Qo)/mA.h", np.full(z.size, truth.charge_mAh[sweep]))
    columns = {name: np.concatenate(parts) for name, parts in pieces.items() if parts}
    columns["I Range"] = np.full(columns["freq/Hz"].size, _I_RANGE_CODE, dtype=np.int64)
    return _format_rows(_IMPEDANCE_FORMAT, [columns[name] for name in _IMPEDANCE_COLUMNS])


def _ocv_rows(rest: DCRows) -> list[str]:
    count = len(rest)
    integer_zeros = np.zeros(count, dtype=np.int64)
    return _format_rows(
        _OCV_FORMAT,
        [
            np.full(count, _REST_MODE, dtype=np.int64),
            integer_zeros,
            integer_zeros,
            integer_zeros,
            integer_zeros,
            rest.time_s,
            rest.potential_V,
            rest.current_mA,
            rest.charge_mAh,
        ],
    )


def _json_value(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_experiment(
    folder: Path | str,
    settings: SimulationSettings | None = None,
    *,
    name: str = "Li_LLZO_stripping",
    progress: ProgressCallback | None = None,
) -> SimulatedExperiment:
    """Simulate the experiment and write it as EC-Lab linked-technique text files.

    Writes into ``folder`` (created if missing; files of the same names are
    overwritten, other files are left alone):

    * ``{name}_01_GEIS_C01.mpt``: current-hold rows (freq = 0), then the
      stripping sweeps back to back;
    * ``{name}_02_PEIS_C01.mpt``: the relaxation spectra (if any);
    * ``{name}_03_OCV_C01.mpt``: the OCV rest rows between them (if any);
    * ``truth.npz``: the per-sweep truth arrays (see :class:`SimulationTruth`),
      the frequency grid and the hold/rest rows;
    * ``truth.json``: experiment-level values and the settings.

    All ``.mpt`` files state the same acquisition start
    (:data:`ACQUISITION_START`) and count ``time/s`` from it.

    Parameters
    ----------
    folder
        Output folder.
    settings
        Defaults to ``SimulationSettings()``.
    name
        File-name stem (no path separators).
    progress
        Called as ``progress(done, total)`` after each file written.

    Returns
    -------
    SimulatedExperiment
        The simulated experiment, ``files`` set to the paths written.

    Raises
    ------
    SimulationError
        ``name`` is empty or contains a path separator.
    """
    if not name or any(separator in name for separator in ("/", "\\")):
        raise SimulationError(f"file-name stem must be a plain name, got {name!r}", key="name")
    experiment = simulate_experiment(settings)
    settings = experiment.settings
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SimulationError("is a file, not a folder: give another one", file=folder)
    folder.mkdir(parents=True, exist_ok=True)

    stripping = [index for index, kind in enumerate(experiment.technique) if kind == "GEIS"]
    relaxation = [index for index, kind in enumerate(experiment.technique) if kind == "PEIS"]
    jobs: list[tuple[Path, Callable[[Path], None]]] = []

    def geis(path: Path) -> None:
        header = _header(
            "GEIS",
            path.stem,
            _geis_block(settings, len(stripping)),
            _IMPEDANCE_COLUMNS,
            settings,
        )
        _write_mpt(path, header, _impedance_rows(experiment, stripping, experiment.hold))

    def peis(path: Path) -> None:
        header = _header(
            "PEIS",
            path.stem,
            _peis_block(settings, len(relaxation)),
            _IMPEDANCE_COLUMNS,
            settings,
        )
        _write_mpt(path, header, _impedance_rows(experiment, relaxation, None))

    def ocv(path: Path) -> None:
        header = _header("OCV", path.stem, _ocv_block(settings), _OCV_COLUMNS, settings)
        _write_mpt(path, header, _ocv_rows(experiment.rest))

    jobs.append((folder / f"{name}_01_GEIS_C01.mpt", geis))
    if relaxation:
        jobs.append((folder / f"{name}_02_PEIS_C01.mpt", peis))
    if len(experiment.rest):
        jobs.append((folder / f"{name}_03_OCV_C01.mpt", ocv))
    total = len(jobs) + 2
    for done, (path, write) in enumerate(jobs, start=1):
        write(path)
        if progress is not None:
            progress(done, total)

    np.savez(
        folder / "truth.npz",
        **experiment.truth.as_dict(),
        freq_Hz=settings.frequencies_Hz,
        hold_time_s=experiment.hold.time_s,
        hold_potential_V=experiment.hold.potential_V,
        rest_time_s=experiment.rest.time_s,
        rest_potential_V=experiment.rest.potential_V,
    )
    if progress is not None:
        progress(total - 1, total)
    files = tuple(str(path) for path, _ in jobs)
    summary = {
        "generator": "geis_pipeline.simulate",
        "acquisition_start": ACQUISITION_START.isoformat(),
        "t0_s": experiment.t0_s,
        "t0_h": experiment.t0_s / 3600.0,
        "current_stop_s": experiment.current_stop_s,
        "current_mA": settings.current_mA,
        "sweep_duration_s": settings.sweep_duration_s,
        "n_points_per_sweep": int(settings.frequencies_Hz.size),
        "n_stripping": experiment.n_stripping,
        "n_relaxation": experiment.n_relaxation,
        "n_points": experiment.n_points,
        "files": [Path(path).name for path in files],
        "settings": {
            key: _json_value(value) for key, value in dataclasses.asdict(settings).items()
        },
    }
    (folder / "truth.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if progress is not None:
        progress(total, total)
    return dataclasses.replace(experiment, files=files)


# --------------------------------------------------------------------------- DC only


@dataclass(frozen=True)
class DCOnlyTruth:
    """The truth of a DC-only experiment (:func:`write_dc_experiment`).

    Attributes
    ----------
    t_cutoff_s
        When the noise-free potential reaches the cutoff, s since the current onset.
    q_cutoff_mAh_cm2
        Capacity stripped until then, mAh/cm2.
    D_eff_cutoff_cm2_s
        Sand's D_eff from that capacity (Mann 2024, Table 1).
    onset_s
        When the current starts, s since the acquisition start.
    files
        The files written.
    """

    t_cutoff_s: float
    q_cutoff_mAh_cm2: float
    D_eff_cutoff_cm2_s: float
    onset_s: float
    files: tuple[str, ...]


def _dc_potential(time_s: np.ndarray, settings: SimulationSettings) -> np.ndarray:
    """Noise-free potential under current, ``time_s`` since the onset."""
    params = _circuit_truth(contact_fraction(time_s, settings), settings)
    resistance = params["R_b_ohm_cm2"] + params["R_gb_ohm_cm2"] + params["R_int_ohm_cm2"]
    return settings.ocv_V + settings.current_density_mA_cm2 * 1e-3 * (
        resistance + settings.R_dcac_ohm_cm2
    )


def write_dc_experiment(
    folder: Path | str,
    settings: SimulationSettings | None = None,
    *,
    cutoff_V: float = 1.0,
    interval_s: float = 10.0,
    rest_s: float = 300.0,
    name: str = "Li_LLZO_CP",
) -> DCOnlyTruth:
    """Write a DC-only experiment: an OCV rest, then chronopotentiometry to a voltage cutoff.

    The same cell as :func:`simulate_experiment` (contact loss, DC-AC gap, OCV),
    without impedance: ``{name}_01_OCV_C01.mpt`` (rows every ``interval_s`` for
    ``rest_s``) and ``{name}_02_CP_C01.mpt`` (stripping at
    ``settings.current_density_mA_cm2``, rows every ``interval_s``, stopped by
    the instrument at the first row at or beyond ``cutoff_V``), with
    ``truth.json``.

    Returns
    -------
    DCOnlyTruth
        The exact crossing of the noise-free potential and what follows from it.
    """
    settings = settings or SimulationSettings()
    if not cutoff_V > float(_dc_potential(np.zeros(1), settings)[0]):
        raise SimulationError(
            f"the cutoff {cutoff_V} V is below the potential at the onset", key="cutoff_V"
        )
    if not cutoff_V < float(_dc_potential(np.array([settings.sand_time_s]), settings)[0]):
        raise SimulationError(
            f"the cutoff {cutoff_V} V is above the potential at full depletion", key="cutoff_V"
        )
    rng = np.random.default_rng(settings.seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fine = np.linspace(0.0, settings.sand_time_s, 200_001)
    fine_potential = _dc_potential(fine, settings)
    crossing = int(np.flatnonzero(fine_potential >= cutoff_V)[0])
    t_cutoff = float(
        np.interp(
            cutoff_V, fine_potential[crossing - 1 : crossing + 1], fine[crossing - 1 : crossing + 1]
        )
    )
    rest_time = np.arange(0.0, rest_s, interval_s)
    rest = DCRows(
        rest_time,
        settings.ocv_V + settings.potential_noise_V * rng.standard_normal(rest_time.size),
        np.zeros(rest_time.size),
        np.zeros(rest_time.size),
    )
    strip_time = np.arange(0.0, t_cutoff + interval_s, interval_s)
    strip_time = strip_time[: int(np.searchsorted(strip_time, t_cutoff)) + 1]
    potential = _dc_potential(strip_time, settings) + settings.potential_noise_V * (
        rng.standard_normal(strip_time.size)
    )
    current = np.full(strip_time.size, settings.current_mA)
    strip = DCRows(rest_s + strip_time, potential, current, current * strip_time / 3600.0)
    files = []
    for technique, number, block, rows in (
        ("OCV", 1, _ocv_block(settings), rest),
        ("CP", 2, _cp_block(settings, cutoff_V, interval_s), strip),
    ):
        path = folder / f"{name}_{number:02d}_{technique}_C01.mpt"
        header = _header(technique, path.stem, block, _OCV_COLUMNS, settings)
        _write_mpt(path, header, _ocv_rows(rows))
        files.append(str(path))
    q = settings.current_density_mA_cm2 * t_cutoff / 3600.0
    truth = DCOnlyTruth(
        t_cutoff_s=t_cutoff,
        q_cutoff_mAh_cm2=q,
        D_eff_cutoff_cm2_s=sand_diffusivity_from_capacity(
            q, settings.current_density_mA_cm2, settings.c0_mol_cm3
        ),
        onset_s=rest_s,
        files=tuple(files),
    )
    summary = {
        "generator": "geis_pipeline.simulate.write_dc_experiment",
        "cutoff_V": cutoff_V,
        **{key: _json_value(value) for key, value in dataclasses.asdict(truth).items()},
        "settings": {
            key: _json_value(value) for key, value in dataclasses.asdict(settings).items()
        },
    }
    (folder / "truth.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return truth


def _cp_block(settings: SimulationSettings, cutoff_V: float, interval_s: float) -> list[str]:
    current, current_unit = _with_unit(settings.current_mA, _CURRENT_UNITS_MA)
    return [
        _setting("Is", current),
        _setting("unit Is", current_unit),
        _setting("vs.", "<None>"),
        _setting("ts (h:m:s)", _hms(settings.sand_time_s)),
        _setting("EM (V)", f"{cutoff_V:.3f}"),
        _setting("dQM", "0.000"),
        _setting("unit dQM", "mA.h"),
        _setting("record", "<Ewe>"),
        _setting("dEs (mV)", "0.00"),
        _setting("dts (s)", f"{interval_s:.3f}"),
        _setting("E range min (V)", "-10.000"),
        _setting("E range max (V)", "10.000"),
        _setting("I Range", "1 mA"),
        _setting("Bandwidth", "5"),
    ]
