"""Working state of the spectra of one grid, and their weighted Lin-KK fits."""

from __future__ import annotations

import numpy as np

from geis_pipeline.kk.basis import KKBasis, point_products
from geis_pipeline.kk.solver import solve_normal


class Group:
    """Working state of the spectra of one grid (sorted high to low frequency).

    Arrays have one row per spectrum. ``n_keep`` is the number of points kept
    from the top of the sorted grid (the rest is the truncated tail);
    ``excluded`` marks outliers.
    """

    def __init__(self, basis: KKBasis, z_sorted: np.ndarray) -> None:
        self.basis = basis
        self.z_real = np.ascontiguousarray(z_sorted.real)
        self.z_imag = np.ascontiguousarray(z_sorted.imag)
        self.weight2 = 1.0 / (self.z_real**2 + self.z_imag**2)
        n_spectra, n_points = z_sorted.shape
        self.n_keep = np.full(n_spectra, n_points)
        self.excluded = np.zeros((n_spectra, n_points), dtype=bool)
        self.n_elements = np.zeros(n_spectra, dtype=np.int64)
        self.solution: list[np.ndarray] = [np.empty(0)] * n_spectra
        self.mu = np.ones(n_spectra)
        self.extended = np.zeros(n_spectra, dtype=bool)
        omega_sorted = 2.0 * np.pi * basis.freq[basis.order]
        # Longest τ allowed when the lowest kept point is index i (sorted): the
        # basis restricted to the kept range, with the same extension.
        self.tau_limit = 10.0**basis.tau_extension_decades / omega_sorted * (1.0 + 1e-9)
        # μ counts only elements inside the measured (kept) range: the extension
        # elements are nearly collinear with R_0, L (and C), so their signs say
        # nothing about over-fitting and would stop the M search too early.
        self.tau_measured_short = (1.0 - 1e-9) / omega_sorted[0]
        self.tau_measured_long = (1.0 + 1e-9) / omega_sorted

    def used(self, rows: np.ndarray) -> np.ndarray:
        n_points = self.basis.n_points
        used = np.arange(n_points)[np.newaxis, :] < self.n_keep[rows, np.newaxis]
        return used & ~self.excluded[rows]

    def tau_limits(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row: the longest τ an RC element may have, and the longest μ counts, s."""
        last_kept = self.n_keep[rows] - 1
        longest_measured = self.tau_measured_long[last_kept]
        # Once a tail is cut, the kept range ends where the data became suspect: no
        # elements beyond it, or they would bend the model to absorb the rest of a
        # drift -- unless a relaxation straddles the cut and needs them (``extended``).
        plain = (self.n_keep[rows] < self.basis.n_points) & ~self.extended[rows]
        return np.where(plain, longest_measured, self.tau_limit[last_kept]), longest_measured

    def column_mask(self, rows: np.ndarray, n_elements: int) -> np.ndarray:
        tau = self.basis.tau[n_elements - 1]
        rc_kept = tau[np.newaxis, :] <= self.tau_limits(rows)[0][:, np.newaxis]
        extra = np.ones((rows.size, self.basis.n_extra), dtype=bool)
        return np.concatenate([rc_kept, extra], axis=1)

    def mu_elements(self, rows: np.ndarray, n_elements: int) -> np.ndarray:
        """RC elements μ counts: τ inside the measured range of the kept points."""
        tau = self.basis.tau[n_elements - 1][np.newaxis, :]
        longest = self.tau_limits(rows)[1][:, np.newaxis]
        return (tau >= self.tau_measured_short) & (tau <= longest)


def fit_rows(
    group: Group, rows: np.ndarray, n_elements: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weighted Lin-KK fit of ``rows`` with M = n_elements: (solution, factor, scale, columns)."""
    basis = group.basis
    design_real = basis.design_real[n_elements - 1]
    design_imag = basis.design_imag[n_elements - 1]
    n_columns = design_real.shape[1]
    weight2 = group.weight2[rows] * group.used(rows)
    normal = (weight2 @ point_products(group.basis, n_elements)).reshape(
        rows.size, n_columns, n_columns
    )
    rhs = (weight2 * group.z_real[rows]) @ design_real + (
        weight2 * group.z_imag[rows]
    ) @ design_imag
    columns = group.column_mask(rows, n_elements)
    solution, factor, scale = solve_normal(normal, rhs, columns)
    return solution, factor, scale, columns


def fit_block(group: Group, rows: np.ndarray, block: range) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fit_rows` of ``rows`` for every M in ``block``, solved together.

    The normal matrices of the block's M are padded to the largest one's size
    with masked columns (an identity block, a zero coefficient) and factored in
    one call: for a few rows this saves the per-M overhead of the solves.

    Returns
    -------
    solution
        (rows, len(block), block[-1] + n_extra): M RC coefficients, then R_0
        (and L, 1/C), then zeros.
    counted
        Same shape, bool: the elements μ counts (:meth:`Group.mu_elements`).
    """
    basis = group.basis
    n_extra = basis.n_extra
    weight2 = group.weight2[rows] * group.used(rows)
    weighted_real = weight2 * group.z_real[rows]
    weighted_imag = weight2 * group.z_imag[rows]
    size = block[-1] + n_extra
    tau = np.full((len(block), size), np.nan)  # NaN: no RC element there
    extra = np.zeros((len(block), size), dtype=bool)
    normals, right = [], []
    for position, n_elements in enumerate(block):
        n_columns = n_elements + n_extra
        normals.append(
            (weight2 @ point_products(basis, n_elements)).reshape(rows.size, n_columns, n_columns)
        )
        right.append(
            weighted_real @ basis.design_real[n_elements - 1]
            + weighted_imag @ basis.design_imag[n_elements - 1]
        )
        tau[position, :n_elements] = basis.tau[n_elements - 1]
        extra[position, n_elements:n_columns] = True
    if len(block) == 1:  # nothing to pad (many rows: one M at a time)
        normal, rhs = normals[0][:, np.newaxis], right[0][:, np.newaxis]
    else:
        normal = np.zeros((rows.size, len(block), size, size))
        rhs = np.zeros((rows.size, len(block), size))
        for position, n_elements in enumerate(block):
            n_columns = n_elements + n_extra
            normal[:, position, :n_columns, :n_columns] = normals[position]
            rhs[:, position, :n_columns] = right[position]
    # Column masks and μ's elements as in column_mask / mu_elements (NaN τ: neither).
    limit, longest = group.tau_limits(rows)
    columns = (tau <= limit[:, np.newaxis, np.newaxis]) | extra
    counted = (tau >= group.tau_measured_short) & (tau <= longest[:, np.newaxis, np.newaxis])
    return solve_normal(normal, rhs, columns)[0], counted


def chi2_rows(
    group: Group, rows: np.ndarray, n_elements: int, solution: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """χ² (weighted) and residual degrees of freedom of the M = n_elements fit of ``rows``."""
    basis = group.basis
    columns = group.column_mask(rows, n_elements)
    if solution is None:
        solution = fit_rows(group, rows, n_elements)[0]
    used = group.used(rows)
    weight2 = group.weight2[rows] * used
    model_real = solution @ basis.design_real[n_elements - 1].T
    model_imag = solution @ basis.design_imag[n_elements - 1].T
    chi2 = np.sum(
        weight2 * ((group.z_real[rows] - model_real) ** 2 + (group.z_imag[rows] - model_imag) ** 2),
        axis=1,
    )
    dof = 2 * used.sum(axis=1) - columns.sum(axis=1)
    return chi2, dof
