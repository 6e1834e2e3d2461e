"""Equivalent-circuit fitting with Brug capacitances, automatic start values and warm starts.

:func:`fit_circuit` fits one spectrum; :func:`fit_experiment` fits a time
series, starting each fit from the previous step's result and falling back
to a fresh start when the fit degrades or a parameter sticks at a bound.

Parameters are fitted in log space (they span 1e-10..1e4 in one circuit) with
an analytic Jacobian and a bounded Levenberg-Marquardt; standard errors come
from the Jacobian at the solution.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np
from scipy.linalg.lapack import dgesv

from geis_pipeline.elements import brug_capacitance, time_constant
from geis_pipeline.errors import FitError
from geis_pipeline.fit._solver import Solution, levenberg_marquardt
from geis_pipeline.fit.circuit import (
    ELEMENT_PARAMETERS,
    LINEAR_KINDS,
    Circuit,
    _Grid,
    parse_circuit,
)
from geis_pipeline.fit.initial import initial_guesses
from geis_pipeline.spectrum import Spectrum

__all__ = [
    "DEFAULT_BOUNDS",
    "WEIGHTINGS",
    "ArcCapacitance",
    "Circuit",
    "FitOptions",
    "FitResult",
    "fit_circuit",
    "fit_experiment",
    "parse_circuit",
]

#: Default bounds per element parameter (natural units: ohm, F, H, F s^(a-1), s).
DEFAULT_BOUNDS: dict[tuple[str, str], tuple[float, float]] = {
    ("R", "R"): (1e-4, 1e10),
    ("C", "C"): (1e-16, 1.0),
    ("L", "L"): (0.0, 1e-2),
    ("CPE", "Q"): (1e-16, 1e3),
    ("CPE", "alpha"): (0.3, 1.0),
    ("W", "A"): (1e-6, 1e10),
    ("Zarc", "R"): (1e-4, 1e10),
    ("Zarc", "tau"): (1e-12, 1e5),
    ("Zarc", "gamma"): (0.3, 1.0),
}

#: Residual weightings: modulus 1/|Z|, proportional 1/|Z'| and 1/|Z''|, unit 1.
WEIGHTINGS = ("modulus", "proportional", "unit")

# A warm-started fit is kept unless its chi-square is worse than this factor
# times the previous step's (the spectrum changed more than a warm start follows).
_WARM_CHI2_FACTOR = 3.0
# A parameter within this distance (in ln units) of a bound counts as at the bound.
_AT_BOUND_LN = 1e-3
# Frequency grids kept per options (an experiment has one or a few sweeps).
_GRID_CACHE_SIZE = 8
# Initial Levenberg-Marquardt damping (relative to each direction's curvature) from
# automatic start values and from a given start (previous step's result).
_COLD_DAMPING = 1e-3
_WARM_DAMPING = 1e-5


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


@dataclass(frozen=True)
class FitOptions:
    """Everything about a fit except the data, validated once per experiment.

    Attributes
    ----------
    circuit
        The compiled circuit.
    lower, upper
        Bounds of every parameter (natural units, impedance.py's order).
    fixed
        Parameter name -> fixed value.
    roles
        Element or parameter name -> role (``{"R3": "int"}``).
    weighting
        One of :data:`WEIGHTINGS`.
    area_cm2
        Electrode area for area-specific values, cm2 (None: NaN).
    max_iterations
        Levenberg-Marquardt iterations per start.
    """

    circuit: Circuit
    lower: np.ndarray
    upper: np.ndarray
    fixed: Mapping[str, float]
    roles: Mapping[str, str]
    weighting: str = "modulus"
    area_cm2: float | None = None
    max_iterations: int = 200

    @classmethod
    def build(
        cls,
        circuit: str | Circuit,
        *,
        bounds: Mapping[str, tuple[float, float]] | None = None,
        fixed: Mapping[str, float] | None = None,
        roles: Mapping[str, str] | None = None,
        weighting: str = "modulus",
        area_cm2: float | None = None,
        max_iterations: int = 200,
    ) -> FitOptions:
        """Validate options against the circuit.

        Raises
        ------
        FitError
            Unknown parameter names (the message lists the valid ones),
            bounds that are not 0 < lower < upper, fixed values outside their
            bounds, an unknown weighting.
        """
        compiled = circuit if isinstance(circuit, Circuit) else parse_circuit(circuit)
        names = compiled.parameter_names
        lower = np.empty(len(names))
        upper = np.empty(len(names))
        for position, (element, parameter) in enumerate(_parameter_kinds(compiled)):
            lower[position], upper[position] = DEFAULT_BOUNDS[(element, parameter)]
        valid = ", ".join(names)
        for name, (low, high) in (bounds or {}).items():
            if name not in names:
                raise FitError(f"unknown parameter {name!r}; valid: {valid}", key=f"bounds.{name}")
            minimum = 0.0 if name in _linear_names(compiled) else None
            if not (
                (low > 0 or (minimum == 0.0 and low == 0.0)) and low < high and math.isfinite(high)
            ):
                raise FitError(
                    f"bounds must satisfy 0 < lower < upper < inf (lower may be 0 for "
                    f"inductances), got ({low}, {high})",
                    key=f"bounds.{name}",
                )
            lower[names.index(name)], upper[names.index(name)] = low, high
        fixed = dict(fixed or {})
        for name, value in fixed.items():
            if name not in names:
                raise FitError(f"unknown parameter {name!r}; valid: {valid}", key=f"fixed.{name}")
            position = names.index(name)
            if not lower[position] <= value <= upper[position]:
                raise FitError(
                    f"fixed value {value} outside the bounds "
                    f"({lower[position]:g}, {upper[position]:g})",
                    key=f"fixed.{name}",
                )
        if len(fixed) == len(names):
            raise FitError("every parameter is fixed: nothing to fit", key="fixed")
        valid_roles = set(names) | set(compiled.element_names)
        for name in roles or {}:
            if name not in valid_roles:
                raise FitError(
                    f"unknown element {name!r}; valid: {', '.join(compiled.element_names)}",
                    key=f"roles.{name}",
                )
        if weighting not in WEIGHTINGS:
            raise FitError(
                f"unknown weighting {weighting!r}; choose one of {', '.join(WEIGHTINGS)}",
                key="weighting",
            )
        if area_cm2 is not None and not area_cm2 > 0:
            raise FitError(f"electrode area must be > 0 cm2, got {area_cm2}", key="area_cm2")
        return cls(
            compiled,
            lower,
            upper,
            MappingProxyType(fixed),
            MappingProxyType(dict(roles or {})),
            weighting,
            area_cm2,
            max_iterations,
        )

    @functools.cached_property
    def _layout(self) -> _Layout:
        """What every fit with these options needs, computed once per options."""
        return _Layout.build(self)


@dataclass(frozen=True, eq=False)
class _Arcs:
    """The R||CPE and R||C blocks as index arrays, for all Brug capacitances at once."""

    resistors: tuple[str, ...]
    capacitors: tuple[str, ...]
    roles: tuple[str | None, ...]
    resistance: np.ndarray  # parameter index of each arc's R
    charge: np.ndarray  # ... of its Q (C for a capacitor)
    alpha: np.ndarray  # ... of its exponent (0 for a capacitor: unused)
    has_alpha: np.ndarray  # False for a capacitor (alpha = 1)
    # Positions among the free parameters (-1: fixed) for the delta method.
    resistance_free: tuple[int, ...]
    charge_free: tuple[int, ...]
    alpha_free: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class _Layout:
    """Index arrays and names derived from the options (free, linear, arcs)."""

    free: np.ndarray  # bool per parameter
    free_index: np.ndarray  # indices of the free parameters
    free_names: tuple[str, ...]
    full: np.ndarray  # all parameters: the fixed values, 0 for the free ones
    linear_all: np.ndarray  # bool per parameter: fitted on a linear scale
    linear: np.ndarray  # bool per free parameter: fitted on a linear scale
    linear_index: np.ndarray  # positions of those among the free parameters
    linear_parameters: np.ndarray  # their indices among all parameters
    log_positions: np.ndarray  # positions of the log-scale ones among the free parameters
    log_parameters: np.ndarray  # their indices among all parameters
    all_free: bool
    # Solver bounds of the free parameters: ln of the bounds; a linear parameter's
    # natural bounds (each spectrum divides them by its own scale).
    lower: np.ndarray
    upper: np.ndarray
    # Free CPE exponents bounded above by 1: only their lower bound is a failure.
    ideal_at_upper: np.ndarray
    arcs: _Arcs
    fixed_index: np.ndarray  # indices of the fixed parameters
    # A start value must exceed this: 0 for log parameters, the largest negative
    # double for linear ones (which may be 0).
    start_floor: np.ndarray
    # Frequency grids by their frequencies' bytes: consecutive spectra of an
    # experiment share one sweep, whose grid is then computed once.
    grids: dict[bytes, _Grid] = field(default_factory=dict)

    def grid(self, circuit: Circuit, freq: np.ndarray) -> _Grid:
        key = freq.tobytes()
        grid = self.grids.get(key)
        if grid is None:
            if len(self.grids) >= _GRID_CACHE_SIZE:
                self.grids.clear()
            grid = self.grids[key] = circuit.grid(freq)
        return grid

    @classmethod
    def build(cls, options: FitOptions) -> _Layout:
        circuit = options.circuit
        names = circuit.parameter_names
        free = np.array([name not in options.fixed for name in names])
        full = np.zeros(len(names))
        for name, value in options.fixed.items():
            full[names.index(name)] = value
        linear_all = _linear_mask(circuit)
        linear = linear_all[free]
        free_names = tuple(name for name in names if name not in options.fixed)
        free_lower, free_upper = options.lower[free], options.upper[free]
        with np.errstate(divide="ignore"):
            lower = np.where(linear, free_lower, np.log(free_lower))
        upper = np.where(linear, free_upper, np.log(free_upper))
        ideal_at_upper = np.array(
            [
                _is_cpe_exponent(name, circuit) and math.isclose(high, 1.0)
                for name, high in zip(free_names, free_upper, strict=True)
            ],
            dtype=bool,
        )
        return cls(
            free=free,
            free_index=np.flatnonzero(free),
            free_names=free_names,
            full=full,
            linear_all=linear_all,
            linear=linear,
            linear_index=np.flatnonzero(linear),
            linear_parameters=np.flatnonzero(free & linear_all),
            log_positions=np.flatnonzero(~linear),
            log_parameters=np.flatnonzero(free & ~linear_all),
            all_free=bool(free.all()),
            lower=lower,
            upper=upper,
            ideal_at_upper=ideal_at_upper,
            arcs=_arc_layout(options, free_names),
            fixed_index=np.flatnonzero(~free),
            start_floor=np.where(linear_all, -np.finfo(np.float64).smallest_subnormal, 0.0),
        )


def _arc_layout(options: FitOptions, free_names: tuple[str, ...]) -> _Arcs:
    circuit = options.circuit
    names = circuit.parameter_names
    position = {name: index for index, name in enumerate(free_names)}
    resistance, charge, alpha, has_alpha, roles = [], [], [], [], []
    for resistor, capacitor in circuit.zarcs:
        resistance.append(names.index(resistor))
        if circuit.element_kinds[capacitor] == "C":
            charge.append(names.index(capacitor))
            alpha.append(0)
            has_alpha.append(False)
        else:
            charge.append(names.index(f"{capacitor}_0"))
            alpha.append(names.index(f"{capacitor}_1"))
            has_alpha.append(True)
        roles.append(options.roles.get(resistor) or options.roles.get(capacitor))
    has_alpha_array = np.array(has_alpha, dtype=bool)

    def free_positions(indices: list[int], valid: list[bool] | None = None) -> tuple[int, ...]:
        found = [position.get(names[index], -1) for index in indices]
        if valid is not None:
            found = [place if ok else -1 for place, ok in zip(found, valid, strict=True)]
        return tuple(found)

    return _Arcs(
        resistors=tuple(resistor for resistor, _ in circuit.zarcs),
        capacitors=tuple(capacitor for _, capacitor in circuit.zarcs),
        roles=tuple(roles),
        resistance=np.array(resistance, dtype=np.intp),
        charge=np.array(charge, dtype=np.intp),
        alpha=np.array(alpha, dtype=np.intp),
        has_alpha=has_alpha_array,
        resistance_free=free_positions(resistance),
        charge_free=free_positions(charge),
        alpha_free=free_positions(alpha, has_alpha),
    )


def _linear_names(circuit: Circuit) -> set[str]:
    """Parameters fitted on a linear scale, bounded below by 0.

    A cable inductance is often not identifiable next to a bulk arc above the
    measured range; its best value is then 0. In log space the fit would crawl
    towards 0 for dozens of iterations; on a linear scale one projected step
    reaches it.
    """
    return {name for name, kind in circuit.element_kinds.items() if kind in LINEAR_KINDS}


def _linear_mask(circuit: Circuit) -> np.ndarray:
    """True for each parameter (in the circuit's order) fitted on a linear scale."""
    linear = _linear_names(circuit)
    return np.array([name in linear for name in circuit.parameter_names])


def _parameter_kinds(circuit: Circuit) -> list[tuple[str, str]]:
    return [
        (kind, parameter)
        for name in circuit.element_names
        for kind in [circuit.element_kinds[name]]
        for parameter in ELEMENT_PARAMETERS[kind]
    ]


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
        True when the fit converged and no free parameter sits at a bound.
    status
        ``"ok"`` or the reason it is not (``"parameter at bound: R1"``...).
    mask
        Points used (bool per frequency).
    z_fit
        Model impedance at every frequency, ohm.
    residuals_real, residuals_imag
        (Z_fit - Z)/|Z| per point (NaN where not used).
    capacitances
        Key (role, else resistor name) -> :class:`ArcCapacitance`.
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

    @property
    def vector(self) -> np.ndarray:
        """Parameter values in the circuit's order."""
        return np.array(list(self.parameters.values()))


class _Problem:
    """One spectrum's weighted residuals in log-parameter space over the free parameters.

    Residuals interleave each point's real and imaginary parts (a complex
    array viewed as float64: no copies); the solver only needs their sums.
    """

    def __init__(
        self,
        options: FitOptions,
        freq: np.ndarray,
        z: np.ndarray,
        mask: np.ndarray,
        all_points: bool | None = None,
    ) -> None:
        self.options = options
        layout = options._layout
        self.layout = layout
        self.free_index = layout.free_index
        self.full = layout.full
        self.linear = layout.linear
        self.linear_index = layout.linear_index
        self.all_free = layout.all_free
        self.all_points = bool(mask.all()) if all_points is None else all_points
        if self.all_points:
            self.freq, self.z = freq, z
        else:
            self.freq, self.z = freq[mask], z[mask]
        self.grid = layout.grid(options.circuit, self.freq)
        self.weights = _weights(self.z, options.weighting)
        top = int(self.freq.argmax())
        # Scale of a linear (inductance) parameter: omega L = 1 % of |Z| at the top frequency.
        self.linear_scale = 0.01 * abs(self.z[top]) / (2 * np.pi * self.freq[top])
        self.lower, self.upper = layout.lower, layout.upper
        # Weights of the Jacobian's rows: the residuals' weights, times dp/du = the
        # scale for a linear coordinate (for a log one the model's rows already hold p dZ/dp).
        self.row_weights = self.weights
        if self.linear_index.size:
            self.lower, self.upper = self.lower.copy(), self.upper.copy()
            self.lower[self.linear_index] /= self.linear_scale
            self.upper[self.linear_index] /= self.linear_scale
            factor = np.ones(self.free_index.size)
            factor[self.linear_index] = self.linear_scale
            self.row_weights = np.outer(factor, self.weights)
        # The model at the last point evaluated: the fit's Z at the solution, free.
        self.last: tuple[np.ndarray | None, np.ndarray | None] = (None, None)

    def to_solver(self, values: np.ndarray) -> np.ndarray:
        """Free parameter values (natural units) -> solver coordinates."""
        free = values[self.free_index]
        if not self.linear_index.size:
            return np.log(free)
        coordinates = np.log(free, out=np.empty_like(free), where=~self.linear)
        coordinates[self.linear_index] = free[self.linear_index] / self.linear_scale
        return coordinates

    def expand(self, coordinates: np.ndarray) -> np.ndarray:
        """Solver coordinates -> all parameter values (natural units)."""
        values = self.full.copy()
        if not self.linear_index.size:
            values[self.free_index] = np.exp(coordinates)  # within the bounds: no overflow
            return values
        layout = self.layout
        values[layout.log_parameters] = np.exp(coordinates[layout.log_positions])
        values[layout.linear_parameters] = coordinates[self.linear_index] * self.linear_scale
        return values

    def residuals_and_jacobian(self, log_free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Both from one evaluation of the circuit (the Jacobian needs Z anyway).

        The Jacobian is returned as the transpose of a row-major (n_free,
        n_residuals) array: the solver's products J^T J and J^T r then run
        on contiguous rows. Called inside :func:`_solve`'s ``np.errstate``:
        wild trial steps may overflow, and an infinite cost rejects them.
        """
        values = self.expand(log_free)
        z_model, rows = self.options.circuit.impedance_and_log_jacobian_on(self.grid, values)
        self.last = (log_free, z_model)
        residuals = (z_model - self.z).view(np.float64) * self.weights
        if not math.isfinite(residuals @ residuals):
            residuals = np.full_like(residuals, np.inf)
        if not self.all_free:
            rows = rows[self.free_index]
        return residuals, (rows.view(np.float64) * self.row_weights).T


def _weights(z: np.ndarray, weighting: str) -> np.ndarray:
    """Weights of the interleaved residuals (real, imaginary, real, ...)."""
    modulus = np.abs(z)
    if weighting == "modulus":
        return (1 / modulus).repeat(2)
    weights = np.empty(2 * z.size)
    if weighting == "proportional":
        # Floor at 1 % of |Z| so a zero crossing of Z'' does not get infinite weight.
        weights[0::2] = 1 / np.maximum(np.abs(z.real), 0.01 * modulus)
        weights[1::2] = 1 / np.maximum(np.abs(z.imag), 0.01 * modulus)
    else:
        weights[:] = 1.0
    return weights


def _check_data(freq: np.ndarray, z: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if freq.ndim != 1 or freq.shape != z.shape:
        raise FitError("freq and z must be 1-D arrays of one length", key="z")
    if not (np.isfinite(freq).all() and (freq > 0).all() and np.isfinite(z).all()):
        raise FitError("freq must be finite and > 0 Hz and z finite", key="z")
    used = np.ones(freq.size, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if used.shape != freq.shape:
        raise FitError("mask must have one entry per frequency", key="mask")
    return used


def _solve(problem: _Problem, start: np.ndarray, *, warm: bool = False) -> Solution:
    # Wild trial steps may overflow the model: their infinite cost rejects them.
    with np.errstate(all="ignore"):
        return levenberg_marquardt(
            problem.residuals_and_jacobian,
            problem.to_solver(start),
            problem.lower,
            problem.upper,
            max_iterations=problem.options.max_iterations,
            # A warm start is close to the minimum, where Gauss-Newton steps are good:
            # light damping lets the first steps cover the poorly determined directions.
            damping=_WARM_DAMPING if warm else _COLD_DAMPING,
        )


def _result(
    problem: _Problem,
    solution: Solution,
    freq: np.ndarray,
    z: np.ndarray,
    mask: np.ndarray,
    start: str,
) -> FitResult:
    options = problem.options
    layout = problem.layout
    names = options.circuit.parameter_names
    values = problem.expand(solution.x)
    n_free = layout.free_index.size
    dof = max(solution.residuals.size - n_free, 1)
    variance = solution.cost / dof
    try:
        normal = solution.normal
        if normal is None:
            normal = solution.jacobian.T @ solution.jacobian
        covariance = variance * _inverse(normal)
        chain = values[problem.free_index]
        if problem.linear_index.size:
            chain[problem.linear_index] = problem.linear_scale
        stderr_free = chain * np.sqrt(np.abs(covariance.diagonal()))
        # Capacitance errors use ln-parameter covariances; the linear parameters
        # (inductances) never enter a capacitance: zero their rows.
        covariance_log = covariance
        if problem.linear_index.size:
            covariance_log = covariance.copy()
            covariance_log[problem.linear_index] = 0.0
            covariance_log[:, problem.linear_index] = 0.0
    except np.linalg.LinAlgError:
        covariance_log = np.full((n_free, n_free), np.nan)
        stderr_free = np.full(n_free, np.nan)
    stderr = np.zeros(len(names))
    stderr[problem.free_index] = stderr_free
    at_bounds = _at_bounds(problem, solution.x)
    last_point, last_model = problem.last
    if problem.all_points and last_point is solution.x:
        z_fit = last_model  # the solver evaluated the model there last
    elif problem.all_points:
        z_fit = options.circuit.impedance_on(problem.grid, values)
    else:
        z_fit = options.circuit.impedance(freq, values)
    residuals = (z_fit - z) / np.abs(z)
    if problem.all_points:
        residuals_real, residuals_imag = residuals.real.copy(), residuals.imag.copy()
    else:
        residuals_real = np.where(mask, residuals.real, np.nan)
        residuals_imag = np.where(mask, residuals.imag, np.nan)
    if not math.isfinite(solution.cost):
        status = "fit diverged"
    elif not solution.converged:
        status = "not converged"
    elif at_bounds:
        status = f"parameter at bound: {', '.join(at_bounds)}"
    else:
        status = "ok"
    return FitResult(
        circuit=options.circuit.text,
        parameters=MappingProxyType(dict(zip(names, values.tolist(), strict=True))),
        stderr=MappingProxyType(dict(zip(names, stderr.tolist(), strict=True))),
        chi2=float(solution.cost),
        ok=status == "ok",
        status=status,
        mask=mask.copy(),
        z_fit=z_fit,
        residuals_real=residuals_real,
        residuals_imag=residuals_imag,
        capacitances=MappingProxyType(_capacitances(options, values, covariance_log)),
        start=start,
        n_iterations=solution.n_iterations,
        at_bounds=at_bounds,
    )


def _inverse(matrix: np.ndarray) -> np.ndarray:
    """matrix^-1 by LU (LAPACK gesv, without numpy.linalg's per-call overhead).

    Raises
    ------
    numpy.linalg.LinAlgError
        The matrix is singular.
    """
    _, _, inverse, info = dgesv(matrix, np.eye(matrix.shape[0]))
    if info:
        raise np.linalg.LinAlgError("singular matrix")
    return inverse


def _at_bounds(problem: _Problem, coordinates: np.ndarray) -> tuple[str, ...]:
    """Free parameters stuck at a bound (a failed fit), physical limits excepted.

    An inductance at 0 (none measurable) and a CPE exponent at 1 (an ideal
    capacitor) are results, not failures: only an inductance's upper bound
    and such an exponent's lower bound count.
    """
    layout = problem.layout
    low, high = problem.lower, problem.upper
    at_low = coordinates - low < _AT_BOUND_LN
    at_high = high - coordinates < _AT_BOUND_LN
    stuck = at_low | (at_high & ~layout.ideal_at_upper)
    if problem.linear_index.size:
        index = problem.linear_index
        linear_high = high[index]
        stuck[index] = linear_high - coordinates[index] < _AT_BOUND_LN * np.maximum(
            np.abs(linear_high), 1.0
        )
    if not stuck.any():
        return ()
    return tuple(layout.free_names[index] for index in np.flatnonzero(stuck).tolist())


def _capacitances(
    options: FitOptions, values: np.ndarray, covariance_log: np.ndarray
) -> dict[str, ArcCapacitance]:
    """Brug capacitance, time constant and apex of every R||CPE block, with standard errors."""
    arcs = options._layout.arcs
    if not arcs.resistors:
        return {}
    resistance = values[arcs.resistance]
    q = values[arcs.charge]
    alpha = np.where(arcs.has_alpha, values[arcs.alpha], 1.0)
    capacitance = brug_capacitance(resistance, q, alpha)
    tau = time_constant(resistance, q, alpha)
    apex = 1.0 / (2.0 * np.pi * tau)  # elements.apex_frequency, without a second tau
    covariance = covariance_log.tolist()  # a few scalars per arc: Python floats beat numpy
    area = options.area_cm2
    result: dict[str, ArcCapacitance] = {}
    for index, (r, q_value, a, c, t, f) in enumerate(
        zip(
            resistance.tolist(),
            q.tolist(),
            alpha.tolist(),
            capacitance.tolist(),
            tau.tolist(),
            apex.tolist(),
            strict=True,
        )
    ):
        # ln C = (ln Q + (1-a) ln R)/a: gradient in (ln R, ln Q, ln a) for the delta
        # method, over the free parameters (a fixed one contributes nothing).
        r_free = arcs.resistance_free[index]
        gradient = [
            (r_free, (1 - a) / a),
            (arcs.charge_free[index], 1 / a),
            (arcs.alpha_free[index], -(math.log(q_value) + math.log(r)) / a),
        ]
        gradient = [(position, value) for position, value in gradient if position >= 0]
        c_variance = sum(
            first * second * covariance[i][j] for i, first in gradient for j, second in gradient
        )
        role = arcs.roles[index]
        result[role or arcs.resistors[index]] = ArcCapacitance(
            resistor=arcs.resistors[index],
            capacitor=arcs.capacitors[index],
            role=role,
            R_ohm=r,
            C_F=c,
            tau_s=t,
            f_apex_hz=f,
            alpha=a,
            R_ohm_cm2=r * area if area else math.nan,
            C_F_cm2=c / area if area else math.nan,
            R_stderr_ohm=r * math.sqrt(abs(covariance[r_free][r_free])) if r_free >= 0 else 0.0,
            C_stderr_F=c * math.sqrt(abs(c_variance)),
        )
    return result


def _cold_fit(problem: _Problem, freq, z, mask) -> FitResult:
    """Fit from automatic start values, in two stages per candidate start.

    Stage one holds the CPE exponents and inductances at their start values
    (the well-determined R and Q settle first); stage two frees everything.
    From a cold start, freeing all at once lets a poorly resolved arc collapse
    into a bound before the others have settled. Among the candidates, fits
    that are ok and keep the arcs in the start's time-constant order (no
    swapped labels) are preferred; then the lowest chi-square wins.
    """
    options = problem.options
    circuit = options.circuit
    names = circuit.parameter_names
    staged = [
        name
        for name in names
        if name not in options.fixed
        and (circuit.element_kinds.get(name) == "L" or _is_cpe_exponent(name, circuit))
    ]
    candidates = initial_guesses(
        problem.freq, problem.z, circuit, options.fixed, options.lower, options.upper
    )
    fits = []
    for candidate in candidates:
        start = candidate
        if staged:
            held = dict(options.fixed) | {name: candidate[names.index(name)] for name in staged}
            stage_problem = _Problem(replace(options, fixed=MappingProxyType(held)), freq, z, mask)
            stage_solution = _solve(stage_problem, candidate)
            start = stage_problem.expand(stage_solution.x)
        result = _result(problem, _solve(problem, start), freq, z, mask, "cold")
        fits.append((result, _arc_order(result, circuit) == _arc_order_of(candidate, circuit)))
    preferred = [result for result, ordered in fits if result.ok and ordered]
    preferred = preferred or [result for result, _ in fits if result.ok] or [r for r, _ in fits]
    return min(preferred, key=lambda result: result.chi2)


def _is_cpe_exponent(name: str, circuit: Circuit) -> bool:
    return name.endswith("_1") and circuit.element_kinds.get(name[:-2]) == "CPE"


def _arc_order_of(values: np.ndarray, circuit: Circuit) -> tuple[int, ...]:
    """Order of the R||CPE blocks by time constant (fast first)."""
    names = circuit.parameter_names
    taus = []
    for resistor, capacitor in circuit.zarcs:
        resistance = values[names.index(resistor)]
        if circuit.element_kinds[capacitor] == "C":
            taus.append(resistance * values[names.index(capacitor)])
        else:
            q = values[names.index(f"{capacitor}_0")]
            alpha = values[names.index(f"{capacitor}_1")]
            taus.append(float(time_constant(resistance, q, alpha)))
    return tuple(int(position) for position in np.argsort(taus))


def _arc_order(result: FitResult, circuit: Circuit) -> tuple[int, ...]:
    return _arc_order_of(result.vector, circuit)


def fit_circuit(
    freq: np.ndarray,
    z: np.ndarray,
    circuit: str | Circuit | FitOptions,
    *,
    mask: np.ndarray | None = None,
    initial: Mapping[str, float] | np.ndarray | None = None,
    **options,
) -> FitResult:
    """Fit an equivalent circuit to one spectrum, with no initial guess needed.

    Parameters
    ----------
    freq
        Frequencies, Hz.
    z
        Complex impedance, ohm.
    circuit
        impedance.py circuit string (``"L0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)"``),
        a compiled :class:`Circuit`, or prepared :class:`FitOptions`.
    mask
        Points to use (e.g. after Kramers-Kronig truncation); default all.
    initial
        Start values (name -> value, or a full vector); default: automatic.
    **options
        ``bounds``, ``fixed``, ``roles``, ``weighting``, ``area_cm2``,
        ``max_iterations`` (see :meth:`FitOptions.build`).

    Returns
    -------
    FitResult
        Check ``ok``/``status``: a failed fit is flagged, never silently kept.

    Raises
    ------
    FitError
        Invalid circuit, options or data.
    """
    fit_options = (
        circuit if isinstance(circuit, FitOptions) else FitOptions.build(circuit, **options)
    )
    freq = np.asarray(freq, dtype=np.float64)
    z = np.asarray(z, dtype=np.complex128)
    used = _check_data(freq, z, mask)
    n_free = fit_options._layout.free_index.size
    if 2 * used.sum() <= n_free:
        raise FitError(
            f"{int(used.sum())} points cannot determine {n_free} free parameters", key="mask"
        )
    problem = _Problem(fit_options, freq, z, used, all_points=True if mask is None else None)
    if initial is None:
        return _cold_fit(problem, freq, z, used)
    start = _start_vector(fit_options, initial)
    return _result(problem, _solve(problem, start, warm=True), freq, z, used, "warm")


def _start_vector(options: FitOptions, initial: Mapping[str, float] | np.ndarray) -> np.ndarray:
    names = options.circuit.parameter_names
    if not isinstance(initial, np.ndarray) and isinstance(initial, Mapping):
        start = np.sqrt(options.lower * options.upper)
        for name, value in initial.items():
            if name not in names:
                raise FitError(f"unknown parameter {name!r}", key=f"initial.{name}")
            start[names.index(name)] = value
    else:
        start = np.array(initial, dtype=np.float64)
        if start.shape != (len(names),):
            raise FitError(f"initial vector needs {len(names)} values", key="initial")
    layout = options._layout
    if layout.fixed_index.size:
        start[layout.fixed_index] = layout.full[layout.fixed_index]
    # > floor: > 0, or >= 0 for inductances; NaN fails both comparisons.
    if not ((start > layout.start_floor).all() and (start < np.inf).all()):
        raise FitError(
            "initial values must be finite and > 0 (>= 0 for inductances)", key="initial"
        )
    return np.minimum(np.maximum(start, options.lower), options.upper)


def fit_experiment(
    spectra: Iterable[Spectrum] | Sequence[tuple[np.ndarray, np.ndarray]],
    circuit: str | Circuit | FitOptions,
    *,
    masks: Sequence[np.ndarray | None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    **options,
) -> list[FitResult]:
    """Fit a time series of spectra, each warm-started from the previous step.

    A warm fit is replaced by a fresh automatic start (``start="fallback"``)
    when it is not ok (not converged, a parameter at a bound) or its
    chi-square is more than 3x the previous step's; the better of the two is
    kept. The first spectrum, and any after a fit that was not ok, start cold.

    Parameters
    ----------
    spectra
        :class:`Spectrum` objects or ``(freq, z)`` pairs, in time order.
    circuit, **options
        As :func:`fit_circuit`.
    masks
        Points to use per spectrum (None entries: all).
    progress
        Called as ``progress(done, total)``.
    """
    fit_options = (
        circuit if isinstance(circuit, FitOptions) else FitOptions.build(circuit, **options)
    )
    pairs = [
        (item.freq, item.z) if isinstance(item, Spectrum) else (item[0], item[1])
        for item in spectra
    ]
    if masks is not None and len(masks) != len(pairs):
        raise FitError(f"{len(masks)} masks for {len(pairs)} spectra", key="masks")
    results: list[FitResult] = []
    previous: FitResult | None = None
    for index, (freq, z) in enumerate(pairs):
        mask = None if masks is None else masks[index]
        if previous is None or not previous.ok:
            result = fit_circuit(freq, z, fit_options, mask=mask)
        else:
            result = fit_circuit(freq, z, fit_options, mask=mask, initial=previous.vector)
            if not result.ok or result.chi2 > _WARM_CHI2_FACTOR * max(previous.chi2, 1e-300):
                fresh = fit_circuit(freq, z, fit_options, mask=mask)
                if fresh.chi2 < result.chi2 or (fresh.ok and not result.ok):
                    result = _relabel(fresh, "fallback")
        results.append(result)
        previous = result
        if progress is not None:
            progress(index + 1, len(pairs))
    return results


def _relabel(result: FitResult, start: str) -> FitResult:
    return replace(result, start=start)
