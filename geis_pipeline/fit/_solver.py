"""A bounded Levenberg-Marquardt for small, well-scaled problems.

scipy's ``least_squares`` costs ~0.1-0.3 ms of Python overhead per iteration
on a 69-point spectrum, more than the model itself; this loop does the same
damped Gauss-Newton steps with nothing in between (Nielsen's damping update,
LAPACK called directly: ~50-70 us per iteration besides the model), which is
what lets a whole experiment fit in seconds. Three things keep a warm-started
fit to about four iterations (it took eight to eleven with clipped steps and
heavier damping):

- box bounds by an active set, and a step that would carry a coordinate
  across a bound pins it there and re-solves for the others (a clipped step
  near a CPE exponent of 1 raised the cost many-fold and was rejected again
  and again);
- before the damping grows, a rejected step is bent by a second-order
  correction from the residuals it measured (the cable inductance against
  the bulk arc is a narrow, curved valley that straight steps crawl along);
- the caller's initial damping (light for a start near the minimum).

The fit stops when the undamped Gauss-Newton step predicts a cost decrease
below 1e-8 of the cost: for ~130 residual degrees of freedom, parameters
within ~1e-3 standard errors of the minimum.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

try:  # numpy's LAPACK solve without np.linalg.solve's per-call wrapper (see _solve)
    from numpy.linalg._umath_linalg import solve1 as _gesv
except ImportError:  # pragma: no cover - a numpy without the private gufunc

    def _gesv(matrix: np.ndarray, rhs: np.ndarray, signature: str) -> np.ndarray:
        try:
            return np.linalg.solve(matrix, rhs)
        except np.linalg.LinAlgError:
            return np.full(rhs.shape, np.nan)


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
        True if a stopping test was met: cost decrease, step or Gauss-Newton
        gain below tolerance, or no downhill step at any damping.
    normal
        J^T J at ``x`` (None: not computed).
    """

    x: np.ndarray
    cost: float
    residuals: np.ndarray
    jacobian: np.ndarray
    n_iterations: int
    converged: bool
    normal: np.ndarray | None = None


def levenberg_marquardt(
    evaluate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    max_iterations: int = 200,
    cost_tolerance: float = 1e-7,
    step_tolerance: float = 1e-9,
    gain_tolerance: float = 1e-8,
    damping: float = 1e-3,
) -> Solution:
    """Minimise ||r(x)||^2 within lower <= x <= upper.

    Parameters
    ----------
    evaluate
        x -> (residual vector, Jacobian (n_residuals, n_x)); inf residuals reject
        a step. Both come from one model evaluation, so a trial step costs one
        call whether it is accepted or not (two when a rejected step is bent).
    x0
        Start (projected into the bounds).
    lower, upper
        Box bounds.
    max_iterations
        Trial steps (accepted or not).
    cost_tolerance, step_tolerance
        Converged when an accepted step lowers the cost by less than this
        fraction, or moves no coordinate by more than this.
    gain_tolerance
        Converged when the undamped Gauss-Newton step from the current point
        predicts a cost decrease below this fraction of the cost.
    damping
        Initial damping, relative to each direction's curvature (Marquardt's
        scaling). Light damping suits a start near the minimum (a warm start).
    """
    # A singular damped system shows as NaN from _solve (no exception), and a
    # trial point whose model is NaN is rejected: neither is worth a warning.
    with np.errstate(invalid="ignore"):
        return _iterate(
            evaluate,
            x0,
            lower,
            upper,
            max_iterations,
            cost_tolerance,
            step_tolerance,
            gain_tolerance,
            damping,
        )


