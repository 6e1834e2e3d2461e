"""The number of RC elements M: Schönleber's μ criterion, guarded by an F-test."""

from __future__ import annotations

import numpy as np

from geis_pipeline.kk.group import Group, chi2_rows, fit_block
from geis_pipeline.kk.solver import MIN_DOF, f_sf

# Candidate M solved together: up to _MAX_BLOCK of them, and about _BLOCK_SYSTEMS
# systems per solve (many pending rows: one M at a time, nothing wasted).
_MAX_BLOCK = 8
_BLOCK_SYSTEMS = 32


def compute_mu(resistances: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """Schönleber's μ = 1 - Σ|R_k<0| / Σ|R_k≥0| over the counted elements, per row.

    1 when nothing is fitted.
    """
    resistances = np.where(counted, resistances, 0.0)
    positive = np.where(resistances >= 0, resistances, 0.0).sum(axis=-1)
    negative = -np.where(resistances < 0, resistances, 0.0).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = 1.0 - negative / positive
    return np.where(positive > 0, mu, np.where(negative > 0, -np.inf, 1.0))


def select_elements(
    group: Group, rows: np.ndarray, mu_criterion: float, significance: float
) -> None:
    """The number of RC elements M of each row: Schönleber's μ criterion, guarded.

    M is the first M whose fit has μ <= c (else the cap), provided the fit is
    not plainly under-resolved: μ also drops when a few elements straddle a
    narrow relaxation (an ideal RC) and cancel each other, leaving a misfit
    far above the noise. So a candidate M is accepted only if M + max(4, M/2)
    not lower χ² significantly (F-test at ``significance``).
    """
    pending = rows
    last = group.basis.max_elements
    n_extra = group.basis.n_extra
    start = 1
    while pending.size and start <= last:
        # A few rows: several M solved at once (each M's verdict depends on its own
        # fits only, so taking the first accepted M of a block is the same search).
        size = max(1, min(_MAX_BLOCK, _BLOCK_SYSTEMS // pending.size))
        block = range(start, min(start + size - 1, last) + 1)
        solutions, counted = fit_block(group, pending, block)
        mu = compute_mu(solutions, counted)
        alive = np.arange(pending.size)  # rows of the block still pending
        for position, n_elements in enumerate(block):
            done = (mu[alive, position] <= mu_criterion) | (n_elements == last)
            candidates = np.flatnonzero(done)
            if candidates.size == 0:
                continue
            solution = solutions[alive, position, : n_elements + n_extra]
            richer = min(n_elements + max(4, n_elements // 2), last)
            if richer > n_elements:
                chi2, dof = chi2_rows(group, pending[candidates], n_elements, solution[candidates])
                chi2_rich, dof_rich = chi2_rows(group, pending[candidates], richer)
                added = np.maximum(dof - dof_rich, 1)
                statistic = (np.maximum(chi2 - chi2_rich, 0.0) / added) / (
                    np.maximum(chi2_rich, 1e-300) / np.maximum(dof_rich, 1)
                )
                under_resolved = (dof_rich >= MIN_DOF) & (
                    f_sf(statistic, added, np.maximum(dof_rich, 1)) < significance
                )
                done[candidates[under_resolved]] = False
            for row, values, value in zip(
                pending[done], solution[done], mu[alive[done], position], strict=True
            ):
                group.solution[row] = values
                group.n_elements[row] = n_elements
                group.mu[row] = value
            pending = pending[~done]
            alive = alive[~done]
            if pending.size == 0:
                break
        start = block.stop
