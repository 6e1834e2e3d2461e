"""The check of a group of spectra (outliers, truncation, refits) and its frozen results."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from geis_pipeline._arrays import complex_from_parts, readonly
from geis_pipeline.kk.basis import KKBasis
from geis_pipeline.kk.elements import compute_mu, select_elements
from geis_pipeline.kk.group import Group
from geis_pipeline.kk.options import Options
from geis_pipeline.kk.screening import needs_extension, screen_defects


@dataclass(frozen=True, eq=False)
class KKResult:
    """Outcome of the Kramers-Kronig check of one spectrum.

    Per-point arrays are read-only, in the order of the input, one value per
    input point (points cropped or truncated included: their residuals show
    how far they are from the KK fit of the kept points).

    Attributes
    ----------
    ok
        True when the points used (``points_used``) are KK-consistent: RMS
        relative residual ``rms`` <= ``threshold`` and nothing below failed.
    reason
        Why not ok ("" when ok).
    residuals_real, residuals_imag
        (Z' - Z'_fit) / |Z| and (Z'' - Z''_fit) / |Z|, dimensionless.
    z_fit
        The Lin-KK model at every input frequency, ohm.
    mask
        True for points kept: not cropped above ``max_freq_hz`` and not in the
        truncated low-frequency tail.
    outliers
        Indices (into the input) of isolated bad points, left out of the fit.
    truncated_below_hz
        Lowest kept frequency when the low-frequency tail was truncated (every
        point below it was dropped), Hz; NaN if nothing was truncated.
    mu
        Schönleber's μ of the final fit.
    n_elements
        Number of RC elements M of the final fit (those inside the kept range).
    rms
        RMS relative residual over the points used, per component.
    tail_p_value
        Bonferroni-corrected p-value of the most significant low-frequency-tail
        violation left in the points used (1.0 when none can be tested).
    """

    ok: bool
    reason: str
    residuals_real: np.ndarray
    residuals_imag: np.ndarray
    z_fit: np.ndarray
    mask: np.ndarray
    outliers: np.ndarray
    truncated_below_hz: float
    mu: float
    n_elements: int
    rms: float
    tail_p_value: float

    @property
    def points_used(self) -> np.ndarray:
        """Points the final fit used: ``mask`` without the outliers."""
        used = self.mask.copy()
        used[self.outliers] = False
        return used

    @property
    def truncated(self) -> bool:
        """True when a low-frequency tail was dropped."""
        return not math.isnan(self.truncated_below_hz)


def check_group(group: Group, options: Options) -> dict[str, np.ndarray]:
    """Run the check on every spectrum of a group; per-row outcome arrays."""
    n_spectra = group.z_real.shape[0]
    n_points = group.basis.n_points
    rows = np.arange(n_spectra)
    tail_violation = np.zeros(n_spectra, dtype=bool)
    limit_reached = np.zeros(n_spectra, dtype=bool)
    tail_p = np.ones(n_spectra)
    outlier_count = np.zeros(n_spectra, dtype=np.int64)
    pending = rows
    # Each pass removes one outlier or one tail; bounded by the limits below.
    for _ in range(n_points):
        if pending.size == 0:
            break
        select_elements(group, pending, options.mu_criterion, options.significance)
        screen = screen_defects(group, pending, options)
        tail_p[pending] = screen.tail_p
        tail_hit = (screen.tail_p < options.significance) & (
            screen.tail_size >= options.min_deviation
        )
        outlier_hit = (
            (screen.outlier_index >= 0)
            & (screen.outlier_p < options.significance)
            & (screen.outlier_size >= options.min_deviation)
            & (screen.outlier_size >= options.threshold)
        )
        # The more significant defect first; the rest is re-tested after the refit.
        prefer_tail = tail_hit & (~outlier_hit | (screen.tail_p < screen.outlier_p))
        acted = np.zeros(pending.size, dtype=bool)
        for position, row in enumerate(pending):
            if prefer_tail[position]:
                if options.truncate and needs_extension(group, row, options.significance):
                    group.extended[row] = True  # re-fitted with the extension next pass
                    acted[position] = True
                elif options.truncate:
                    group.n_keep[row] -= screen.tail_length[position]
                    acted[position] = True
                else:
                    tail_violation[row] = True
            elif outlier_hit[position]:
                if outlier_count[row] >= options.max_outliers:
                    limit_reached[row] = True
                else:
                    group.excluded[row, screen.outlier_index[position]] = True
                    outlier_count[row] += 1
                    acted[position] = True
        pending = pending[acted]
    # A "bad point" right above a truncated tail is the tail's first point, not an
    # isolated outlier: move it into the truncation.
    folded = []
    for row in np.flatnonzero(group.n_keep < n_points):
        changed = False
        while group.excluded[row, group.n_keep[row] - 1]:
            group.excluded[row, group.n_keep[row] - 1] = False
            group.n_keep[row] -= 1
            changed = True
        if changed:
            folded.append(row)
    if folded:
        select_elements(group, np.array(folded), options.mu_criterion, options.significance)
    return {
        "tail_violation": tail_violation,
        "outlier_limit": limit_reached,
        "tail_p": tail_p,
    }


def build_results(
    group: Group,
    outcome: dict[str, np.ndarray],
    options: Options,
    crops: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> list[KKResult]:
    """Frozen results in input order (crops: original freq, z and kept flags per row)."""
    basis = group.basis
    order = basis.order
    n_rows, n_points = group.z_real.shape
    every = np.arange(n_rows)
    # The numbers, for all rows at once (rows sharing M together), in sorted order.
    model = np.empty((n_rows, n_points), dtype=np.complex128)
    mu = np.empty(n_rows)
    n_counted = np.empty(n_rows, dtype=np.int64)
    solutions: list[np.ndarray] = [np.empty(0)] * n_rows
    for n_elements in np.unique(group.n_elements):
        rows = np.flatnonzero(group.n_elements == n_elements)
        columns = group.column_mask(rows, int(n_elements))
        solution = np.stack([group.solution[row] for row in rows]) * columns
        model[rows] = complex_from_parts(
            solution @ basis.design_real[n_elements - 1].T,
            solution @ basis.design_imag[n_elements - 1].T,
        )
        rc = solution[:, :n_elements]
        mu[rows] = compute_mu(rc, group.mu_elements(rows, int(n_elements)))
        n_counted[rows] = np.count_nonzero(columns[:, :n_elements], axis=1)
        for row, values in zip(rows, solution, strict=True):
            solutions[row] = values
    used_sorted = group.used(every)
    modulus = np.hypot(group.z_real, group.z_imag)
    residual_real = (group.z_real - model.real) / modulus
    residual_imag = (group.z_imag - model.imag) / modulus
    squares = np.where(used_sorted, residual_real**2 + residual_imag**2, 0.0)
    rms = np.sqrt(squares.sum(axis=1) / (2.0 * used_sorted.sum(axis=1)))
    kept_sorted = np.arange(n_points)[np.newaxis, :] < group.n_keep[:, np.newaxis]

    results = []
    for row, (freq_all, z_all, kept_all) in enumerate(crops):
        # Sorted, cropped positions back in the input.
        position = np.flatnonzero(kept_all)[order]
        z_fit = np.empty(freq_all.size, dtype=np.complex128)
        z_fit[position] = model[row]
        if position.size < freq_all.size:  # cropped points: the model there too
            cropped = ~kept_all
            z_fit[cropped] = _model_at(
                freq_all[cropped], solutions[row], int(group.n_elements[row]), basis
            )
        modulus_all = np.abs(z_all)
        mask = np.zeros(freq_all.size, dtype=bool)
        mask[position[kept_sorted[row]]] = True
        outliers = np.sort(position[group.excluded[row]])
        row_rms = float(rms[row])
        reasons = []
        if outcome["tail_violation"][row]:
            reasons.append(
                "the low-frequency tail violates KK "
                f"(p = {outcome['tail_p'][row]:.1e}) and truncation is off"
            )
        if outcome["outlier_limit"][row]:
            reasons.append(f"more than max_outliers = {options.max_outliers} bad points")
        if not row_rms <= options.threshold:
            reasons.append(
                f"RMS relative residual {row_rms:.2%} exceeds the threshold {options.threshold:.2%}"
            )
        truncated = group.n_keep[row] < n_points
        results.append(
            KKResult(
                ok=not reasons,
                reason="; ".join(reasons),
                residuals_real=readonly((z_all.real - z_fit.real) / modulus_all),
                residuals_imag=readonly((z_all.imag - z_fit.imag) / modulus_all),
                z_fit=readonly(z_fit),
                mask=readonly(mask),
                outliers=readonly(outliers.astype(np.int64)),
                truncated_below_hz=(
                    float(basis.freq[order[group.n_keep[row] - 1]]) if truncated else math.nan
                ),
                mu=float(mu[row]),
                n_elements=int(n_counted[row]),
                rms=row_rms,
                tail_p_value=float(outcome["tail_p"][row]),
            )
        )
    return results


def _model_at(
    freq: np.ndarray, solution: np.ndarray, n_elements: int, basis: KKBasis
) -> np.ndarray:
    """The Lin-KK model with these coefficients at any frequencies, ohm."""
    omega = 2.0 * np.pi * freq
    tau = basis.tau[n_elements - 1]
    z_fit = (solution[np.newaxis, :n_elements] / (1.0 + 1j * omega[:, np.newaxis] * tau)).sum(
        axis=1
    )
    z_fit = z_fit + solution[n_elements]
    extra = n_elements + 1
    if basis.include_inductance:
        z_fit = z_fit + 1j * omega * solution[extra]
        extra += 1
    if basis.include_capacitance:
        z_fit = z_fit + solution[extra] / (1j * omega)
    return z_fit