def _iterate(
    evaluate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    max_iterations: int,
    cost_tolerance: float,
    step_tolerance: float,
    gain_tolerance: float,
    damping: float,
) -> Solution:
    """The iteration of :func:`levenberg_marquardt` (same arguments)."""
    x = np.minimum(np.maximum(np.asarray(x0, dtype=np.float64), lower), upper)
    residuals, jacobian = evaluate(x)
    cost = float(residuals @ residuals)
    local = _Local(jacobian, residuals, x, lower, upper, check_bounds=True)
    growth = 2.0
    converged = False
    n_iterations = 0
    check_gain = False  # set by an accepted step: test convergence before the next evaluation
    for _ in range(max_iterations):
        candidate = local.trial_point(damping, x, lower, upper)
        if candidate is None:  # singular even with this damping
            damping *= growth
            growth *= 2
            continue
        step = candidate - x
        normal_step = local.normal @ step
        predicted = -(2 * (step @ local.gradient) + step @ normal_step)
        if check_gain:
            check_gain = False
            # Converged when the undamped Gauss-Newton step would lower the cost by
            # less than gain_tolerance: at the minimum to well below the noise (saves
            # the slow last iterations). The damped step's predicted decrease never
            # exceeds the undamped one, so only a small one needs the undamped solve.
            if predicted < gain_tolerance * cost and local.gauss_newton_gain() < (
                gain_tolerance * cost
            ):
                converged = True
                break
        trial, trial_jacobian = evaluate(candidate)
        trial_cost = float(trial @ trial)
        accepted = math.isfinite(trial_cost) and trial_cost < cost and predicted > 0
        if not accepted and math.isfinite(trial_cost):
            # Before damping more, bend the step: the rejected trial measured how the
            # residuals curve along it (a narrow curved valley: the cable inductance
            # against the bulk arc), and a second-order correction often follows the
            # valley where a shorter straight step would crawl.
            corrected = _second_order_correction(
                evaluate,
                local,
                jacobian,
                cost,
                damping,
                candidate,
                step,
                trial,
                trial_cost,
                normal_step,
                lower,
                upper,
            )
            if corrected is not None:
                candidate, trial, trial_jacobian, trial_cost, predicted = corrected
                step = candidate - x
                accepted = True
        if accepted:
            gain = (cost - trial_cost) / predicted
            relative_decrease = (cost - trial_cost) / max(cost, 1e-300)
            x, residuals, cost, jacobian = candidate, trial, trial_cost, trial_jacobian
            local = _Local(jacobian, residuals, x, lower, upper, check_bounds=not local.inside)
            damping *= max(1 / 3, 1 - (2 * gain - 1) ** 3)
            growth = 2.0
            n_iterations += 1
            if relative_decrease < cost_tolerance or max(map(abs, step.tolist())) < step_tolerance:
                converged = True
                break
            check_gain = True
        else:
            damping *= growth
            growth *= 2
            if damping > 1e16:
                converged = True  # no downhill step at any damping: a minimum
                break
    else:
        converged = check_gain and local.gauss_newton_gain() < gain_tolerance * cost
    return Solution(x, cost, residuals, jacobian, n_iterations, converged, local.normal)


# A second-order correction longer than this fraction of the step it corrects means
# the quadratic model along the step is not to be trusted: damp instead.
_CORRECTION_RATIO = 0.75


