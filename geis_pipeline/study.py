"""Study workflows across experiments: end points from the DC record, Sand per composition.

Pure functions of arrays (the orchestrator feeds them the experiments'
records): :func:`cutoff_end_point` finds when the stripping voltage reached a
cutoff and the capacity passed until then (Mann 2024, Table 1, where Sand's
D_eff comes from that capacity); :func:`sand_by_composition` fits Sand's
t0^(-1/2) = slope i per composition (krauskopf2020: Li, Li0.95Mg0.05 and
Li0.9Mg0.1 each at three currents, each with its own c0);
:func:`diffusivity_arrhenius` fits D_eff(T) of one composition (E_A and D_eff
at any temperature, krauskopf2020 section 3); :func:`pressure_series` lists
R_int(0), t0 and the contact loss against stack pressure (krauskopf2019) with
the power law of R_int(0); :func:`constriction_column` is krauskopf2019's eq. 1
for an experiment's force (or pressure times area).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from geis_pipeline.physics import (
    BOLTZMANN_EV_K,
    arrhenius_extrapolate,
    constriction_resistance_ohm,
    sand_diffusivity_from_capacity,
    stripped_thickness_um,
)
from geis_pipeline.track import sand_fit

__all__ = [
    "CriticalCurrent",
    "CutoffEndPoint",
    "DiffusivityArrhenius",
    "constriction_column",
    "critical_current_density",
    "cutoff_end_point",
    "diffusivity_arrhenius",
    "pressure_series",
    "sand_by_composition",
    "value_at_time",
]


@dataclass(frozen=True)
class CutoffEndPoint:
    """When the stripping voltage reached the cutoff.

    Attributes
    ----------
    reached
        Whether it did.
    t_cutoff_s
        Time from the current onset, s (NaN when not reached).
    q_cutoff_mAh_cm2
        Capacity passed until then, mAh/cm2.
    stripped_um
        The lithium it strips, um.
    D_eff_cm2_s
        Sand's D_eff from the capacity, 4 i^2 t / (pi c0^2 F^2) with t = 3600 q / i.
    t_cutoff_stderr_s, q_cutoff_stderr_mAh_cm2, stripped_stderr_um, D_eff_stderr_cm2_s
        Their standard errors from where the crossing lies between the two DC
        samples around it (uniform: interval / sqrt(12)); D_eff ~ t, so its
        relative error is t's.
    """

    reached: bool
    t_cutoff_s: float
    q_cutoff_mAh_cm2: float
    stripped_um: float
    D_eff_cm2_s: float
    t_cutoff_stderr_s: float = math.nan
    q_cutoff_stderr_mAh_cm2: float = math.nan
    stripped_stderr_um: float = math.nan
    D_eff_stderr_cm2_s: float = math.nan


def cutoff_end_point(
    time_s: np.ndarray,
    potential_V: np.ndarray,
    current_density_mA_cm2: np.ndarray,
    cutoff_V: float,
    *,
    c0_mol_cm3: float,
    onset_s: float | None = None,
    ocv_current_density_mA_cm2: float = 1e-3,
) -> CutoffEndPoint:
    """The first time the potential under current reaches the cutoff, and what it took.

    Parameters
    ----------
    time_s, potential_V, current_density_mA_cm2
        The DC record (or the sweeps' DC values): s, V, mA/cm2 (positive = stripping).
    cutoff_V
        The cutoff: reached when E >= cutoff (a positive one) or E <= cutoff (negative).
    c0_mol_cm3
        Li concentration of the electrode, mol/cm3.
    onset_s
        When the current started, s (default: the first loaded point).
    ocv_current_density_mA_cm2
        |i| at or below this is open circuit.

    Returns
    -------
    CutoffEndPoint
        The capacity is the integral of i dt from the onset (trapezoid), so it
        needs no charge column. The crossing is interpolated linearly between
        the last sample before the cutoff and the first at it.
    """
    time_s = np.asarray(time_s, dtype=np.float64)
    potential = np.asarray(potential_V, dtype=np.float64)
    density = np.asarray(current_density_mA_cm2, dtype=np.float64)
    nan = CutoffEndPoint(False, math.nan, math.nan, math.nan, math.nan)
    order = np.argsort(time_s, kind="stable")
    time_s, potential, density = time_s[order], potential[order], density[order]
    loaded = np.isfinite(density) & (np.abs(density) > ocv_current_density_mA_cm2)
    if not loaded.any():
        return nan
    start = float(time_s[np.flatnonzero(loaded)[0]]) if onset_s is None else float(onset_s)
    beyond = potential >= cutoff_V if cutoff_V > 0 else potential <= cutoff_V
    hits = np.flatnonzero(beyond & loaded & (time_s >= start))
    if not hits.size:
        return nan
    hit = int(hits[0])
    crossing, interval = float(time_s[hit]), math.nan
    if hit > 0 and time_s[hit - 1] >= start and loaded[hit - 1]:
        before, after = float(potential[hit - 1]), float(potential[hit])
        interval = float(time_s[hit] - time_s[hit - 1])
        if np.isfinite(before) and after != before:
            share = min(max((cutoff_V - before) / (after - before), 0.0), 1.0)
            crossing = float(time_s[hit - 1]) + share * interval
    window = (time_s >= start) & (np.arange(time_s.size) < hit)
    times = np.append(time_s[window], crossing)
    densities = np.append(np.where(loaded, density, 0.0)[window], density[hit])
    q = abs(float(np.trapezoid(densities, times))) / 3600.0
    i = float(np.median(np.abs(density[(window | (np.arange(time_s.size) == hit)) & loaded])))
    t_cutoff = crossing - start
    t_stderr = interval / math.sqrt(12.0)
    d_eff = sand_diffusivity_from_capacity(q, i, c0_mol_cm3)
    relative = t_stderr / t_cutoff if t_cutoff > 0 else math.nan
    return CutoffEndPoint(
        reached=True,
        t_cutoff_s=t_cutoff,
        q_cutoff_mAh_cm2=q,
        stripped_um=stripped_thickness_um(q),
        D_eff_cm2_s=d_eff,
        t_cutoff_stderr_s=t_stderr,
        q_cutoff_stderr_mAh_cm2=q * relative,
        stripped_stderr_um=stripped_thickness_um(q) * relative,
        D_eff_stderr_cm2_s=d_eff * relative,
    )


def sand_by_composition(
    summaries: Mapping[str, Mapping[str, object]],
    *,
    compositions: Mapping[str, str],
    c0_mol_cm3: Mapping[str, float],
    through_origin: bool = True,
) -> dict[str, dict[str, object]]:
    """Sand's fit of t0^(-1/2) versus i for each composition with two or more currents.

    Parameters
    ----------
    summaries
        Experiment -> its summary (``t0_s``, ``t0_stderr_s``, ``current_density_mA_cm2``).
    compositions
        Experiment -> composition label.
    c0_mol_cm3
        Composition -> its Li concentration, mol/cm3.
    through_origin
        Fit through the origin (else with an intercept).

    Returns
    -------
    dict
        Composition -> ``D_eff_cm2_s``, ``D_eff_stderr_cm2_s``, ``slope``, its
        stderr, the intercept, ``c0_mol_cm3``, ``experiments`` and their
        currents and t0; a composition with fewer than two currents gets
        ``reason`` instead (and NaN).
    """
    groups: dict[str, list[str]] = {}
    for name in summaries:
        groups.setdefault(compositions.get(name, ""), []).append(name)
    results: dict[str, dict[str, object]] = {}
    for composition, names in groups.items():
        if not composition:
            continue
        t0 = _values(summaries, names, "t0_s")
        current = _values(summaries, names, "current_density_mA_cm2")
        stderr = _values(summaries, names, "t0_stderr_s")
        usable = np.isfinite(t0) & np.isfinite(current) & (current != 0)
        kept = [name for name, keep in zip(names, usable, strict=True) if keep]
        entry: dict[str, object] = {
            "c0_mol_cm3": float(c0_mol_cm3[composition]),
            "experiments": kept,
            "current_density_mA_cm2": [float(value) for value in current[usable]],
            "t0_s": [float(value) for value in t0[usable]],
            "through_origin": through_origin,
        }
        if np.unique(np.abs(current[usable])).size < 2:
            entry["D_eff_cm2_s"] = math.nan
            entry["reason"] = (
                f"{len(kept)} experiment(s) with t0 at {np.unique(np.abs(current[usable])).size} "
                "current(s): Sand's fit needs two currents or more"
            )
            results[composition] = entry
            continue
        fitted = sand_fit(
            t0[usable],
            current[usable],
            float(c0_mol_cm3[composition]),
            t0_stderr_s=stderr[usable],
            through_origin=through_origin,
        )
        entry |= {
            "D_eff_cm2_s": fitted.D_eff_cm2_s,
            "D_eff_stderr_cm2_s": fitted.D_eff_stderr_cm2_s,
            "slope": fitted.slope,
            "slope_stderr": fitted.slope_stderr,
            "intercept_s-0.5": fitted.intercept,
            "n_experiments": fitted.n_experiments,
        }
        results[composition] = entry
    return results


def _values(summaries: Mapping[str, Mapping[str, object]], names: Sequence[str], key: str):
    return np.array([float(summaries[name].get(key, math.nan)) for name in names], dtype=np.float64)


@dataclass(frozen=True)
class CriticalCurrent:
    """The critical current density of a staircase-current experiment.

    Attributes
    ----------
    found
        Whether a step failed.
    ccd_mA_cm2
        The current density of the first step whose overpotential stopped being
        proportional to i (or exceeded the limit), mA/cm2 (NaN when none failed).
    step_currents_mA_cm2, step_resistance_ohm_cm2
        Each current step's density and its overpotential over current (median).
    reason
        Why that step failed, or why there is no staircase.
    """

    found: bool
    ccd_mA_cm2: float
    step_currents_mA_cm2: tuple[float, ...]
    step_resistance_ohm_cm2: tuple[float, ...]
    reason: str


def _plateaus(density: np.ndarray, loaded: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each plateau: consecutive loaded points whose current agrees within
    1 % with the plateau's first point.

    Each plateau's end is searched in windows that double in size, so a DC record of millions
    of rows costs a few numpy calls per plateau, not a Python step per row.
    """
    n = density.size
    loaded_rows = np.flatnonzero(loaded)
    plateaus: list[tuple[int, int]] = []
    position = 0
    while True:
        following = np.searchsorted(loaded_rows, position)
        if following >= loaded_rows.size:
            return plateaus
        start = int(loaded_rows[following])
        reference = density[start]
        tolerance = 0.01 * abs(reference)
        stop, width = start + 1, 64
        while stop < n:
            window = slice(stop, min(n, stop + width))
            same = loaded[window] & (np.abs(density[window] - reference) <= tolerance)
            if not same.all():
                stop += int(np.argmin(same))
                break
            stop, width = window.stop, 2 * width
        plateaus.append((start, stop))
        position = stop


def critical_current_density(
    time_s: np.ndarray,
    potential_V: np.ndarray,
    current_density_mA_cm2: np.ndarray,
    *,
    ocv_V: float = 0.0,
    ratio_limit: float = 1.5,
    max_overpotential_V: float | None = None,
    ocv_current_density_mA_cm2: float = 1e-3,
) -> CriticalCurrent:
    """The first step of a rising current staircase at which the cell stops being ohmic.

    Mann 2024 raises the current in 50 uA/cm2 steps until the voltage diverges.
    Each plateau of constant current is one step; its overpotential over current
    (median over the plateau) is compared with the first step's: the first
    step above ``ratio_limit`` times it (or whose overpotential exceeds
    ``max_overpotential_V``) is the critical one.

    Parameters
    ----------
    time_s, potential_V, current_density_mA_cm2
        The DC record: s, V, mA/cm2.
    ocv_V
        The open-circuit voltage the overpotential is counted from, V.
    ratio_limit
        How much the resistance E/i may grow before a step counts as failed.
    max_overpotential_V
        Optional absolute limit of the overpotential, V.
    ocv_current_density_mA_cm2
        |i| at or below this is open circuit.
    """
    order = np.argsort(np.asarray(time_s, dtype=np.float64), kind="stable")
    potential = np.asarray(potential_V, dtype=np.float64)[order]
    density = np.asarray(current_density_mA_cm2, dtype=np.float64)[order]
    loaded = np.isfinite(density) & (np.abs(density) > ocv_current_density_mA_cm2)
    levels: list[tuple[float, float]] = []
    for start, stop in _plateaus(density, loaded):
        window = slice(start, stop)
        eta = np.nanmedian(np.abs(potential[window] - ocv_V))
        levels.append((float(np.median(np.abs(density[window]))), float(eta)))
    currents = tuple(level for level, _ in levels)
    resistances = tuple(1e3 * eta / level for level, eta in levels)  # V / (mA/cm2) -> ohm cm2
    if len(levels) < 3 or not all(b > a for a, b in itertools.pairwise(currents)):
        return CriticalCurrent(
            False, math.nan, currents, resistances, "no rising current staircase (3+ steps)"
        )
    for index, ((level, eta), resistance) in enumerate(zip(levels, resistances, strict=True)):
        if index == 0:
            continue
        if resistance > ratio_limit * resistances[0]:
            reason = (
                f"E/i rose to {resistance:.3g} ohm cm2, above {ratio_limit:g}x the first "
                f"step's {resistances[0]:.3g}"
            )
            return CriticalCurrent(True, level, currents, resistances, reason)
        if max_overpotential_V is not None and eta > max_overpotential_V:
            reason = f"overpotential {eta:.3g} V above the limit {max_overpotential_V:g} V"
            return CriticalCurrent(True, level, currents, resistances, reason)
    return CriticalCurrent(False, math.nan, currents, resistances, "every step stayed ohmic")


@dataclass(frozen=True)
class DiffusivityArrhenius:
    """D_eff(T) = D_ref exp[-E_A/k_B (1/T - 1/T_ref)] fitted to one composition.

    Attributes
    ----------
    E_A_eV, E_A_stderr_eV
        Activation energy and its standard error, eV.
    D_ref_cm2_s, D_ref_stderr_cm2_s
        D_eff at the reference temperature and its standard error, cm2/s.
    reference_temperature_K
        T_ref, K.
    n_points
        Experiments in the fit.
    """

    E_A_eV: float
    E_A_stderr_eV: float
    D_ref_cm2_s: float
    D_ref_stderr_cm2_s: float
    reference_temperature_K: float
    n_points: int

    def at(self, temperature_K: float) -> float:
        """D_eff at ``temperature_K`` (K), cm2/s."""
        return arrhenius_extrapolate(
            self.D_ref_cm2_s, self.reference_temperature_K, self.E_A_eV, temperature_K
        )


def diffusivity_arrhenius(
    temperature_K: np.ndarray,
    D_eff_cm2_s: np.ndarray,
    *,
    D_eff_stderr_cm2_s: np.ndarray | None = None,
    reference_temperature_K: float = 298.15,
) -> DiffusivityArrhenius:
    """Fit ln D = ln D_ref - (E_A/k_B)(1/T - 1/T_ref) over experiments at two or more T.

    Parameters
    ----------
    temperature_K, D_eff_cm2_s
        Each experiment's temperature (K) and D_eff (cm2/s).
    D_eff_stderr_cm2_s
        Their standard errors: with all of them finite the fit is weighted by
        them and its errors come from them; else the errors come from the
        residuals (NaN with two points).
    reference_temperature_K
        Where D_ref is given, K.
    """
    t = np.asarray(temperature_K, dtype=np.float64)
    d = np.asarray(D_eff_cm2_s, dtype=np.float64)
    keep = np.isfinite(t) & (t > 0) & np.isfinite(d) & (d > 0)
    n = int(np.sum(keep))
    if n < 2 or np.unique(t[keep]).size < 2:
        return DiffusivityArrhenius(
            math.nan, math.nan, math.nan, math.nan, reference_temperature_K, n
        )
    x = 1 / t[keep] - 1 / reference_temperature_K
    y = np.log(d[keep])
    sigma = None
    if D_eff_stderr_cm2_s is not None:
        stderr = np.asarray(D_eff_stderr_cm2_s, dtype=np.float64)[keep]
        if np.all(np.isfinite(stderr) & (stderr > 0)):
            sigma = stderr / d[keep]  # of ln D
    coefficients, covariance = _line_fit(x, y, sigma)
    slope, intercept = coefficients
    d_ref = float(math.exp(intercept))
    return DiffusivityArrhenius(
        E_A_eV=float(-slope * BOLTZMANN_EV_K),
        E_A_stderr_eV=float(math.sqrt(covariance[0, 0]) * BOLTZMANN_EV_K),
        D_ref_cm2_s=d_ref,
        D_ref_stderr_cm2_s=float(d_ref * math.sqrt(covariance[1, 1])),
        reference_temperature_K=float(reference_temperature_K),
        n_points=n,
    )


def _line_fit(
    x: np.ndarray, y: np.ndarray, sigma: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """y = slope x + intercept: (slope, intercept) and their covariance.

    With ``sigma`` (y's standard errors) the fit is weighted and the covariance
    comes from them; else from the residuals (NaN with two points).
    """
    design = np.column_stack([x, np.ones(x.size)])
    weights = np.ones(x.size) if sigma is None else 1 / sigma
    coefficients, *_ = np.linalg.lstsq(design * weights[:, None], y * weights, rcond=None)
    normal = np.linalg.inv((design * weights[:, None] ** 2).T @ design)
    if sigma is not None:
        return coefficients, normal
    if x.size > 2:
        residuals = y - design @ coefficients
        return coefficients, normal * (residuals @ residuals) / (x.size - 2)
    return coefficients, np.full((2, 2), np.nan)


def value_at_time(time_s: np.ndarray, values: np.ndarray, valid: np.ndarray, at_s: float) -> float:
    """``values`` (valid steps only) linearly interpolated at ``at_s``, NaN outside them."""
    time_s = np.asarray(time_s, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    keep = np.asarray(valid, dtype=bool) & np.isfinite(values) & np.isfinite(time_s)
    if not keep.any() or not math.isfinite(at_s):
        return math.nan
    t, v = time_s[keep], values[keep]
    if at_s < t.min() or at_s > t.max():
        return math.nan
    return float(np.interp(at_s, t, v))


def constriction_column(
    *,
    area_cm2: float | None,
    force_N: float | None = None,
    stack_pressure_MPa: float | None = None,
    conductivity_S_cm: float,
    hardness_MPa: float,
) -> dict[str, float]:
    """krauskopf2019 eq. 1 for one experiment: ``{}`` without a force (or pressure) and area.

    The force is ``force_N``, else the stack pressure on the electrode area
    (1 MPa on 1 cm2 = 100 N). Returns ``force_N``, ``R_constriction_ohm`` and
    ``R_constriction_ohm_cm2`` (times the area, comparable with R_int).
    """
    if force_N is None and stack_pressure_MPa is not None and area_cm2:
        force_N = stack_pressure_MPa * 100.0 * area_cm2
    if force_N is None or not area_cm2:
        return {}
    resistance = constriction_resistance_ohm(force_N, conductivity_S_cm, hardness_MPa)
    return {
        "force_N": float(force_N),
        "R_constriction_ohm": resistance,
        "R_constriction_ohm_cm2": resistance * area_cm2,
    }


#: Per-experiment summary keys a pressure series lists (R_int(0), t0, contact loss at t0).
PRESSURE_KEYS = (
    "R_int_ref_ohm_cm2",
    "t0_s",
    "contact_loss_C_t0",
    "contact_loss_R_t0",
    "force_N",
    "R_constriction_ohm_cm2",
)


def pressure_series(summaries: Mapping[str, Mapping[str, object]]) -> dict[str, object]:
    """R_int(0), t0 and the contact loss at t0 against stack pressure, by pressure.

    Parameters
    ----------
    summaries
        Experiment -> its summary (``stack_pressure_MPa`` and :data:`PRESSURE_KEYS`).

    Returns
    -------
    dict
        ``{}`` with fewer than two pressures; else ``experiments``,
        ``stack_pressure_MPa`` and each key of :data:`PRESSURE_KEYS` as lists in
        order of pressure, and the power law R_int(0) ~ p^n fitted in log-log
        (``R_int_pressure_exponent`` with its stderr; constriction predicts -1/2).
    """
    named = [
        (float(summary["stack_pressure_MPa"]), name)
        for name, summary in summaries.items()
        if summary.get("stack_pressure_MPa") is not None
    ]
    if len({pressure for pressure, _ in named}) < 2:
        return {}
    named.sort()
    names = [name for _, name in named]
    series: dict[str, object] = {
        "experiments": names,
        "stack_pressure_MPa": [pressure for pressure, _ in named],
        "n_experiments": len(names),
    }
    for key in PRESSURE_KEYS:
        series[key] = [float(summaries[name].get(key, math.nan)) for name in names]
    pressure = np.array(series["stack_pressure_MPa"])
    resistance = np.array(series["R_int_ref_ohm_cm2"])
    keep = np.isfinite(resistance) & (resistance > 0)
    exponent, stderr = math.nan, math.nan
    if np.unique(pressure[keep]).size >= 2:
        coefficients, covariance = _line_fit(np.log(pressure[keep]), np.log(resistance[keep]))
        exponent, stderr = float(coefficients[0]), float(math.sqrt(covariance[0, 0]))
    series["R_int_pressure_exponent"] = exponent
    series["R_int_pressure_exponent_stderr"] = stderr
    return series
