"""Weighted normal equations of many small least-squares problems, and the F-test.

Every fit of the KK stage is a small (P <= ~50 columns) weighted linear least-
squares problem; a batch solves many of them at once. The normal matrices are
scaled to a unit diagonal before the Cholesky factorisation, which makes the
columns (1, jω, the RC elements of every τ) comparable.
"""

from __future__ import annotations

import numpy as np

# Tikhonov term on the unit-diagonal normal equations: invisible in the residuals
# (~1e-12 relative) but keeps the solve defined when truncation leaves a column weak.
_RIDGE = 1e-12

# Every F-test keeps at least this many residual degrees of freedom.
MIN_DOF = 4

# --------------------------------------------------------------------------- numerics


def f_sf(statistic: np.ndarray, dof_num: np.ndarray, dof_den: np.ndarray) -> np.ndarray:
    """Survival function of the F distribution (vectorised; NaN-free for valid input)."""
    from scipy.special import betainc  # on first use: a quick package import

    statistic = np.maximum(statistic, 0.0)
    x = dof_den / (dof_den + dof_num * statistic)
    return betainc(dof_den / 2.0, dof_num / 2.0, x)


def cholesky(scaled: np.ndarray) -> np.ndarray:
    """Batched Cholesky factor of unit-diagonal SPD matrices (ridge added in place)."""
    diagonal = np.einsum("...ii->...i", scaled)
    diagonal += _RIDGE
    ridge = _RIDGE
    for _ in range(4):
        try:
            return np.linalg.cholesky(scaled)
        except np.linalg.LinAlgError:
            # Rounding made a column the kept points barely determine indefinite.
            diagonal += 999.0 * ridge
            ridge *= 1e3
    return np.linalg.cholesky(scaled)


# Up to this many systems, numpy's batched LAPACK solve (~20 µs a call, ~10 µs a
# system) beats the vectorised column loops below, whose cost (~100-200 µs, one
# numpy call per column) is per batch, not per system. (scipy.linalg's direct
# LAPACK calls would be ~2x faster still but cost ~150 ms to import.)
_FEW_SYSTEMS = 32


def _few(matrices: np.ndarray) -> bool:
    return matrices.size <= _FEW_SYSTEMS * matrices.shape[-1] ** 2


def _solve_few(factor: np.ndarray, rhs: np.ndarray, *, transpose: bool) -> np.ndarray:
    """L y = b (or Lᵀ x = y) for a few systems, by numpy's batched LAPACK solve."""
    matrix = np.swapaxes(factor, -1, -2) if transpose else factor
    return np.linalg.solve(matrix, rhs)


def forward(factor: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve L y = b for lower-triangular L (..., P, P) and b (..., P, m), vectorised.

    numpy's batched solve/inv cost 10-50 µs per small matrix; a column loop over
    the whole batch costs a fraction of a microsecond per system.
    """
    if _few(factor):
        return _solve_few(factor, rhs, transpose=False)
    solution = np.empty_like(rhs)
    for column in range(factor.shape[-1]):
        known = np.einsum(
            "...k,...km->...m", factor[..., column, :column], solution[..., :column, :]
        )
        solution[..., column, :] = (rhs[..., column, :] - known) / factor[
            ..., column, column, np.newaxis
        ]
    return solution


def backward(factor: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve Lᵀ x = y for lower-triangular L (..., P, P) and y (..., P, m), vectorised."""
    if _few(factor):
        return _solve_few(factor, rhs, transpose=True)
    size = factor.shape[-1]
    solution = np.empty_like(rhs)
    for column in range(size - 1, -1, -1):
        known = np.einsum(
            "...k,...km->...m", factor[..., column + 1 :, column], solution[..., column + 1 :, :]
        )
        solution[..., column, :] = (rhs[..., column, :] - known) / factor[
            ..., column, column, np.newaxis
        ]
    return solution


def solve_normal(
    normal: np.ndarray, rhs: np.ndarray, columns: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve masked weighted normal equations: (solution, Cholesky factor, column scale).

    ``normal`` (..., P, P), ``rhs`` (..., P), ``columns`` (..., P) bool. Masked
    columns get a unit diagonal and a zero right-hand side (their coefficient
    is 0). Unit-diagonal scaling makes the columns (1, jω, RC of every τ)
    comparable before the factorisation; the factor is of the scaled matrix.
    """
    column_weight = columns.astype(np.float64)
    diagonal = np.einsum("...ii->...i", normal) * column_weight + (1.0 - column_weight)
    scale = column_weight / np.sqrt(diagonal)
    # Masked columns: zero rows and columns, then a unit diagonal.
    scaled = scale[..., :, np.newaxis] * scale[..., np.newaxis, :]
    scaled *= normal
    scaled_diagonal = np.einsum("...ii->...i", scaled)
    scaled_diagonal += 1.0 - column_weight
    factor = cholesky(scaled)
    scaled_rhs = (rhs * scale)[..., np.newaxis]
    solution = backward(factor, forward(factor, scaled_rhs))[..., 0] * scale
    return solution, factor, scale
