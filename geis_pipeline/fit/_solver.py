"""A bounded Levenberg-Marquardt for small, well-scaled problems.

scipy's ``least_squares`` costs ~0.1-0.3 ms of Python overhead per iteration
on a 69-point spectrum, more than the model itself; this loop does the same
damped Gauss-Newton steps with nothing in between (box bounds by projection,
Nielsen's damping update), which is what lets a whole experiment fit in
seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Solution", "levenberg_marquardt"]


@dataclass(frozen=True)
class Solution:
    """Where the iteration ended.

    Attributes
    ----------
    x
        Parameters (in the solver's space).
    cost
        Sum of squared residuals at ``x``.
    residuals, jacobian
        At ``x``.
    n_iterations
        Accepted steps.
    converged
        True if the relative cost change or the step fell below tolerance.
    """

    x: np.ndarray
    cost: float
    residuals: np.ndarray
    jacobian: np.ndarray
    n_iterations: int
    converged: bool


def levenberg_marquardt(
    evaluate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    max_iterations: int = 200,
    cost_tolerance: float = 1e-7,
    step_tolerance: float = 1e-9,
    gain_tolerance: float = 1e-9,
) -> Solution:
    """Minimise ||r(x)||^2 within lower <= x <= upper.

    Parameters
    ----------
    evaluate
        x -> (residual vector, Jacobian (n_residuals, n_x)); inf residuals reject
        a step. Both come from one model evaluation, so a trial step costs one
        call whether it is accepted or not.
    x0
        Start (projected into the bounds).
    lower, upper
        Box bounds.
    """
    x = np.clip(np.asarray(x0, dtype=np.float64), lower, upper)
    residuals, jacobian = evaluate(x)
    cost = float(residuals @ residuals)
    normal = jacobian.T @ jacobian
    gradient = jacobian.T @ residuals
    # Marquardt's scaling (damp each direction by its own curvature): the
    # log-parameters of a circuit differ in curvature by orders of magnitude.
    damping = 1e-3
    growth = 2.0
    converged = False
    n_iterations = 0
    for _ in range(max_iterations):
        scale = np.maximum(np.diag(normal), 1e-12 * max(float(np.max(np.diag(normal))), 1e-300))
        # Active set: a coordinate at a bound that the gradient pushes outwards
        # stays there; the step is solved for the others (otherwise their step
        # assumes a move the bound forbids and is rejected again and again).
        active = ((x <= lower) & (gradient > 0)) | ((x >= upper) & (gradient < 0))
        free = ~active
        step = np.zeros_like(x)
        try:
            step[free] = np.linalg.solve(
                normal[np.ix_(free, free)] + damping * np.diag(scale[free]), -gradient[free]
            )
        except np.linalg.LinAlgError:
            damping *= growth
            growth *= 2
            continue
        candidate = np.clip(x + step, lower, upper)
        actual_step = candidate - x
        trial, trial_jacobian = evaluate(candidate)
        trial_cost = float(trial @ trial)
        predicted = -(2 * actual_step @ gradient + actual_step @ normal @ actual_step)
        gain = (cost - trial_cost) / predicted if predicted > 0 else -1.0
        if np.isfinite(trial_cost) and trial_cost < cost and gain > 0:
            relative_decrease = (cost - trial_cost) / max(cost, 1e-300)
            x, residuals, cost, jacobian = candidate, trial, trial_cost, trial_jacobian
            normal = jacobian.T @ jacobian
            gradient = jacobian.T @ residuals
            damping *= max(1 / 3, 1 - (2 * gain - 1) ** 3)
            growth = 2.0
            n_iterations += 1
            if relative_decrease < cost_tolerance or np.max(np.abs(actual_step)) < step_tolerance:
                converged = True
                break
            if _gauss_newton_gain(normal, gradient, x, lower, upper) < gain_tolerance * cost:
                # The undamped step would lower the cost by less than this: at the
                # minimum to well below the noise (saves the slow last iterations).
                converged = True
                break
        else:
            damping *= growth
            growth *= 2
            if damping > 1e16:
                converged = True  # no downhill step at any damping: a minimum
                break
    return Solution(x, cost, residuals, jacobian, n_iterations, converged)


def _gauss_newton_gain(
    normal: np.ndarray, gradient: np.ndarray, x: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> float:
    """Cost decrease the undamped Gauss-Newton step predicts (inactive coordinates only)."""
    active = ((x <= lower) & (gradient > 0)) | ((x >= upper) & (gradient < 0))
    free = ~active
    reduced = normal[np.ix_(free, free)]
    try:
        step = np.linalg.solve(reduced + 1e-12 * np.diag(np.diag(reduced)), -gradient[free])
    except np.linalg.LinAlgError:
        return np.inf
    return float(-gradient[free] @ step)
