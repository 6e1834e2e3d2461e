"""Study workflows across experiments: end points from the DC record, Sand per composition.

Pure functions of arrays (the orchestrator feeds them the experiments'
records): :func:`cutoff_end_point` finds when the stripping voltage reached a
cutoff and the capacity passed until then (Mann 2024, Table 1, where Sand's
D_eff comes from that capacity); :func:`sand_by_composition` fits Sand's
t0^(-1/2) = slope i per composition (krauskopf2020: Li, Li0.95Mg0.05 and
Li0.9Mg0.1 each at three currents, each with its own c0).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from geis_pipeline.physics import sand_diffusivity_from_capacity, stripped_thickness_um
from geis_pipeline.track import sand_fit

__all__ = [
    "CriticalCurrent",
    "CutoffEndPoint",
    "critical_current_density",
    "cutoff_end_point",
    "sand_by_composition",
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
    """

    reached: bool
    t_cutoff_s: float
    q_cutoff_mAh_cm2: float
    stripped_um: float
    D_eff_cm2_s: float


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
        needs no charge column.
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
    window = (time_s >= start) & (np.arange(time_s.size) <= hit)
    charge_mAs_cm2 = float(np.trapezoid(np.where(loaded, density, 0.0)[window], time_s[window]))
    q = abs(charge_mAs_cm2) / 3600.0
    i = float(np.median(np.abs(density[window & loaded])))
    return CutoffEndPoint(
        reached=True,
        t_cutoff_s=float(time_s[hit] - start),
        q_cutoff_mAh_cm2=q,
        stripped_um=stripped_thickness_um(q),
        D_eff_cm2_s=sand_diffusivity_from_capacity(q, i, c0_mol_cm3),
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
    # Plateaus: consecutive loaded points whose current agrees within 1 %.
    levels: list[tuple[float, float]] = []
    start = None
    for index in range(density.size + 1):
        same = (
            index < density.size
            and loaded[index]
            and start is not None
            and abs(density[index] - density[start]) <= 0.01 * abs(density[start])
        )
        if same:
            continue
        if start is not None:
            window = slice(start, index)
            eta = np.nanmedian(np.abs(potential[window] - ocv_V))
            levels.append((float(np.median(np.abs(density[window]))), float(eta)))
        start = index if index < density.size and loaded[index] else None
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