def _second_order_correction(
    evaluate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    local: _Local,
    jacobian: np.ndarray,
    cost: float,
    damping: float,
    candidate: np.ndarray,
    step: np.ndarray,
    trial: np.ndarray,
    trial_cost: float,
    normal_step: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float] | None:
    """The rejected trial point moved by a second-order correction, if that is downhill.

    Along the step v the residuals are r(x + v) = r + J v + c with the
    curvature term c = r(x + v) - r - J v measured by the rejected trial
    (geodesic acceleration, Transtrum & Sethna 2012, with the finite
    difference taken over the whole step). The correction d solves the damped
    system for J d = -c, and the quadratic model along the bent path predicts
    the cost |r(x + v) + J d|^2.

    Returns
    -------
    (point, residuals, jacobian, cost, predicted decrease) or None
        None when the correction leaves the bounds, is long compared with the
        step, or does not lower the cost.
    """
    trial_gradient = jacobian.T @ trial
    corrected = local.corrected_point(
        -(trial_gradient - local.gradient - normal_step), damping, candidate, lower, upper
    )
    if corrected is None:
        return None
    correction = corrected - candidate
    if not 0 < correction @ correction <= _CORRECTION_RATIO**2 * (step @ step):
        return None
    predicted = cost - (
        trial_cost + 2 * (correction @ trial_gradient) + correction @ (local.normal @ correction)
    )
    if not predicted > 0:
        return None
    corrected_residuals, corrected_jacobian = evaluate(corrected)
    corrected_cost = float(corrected_residuals @ corrected_residuals)
    if not (math.isfinite(corrected_cost) and corrected_cost < cost):
        return None
    return corrected, corrected_residuals, corrected_jacobian, corrected_cost, predicted


class _Local:
    """The Gauss-Newton model at one point: normal matrix, gradient, Marquardt scale, active set.

    Active set: a coordinate at a bound that the gradient pushes outwards stays
    there; steps are solved for the others (otherwise their step assumes a move
    the bound forbids and is rejected again and again). The reduced normal
    matrix and gradient over the others are extracted once per point, not per
    trial step (a CPE exponent at 1 keeps a coordinate active for whole fits).
    """

    __slots__ = (
        "descent",
        "free_index",
        "gradient",
        "inside",
        "normal",
        "reduced_gradient",
        "reduced_normal",
        "reduced_scale",
        "scale",
    )

    def __init__(
        self,
        jacobian: np.ndarray,
        residuals: np.ndarray,
        x: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        *,
        check_bounds: bool,
    ) -> None:
        """``check_bounds`` False: x is known to lie strictly inside the bounds."""
        self.normal = jacobian.T @ jacobian
        self.gradient = jacobian.T @ residuals
        diagonal = self.normal.diagonal()
        # Marquardt's scaling (damp each direction by its own curvature): the
        # log-parameters of a circuit differ in curvature by orders of magnitude.
        self.scale = np.maximum(diagonal, 1e-12 * max(float(diagonal.max()), 1e-300))
        self.free_index: np.ndarray | None = None  # None: every coordinate free
        if check_bounds:
            at_lower, at_upper = x <= lower, x >= upper
            if _any(at_lower) or _any(at_upper):
                active = (at_lower & (self.gradient > 0)) | (at_upper & (self.gradient < 0))
                if _any(active):
                    self.free_index = (~active).nonzero()[0]
        if self.free_index is None:
            self.reduced_normal, self.reduced_gradient = self.normal, self.gradient
            self.reduced_scale = self.scale
        else:
            free = self.free_index
            self.reduced_normal = self.normal[free[:, None], free]
            self.reduced_gradient = self.gradient[free]
            self.reduced_scale = self.scale[free]
        self.descent = -self.reduced_gradient
        self.inside = False  # the last trial point: no bound touched

    def trial_point(
        self, damping: float, x: np.ndarray, lower: np.ndarray, upper: np.ndarray
    ) -> np.ndarray | None:
        """x plus the damped step, with coordinates it would carry across a bound pinned there.

        Clipping the step instead keeps the other coordinates' moves, which
        were solved assuming the clipped ones move further: near a bound (a
        CPE exponent close to 1) such steps raise the cost many-fold and are
        rejected again and again. Here the others are re-solved given the
        pinned moves. None when the damped system is singular.
        """
        self.inside = False
        free = self.free_index
        if free is not None and free.size == 0:
            return x.copy()  # every coordinate held at a bound
        reduced = _solve(self.reduced_normal, damping * self.reduced_scale, self.descent)
        if reduced is None:
            return None
        if free is None:
            step = reduced
        else:
            step = np.zeros(x.size)
            step[free] = reduced
        target = x + step
        candidate = np.minimum(np.maximum(target, lower), upper)
        if not _any(candidate != target):
            self.inside = free is None
            return candidate
        return self._pinned(damping * self.scale, x, step, lower, upper, target, candidate)

    def _pinned(
        self,
        diagonal: np.ndarray,
        x: np.ndarray,
        step: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        target: np.ndarray,
        bounded: np.ndarray,
    ) -> np.ndarray | None:
        """Pin the coordinates the step carries across a bound; re-solve for the others.

        ``target`` is x + step and ``bounded`` the target within the bounds.
        """
        if self.free_index is None:
            free = np.ones(x.size, dtype=bool)
        else:
            free = np.zeros(x.size, dtype=bool)
            free[self.free_index] = True
        while True:
            crossing = free & (bounded != target)
            if not _any(crossing):
                return bounded
            step[crossing] = bounded[crossing] - x[crossing]
            free &= ~crossing
            if not _any(free):
                return np.minimum(np.maximum(x + step, lower), upper)
            kept, pinned = free.nonzero()[0], (~free).nonzero()[0]
            rhs = -(self.gradient[kept] + self.normal[kept[:, None], pinned] @ step[pinned])
            reduced = _solve(self.normal[kept[:, None], kept], diagonal[kept], rhs)
            if reduced is None:
                return None
            step[kept] = reduced
            target = x + step
            bounded = np.minimum(np.maximum(target, lower), upper)

    def corrected_point(
        self,
        rhs: np.ndarray,
        damping: float,
        candidate: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
    ) -> np.ndarray | None:
        """candidate + (N + damping diag(scale))^-1 rhs over the free coordinates.

        None when that point leaves the bounds or the system is singular.
        """
        free = self.free_index
        if free is not None:
            if free.size == 0:
                return None
            rhs = rhs[free]
        correction = _solve(self.reduced_normal, damping * self.reduced_scale, rhs)
        if correction is None:
            return None
        if free is not None:
            full = np.zeros(candidate.size)
            full[free] = correction
            correction = full
        point = candidate + correction
        if _any(point < lower) or _any(point > upper):
            return None
        self.inside = free is None
        return point

    def gauss_newton_gain(self) -> float:
        """Cost decrease the undamped Gauss-Newton step predicts (inactive coordinates only)."""
        if self.free_index is not None and self.free_index.size == 0:
            return 0.0
        normal = self.reduced_normal
        step = _solve(normal, 1e-12 * normal.diagonal(), self.descent)
        if step is None:
            return math.inf
        return float(self.descent @ step)


