"""Per-step tracking of the interface: area-specific resistances, Brug capacitance, contact loss.

:func:`track` turns per-sweep fit results into the table researchers plot:
one row per time step, units in every column name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from geis_pipeline.physics import stripped_thickness_um

__all__ = ["TrackResult", "track"]


@dataclass(frozen=True)
class TrackResult:
    """The per-step table and the reference step the contact loss is relative to.

    Attributes
    ----------
    columns
        Column name (with unit) -> one value per time step.
    reference_step
        Step the contact loss is computed against (-1 if none is valid).
    """

    columns: Mapping[str, np.ndarray]
    reference_step: int


def _role_values(
    parameters: np.ndarray,
    parameter_names: Sequence[str],
    zarcs: Sequence[tuple[str, str]],
    roles: Mapping[str, str],
    role: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(R in ohm, Q, alpha) per step of the R||CPE block with the given role."""
    for resistor, capacitor in zarcs:
        if roles.get(resistor) == role or roles.get(capacitor) == role:
            resistance = parameters[:, parameter_names.index(resistor)]
            if f"{capacitor}_0" in parameter_names:
                q = parameters[:, parameter_names.index(f"{capacitor}_0")]
                alpha = parameters[:, parameter_names.index(f"{capacitor}_1")]
            else:
                q = parameters[:, parameter_names.index(capacitor)]
                alpha = np.ones_like(q)
            return resistance, q, alpha
    return None


def track(
    time_s: np.ndarray,
    *,
    parameters: np.ndarray,
    stderr: np.ndarray,
    parameter_names: Sequence[str],
    zarcs: Sequence[tuple[str, str]],
    roles: Mapping[str, str],
    fit_ok: np.ndarray,
    kk_ok: np.ndarray | None = None,
    potential_V: np.ndarray | None = None,
    charge_mAh: np.ndarray | None = None,
    area_cm2: float | None = None,
    interfaces: int = 1,
    reference_step: int | None = None,
    drt_R_int_ohm: np.ndarray | None = None,
    drt_tau_int_s: np.ndarray | None = None,
) -> TrackResult:
    """Track the interface through an experiment.

    Parameters
    ----------
    time_s
        Start of each sweep, s.
    parameters, stderr
        Fitted circuit parameters per step (n_steps, n_parameters), natural units.
    parameter_names, zarcs, roles
        The circuit's parameter names, R||CPE blocks and role of each element
        (``bulk``, ``gb``, ``int``).
    fit_ok, kk_ok
        Quality flags per step.
    potential_V, charge_mAh
        DC potential (V) and passed charge (mAh) per step.
    area_cm2
        Electrode area, cm2 (None: area-specific columns are NaN).
    interfaces
        Interfaces in series in the spectrum (2 for a symmetric cell): R_int
        and C_int are reported per interface.
    reference_step
        Step the contact loss is relative to; default the first step whose
        fit is ok.
    drt_R_int_ohm, drt_tau_int_s
        The DRT interface peak per step, an independent cross-check.

    Returns
    -------
    TrackResult
    """
    n_steps = time_s.size
    area = area_cm2 if area_cm2 else math.nan
    nan = np.full(n_steps, np.nan)
    columns: dict[str, np.ndarray] = {"time_s": np.asarray(time_s, dtype=np.float64)}
    charge = nan if charge_mAh is None else np.asarray(charge_mAh, dtype=np.float64)
    columns["charge_mAh_cm2"] = charge / area
    columns["stripped_Li_um"] = stripped_thickness_um(1.0) * columns["charge_mAh_cm2"]
    columns["E_V"] = nan if potential_V is None else np.asarray(potential_V, dtype=np.float64)
    names = list(parameter_names)
    for role, label in (("bulk", "R_b"), ("gb", "R_gb")):
        values = _role_values(parameters, names, zarcs, roles, role)
        columns[f"{label}_ohm_cm2"] = nan if values is None else values[0] * area
    interface = _role_values(parameters, names, zarcs, roles, "int")
    if interface is not None:
        resistance, q, alpha = interface
        with np.errstate(all="ignore"):
            tau = (resistance * q) ** (1 / alpha)
            capacitance = tau / resistance
        r_int = resistance * area / interfaces
        # Interfaces in series: each has twice the capacitance of the pair.
        c_int = capacitance * interfaces / area
        resistor = next(r for r, c in zarcs if roles.get(r) == "int" or roles.get(c) == "int")
        r_stderr = stderr[:, names.index(resistor)] * area / interfaces
    else:
        r_int = c_int = tau = alpha = r_stderr = nan
    columns["R_int_ohm_cm2"] = r_int
    columns["R_int_stderr_ohm_cm2"] = r_stderr
    columns["C_int_F_cm2"] = c_int
    columns["alpha_int"] = np.asarray(alpha, dtype=np.float64)
    columns["tau_int_s"] = np.asarray(tau, dtype=np.float64)
    with np.errstate(divide="ignore"):
        columns["f_apex_int_hz"] = 1 / (2 * np.pi * columns["tau_int_s"])
    fit_ok = np.asarray(fit_ok, dtype=bool)
    if reference_step is None:
        valid = np.flatnonzero(fit_ok & np.isfinite(columns["R_int_ohm_cm2"]))
        reference = int(valid[0]) if valid.size else -1
    else:
        reference = int(reference_step)
    if reference >= 0:
        with np.errstate(all="ignore"):
            columns["contact_loss_C"] = (
                1 - columns["C_int_F_cm2"] / columns["C_int_F_cm2"][reference]
            )
            columns["contact_loss_R"] = (
                1 - columns["R_int_ohm_cm2"][reference] / columns["R_int_ohm_cm2"]
            )
    else:
        columns["contact_loss_C"] = columns["contact_loss_R"] = nan
    if drt_R_int_ohm is not None:
        columns["R_int_drt_ohm_cm2"] = np.asarray(drt_R_int_ohm) * area / interfaces
    if drt_tau_int_s is not None:
        columns["tau_int_drt_s"] = np.asarray(drt_tau_int_s, dtype=np.float64)
    columns["fit_ok"] = fit_ok
    columns["kk_ok"] = np.ones(n_steps, dtype=bool) if kk_ok is None else np.asarray(kk_ok, bool)
    return TrackResult(columns, reference)
