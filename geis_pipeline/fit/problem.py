"""One spectrum's least-squares problem: residuals, Jacobian, solve, numbers at the solution.

Parameters are fitted in log space (they span 1e-10..1e4 in one circuit;
inductances linearly, so that "no inductance" is reachable) with an
analytic Jacobian and a bounded Levenberg-Marquardt; standard errors come
from the Jacobian at the solution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geis_pipeline.errors import FitError
from geis_pipeline.fit._solver import Solution, levenberg_marquardt
from geis_pipeline.fit.options import FitOptions

# A parameter within this distance (in ln units) of a bound counts as at the bound.
_AT_BOUND_LN = 1e-3
# Initial Levenberg-Marquardt damping (relative to each direction's curvature) from
# automatic start values and from a given start (previous step's result).
_COLD_DAMPING = 1e-3
_WARM_DAMPING = 1e-5


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


@dataclass(frozen=True, eq=False)
class Evaluated:
    """A solution's numbers before any judgement: values, errors, model and residuals."""

    values: np.ndarray  # all parameters, natural units
    stderr: np.ndarray  # 0 for fixed parameters, NaN where the covariance is singular
    covariance_log: np.ndarray  # free parameters, ln space (linear ones zeroed)
    z_fit: np.ndarray
    residuals_real: np.ndarray  # (Z_fit - Z)/|Z|, NaN where not used
    residuals_imag: np.ndarray
    chi2: float
    converged: bool
    diverged: bool
    at_bounds: tuple[str, ...]  # free parameters at a bound
    bound_details: tuple[str, ...]  # "R3 at its lower bound 0.0001 (value 0.0001)"
    n_iterations: int
    residual_rms: float  # RMS of the relative residuals over the points used


def evaluate(
    problem: _Problem,
    solution: Solution,
    freq: np.ndarray,
    z: np.ndarray,
    mask: np.ndarray,
) -> Evaluated:
    """Parameters, standard errors (from the Jacobian at the solution), model and residuals."""
    options = problem.options
    names = options.circuit.parameter_names
    values, stderr, covariance_log = errors_at(problem, solution)
    at_bounds = _at_bounds(problem, solution.x)
    last_point, last_model = problem.last
    if problem.all_points and last_point is solution.x:
        z_fit = last_model  # the solver evaluated the model there last
    elif problem.all_points:
        z_fit = options.circuit.impedance_on(problem.grid, values)
    else:
        z_fit = options.circuit.impedance(freq, values)
    with np.errstate(all="ignore"):
        residuals = (z_fit - z) / np.abs(z)
    if problem.all_points:
        residuals_real, residuals_imag = residuals.real.copy(), residuals.imag.copy()
        used = residuals.view(np.float64)
    else:
        residuals_real = np.where(mask, residuals.real, np.nan)
        residuals_imag = np.where(mask, residuals.imag, np.nan)
        used = residuals[mask].view(np.float64)
    rms = float(np.sqrt(used @ used / max(used.size, 1)))
    details = []
    for name in at_bounds:
        position = names.index(name)
        low, high = options.lower[position], options.upper[position]
        value = values[position]
        side, bound = ("lower", low) if abs(value - low) <= abs(value - high) else ("upper", high)
        details.append(f"{name} at its {side} bound {bound:g} (value {value:.4g})")
    return Evaluated(
        values=values,
        stderr=stderr,
        covariance_log=covariance_log,
        z_fit=z_fit,
        residuals_real=residuals_real,
        residuals_imag=residuals_imag,
        chi2=float(solution.cost),
        converged=bool(solution.converged) and math.isfinite(solution.cost),
        diverged=not math.isfinite(solution.cost),
        at_bounds=at_bounds,
        bound_details=tuple(details),
        n_iterations=solution.n_iterations,
        residual_rms=rms if math.isfinite(rms) else math.inf,
    )


def errors_at(problem: _Problem, solution: Solution) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All parameter values, their standard errors and the free ones' ln-space covariance.

    From ``solution.normal`` (J^T J; else from its Jacobian) and the residual
    variance ``cost / (n - n_free)``. NaN errors where J^T J is singular; 0
    for fixed parameters.
    """
    values = problem.expand(solution.x)
    n_free = problem.layout.free_index.size
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
    stderr = np.zeros(values.size)
    stderr[problem.free_index] = stderr_free
    return values, stderr, covariance_log


def _inverse(matrix: np.ndarray) -> np.ndarray:
    """matrix^-1 by LU (LAPACK gesv through numpy: no scipy import for a fit).

    Raises
    ------
    numpy.linalg.LinAlgError
        The matrix is singular.
    """
    return np.linalg.solve(matrix, np.eye(matrix.shape[0]))


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