def _solve(matrix: np.ndarray, diagonal: np.ndarray, rhs: np.ndarray) -> np.ndarray | None:
    """(matrix + diag(diagonal))^-1 rhs by LU (LAPACK gesv); None if singular.

    numpy's own gufunc behind ``np.linalg.solve``, called directly: the same
    LAPACK call (bit-identical results) without the wrapper's type checks and
    error-state context, which cost ~9 of its ~14 us on these 5-20 unknowns
    (a refined spectrum solves ~50 of them). A singular matrix gives NaN, not
    an exception (the caller runs under ``errstate(invalid="ignore")``).
    scipy's ``dgesv`` would be as fast, but importing scipy.linalg costs 0.3 s,
    which the first fit of a session should not pay.
    """
    damped = matrix.copy()
    damped.reshape(-1)[:: matrix.shape[0] + 1] += diagonal
    solution = _gesv(damped, rhs, signature="dd->d")
    # A finite sum of Python floats means every element is finite (~0.8 us against
    # isfinite().all()'s ~3.6); only a sum that is not (an overflow?) is checked per element.
    if not math.isfinite(sum(solution.tolist())) and not np.isfinite(solution).all():
        return None
    return solution


def _any(mask: np.ndarray) -> bool:
    """``mask.any()`` for a short boolean vector (count_nonzero: ~0.7 of ~2.7 us)."""
    return np.count_nonzero(mask) > 0
