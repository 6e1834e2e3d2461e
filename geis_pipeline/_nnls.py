"""Non-negative least squares in numpy (Lawson-Hanson), for the fit's start values.

``scipy.optimize.nnls`` solves the same problem, but importing scipy.optimize
(with scipy's array-API layer) takes 0.3-0.7 s: more than the first fit of a
notebook session may cost. The problems here are small (about 30 columns), so
the active-set loop's least-squares solves on the passive columns are cheap;
it reaches scipy's optimum to rounding where the problem is strictly convex
(tested against scipy).
"""

from __future__ import annotations

import numpy as np

__all__ = ["nnls"]


def nnls(matrix: np.ndarray, target: np.ndarray, maxiter: int) -> tuple[np.ndarray, float]:
    """argmin ||A x - b|| subject to x >= 0 (Lawson and Hanson 1974, ch. 23).

    Parameters
    ----------
    matrix
        A, shape (m, n).
    target
        b, shape (m,).
    maxiter
        Most least-squares solves.

    Returns
    -------
    x, residual norm

    Raises
    ------
    RuntimeError
        The iteration limit was reached (as scipy's ``nnls`` does).
    """
    n_columns = matrix.shape[1]
    solution = np.zeros(n_columns)
    passive = np.zeros(n_columns, dtype=bool)
    tolerance = 10 * np.finfo(np.float64).eps * np.abs(matrix).sum(axis=0).max() * max(matrix.shape)
    gradient = matrix.T @ target
    blocked = np.zeros(n_columns, dtype=bool)  # just dropped again without progress
    iterations = 0
    while True:
        candidates = ~passive & ~blocked & (gradient > tolerance)
        if not candidates.any():
            break
        entering = int(np.argmax(np.where(candidates, gradient, -np.inf)))
        passive[entering] = True
        while True:
            iterations += 1
            if iterations > maxiter:
                raise RuntimeError("nnls: iteration limit reached")
            trial = np.zeros(n_columns)
            trial[passive] = np.linalg.lstsq(matrix[:, passive], target, rcond=None)[0]
            if np.all(trial[passive] > 0):
                break
            # Step from the feasible point towards the trial as far as x >= 0 allows.
            leaving = passive & (trial <= 0)
            step = np.min(solution[leaving] / (solution[leaving] - trial[leaving]))
            solution += step * (trial - solution)
            passive &= solution > tolerance
            solution[~passive] = 0.0
            if not passive.any():
                trial = solution
                break
        moved = not np.array_equal(trial, solution)
        solution = trial
        # A column that entered and left again without a change would loop: skip it
        # until the solution moves.
        blocked = np.zeros(n_columns, dtype=bool) if moved else blocked
        if not passive[entering]:
            blocked[entering] = True
        gradient = matrix.T @ (target - matrix @ solution)
    return solution, float(np.linalg.norm(matrix @ solution - target))
