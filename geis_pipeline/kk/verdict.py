"""The check of a group of spectra (outliers, truncation, refits) and its frozen results."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from geis_pipeline._arrays import readonly
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
    n_points = basis.n_points
    results = []
    for row, (freq_all, z_all, kept_all) in enumerate(crops):
        n_elements = int(group.n_elements[row])
        columns = group.column_mask(np.array([row]), n_elements)[0]
        solution = group.solution[row] * columns
        rc = solution[:n_elements]
        used_sorted = group.used(np.array([row]))[0]
        # The model at every input frequency (cropped points included).
        omega = 2.0 * np.pi * freq_all
        tau = basis.tau[n_elements - 1]
        z_fit = (rc[np.newaxis, :] / (1.0 + 1j * omega[:, np.newaxis] * tau)).sum(axis=1)
        z_fit = z_fit + solution[n_elements]
        extra = n_elements + 1
        if basis.include_inductance:
            z_fit = z_fit + 1j * omega * solution[extra]
            extra += 1
        if basis.include_capacitance:
            z_fit = z_fit + solution[extra] / (1j * omega)
        modulus = np.abs(z_all)
        residual_real = (z_all.real - z_fit.real) / modulus
        residual_imag = (z_all.imag - z_fit.imag) / modulus

        # Map sorted, cropped positions back to the input.
        cropped_index = np.flatnonzero(kept_all)
        mask = np.zeros(freq_all.size, dtype=bool)
        kept_sorted = np.arange(n_points) < group.n_keep[row]
        mask[cropped_index[order[kept_sorted]]] = True
        outliers = np.sort(cropped_index[order[group.excluded[row]]])
        used = np.zeros(freq_all.size, dtype=bool)
        used[cropped_index[order[used_sorted]]] = True
        rms = float(
            np.sqrt(np.mean(np.concatenate([residual_real[used] ** 2, residual_imag[used] ** 2])))
        )
        truncated = group.n_keep[row] < n_points
        truncated_below = float(basis.freq[order[group.n_keep[row] - 1]]) if truncated else math.nan
        reasons = []
        if outcome["tail_violation"][row]:
            reasons.append(
                "the low-frequency tail violates KK "
                f"(p = {outcome['tail_p'][row]:.1e}) and truncation is off"
            )
        if outcome["outlier_limit"][row]:
            reasons.append(f"more than max_outliers = {options.max_outliers} bad points")
        if not rms <= options.threshold:
            reasons.append(
                f"RMS relative residual {rms:.2%} exceeds the threshold {options.threshold:.2%}"
            )
        results.append(
            KKResult(
                ok=not reasons,
                reason="; ".join(reasons),
                residuals_real=readonly(residual_real),
                residuals_imag=readonly(residual_imag),
                z_fit=readonly(z_fit),
                mask=readonly(mask),
                outliers=readonly(outliers.astype(np.int64)),
                truncated_below_hz=truncated_below,
                mu=float(
                    compute_mu(rc[np.newaxis], group.mu_elements(np.array([row]), n_elements))[0]
                ),
                n_elements=int(np.count_nonzero(columns[:n_elements])),
                rms=rms,
                tail_p_value=float(outcome["tail_p"][row]),
            )
        )
    return results
