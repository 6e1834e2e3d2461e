"""Equivalent-circuit fitting with Brug capacitances, automatic start values and warm starts.

:func:`fit_circuit` fits one spectrum; :func:`fit_experiment` fits a time
series, starting each fit from the previous step's result and falling back
to a fresh start when the fit degrades or a parameter sticks at a bound.

Parameters are fitted in log space (they span 1e-10..1e4 in one circuit) with
an analytic Jacobian and a bounded Levenberg-Marquardt; standard errors come
from the Jacobian at the solution.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np

from geis_pipeline.elements import apex_frequency, brug_capacitance, time_constant
from geis_pipeline.errors import FitError
from geis_pipeline.fit._solver import Solution, levenberg_marquardt
from geis_pipeline.fit.circuit import ELEMENT_PARAMETERS, Circuit, parse_circuit
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


def _linear_names(circuit: Circuit) -> set[str]:
    """Parameters fitted on a linear scale, bounded below by 0.

    A cable inductance is often not identifiable next to a bulk arc above the
    measured range; its best value is then 0. In log space the fit would crawl
    towards 0 for dozens of iterations; on a linear scale one projected step
    reaches it.
    """
    return {name for name, kind in circuit.element_kinds.items() if kind == "L"}


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
    """One spectrum's weighted residuals in log-parameter space over the free parameters."""

    def __init__(
        self, options: FitOptions, freq: np.ndarray, z: np.ndarray, mask: np.ndarray
    ) -> None:
        self.options = options
        names = options.circuit.parameter_names
        self.free = np.array([name not in options.fixed for name in names])
        self.full = np.zeros(len(names))
        for name, value in options.fixed.items():
            self.full[names.index(name)] = value
        self.freq = freq[mask]
        self.z = z[mask]
        self.grid = options.circuit.grid(self.freq)
        self.weight_real, self.weight_imag = _weights(self.z, options.weighting)
        linear = _linear_mask(options.circuit)
        self.linear = linear[self.free]
        top = int(np.argmax(self.freq))
        # Scale of a linear (inductance) parameter: omega L = 1 % of |Z| at the top frequency.
        self.linear_scale = 0.01 * abs(self.z[top]) / (2 * np.pi * self.freq[top])
        free_lower, free_upper = options.lower[self.free], options.upper[self.free]
        with np.errstate(divide="ignore"):
            self.lower = np.where(self.linear, free_lower / self.linear_scale, np.log(free_lower))
        self.upper = np.where(self.linear, free_upper / self.linear_scale, np.log(free_upper))

    def to_solver(self, values: np.ndarray) -> np.ndarray:
        """Free parameter values (natural units) -> solver coordinates."""
        free = values[self.free]
        with np.errstate(divide="ignore"):
            return np.where(self.linear, free / self.linear_scale, np.log(free))

    def expand(self, coordinates: np.ndarray) -> np.ndarray:
        """Solver coordinates -> all parameter values (natural units)."""
        values = self.full.copy()
        with np.errstate(over="ignore"):
            values[self.free] = np.where(
                self.linear, coordinates * self.linear_scale, np.exp(coordinates)
            )
        return values

    def residuals(self, log_free: np.ndarray) -> np.ndarray:
        """Weighted residuals [real, imag]; inf where the model overflows."""
        values = self.expand(log_free)
        with np.errstate(all="ignore"):  # wild trial steps may overflow: cost = inf rejects them
            difference = self.options.circuit.impedance_on(self.grid, values) - self.z
            residuals = np.concatenate(
                [difference.real * self.weight_real, difference.imag * self.weight_imag]
            )
        if not np.all(np.isfinite(residuals)):
            residuals = np.full_like(residuals, np.inf)
        return residuals

    def jacobian(self, log_free: np.ndarray) -> np.ndarray:
        """d(residuals)/d(ln p) of the free parameters (chain rule: p dZ/dp)."""
        return self.residuals_and_jacobian(log_free)[1]

    def residuals_and_jacobian(self, log_free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Both from one evaluation of the circuit (the Jacobian needs Z anyway)."""
        values = self.expand(log_free)
        with np.errstate(all="ignore"):
            z_model, jacobian = self.options.circuit.impedance_and_jacobian_on(self.grid, values)
            difference = z_model - self.z
            residuals = np.concatenate(
                [difference.real * self.weight_real, difference.imag * self.weight_imag]
            )
        if not np.all(np.isfinite(residuals)):
            residuals = np.full_like(residuals, np.inf)
        with np.errstate(all="ignore"):
            # dp/du: p for log coordinates, the scale for linear ones.
            chain = np.where(self.linear, self.linear_scale, values[self.free])
            jacobian_free = jacobian[:, self.free] * chain
            stacked = np.vstack(
                [
                    jacobian_free.real * self.weight_real[:, None],
                    jacobian_free.imag * self.weight_imag[:, None],
                ]
            )
        return residuals, stacked


def _weights(z: np.ndarray, weighting: str) -> tuple[np.ndarray, np.ndarray]:
    modulus = np.abs(z)
    if weighting == "modulus":
        return 1 / modulus, 1 / modulus
    if weighting == "proportional":
        # Floor at 1 % of |Z| so a zero crossing of Z'' does not get infinite weight.
        return 1 / np.maximum(np.abs(z.real), 0.01 * modulus), 1 / np.maximum(
            np.abs(z.imag), 0.01 * modulus
        )
    return np.ones_like(modulus), np.ones_like(modulus)


def _check_data(freq: np.ndarray, z: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if freq.ndim != 1 or freq.shape != z.shape:
        raise FitError("freq and z must be 1-D arrays of one length", key="z")
    if not (np.all(np.isfinite(freq)) and np.all(freq > 0) and np.all(np.isfinite(z))):
        raise FitError("freq must be finite and > 0 Hz and z finite", key="z")
    used = np.ones(freq.size, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if used.shape != freq.shape:
        raise FitError("mask must have one entry per frequency", key="mask")
    return used


def _solve(problem: _Problem, start: np.ndarray) -> Solution:
    return levenberg_marquardt(
        problem.residuals_and_jacobian,
        problem.to_solver(start),
        problem.lower,
        problem.upper,
        max_iterations=problem.options.max_iterations,
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
    names = options.circuit.parameter_names
    values = problem.expand(solution.x)
    n_residuals = solution.residuals.size
    n_free = int(problem.free.sum())
    dof = max(n_residuals - n_free, 1)
    variance = solution.cost / dof
    try:
        covariance = variance * np.linalg.inv(solution.jacobian.T @ solution.jacobian)
        chain = np.where(problem.linear, problem.linear_scale, values[problem.free])
        stderr_free = chain * np.sqrt(np.abs(np.diag(covariance)))
        # Capacitance errors use ln-parameter covariances; the linear parameters
        # (inductances) never enter a capacitance: zero their rows.
        kept = np.where(problem.linear, 0.0, 1.0)
        covariance_log = covariance * np.outer(kept, kept)
    except np.linalg.LinAlgError:
        covariance_log = np.full((n_free, n_free), np.nan)
        stderr_free = np.full(n_free, np.nan)
    stderr = np.zeros(len(names))
    stderr[problem.free] = stderr_free
    free_names = np.array(names)[problem.free]
    at_bounds = tuple(
        str(name)
        for name, coordinate, low, high, linear in zip(
            free_names, solution.x, problem.lower, problem.upper, problem.linear, strict=True
        )
        if _at_bound(coordinate, low, high, linear, name, options.circuit)
    )
    z_fit = options.circuit.impedance(freq, values)
    residuals = (z_fit - z) / np.abs(z)
    residuals_real = np.where(mask, residuals.real, np.nan)
    residuals_imag = np.where(mask, residuals.imag, np.nan)
    if not np.isfinite(solution.cost):
        status = "fit diverged"
    elif not solution.converged:
        status = "not converged"
    elif at_bounds:
        status = f"parameter at bound: {', '.join(at_bounds)}"
    else:
        status = "ok"
    free_index = {str(name): position for position, name in enumerate(free_names)}
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
        capacitances=MappingProxyType(_capacitances(options, values, covariance_log, free_index)),
        start=start,
        n_iterations=solution.n_iterations,
        at_bounds=at_bounds,
    )


def _at_bound(
    coordinate: float, low: float, high: float, linear: bool, name: str, circuit: Circuit
) -> bool:
    """A free parameter stuck at a bound (a failed fit), physical limits excepted.

    An inductance at 0 (none measurable) and a CPE exponent at 1 (an ideal
    capacitor) are results, not failures.
    """
    if linear:
        return high - coordinate < _AT_BOUND_LN * max(abs(high), 1.0)
    is_alpha = name.endswith("_1") and circuit.element_kinds.get(name[:-2]) == "CPE"
    if is_alpha and math.isclose(math.exp(high), 1.0):
        return coordinate - low < _AT_BOUND_LN
    return coordinate - low < _AT_BOUND_LN or high - coordinate < _AT_BOUND_LN


def _capacitances(
    options: FitOptions,
    values: np.ndarray,
    covariance_log: np.ndarray,
    free_index: Mapping[str, int],
) -> dict[str, ArcCapacitance]:
    names = options.circuit.parameter_names
    area = options.area_cm2
    arcs: dict[str, ArcCapacitance] = {}
    for resistor, capacitor in options.circuit.zarcs:
        resistance = values[names.index(resistor)]
        if options.circuit.element_kinds[capacitor] == "C":
            q_name, alpha_name = capacitor, None
            alpha = 1.0
        else:
            q_name, alpha_name = f"{capacitor}_0", f"{capacitor}_1"
            alpha = values[names.index(alpha_name)]
        q = values[names.index(q_name)]
        capacitance = float(brug_capacitance(resistance, q, alpha))
        tau = float(time_constant(resistance, q, alpha))
        # ln C = (ln Q + (1-a) ln R)/a: gradient in (ln R, ln Q, ln a) for the delta method.
        gradient = {
            resistor: (1 - alpha) / alpha,
            q_name: 1 / alpha,
        }
        if alpha_name is not None:
            gradient[alpha_name] = -(math.log(q) + math.log(resistance)) / alpha
        vector = np.zeros(len(free_index))
        for name, derivative in gradient.items():
            if name in free_index:
                vector[free_index[name]] = derivative
        c_stderr = (
            capacitance * math.sqrt(abs(vector @ covariance_log @ vector)) if len(vector) else 0.0
        )
        r_position = free_index.get(resistor)
        r_stderr = (
            resistance * math.sqrt(abs(covariance_log[r_position, r_position]))
            if r_position is not None
            else 0.0
        )
        role = options.roles.get(resistor) or options.roles.get(capacitor)
        arcs[role or resistor] = ArcCapacitance(
            resistor=resistor,
            capacitor=capacitor,
            role=role,
            R_ohm=float(resistance),
            C_F=capacitance,
            tau_s=tau,
            f_apex_hz=float(apex_frequency(resistance, q, alpha)),
            alpha=float(alpha),
            R_ohm_cm2=float(resistance * area) if area else math.nan,
            C_F_cm2=capacitance / area if area else math.nan,
            R_stderr_ohm=float(r_stderr),
            C_stderr_F=float(c_stderr),
        )
    return arcs


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
    n_free = sum(name not in fit_options.fixed for name in fit_options.circuit.parameter_names)
    if 2 * used.sum() <= n_free:
        raise FitError(
            f"{int(used.sum())} points cannot determine {n_free} free parameters", key="mask"
        )
    problem = _Problem(fit_options, freq, z, used)
    if initial is None:
        return _cold_fit(problem, freq, z, used)
    start = _start_vector(fit_options, initial)
    return _result(problem, _solve(problem, start), freq, z, used, "warm")


def _start_vector(options: FitOptions, initial: Mapping[str, float] | np.ndarray) -> np.ndarray:
    names = options.circuit.parameter_names
    if isinstance(initial, Mapping):
        start = np.sqrt(options.lower * options.upper)
        for name, value in initial.items():
            if name not in names:
                raise FitError(f"unknown parameter {name!r}", key=f"initial.{name}")
            start[names.index(name)] = value
    else:
        start = np.asarray(initial, dtype=np.float64).copy()
        if start.shape != (len(names),):
            raise FitError(f"initial vector needs {len(names)} values", key="initial")
    for name, value in options.fixed.items():
        start[names.index(name)] = value
    linear = _linear_mask(options.circuit)
    if not np.all(np.isfinite(start)) or np.any(np.where(linear, start < 0, start <= 0)):
        raise FitError(
            "initial values must be finite and > 0 (>= 0 for inductances)", key="initial"
        )
    return np.clip(start, options.lower, options.upper)


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
