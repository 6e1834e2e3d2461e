"""The bounded Levenberg-Marquardt on small problems with known minima."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from geis_pipeline.fit._solver import _any, _solve, levenberg_marquardt


def _rosenbrock(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Residuals [10 (y - x^2), 1 - x]: a narrow curved valley, minimum 0 at (1, 1)."""
    residuals = np.array([10 * (x[1] - x[0] ** 2), 1 - x[0]])
    jacobian = np.array([[-20 * x[0], 10.0], [-1.0, 0.0]])
    return residuals, jacobian


@pytest.mark.parametrize("damping", [1e-3, 1e-5])
def test_curved_valley(damping: float) -> None:
    free = np.full(2, np.inf)
    solution = levenberg_marquardt(_rosenbrock, np.array([-1.2, 1.0]), -free, free, damping=damping)
    assert solution.converged
    np.testing.assert_allclose(solution.x, [1.0, 1.0], atol=1e-6)
    assert solution.cost < 1e-12
    assert solution.n_iterations < 30


@pytest.mark.parametrize("start", [[-1.2, 1.0], [0.49, 0.0], [0.5, 2.0]])
def test_minimum_on_a_bound(start: list[float]) -> None:
    """x <= 0.5 cuts the valley: the minimum is at x = 0.5, y = 0.25 (cost 0.25)."""
    lower, upper = np.array([-5.0, -5.0]), np.array([0.5, 5.0])
    solution = levenberg_marquardt(_rosenbrock, np.array(start), lower, upper)
    assert solution.converged
    np.testing.assert_allclose(solution.x, [0.5, 0.25], atol=1e-6)
    assert solution.cost == pytest.approx(0.25, rel=1e-9)


def test_step_pinned_at_a_bound_keeps_the_others_consistent() -> None:
    """A linear problem whose unconstrained minimum lies beyond a bound.

    r = A x - b with correlated columns: clipping the Gauss-Newton step would
    leave the second coordinate where the first's overshoot put it; pinning the
    first and re-solving lands on the bounded minimum in one step.
    """
    matrix = np.array([[1.0, 0.9], [0.9, 1.0], [0.2, -0.3]])
    target = matrix @ np.array([2.0, -1.0])

    def evaluate(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return matrix @ x - target, matrix

    lower, upper = np.array([-10.0, -10.0]), np.array([1.0, 10.0])
    solution = levenberg_marquardt(evaluate, np.zeros(2), lower, upper, damping=1e-9)
    # With x0 held at 1, the best x1 solves the 1-D least squares.
    column = matrix[:, 1]
    best_x1 = column @ (target - matrix[:, 0]) / (column @ column)
    np.testing.assert_allclose(solution.x, [1.0, best_x1], rtol=1e-9)
    assert solution.n_iterations <= 2


@example(np.array([1e308, 1e308]))
@given(
    arrays(np.float64, st.integers(1, 12), elements=st.floats(allow_nan=True, allow_infinity=True))
)
def test_solve_refuses_exactly_the_non_finite_solutions(rhs: np.ndarray) -> None:
    """``_solve`` returns None when, and only when, an element of the solution is not finite
    (finite elements whose sum overflows included)."""
    matrix = np.eye(rhs.size)
    solution = _solve(matrix, np.zeros(rhs.size), rhs)
    if np.isfinite(rhs).all():
        assert solution is not None
        np.testing.assert_array_equal(solution, rhs)
    else:
        assert solution is None


@given(arrays(np.bool_, st.integers(0, 12)))
def test_any_is_numpys_any(mask: np.ndarray) -> None:
    assert _any(mask) == bool(mask.any())
