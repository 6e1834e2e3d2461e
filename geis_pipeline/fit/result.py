"""What a fit returns: parameters, Brug capacitances, the physics' role table and the verdict."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

__all__ = [
    "REASONS",
    "ROLE_QUANTITIES",
    "ArcCapacitance",
    "FitResult",
    "RoleValues",
    "role_table",
]

#: Codes of the reasons a fit is not ok (``FitResult.reasons``), in the order they are checked.
REASONS: Mapping[str, str] = MappingProxyType(
    {
        "diverged": "the fit diverged (non-finite cost)",
        "not_converged": "the solver did not converge",
        "bound": "a parameter of a resolved arc sits at a bound",
        "residual": "the residuals exceed the noise level (wrong circuit or a bad start)",
        "kk": "the spectrum failed Kramers-Kronig validation",
        "unmatched": "a required role has no arc of its capacitance class",
        "unresolved": "a required role's arc is not determined by the data",
        "fixed": "the data contradict a value the user fixed (fit.fixed)",
        "misplaced": "a value fixed for a declared role sits on an arc that is no process",
    }
)


@dataclass(frozen=True)
class ArcCapacitance:
    """The Brug capacitance of one R||CPE (or R||C) block.

    Attributes
    ----------
    resistor, capacitor
        Element names (``R3``, ``CPE3``).
    role
        Role from the options (``int``, ``gb``...) or None.
    R_ohm
        Resistance, ohm.
    C_F
        Brug capacitance C = (Q R^(1-a))^(1/a), F.
    tau_s
        Time constant (R Q)^(1/a), s.
    f_apex_hz
        Apex frequency 1/(2 pi tau), Hz.
    alpha
        CPE exponent (1 for a capacitor).
    R_ohm_cm2, C_F_cm2
        Area-specific values (NaN without an area).
    R_stderr_ohm, C_stderr_F
        Standard errors (delta method, from the fit's covariance).
    R_resolved, C_resolved
        Whether the data determine R (R well above its standard error and
        not negligible) and C (apex inside the fitted band, C's relative
        standard error below 1/2).
    """

    resistor: str
    capacitor: str
    role: str | None
    R_ohm: float
    C_F: float
    tau_s: float
    f_apex_hz: float
    alpha: float
    R_ohm_cm2: float
    C_F_cm2: float
    R_stderr_ohm: float
    C_stderr_F: float
    R_resolved: bool = True
    C_resolved: bool = True

    @property
    def resolved(self) -> bool:
        return self.R_resolved and self.C_resolved


@dataclass(frozen=True)
class RoleValues:
    """One physical process of a fit: the values the tracking table carries.

    Values the data do not determine are NaN (an arc with R -> 0 has no R; an
    arc whose apex lies outside the band has no C, tau or alpha), so a number
    here is always one the spectrum supports.

    Attributes
    ----------
    role
        ``bulk``, ``gb``, ``int``, a custom role, or a series role.
    elements
        The elements that carry it (``("R3", "CPE3")``, ``("R0",)``).
    arc
        Index of its R||CPE block (into ``Circuit.zarcs``), None for a series element.
    R_ohm, R_stderr_ohm
        Resistance and its standard error, ohm (NaN for L or a tail).
    C_F, C_stderr_F, tau_s, alpha, f_apex_hz
        Brug capacitance (F), time constant (s), exponent, apex (Hz); NaN for series elements.
    R_ohm_cm2, C_F_cm2
        Area-specific values (NaN without an area).
    R_resolved, C_resolved
        As :class:`ArcCapacitance`.
    distance_decades
        How far the arc lies outside the role's capacitance class (0 inside).
    """

    role: str
    elements: tuple[str, ...] = ()
    arc: int | None = None
    R_ohm: float = math.nan
    R_stderr_ohm: float = math.nan
    C_F: float = math.nan
    C_stderr_F: float = math.nan
    tau_s: float = math.nan
    alpha: float = math.nan
    f_apex_hz: float = math.nan
    R_ohm_cm2: float = math.nan
    C_F_cm2: float = math.nan
    R_resolved: bool = False
    C_resolved: bool = False
    distance_decades: float = 0.0

    @classmethod
    def with_area(cls, role: str, area_cm2: float | None, **values) -> RoleValues:
        """The values given (the rest NaN / unresolved) and their per-area twins."""
        area = area_cm2 or math.nan
        return cls(
            role,
            R_ohm_cm2=values.get("R_ohm", math.nan) * area,
            C_F_cm2=values.get("C_F", math.nan) / area,
            **values,
        )


@dataclass(frozen=True)
class FitResult:
    """One spectrum's fit.

    Attributes
    ----------
    circuit
        The circuit string.
    parameters, stderr
        Parameter name -> value / standard error (natural units; stderr 0
        for fixed parameters, NaN where the covariance is singular).
    chi2
        Weighted sum of squared residuals over the points used.
    ok
        The verdict: converged, no parameter of a resolved arc at a bound,
        residuals consistent with the spectrum's noise, the spectrum passed
        Kramers-Kronig (when told), and every required role matched to a
        resolved arc. A number marked ok is one the data support.
    status
        ``"ok"`` or every reason it is not, in words (with the parameter,
        bound and value of a bound failure).
    reasons
        The codes of :data:`REASONS` that failed (empty when ok).
    mask
        Points used (bool per frequency).
    z_fit
        Model impedance at every frequency, ohm.
    residuals_real, residuals_imag
        (Z_fit - Z)/|Z| per point (NaN where not used).
    capacitances
        Key (role, else resistor name) -> :class:`ArcCapacitance` of every
        R||CPE block; the role is the one the physics gave the arc.
    roles
        Role -> :class:`RoleValues`: every declared role (arcs by
        identification, series elements by name); a role no arc matches is
        present with NaN values.
    unmatched
        Role -> why no arc matches it.
    residual_rms
        RMS of the relative residuals (Z_fit - Z)/|Z| over the points used.
    noise_rms
        The spectrum's noise level the verdict compared with (NaN: unknown).
    start
        How the fit was started: ``cold``, ``warm`` or ``fallback`` (warm
        start replaced by a fresh one).
    n_iterations
        Levenberg-Marquardt steps of the kept start.
    at_bounds
        Free parameters at a bound.
    """

    circuit: str
    parameters: Mapping[str, float]
    stderr: Mapping[str, float]
    chi2: float
    ok: bool
    status: str
    mask: np.ndarray
    z_fit: np.ndarray
    residuals_real: np.ndarray
    residuals_imag: np.ndarray
    capacitances: Mapping[str, ArcCapacitance]
    start: str = "cold"
    n_iterations: int = 0
    at_bounds: tuple[str, ...] = field(default=())
    reasons: tuple[str, ...] = ()
    roles: Mapping[str, RoleValues] = field(default_factory=dict)
    unmatched: Mapping[str, str] = field(default_factory=dict)
    residual_rms: float = float("nan")
    noise_rms: float = float("nan")
    converged: bool = True

    @property
    def vector(self) -> np.ndarray:
        """Parameter values in the circuit's order."""
        return np.array(list(self.parameters.values()))


#: Quantities of a role table, one array per role (see :func:`role_table`).
ROLE_QUANTITIES = ("R_ohm", "R_stderr_ohm", "C_F", "C_stderr_F", "tau_s", "alpha")


def role_table(results: Sequence[FitResult]) -> dict[str, dict[str, np.ndarray]]:
    """The role values of a series of fits as arrays: role -> quantity -> one value per step.

    Quantities are :data:`ROLE_QUANTITIES` (R in ohm, C in F, tau in s,
    alpha); NaN where a step's data do not determine them or no arc matches
    the role. The input of :func:`geis_pipeline.track.track`.
    """
    roles: list[str] = []
    for result in results:
        roles.extend(role for role in result.roles if role not in roles)
    table: dict[str, dict[str, np.ndarray]] = {}
    for role in roles:
        table[role] = {
            quantity: np.array(
                [
                    getattr(result.roles[role], quantity) if role in result.roles else np.nan
                    for result in results
                ],
                dtype=np.float64,
            )
            for quantity in ROLE_QUANTITIES
        }
    return table
