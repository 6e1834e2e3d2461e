"""Deletion F-tests: one outlier, a free low-frequency tail, the τ extension after a cut."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geis_pipeline.kk.basis import point_products
from geis_pipeline.kk.group import Group, chi2_rows, fit_rows
from geis_pipeline.kk.options import MIN_POINTS, Options
from geis_pipeline.kk.solver import MIN_DOF, f_sf, forward, solve_normal

_TAIL_CHUNK = 64


@dataclass(frozen=True)
class Screen:
    """Most significant defect of each row (Bonferroni-corrected p-values)."""

    outlier_index: np.ndarray  # sorted index of the worst point, -1 if none testable
    outlier_p: np.ndarray
    outlier_size: np.ndarray  # excess RMS deviation of that point beyond the noise
    tail_length: np.ndarray  # k of the most significant tail, 0 if none testable
    tail_p: np.ndarray
    tail_size: np.ndarray
    outlier_variance: np.ndarray  # residual variance (χ²/dof) once the point is removed
    tail_variance: np.ndarray  # residual variance once the tail is removed


def _screen_rows(group: Group, rows: np.ndarray, n_elements: int, options: Options) -> Screen:
    """Deletion F-tests for one outlier and for a free low-frequency tail, rows sharing M."""
    basis = group.basis
    n_points = basis.n_points
    design_real = basis.design_real[n_elements - 1]
    design_imag = basis.design_imag[n_elements - 1]
    n_columns = design_real.shape[1]
    products = point_products(group.basis, n_elements)
    outlier_index = np.full(rows.size, -1)
    outlier_p = np.ones(rows.size)
    outlier_size = np.zeros(rows.size)
    tail_length = np.zeros(rows.size, dtype=np.int64)
    tail_p = np.ones(rows.size)
    tail_size = np.zeros(rows.size)
    outlier_variance = np.full(rows.size, np.inf)
    tail_variance = np.full(rows.size, np.inf)
    min_keep = max(MIN_POINTS, math.ceil((1.0 - options.max_truncated_fraction) * n_points))

    for start in range(0, rows.size, _TAIL_CHUNK):
        chunk = rows[start : start + _TAIL_CHUNK]
        part = slice(start, start + chunk.size)
        used = group.used(chunk)
        weight2 = group.weight2[chunk] * used
        weight = np.sqrt(weight2)
        columns = group.column_mask(chunk, n_elements)
        solution, factor, scale, _ = fit_rows(group, chunk, n_elements)
        masked_real = design_real[np.newaxis] * columns[:, np.newaxis, :]
        masked_imag = design_imag[np.newaxis] * columns[:, np.newaxis, :]
        residual_real = weight * (
            group.z_real[chunk] - np.einsum("snp,sp->sn", masked_real, solution)
        )
        residual_imag = weight * (
            group.z_imag[chunk] - np.einsum("snp,sp->sn", masked_imag, solution)
        )
        chi2 = np.sum(residual_real**2 + residual_imag**2, axis=1)
        n_used = used.sum(axis=1)
        dof = 2 * n_used - columns.sum(axis=1)

        # One point: Δχ² = rᵀ (I - H_ii)⁻¹ r with the 2x2 hat block of the point.
        # a G⁻¹ aᵀ = |L⁻¹ (a * scale)|² with G's scaled Cholesky factor L.
        projected_real = forward(factor, (masked_real * scale[:, np.newaxis, :]).transpose(0, 2, 1))
        projected_imag = forward(factor, (masked_imag * scale[:, np.newaxis, :]).transpose(0, 2, 1))
        hat_rr = weight2 * np.einsum("spn,spn->sn", projected_real, projected_real)
        hat_ii = weight2 * np.einsum("spn,spn->sn", projected_imag, projected_imag)
        hat_ri = weight2 * np.einsum("spn,spn->sn", projected_real, projected_imag)
        determinant = (1.0 - hat_rr) * (1.0 - hat_ii) - hat_ri**2
        testable = used & (determinant > 1e-6) & ((dof - 2) >= MIN_DOF)[:, np.newaxis]
        safe_det = np.where(testable, determinant, 1.0)
        deleted = (
            residual_real**2 * (1.0 - hat_ii)
            + 2.0 * residual_real * residual_imag * hat_ri
            + residual_imag**2 * (1.0 - hat_rr)
        ) / safe_det
        deleted = np.where(testable, np.clip(deleted, 0.0, chi2[:, np.newaxis]), 0.0)
        rest_dof = np.maximum(dof - 2, 1)[:, np.newaxis]
        rest_var = np.maximum(chi2[:, np.newaxis] - deleted, 1e-300) / rest_dof
        p_point = np.where(testable, f_sf(deleted / 2.0 / rest_var, 2.0, rest_dof), 1.0)
        p_point = np.minimum(p_point * np.maximum(testable.sum(axis=1), 1)[:, np.newaxis], 1.0)
        worst = np.argmin(p_point, axis=1)
        take = np.arange(chunk.size)
        outlier_index[part] = np.where(testable[take, worst], worst, -1)
        outlier_p[part] = p_point[take, worst]
        outlier_variance[part] = rest_var[take, 0]
        outlier_size[part] = np.sqrt(
            np.maximum(deleted[take, worst] / 2.0 - rest_var[take, 0], 0.0)
        )

        # Low-frequency tail: refit without the lowest k kept points (same columns,
        # so the models are nested); normal matrices summed over the kept rows, never
        # by subtracting the tail (no cancellation).
        max_tail = int(np.max(group.n_keep[chunk] - min_keep, initial=0))
        if max_tail < 2:
            continue
        # Every tail length up to 16 points, then every other one (cost vs resolution).
        lengths = np.concatenate([np.arange(2, 17), np.arange(18, max_tail + 1, 2)])
        lengths = lengths[lengths <= max_tail]
        cut = np.maximum(group.n_keep[chunk, np.newaxis] - lengths[np.newaxis, :], 0)
        # Kept rows for each k as weights: one matrix product gives every normal matrix.
        weight2_k = weight2[:, np.newaxis, :] * (
            np.arange(n_points)[np.newaxis, np.newaxis, :] < cut[:, :, np.newaxis]
        )
        # 2-D products: numpy's stacked (3-D @ 2-D) matmul does not use BLAS.
        flat_weight2 = weight2_k.reshape(-1, n_points)
        normal_k = (flat_weight2 @ products).reshape(chunk.size, lengths.size, n_columns, n_columns)
        rhs_k = (flat_weight2 * np.repeat(group.z_real[chunk], lengths.size, axis=0)) @ design_real
        rhs_k += (flat_weight2 * np.repeat(group.z_imag[chunk], lengths.size, axis=0)) @ design_imag
        rhs_k = rhs_k.reshape(chunk.size, lengths.size, n_columns)
        columns_k = np.broadcast_to(columns[:, np.newaxis, :], rhs_k.shape)
        solution_k = solve_normal(normal_k, rhs_k, columns_k)[0]
        model_real = np.einsum("snp,skp->skn", masked_real, solution_k)
        model_imag = np.einsum("snp,skp->skn", masked_imag, solution_k)
        kept_k = weight2_k > 0
        chi2_k = np.sum(
            weight2_k
            * (
                (group.z_real[chunk][:, np.newaxis, :] - model_real) ** 2
                + (group.z_imag[chunk][:, np.newaxis, :] - model_imag) ** 2
            ),
            axis=2,
        )
        freed = 2 * (n_used[:, np.newaxis] - kept_k.sum(axis=2))  # data values freed
        dof_k = dof[:, np.newaxis] - freed
        valid = (
            (lengths[np.newaxis, :] <= (group.n_keep[chunk] - min_keep)[:, np.newaxis])
            & (dof_k >= MIN_DOF)
            & (freed > 0)
        )
        gain = np.maximum(chi2[:, np.newaxis] - chi2_k, 0.0)
        rest_var_k = np.maximum(chi2_k, 1e-300) / np.maximum(dof_k, 1)
        statistic = gain / np.maximum(freed, 1) / rest_var_k
        p_tail = np.where(valid, f_sf(statistic, np.maximum(freed, 1), np.maximum(dof_k, 1)), 1.0)
        p_tail = np.minimum(p_tail * np.maximum(valid.sum(axis=1), 1)[:, np.newaxis], 1.0)
        best = np.argmin(p_tail, axis=1)
        has_tail = valid[take, best]
        tail_length[part] = np.where(has_tail, lengths[best], 0)
        tail_p[part] = p_tail[take, best]
        tail_variance[part] = np.where(has_tail, rest_var_k[take, best], np.inf)
        tail_size[part] = np.sqrt(
            np.maximum(
                gain[take, best] / np.maximum(freed[take, best], 1) - rest_var_k[take, best], 0.0
            )
        )
    return Screen(
        outlier_index,
        outlier_p,
        outlier_size,
        tail_length,
        tail_p,
        tail_size,
        outlier_variance,
        tail_variance,
    )


def screen_defects(group: Group, rows: np.ndarray, options: Options) -> Screen:
    """:func:`_screen_rows` for rows of any M (grouped by M)."""
    n_rows = rows.size
    merged = Screen(
        np.full(n_rows, -1),
        np.ones(n_rows),
        np.zeros(n_rows),
        np.zeros(n_rows, dtype=np.int64),
        np.ones(n_rows),
        np.zeros(n_rows),
        np.full(n_rows, np.inf),
        np.full(n_rows, np.inf),
    )
    elements = group.n_elements[rows]
    for n_elements in np.unique(elements):
        where = np.flatnonzero(elements == n_elements)
        part = _screen_rows(group, rows[where], int(n_elements), options)
        for name in merged.__dataclass_fields__:
            getattr(merged, name)[where] = getattr(part, name)
    return merged


def needs_extension(group: Group, row: int, significance: float) -> bool:
    """True when a truncated row's kept points need the τ extension beyond their range.

    Without the extension, a relaxation whose arc straddles the cut cannot be
    followed and its end looks like a further violation; truncating again
    would cascade. The extension columns are tested like any added terms (F-test).
    """
    if group.extended[row] or group.n_keep[row] == group.basis.n_points:
        return False
    rows = np.array([row])
    n_elements = int(group.n_elements[row])
    chi2, dof = chi2_rows(group, rows, n_elements)
    group.extended[row] = True
    chi2_ext, dof_ext = chi2_rows(group, rows, n_elements)
    group.extended[row] = False
    added = dof - dof_ext
    if added[0] <= 0 or dof_ext[0] < MIN_DOF:
        return False
    statistic = (max(chi2[0] - chi2_ext[0], 0.0) / added) / (max(chi2_ext[0], 1e-300) / dof_ext)
    return bool(f_sf(statistic, added, dof_ext)[0] < significance)
