"""Tracking the interface: per-step table, per-experiment and study-level physics.

:func:`track` turns per-sweep fit results into the table researchers plot:
one row per time step, units in every column name. The experiment-level
analyses (:func:`depletion_time`, :func:`sand_diffusivity`,
:func:`fit_relaxation`, :func:`summarize_tracking`) and the study-level fits
(:func:`sand_fit`, :func:`arrhenius_fit`) are pure functions of arrays; the
formulas are those of DOMAIN.md.

Conventions
-----------
* Current density ``i`` in mA/cm2, positive = anodic = stripping of the working
  electrode (EC-Lab's sign), negative = plating; ``|i|`` at most
  ``ocv_current_density_mA_cm2`` counts as open circuit.
* Segments: consecutive steps with the same label (``strip``, ``plate``,
  ``ocv``, ``bias``; ``unknown`` when the current is not recorded) are numbered
  from 0. :func:`track` takes the labels given (the pipeline passes
  :func:`geis_pipeline.kind.spectra_labels`: technique, setpoint and DC record
  with a tolerance, so they exist without an area too), else labels from the
  current density.
* Times are the sweep starts, s since the acquisition start. The depletion time
  t0 exists only for a stripping segment (:func:`summarize_tracking` says why
  otherwise) and is counted from its current onset, estimated from the passed
  charge of its first step (t - 3600 q / I) when it is recorded.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from geis_pipeline.kind import OCV, PLATE, STRIP, UNKNOWN, experiment_kind, segment_index
from geis_pipeline.physics import BOLTZMANN_EV_K, FARADAY_C_MOL, stripped_thickness_um

__all__ = [
    "ROLE_LABELS",
    "ArrheniusFit",
    "DepletionTime",
    "RelaxationFit",
    "SandFit",
    "TrackResult",
    "arrhenius_fit",
    "depletion_time",
    "fit_relaxation",
    "normalise_temperature",
    "sand_diffusivity",
    "sand_fit",
    "sand_fit_note",
    "sand_time_s",
    "segment_labels",
    "summarize_tracking",
    "track",
]


@dataclass(frozen=True)
class TrackResult:
    """The per-step table and the reference step the contact loss is relative to.

    Attributes
    ----------
    columns
        Column name (with unit) -> one value per time step.
    reference_step
        Step the contact loss is computed against (-1 if none is valid).
    E_ocv_V
        The open-circuit voltage the DC-AC gap was computed against, V.
    """

    columns: Mapping[str, np.ndarray]
    reference_step: int
    E_ocv_V: float = 0.0


#: Column label of the built-in roles (``R_b_ohm_cm2``...); any other role is its own label.
ROLE_LABELS: Mapping[str, str] = {"bulk": "b", "gb": "gb", "int": "int"}
#: Roles that are not processes with a resistance of their own.
_NON_RESISTIVE_ROLES = frozenset({"cable", "diffusion", "blocking"})


def _label(role: str) -> str:
    return ROLE_LABELS.get(role, role)


def track(
    time_s: np.ndarray,
    *,
    roles: Mapping[str, Mapping[str, np.ndarray]],
    fit_ok: np.ndarray,
    fit_reason: np.ndarray | None = None,
    kk_ok: np.ndarray | None = None,
    total_resistance_ohm: np.ndarray | None = None,
    potential_V: np.ndarray | None = None,
    charge_mAh: np.ndarray | None = None,
    area_cm2: float | None = None,
    interfaces: int = 1,
    reference_step: int | None = None,
    drt_R_int_ohm: np.ndarray | None = None,
    drt_tau_int_s: np.ndarray | None = None,
    drt_processes: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    drt_resolved: Mapping[str, np.ndarray] | None = None,
    drt_R_stderr_ohm: Mapping[str, np.ndarray] | None = None,
    current_mA: np.ndarray | None = None,
    freq_band_hz: np.ndarray | None = None,
    ocv_current_density_mA_cm2: float = 1e-3,
    c_int_max_rel_stderr: float = 0.1,
    temperature_K: float | None = None,
    reference_temperature_K: float = 298.15,
    activation_energy_eV: float = 0.37,
    ocv_V: float | None = None,
    short_circuit_fraction: float = 0.5,
    segment: np.ndarray | None = None,
) -> TrackResult:
    """Track the interface through an experiment.

    Parameters
    ----------
    time_s
        Start of each sweep, s.
    roles
        The fits' role table: role -> quantity (``R_ohm``, ``R_stderr_ohm``,
        ``C_F``, ``C_stderr_F``, ``tau_s``, ``alpha``: R in
        ohm, C in F, tau in s, alpha) -> one value per step, NaN where the
        data do not determine it (:func:`geis_pipeline.fit.role_table`). The
        arcs were identified by their physics, so ``int`` is the interface
        whatever its place in the circuit string.
    fit_ok, fit_reason, kk_ok
        Quality per step: the fit's verdict, its reason codes (comma-separated,
        "" when ok) and the Kramers-Kronig verdict.
    total_resistance_ohm
        Sum of every resistance of the circuit per step (series R and all
        arcs), ohm: the DC-AC gap subtracts all of it. Default: the sum of the
        roles' resistances.
    potential_V, charge_mAh
        DC potential (V) and passed charge (mAh) per step.
    area_cm2
        Electrode area, cm2 (None: area-specific columns are NaN; the
        absolute twins ``R_int_ohm``, ``C_int_F``... are always there).
    interfaces
        Interfaces in series in the spectrum (2 for a symmetric cell): R_int
        and C_int are reported per interface (an approximation valid at open
        circuit: under current one side strips while the other plates).
    reference_step
        Step the contact loss is relative to; default the first step whose
        fit is ok.
    drt_R_int_ohm, drt_tau_int_s
        The DRT interface peak per step, an independent cross-check.
    drt_processes
        Every DRT window's peak per step: process -> (R in ohm, tau in s), giving
        ``R_<process>_drt_ohm_cm2``, ``R_<process>_drt_ohm``, ``tau_<process>_drt_s``
        and ``C_<process>_drt_F_cm2`` (tau / R) for each (Lu 2021 follows gb, SEI
        and charge transfer through an alloy's phase transitions).
    drt_resolved
        Process -> whether its DRT R is a measurement, per step (the refined
        ZARC's R, the apexes of its peak and of the peaks beside it measured:
        :attr:`geis_pipeline.drt.ProcessTrack.resolved`), giving
        ``R_<process>_drt_resolved`` (False too where the spectrum failed
        Kramers-Kronig, ``kk_ok``). A value that is not resolved is still
        reported (it is what the data hold), but it is not a measurement.
    drt_R_stderr_ohm
        Process -> standard error of its DRT R per step, ohm (the refined
        fit's covariance; NaN when not refined), giving
        ``R_<process>_drt_stderr_ohm_cm2`` and ``R_<process>_drt_stderr_ohm``.
    current_mA
        DC current of each sweep, mA (0 at open circuit; positive = stripping).
        Gives ``current_density_mA_cm2``, the ``segment`` labels and the
        DC-AC gap ``R_dcac_ohm_cm2`` = E/i - (every resistance of the
        circuit), NaN at open circuit.
    freq_band_hz
        (n_steps, 2) lowest and highest frequency the fit used per step.
    segment
        Label per step (``strip``, ``plate``, ``ocv``, ``bias``, ``unknown``),
        e.g. from :func:`geis_pipeline.kind.spectra_labels`; the DC-AC gap, the
        OCV before the current and the short-circuit flag follow them. None:
        :func:`segment_labels` of the current density (which needs the area).
    ocv_current_density_mA_cm2
        ``|i|`` at or below this is open circuit, mA/cm2.
    c_int_max_rel_stderr
        ``C_int_reliable`` is True when the fit is ok, C_int is finite and
        positive, its relative standard error is at most this, and the
        interface apex frequency lies inside ``freq_band_hz`` (when given).
    temperature_K, reference_temperature_K, activation_energy_eV
        With ``temperature_K``: column ``R_int_T0_ohm_cm2``, R_int normalised
        to the reference temperature (:func:`normalise_temperature`).
    ocv_V
        The electrode's open-circuit voltage against the reference, V: the
        DC-AC gap is (E - E_ocv)/i - resistances (an alloy sits at an OCV: a
        Li0.9Mg0.1 electrode's ~25 mV is ~250 ohm cm2 of false gap at 0.1
        mA/cm2). Default: the median E of the open-circuit steps before the
        first loaded one, else 0.
    short_circuit_fraction
        Column ``short_circuit``: R_b or R_gb below this fraction of their value
        at the reference step (lithium penetrating the electrolyte; DOMAIN.md,
        Lu 2021 Fig. S13), or the overpotential under current collapsing below
        this fraction of the reference step's.

    Returns
    -------
    TrackResult
        Columns per role label ``L`` (``b``, ``gb``, ``int``, a custom role's
        name): ``R_L_ohm_cm2``, ``R_L_ohm``, ``R_L_stderr_ohm_cm2``,
        ``R_L_stderr_ohm`` and, for arcs, ``C_L_F_cm2``, ``C_L_F``,
        ``C_L_stderr_F_cm2``, ``C_L_stderr_F``, ``alpha_L``, ``tau_L_s``,
        ``f_apex_L_hz``; R_b, R_gb and R_int always exist (NaN when the
        circuit has no such process).
    """
    n_steps = time_s.size
    area = area_cm2 if area_cm2 else math.nan
    nan = np.full(n_steps, np.nan)
    columns: dict[str, np.ndarray] = {"time_s": np.asarray(time_s, dtype=np.float64)}
    charge = nan if charge_mAh is None else np.asarray(charge_mAh, dtype=np.float64)
    columns["charge_mAh_cm2"] = charge / area
    columns["stripped_Li_um"] = stripped_thickness_um(1.0) * columns["charge_mAh_cm2"]
    columns["E_V"] = nan if potential_V is None else np.asarray(potential_V, dtype=np.float64)
    table = {role: values for role, values in roles.items() if role not in _NON_RESISTIVE_ROLES}
    for role in ("bulk", "gb", "int"):
        table.setdefault(role, {})
    for role, values in table.items():
        label = _label(role)
        # A symmetric cell's interface arc holds both interfaces in series.
        per = interfaces if role == "int" else 1

        def value(name: str, values: Mapping[str, np.ndarray] = values) -> np.ndarray:
            found = values.get(name)
            return nan if found is None else np.asarray(found, dtype=np.float64)

        r_ohm, r_stderr = value("R_ohm") / per, value("R_stderr_ohm") / per
        columns[f"R_{label}_ohm_cm2"] = r_ohm * area
        columns[f"R_{label}_ohm"] = r_ohm
        columns[f"R_{label}_stderr_ohm_cm2"] = r_stderr * area
        columns[f"R_{label}_stderr_ohm"] = r_stderr
        if "C_F" in values or role == "int":
            # Interfaces in series: each has ``interfaces`` times the capacitance of the pair.
            c_farad, c_stderr = value("C_F") * per, value("C_stderr_F") * per
            columns[f"C_{label}_F_cm2"] = c_farad / area
            columns[f"C_{label}_F"] = c_farad
            columns[f"C_{label}_stderr_F_cm2"] = c_stderr / area
            columns[f"C_{label}_stderr_F"] = c_stderr
            columns[f"alpha_{label}"] = value("alpha")
            columns[f"tau_{label}_s"] = value("tau_s")
            with np.errstate(divide="ignore", invalid="ignore"):
                columns[f"f_apex_{label}_hz"] = 1 / (2 * np.pi * columns[f"tau_{label}_s"])
    fit_ok = np.asarray(fit_ok, dtype=bool)
    r_int = columns["R_int_ohm"]
    if reference_step is None:
        valid = np.flatnonzero(fit_ok & np.isfinite(r_int))
        reference = int(valid[0]) if valid.size else -1
    else:
        reference = int(reference_step)
    if 0 <= reference < n_steps:
        with np.errstate(all="ignore"):
            columns["contact_loss_C"] = 1 - columns["C_int_F"] / columns["C_int_F"][reference]
            columns["contact_loss_R"] = 1 - r_int[reference] / r_int
    else:
        columns["contact_loss_C"] = columns["contact_loss_R"] = nan
    if drt_R_int_ohm is not None:
        drt_r = np.asarray(drt_R_int_ohm, dtype=np.float64) / interfaces
        columns["R_int_drt_ohm_cm2"] = drt_r * area
        columns["R_int_drt_ohm"] = drt_r
    if drt_tau_int_s is not None:
        columns["tau_int_drt_s"] = np.asarray(drt_tau_int_s, dtype=np.float64)
    for process, (drt_r, drt_tau) in (drt_processes or {}).items():
        per = interfaces if process == "int" else 1
        drt_r = np.asarray(drt_r, dtype=np.float64) / per
        drt_tau = np.asarray(drt_tau, dtype=np.float64)
        columns[f"R_{process}_drt_ohm_cm2"] = drt_r * area
        columns[f"R_{process}_drt_ohm"] = drt_r
        columns[f"tau_{process}_drt_s"] = drt_tau
        with np.errstate(divide="ignore", invalid="ignore"):
            columns[f"C_{process}_drt_F"] = drt_tau / drt_r
        columns[f"C_{process}_drt_F_cm2"] = columns[f"C_{process}_drt_F"] / area
    # A spectrum that fails Kramers-Kronig is not a linear, causal, stable impedance:
    # its DRT holds no measurement either.
    kk_valid = np.ones(n_steps, dtype=bool) if kk_ok is None else np.asarray(kk_ok, dtype=bool)
    for process, resolved in (drt_resolved or {}).items():
        columns[f"R_{process}_drt_resolved"] = np.asarray(resolved, dtype=bool) & kk_valid
    for process, stderr in (drt_R_stderr_ohm or {}).items():
        per = interfaces if process == "int" else 1
        stderr = np.asarray(stderr, dtype=np.float64) / per
        columns[f"R_{process}_drt_stderr_ohm_cm2"] = stderr * area
        columns[f"R_{process}_drt_stderr_ohm"] = stderr
    # Reliability of C_int: a resolved, precisely fitted interface arc.
    c_int = columns["C_int_F"]
    with np.errstate(invalid="ignore", divide="ignore"):
        c_rel_stderr = columns["C_int_stderr_F"] / np.abs(c_int)
        reliable = (
            fit_ok
            & np.isfinite(c_int)
            & (c_int > 0)
            & (np.nan_to_num(c_rel_stderr, nan=np.inf) <= c_int_max_rel_stderr)
        )
        if freq_band_hz is not None:
            band = np.asarray(freq_band_hz, dtype=np.float64).reshape(n_steps, 2)
            apex = columns["f_apex_int_hz"]
            reliable &= (apex >= band[:, 0]) & (apex <= band[:, 1])
    columns["C_int_reliable"] = np.asarray(reliable, dtype=bool)
    # Current, segments, DC-AC gap.
    current = nan if current_mA is None else np.asarray(current_mA, dtype=np.float64)
    density = current / area
    columns["current_density_mA_cm2"] = density
    if segment is None:
        labels, segment_numbers = segment_labels(density, ocv_current_density_mA_cm2)
    else:
        labels = np.asarray(segment, dtype=object)
        if labels.shape != (n_steps,):
            raise ValueError(f"segment has {labels.size} labels for {n_steps} steps")
        segment_numbers = segment_index(labels)
    columns["segment"] = labels
    columns["segment_index"] = segment_numbers
    loaded = (labels == STRIP) | (labels == PLATE)
    if total_resistance_ohm is None:
        # Every resistance the roles know; a role the circuit lacks counts 0.
        total = np.zeros(n_steps)
        for values in table.values():
            if "R_ohm" in values:
                total = total + np.nan_to_num(np.asarray(values["R_ohm"], dtype=np.float64))
    else:
        total = np.asarray(total_resistance_ohm, dtype=np.float64)
    if ocv_V is None:
        first_loaded = np.flatnonzero(loaded)
        before = (labels == OCV) & (
            np.arange(n_steps) < (first_loaded[0] if first_loaded.size else 0)
        )
        rest = columns["E_V"][before]
        ocv_V = float(np.median(rest[np.isfinite(rest)])) if np.isfinite(rest).any() else 0.0
    with np.errstate(all="ignore"):
        # (E - E_ocv)/i in ohm from V and mA: the absolute gap, then per area.
        gap_ohm = (columns["E_V"] - ocv_V) / (current * 1e-3) - total
    columns["R_dcac_ohm"] = np.where(loaded, gap_ohm, np.nan)
    columns["R_dcac_ohm_cm2"] = columns["R_dcac_ohm"] * area
    if temperature_K is not None:
        columns["R_int_T0_ohm_cm2"] = normalise_temperature(
            columns["R_int_ohm_cm2"], temperature_K, reference_temperature_K, activation_energy_eV
        )
    columns["short_circuit"] = _short_circuit(
        columns, reference, fit_ok, loaded, ocv_V, short_circuit_fraction
    )
    columns["fit_ok"] = fit_ok
    columns["fit_reason"] = (
        np.where(fit_ok, "", "fit").astype(str)
        if fit_reason is None
        else np.asarray(fit_reason, dtype=str)
    )
    columns["kk_ok"] = kk_valid
    return TrackResult(columns, reference, float(ocv_V))


def _short_circuit(
    columns: Mapping[str, np.ndarray],
    reference: int,
    fit_ok: np.ndarray,
    loaded: np.ndarray,
    ocv_V: float,
    fraction: float,
) -> np.ndarray:
    """Steps showing the signs of lithium penetration (see :func:`track`)."""
    n_steps = fit_ok.size
    flag = np.zeros(n_steps, dtype=bool)
    if not 0 <= reference < n_steps:
        return flag
    with np.errstate(invalid="ignore"):
        for label in ("b", "gb"):
            r = columns[f"R_{label}_ohm"]
            if np.isfinite(r[reference]) and r[reference] > 0:
                flag |= fit_ok & (r < fraction * r[reference])
        overpotential = np.abs(columns["E_V"] - ocv_V)
        reference_loaded = np.flatnonzero(loaded & np.isfinite(overpotential))
        if reference_loaded.size:
            base = overpotential[reference_loaded[0]]
            flag |= loaded & (overpotential < fraction * base)
    return flag


def segment_labels(
    current_density_mA_cm2: np.ndarray, ocv_current_density_mA_cm2: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """Label each step ``strip`` (i > 0), ``plate`` (i < 0), ``ocv`` or ``unknown`` (NaN).

    From the current density alone; the pipeline gives :func:`track` the labels
    of :func:`geis_pipeline.kind.spectra_labels` instead (technique, setpoint
    and DC record with a tolerance).

    Returns
    -------
    labels, index
        Label per step (object array of str) and the segment number per step
        (a new segment starts wherever the label changes).
    """
    density = np.asarray(current_density_mA_cm2, dtype=np.float64)
    labels = np.full(density.shape, UNKNOWN, dtype=object)
    finite = np.isfinite(density)
    open_circuit = finite & (np.abs(np.nan_to_num(density)) <= ocv_current_density_mA_cm2)
    labels[finite & ~open_circuit & (density > 0)] = STRIP
    labels[finite & ~open_circuit & (density < 0)] = PLATE
    labels[open_circuit] = OCV
    return labels, segment_index(labels)


def normalise_temperature(
    resistance: np.ndarray | float,
    temperature_K: float,
    reference_temperature_K: float = 298.15,
    activation_energy_eV: float = 0.37,
) -> np.ndarray:
    """A resistance measured at T expressed at T0 (thermally activated conduction).

    R(T0) = R(T) (T0 / T) exp[(E_A / k_B) (1/T0 - 1/T)]; colder than T0 gives
    R(T0) < R(T).
    """
    t, t0 = float(temperature_K), float(reference_temperature_K)
    factor = (t0 / t) * math.exp(activation_energy_eV / BOLTZMANN_EV_K * (1 / t0 - 1 / t))
    return np.asarray(resistance, dtype=np.float64) * factor


# ------------------------------------------------------------------ depletion, Sand


def sand_time_s(current_density_mA_cm2: float, D_eff_cm2_s: float, c0_mol_cm3: float) -> float:
    """Sand's time t0 = pi D c0^2 F^2 / (4 i^2), s (i in mA/cm2, c0 in mol/cm3)."""
    i = abs(current_density_mA_cm2) * 1e-3
    return math.pi * D_eff_cm2_s * (c0_mol_cm3 * FARADAY_C_MOL) ** 2 / (4 * i**2)


def sand_diffusivity(t0_s: float, current_density_mA_cm2: float, c0_mol_cm3: float) -> float:
    """Effective diffusivity from Sand's equation, D = 4 i^2 t0 / (pi c0^2 F^2), cm2/s.

    i in mA/cm2 (converted to A/cm2), t0 in s, c0 in mol/cm3, F in C/mol.
    """
    i = abs(current_density_mA_cm2) * 1e-3
    return 4 * i**2 * t0_s / (math.pi * (c0_mol_cm3 * FARADAY_C_MOL) ** 2)


@dataclass(frozen=True)
class DepletionTime:
    """When R_int first exceeded the threshold.

    Attributes
    ----------
    t0_s
        Time since the current onset, s (NaN when not reached).
    t0_stderr_s
        Half the interval between the two steps the crossing is interpolated
        between, s (the resolution of the estimate).
    crossing_time_s
        The crossing on the experiment's time axis, s.
    reached
        Whether R_int exceeded the threshold.
    """

    t0_s: float
    t0_stderr_s: float
    crossing_time_s: float
    reached: bool


def depletion_time(
    time_s: np.ndarray,
    r_int_ohm_cm2: np.ndarray,
    threshold_ohm_cm2: float,
    *,
    valid: np.ndarray | None = None,
    onset_s: float = 0.0,
) -> DepletionTime:
    """First time R_int exceeds ``threshold_ohm_cm2``, linearly interpolated between steps.

    Only ``valid`` steps (default: finite R_int) count. When the first valid
    step already exceeds the threshold, t0 is that step's time (an upper bound).
    """
    time_s = np.asarray(time_s, dtype=np.float64)
    r = np.asarray(r_int_ohm_cm2, dtype=np.float64)
    keep = np.isfinite(r) & np.isfinite(time_s)
    if valid is not None:
        keep &= np.asarray(valid, dtype=bool)
    t, r = time_s[keep], r[keep]
    above = np.flatnonzero(r > threshold_ohm_cm2)
    if above.size == 0:
        return DepletionTime(math.nan, math.nan, math.nan, False)
    k = int(above[0])
    if k == 0:
        return DepletionTime(float(t[0] - onset_s), math.nan, float(t[0]), True)
    t_a, t_b, r_a, r_b = t[k - 1], t[k], r[k - 1], r[k]
    crossing = t_a + (threshold_ohm_cm2 - r_a) / (r_b - r_a) * (t_b - t_a)
    return DepletionTime(float(crossing - onset_s), float((t_b - t_a) / 2), float(crossing), True)


@dataclass(frozen=True)
class SandFit:
    """t0^(-1/2) = slope * i (+ intercept) across experiments (DOMAIN.md).

    Attributes
    ----------
    D_eff_cm2_s, D_eff_stderr_cm2_s
        D = 4 / (pi c0^2 F^2 slope^2) and its standard error (from the slope's).
    slope, slope_stderr
        s^(-1/2) per A/cm2.
    intercept, intercept_stderr
        s^(-1/2) (0 when fitted through the origin).
    n_experiments
        Points in the fit.
    """

    D_eff_cm2_s: float
    D_eff_stderr_cm2_s: float
    slope: float
    slope_stderr: float
    intercept: float
    intercept_stderr: float
    n_experiments: int


def sand_fit(
    t0_s: np.ndarray,
    current_density_mA_cm2: np.ndarray,
    c0_mol_cm3: float,
    *,
    t0_stderr_s: np.ndarray | None = None,
    through_origin: bool = True,
) -> SandFit:
    """Weighted linear fit of t0^(-1/2) versus i (A/cm2) and Sand's D_eff.

    Weights 1/sigma^2 with sigma(t0^-1/2) = t0^(-3/2) sigma(t0) / 2 when
    ``t0_stderr_s`` is given and finite everywhere, else equal weights. The
    standard errors scale the covariance by the reduced chi-square (NaN with
    no degrees of freedom left). Non-finite t0 are left out; fewer than two
    distinct current densities give NaN.
    """
    t0 = np.asarray(t0_s, dtype=np.float64)
    i = np.abs(np.asarray(current_density_mA_cm2, dtype=np.float64)) * 1e-3
    keep = np.isfinite(t0) & (t0 > 0) & np.isfinite(i) & (i > 0)
    n = int(np.sum(keep))
    n_parameters = 1 if through_origin else 2
    if np.unique(i[keep]).size < 2:  # a study needs at least two current densities
        return SandFit(*(math.nan,) * 6, n)
    y = t0[keep] ** -0.5
    x = i[keep]
    sigma = np.ones(n)
    if t0_stderr_s is not None:
        s_t0 = np.asarray(t0_stderr_s, dtype=np.float64)[keep]
        candidate = 0.5 * t0[keep] ** -1.5 * s_t0
        if np.all(np.isfinite(candidate) & (candidate > 0)):
            sigma = candidate
    design = x[:, None] if through_origin else np.column_stack([x, np.ones(n)])
    weights = 1 / sigma
    coefficients, *_ = np.linalg.lstsq(design * weights[:, None], y * weights, rcond=None)
    residuals = (y - design @ coefficients) * weights
    dof = n - n_parameters
    covariance = np.linalg.inv((design * weights[:, None]).T @ (design * weights[:, None]))
    scale = float(residuals @ residuals / dof) if dof > 0 else math.nan
    errors = np.sqrt(np.diag(covariance) * scale)
    slope = float(coefficients[0])
    slope_stderr = float(errors[0])
    intercept = 0.0 if through_origin else float(coefficients[1])
    intercept_stderr = 0.0 if through_origin else float(errors[1])
    if slope <= 0:
        return SandFit(math.nan, math.nan, slope, slope_stderr, intercept, intercept_stderr, n)
    diffusivity = 4 / (math.pi * (c0_mol_cm3 * FARADAY_C_MOL) ** 2 * slope**2)
    return SandFit(
        float(diffusivity),
        float(2 * diffusivity * slope_stderr / slope),
        slope,
        slope_stderr,
        intercept,
        intercept_stderr,
        n,
    )


def sand_fit_note(summaries: Mapping[str, Mapping[str, object]]) -> str:
    """Why a study of these experiment summaries has no Sand fit ("" when none is due).

    A Sand fit needs depletion times at two or more current densities. Says so
    when some experiment reached t0 or there are several experiments; a single
    experiment without t0 has its own reason (``t0_reason``).
    """
    points = []
    for name, summary in summaries.items():
        current = summary.get("current_density_mA_cm2", math.nan)
        current = float(current) if isinstance(current, int | float | np.number) else math.nan
        if summary.get("t0_reached") and math.isfinite(current):
            points.append((name, current))
    currents = {round(abs(current), 9) for _, current in points}
    if len(currents) >= 2 or (not points and len(summaries) < 2):
        return ""
    listed = ", ".join(f"{name} ({current:.4g} mA/cm2)" for name, current in points)
    return (
        "a Sand fit needs depletion times at two or more current densities; "
        f"{len(points)} experiment(s) reached t0, at {len(currents)} current density(ies)"
        + (f": {listed}" if listed else "")
    )


@dataclass(frozen=True)
class ArrheniusFit:
    """ln(T/R) = ln A - E_A / (k_B T): activation energy of one resistance.

    Attributes
    ----------
    E_A_eV, E_A_stderr_eV
        Activation energy and its standard error, eV (stderr NaN with 2 points).
    n_points
        Temperatures in the fit.
    """

    E_A_eV: float
    E_A_stderr_eV: float
    n_points: int


def arrhenius_fit(temperature_K: np.ndarray, resistance: np.ndarray) -> ArrheniusFit:
    """Activation energy from the slope of ln(T/R) versus 1/T (slope = -E_A/k_B)."""
    t = np.asarray(temperature_K, dtype=np.float64)
    r = np.asarray(resistance, dtype=np.float64)
    keep = np.isfinite(t) & (t > 0) & np.isfinite(r) & (r > 0)
    n = int(np.sum(keep))
    if n < 2 or np.unique(t[keep]).size < 2:
        return ArrheniusFit(math.nan, math.nan, n)
    x = 1 / t[keep]
    y = np.log(t[keep] / r[keep])
    design = np.column_stack([x, np.ones(n)])
    coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
    stderr = math.nan
    if n > 2:
        residuals = y - design @ coefficients
        covariance = np.linalg.inv(design.T @ design) * (residuals @ residuals) / (n - 2)
        stderr = float(math.sqrt(covariance[0, 0]) * BOLTZMANN_EV_K)
    return ArrheniusFit(float(-coefficients[0] * BOLTZMANN_EV_K), stderr, n)


# ------------------------------------------------------------------------ relaxation


@dataclass(frozen=True)
class RelaxationFit:
    """y(t) = y_inf + (y_start - y_inf) exp(-((t - t_start) / tau)^beta).

    Attributes
    ----------
    tau_s, tau_stderr_s
        Relaxation time and its standard error, s.
    beta
        Stretching exponent (1 for the plain exponential).
    y_start, y_inf
        Fitted value at the segment start and after full relaxation.
    recovered_fraction
        (y_inf - y_start) / (y_reference - y_start): the share of the loss
        (relative to the reference value) that recovers.
    n_points
        Steps fitted.
    ok
        The fit converged with finite values.
    """

    tau_s: float
    tau_stderr_s: float
    beta: float
    y_start: float
    y_inf: float
    recovered_fraction: float
    n_points: int
    ok: bool


def _stretched(t, y_start, y_inf, log_tau, beta):
    return y_inf + (y_start - y_inf) * np.exp(-((np.clip(t, 0, None) / np.exp(log_tau)) ** beta))


def fit_relaxation(
    time_s: np.ndarray,
    values: np.ndarray,
    *,
    start_s: float | None = None,
    reference: float = 1.0,
    model: str = "exponential",
) -> RelaxationFit:
    """Fit an (optionally stretched) exponential to an open-circuit relaxation.

    Parameters
    ----------
    time_s, values
        The relaxation curve (e.g. relative contact R_ref/R_int or C_int/C_ref).
    start_s
        Time origin (the current stop); default the first time.
    reference
        Value before the loss: ``recovered_fraction`` is relative to it.
    model
        ``exponential`` or ``stretched``.
    """
    t = np.asarray(time_s, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(t) & np.isfinite(y)
    t, y = t[keep], y[keep]
    n = t.size
    stretched = model == "stretched"
    failed = RelaxationFit(math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, n, False)
    if n < (5 if stretched else 4):
        return failed
    origin = float(t[0] if start_s is None else start_s)
    dt = t - origin
    span = max(float(dt[-1] - dt[0]), 1e-9)
    guess = [y[0], y[-1], math.log(span / 3)]
    lower = [-np.inf, -np.inf, math.log(span * 1e-4)]
    upper = [np.inf, np.inf, math.log(span * 1e3)]
    if stretched:
        guess.append(0.9)
        lower.append(0.1)
        upper.append(1.5)

        def function(x, a, b, c, d):
            return _stretched(x, a, b, c, d)
    else:

        def function(x, a, b, c):
            return _stretched(x, a, b, c, 1.0)

    from scipy.optimize import curve_fit  # on first use: a quick package import

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            popt, pcov = curve_fit(function, dt, y, p0=guess, bounds=(lower, upper), maxfev=20000)
    except (RuntimeError, ValueError):
        return failed
    tau = math.exp(popt[2])
    tau_stderr = tau * math.sqrt(abs(pcov[2, 2])) if np.all(np.isfinite(pcov)) else math.nan
    y_start, y_inf = float(popt[0]), float(popt[1])
    with np.errstate(all="ignore"):
        recovered = (y_inf - y_start) / (reference - y_start)
    ok = bool(np.all(np.isfinite(popt)))
    return RelaxationFit(
        tau,
        float(tau_stderr),
        float(popt[3]) if stretched else 1.0,
        y_start,
        y_inf,
        float(recovered),
        n,
        ok,
    )


# ---------------------------------------------------------------- experiment summary


def _onset(time_s: np.ndarray, charge_mAh: np.ndarray, current_mA: np.ndarray, first: int) -> float:
    """Current onset of the loaded segment starting at step ``first``: t - 3600 q / I.

    ``q`` is the charge the instrument counted at that step (from its
    technique's start) and ``I`` the current, in any consistent units (mAh and
    mA, or per cm2). Falls back to the step's own time (0 for the first step).
    """
    t, q, i = time_s[first], charge_mAh[first], current_mA[first]
    onset = t - 3600 * abs(q) / abs(i) if np.isfinite(q) and np.isfinite(i) and i != 0 else math.nan
    earliest = time_s[first - 1] if first > 0 else 0.0
    if np.isfinite(onset) and earliest - 1e-6 <= onset <= t + 1e-6:
        return float(max(onset, 0.0))
    return float(t) if first > 0 else 0.0


#: How to give the electrode area (the reasons below say it).
GIVE_AREA = "give it with --area-cm2 or experiment.area_cm2 in the config"


def _depletion(
    time_s: np.ndarray,
    r_int: np.ndarray,
    fit_ok: np.ndarray,
    labels: np.ndarray,
    segment_numbers: np.ndarray,
    onsets: Mapping[int, float],
    threshold: float,
    kind: str,
    potential_V: np.ndarray | None = None,
    potential_cutoff_V: float | None = None,
) -> tuple[DepletionTime, float, int, str, str]:
    """Depletion within the stripping segments: (result, onset, segment, reason, criterion).

    The first stripping segment whose R_int (ok fits only) crosses the
    threshold, or whose |E| reaches ``potential_cutoff_V``, gives t0 (the
    earlier of the two), counted from that segment's current onset. The
    reason says why there is none ("" when reached); the criterion is
    ``R_int`` or ``potential cutoff`` ("" when not reached).
    """
    none = DepletionTime(math.nan, math.nan, math.nan, False)
    stripping = [int(number) for number in np.unique(segment_numbers[labels == STRIP])]
    if not stripping:
        reason = (
            f"no galvanostatic stripping in this experiment (kind: {kind}): a depletion "
            "time and Sand's D_eff exist only for a stripping experiment"
        )
        return none, math.nan, -1, reason, ""
    potential = (
        np.abs(np.asarray(potential_V, dtype=np.float64))
        if potential_V is not None and potential_cutoff_V is not None
        else None
    )
    ok = fit_ok & np.isfinite(r_int) & (labels == STRIP)
    for number in stripping:
        steps = segment_numbers == number
        onset = onsets.get(number, float(time_s[np.flatnonzero(steps)[0]]))
        found = []
        by_r = depletion_time(time_s, r_int, threshold, valid=ok & steps, onset_s=onset)
        if by_r.reached:
            found.append((by_r.crossing_time_s, by_r, "R_int"))
        if potential is not None:
            by_e = depletion_time(time_s, potential, potential_cutoff_V, valid=steps, onset_s=onset)
            if by_e.reached:
                found.append((by_e.crossing_time_s, by_e, "potential cutoff"))
        if found:
            _, result, criterion = min(found, key=lambda item: item[0])
            return result, onset, number, "", criterion
    if not ok.any():
        if not (fit_ok & (labels == STRIP)).any():
            reason = "no stripping step has an ok circuit fit"
        else:
            reason = "no electrode area: the R_int threshold is in ohm cm2; " + GIVE_AREA
    else:
        reason = (
            f"R_int stayed below the threshold {threshold:g} ohm cm2 while stripping "
            f"(highest with an ok fit: {float(np.max(r_int[ok])):.4g} ohm cm2)"
        )
    if potential is not None:
        strip_potential = potential[(labels == STRIP) & np.isfinite(potential)]
        highest = f" (highest {strip_potential.max():.4g} V)" if strip_potential.size else ""
        reason += f"; |E| stayed below the {potential_cutoff_V:g} V cutoff{highest}"
    return none, onsets.get(stripping[0], math.nan), stripping[0], reason, ""


def summarize_tracking(
    columns: Mapping[str, np.ndarray],
    reference_step: int,
    *,
    r_int_threshold_ohm_cm2: float = 10000.0,
    c0_mol_cm3: float = 0.0768,
    current_density_mA_cm2: float | None = None,
    relaxation_model: str = "exponential",
    temperature_K: float | None = None,
    current_mA: np.ndarray | None = None,
    charge_mAh: np.ndarray | None = None,
    potential_cutoff_V: float | None = None,
) -> dict[str, object]:
    """Experiment-level results from a :func:`track` table.

    Returns a flat dict of attributes:

    * ``experiment_kind``, ``experiment_kind_description``, ``segments`` (one
      dict per segment: label, first_step, last_step, start_s, stop_s,
      current_mA): what the experiment is, from the ``segment`` labels
      (:func:`geis_pipeline.kind.experiment_kind`);
    * ``t0_s``, ``t0_stderr_s``, ``t0_reached``, ``current_onset_s``: depletion
      time, only for a stripping segment: R_int (ok fits of the segment) first
      above ``r_int_threshold_ohm_cm2``, or (with ``potential_cutoff_V``) |E_V|
      first at the cutoff, whichever comes first, counted from the segment's
      current onset; ``t0_criterion`` says which (``R_int``, ``potential
      cutoff``), ``t0_reason`` why there is none ("" when reached);
    * ``current_density_mA_cm2``: the override, else the median |i| of the
      stripping segment (else of the first loaded one); ``D_eff_cm2_s``:
      Sand's D from t0, with ``D_eff_reason`` ("" when computed);
    * ``relaxation_*``: the first open-circuit segment after a loaded one,
      fitted on the relative contact from resistance (R_ref / R_int) and from
      capacitance (C_int / C_ref, reliable steps only): ``relaxation_tau_s``,
      ``relaxation_tau_stderr_s``, ``relaxation_beta``,
      ``relaxation_recovered_fraction``, ``relaxation_C_tau_s``,
      ``relaxation_C_tau_stderr_s``, ``relaxation_C_recovered_fraction``,
      ``relaxation_start_s``, ``n_relaxation_steps`` (NaN / 0 without one);
    * ``R_b_ref_ohm_cm2``, ``R_gb_ref_ohm_cm2``, ``R_int_ref_ohm_cm2``,
      ``C_int_ref_F_cm2``: values at the reference step (for Arrhenius);
      ``temperature_K`` when known.

    ``current_mA`` and ``charge_mAh`` (per step, as the instrument recorded
    them) place the current onset when the table has no area-specific charge.
    """
    time_s = np.asarray(columns["time_s"], dtype=np.float64)
    n = time_s.size
    nan = np.full(n, np.nan)
    r_int = np.asarray(columns.get("R_int_ohm_cm2", nan), dtype=np.float64)
    c_int = np.asarray(columns.get("C_int_F_cm2", nan), dtype=np.float64)
    fit_ok = np.asarray(columns.get("fit_ok", np.ones(n, bool)), dtype=bool)
    density = np.asarray(columns.get("current_density_mA_cm2", nan), dtype=np.float64)
    labels = np.asarray(columns.get("segment", np.full(n, UNKNOWN, dtype=object)), dtype=object)
    segments = np.asarray(columns.get("segment_index", np.zeros(n, np.int64)))
    # The onset needs charge / current in one unit: per cm2, else as recorded.
    charge = np.asarray(columns.get("charge_mAh_cm2", nan), dtype=np.float64)
    current = density
    if not np.isfinite(charge).any() and charge_mAh is not None and current_mA is not None:
        charge = np.asarray(charge_mAh, dtype=np.float64)
        current = np.asarray(current_mA, dtype=np.float64)
    summary: dict[str, object] = {}
    kind = experiment_kind(labels, time_s, current_mA)
    summary |= {
        "experiment_kind": kind.kind,
        "experiment_kind_description": kind.description,
        "segments": [segment.as_dict() for segment in kind.segments],
    }

    loaded = (labels == STRIP) | (labels == PLATE)
    loaded_segments = [int(number) for number in np.unique(segments[loaded])]
    onsets = {
        number: _onset(time_s, charge, current, int(np.flatnonzero(segments == number)[0]))
        for number in loaded_segments
    }
    depletion, onset, segment, reason, criterion = _depletion(
        time_s,
        r_int,
        fit_ok,
        labels,
        segments,
        onsets,
        r_int_threshold_ohm_cm2,
        kind.kind,
        columns.get("E_V"),
        potential_cutoff_V,
    )
    if current_density_mA_cm2 is not None:
        i = abs(float(current_density_mA_cm2))
    else:
        chosen = segment if segment >= 0 else (loaded_segments[0] if loaded_segments else -1)
        values = np.abs(density[segments == chosen]) if chosen >= 0 else np.empty(0)
        values = values[np.isfinite(values)]
        i = float(np.median(values)) if values.size else math.nan
    d_eff, d_reason = math.nan, reason
    if depletion.reached:
        if np.isfinite(i) and i > 0:
            d_eff, d_reason = sand_diffusivity(depletion.t0_s, i, c0_mol_cm3), ""
        else:
            d_reason = "no stripping current density (needs the electrode area): " + GIVE_AREA
    summary |= {
        "t0_s": depletion.t0_s,
        "t0_stderr_s": depletion.t0_stderr_s,
        "t0_reached": depletion.reached,
        "t0_reason": reason,
        "t0_criterion": criterion,
        "current_onset_s": onset,
        "r_int_threshold_ohm_cm2": float(r_int_threshold_ohm_cm2),
        "current_density_mA_cm2": i,
        "c0_mol_cm3": float(c0_mol_cm3),
        "D_eff_cm2_s": d_eff,
        "D_eff_reason": d_reason,
    }

    relaxation: dict[str, object] = {
        "relaxation_tau_s": math.nan,
        "relaxation_tau_stderr_s": math.nan,
        "relaxation_beta": math.nan,
        "relaxation_recovered_fraction": math.nan,
        "relaxation_C_tau_s": math.nan,
        "relaxation_C_tau_stderr_s": math.nan,
        "relaxation_C_recovered_fraction": math.nan,
        "relaxation_start_s": math.nan,
        "n_relaxation_steps": 0,
    }
    # Relaxation is relative (R_ref / R_int, C_int / C_ref): without an area the
    # absolute twins of the columns serve.
    r_rel, c_rel = r_int, c_int
    if not np.isfinite(r_rel).any() and "R_int_ohm" in columns:
        r_rel = np.asarray(columns["R_int_ohm"], dtype=np.float64)
    if not np.isfinite(c_rel).any() and "C_int_F" in columns:
        c_rel = np.asarray(columns["C_int_F"], dtype=np.float64)
    if 0 <= reference_step < n:
        r_ref, c_ref = r_rel[reference_step], c_rel[reference_step]
        after_load = [
            int(index)
            for index in np.unique(segments[labels == OCV])
            if np.any(loaded & (segments < index))
        ]
        if after_load:
            steps = np.flatnonzero((segments == after_load[0]) & fit_ok)
            reliable = np.asarray(columns.get("C_int_reliable", np.ones(n, bool)), dtype=bool)
            if steps.size:
                start = float(time_s[steps[0]])
                with np.errstate(all="ignore"):
                    from_r = fit_relaxation(
                        time_s[steps], r_ref / r_rel[steps], start_s=start, model=relaxation_model
                    )
                    c_steps = steps[reliable[steps]]
                    from_c = fit_relaxation(
                        time_s[c_steps], c_rel[c_steps] / c_ref, start_s=start,
                        model=relaxation_model,
                    )  # fmt: skip
                relaxation |= {
                    "relaxation_tau_s": from_r.tau_s,
                    "relaxation_tau_stderr_s": from_r.tau_stderr_s,
                    "relaxation_beta": from_r.beta,
                    "relaxation_recovered_fraction": from_r.recovered_fraction,
                    "relaxation_C_tau_s": from_c.tau_s,
                    "relaxation_C_tau_stderr_s": from_c.tau_stderr_s,
                    "relaxation_C_recovered_fraction": from_c.recovered_fraction,
                    "relaxation_start_s": start,
                    "n_relaxation_steps": int(steps.size),
                }
    summary |= relaxation
    for key in ("R_b_ohm_cm2", "R_gb_ohm_cm2", "R_int_ohm_cm2", "C_int_F_cm2"):
        value = math.nan
        if 0 <= reference_step < n and key in columns:
            value = float(columns[key][reference_step])
        name = key.replace("_ohm_cm2", "_ref_ohm_cm2").replace("_F_cm2", "_ref_F_cm2")
        summary[name] = value
    if temperature_K is not None:
        summary["temperature_K"] = float(temperature_K)
    return summary
