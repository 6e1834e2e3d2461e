"""Kramers-Kronig validation of impedance spectra (Lin-KK), at experiment scale.

The linear Kramers-Kronig test of Schönleber et al. (Electrochim. Acta 131,
2014, 20-27) fits every spectrum with a KK-compliant network

    Z(ω) = R_0 + jωL + Σ_k R_k / (1 + jωτ_k)  [+ 1/(jωC)]

whose time constants τ_k are fixed (log-spaced over the measured range), so
the fit is a *linear* least-squares problem in (R_0, L, R_k, 1/C). Real and
imaginary parts are fitted jointly, each point weighted by 1/|Z| (modulus
weighting). The number of RC elements M is the first M whose fit starts to
over-fit, measured by Schönleber's μ = 1 - Σ|R_k<0| / Σ|R_k≥0| dropping to the
criterion c (default 0.85), counted over the elements inside the measured
range, and provided 1.5 M elements do not lower χ² significantly: μ also dips
when a few elements straddle a narrow relaxation and cancel each other, which
on low-noise data would leave a misfit the tests below take for a violation.

Scale: the basis (τ grid and design matrices of every candidate M) depends only
on the frequency grid, which is the same for every sweep of an experiment.
:func:`build_kk_basis` builds it once, and :func:`check_kk` and
:func:`check_kk_batch` keep the last few grids' bases (the pipeline calls the
batch once per chunk of sweeps). :func:`check_kk_batch` solves the weighted
normal equations of many spectra at once: one matrix product per M forms the
normal matrices of the whole batch (the 1/|Z| weights differ per spectrum, so
each spectrum's matrix is factored on its own, all in one batched call).
:func:`check_kk` is the same computation for one spectrum; with a few rows,
blocks of candidate M are padded to one size and solved in one call, which
takes the Python overhead of the μ scan out of a single call.

Beyond the plain fit, each spectrum is screened for the two defects operando
sweeps have (DOMAIN.md, "Validation"), with nested least-squares F-tests whose
family-wise false-alarm rate is ``significance`` (Bonferroni-corrected):

* an *outlier*: one point whose removal lowers χ² more than noise can
  explain; it is reported in :attr:`KKResult.outliers` and left out of the fit;
* a *non-stationary low-frequency tail*: the lowest k points (measured last,
  while the interface kept changing) are freed from the model, k = 2 .. half
  the points. If the most significant k is significant the tail is truncated
  (recorded in :attr:`KKResult.mask`) and the spectrum re-checked with the
  basis restricted to the kept range, without the τ extension below it (which
  would absorb the rest of the drift) unless the kept points need it (an arc
  straddling the cut; F-test).

Both act only on deviations of at least ``min_deviation`` (relative RMS) so
that the basis' own small misfit on noise-free data never triggers them. The
verdict :attr:`KKResult.ok` is the RMS relative residual of the points used
against ``threshold``.

impedance.py's ``impedance.validation.linKK`` is not used: it breaks under
numpy 2 (and refits per spectrum from scratch, ~10x slower).

Modules: :mod:`~geis_pipeline.kk.options` (defaults, option and input checks),
:mod:`~geis_pipeline.kk.basis` (τ grids and design matrices),
:mod:`~geis_pipeline.kk.solver` (batched weighted normal equations, F-test),
:mod:`~geis_pipeline.kk.group` (working state and fits of one grid's spectra),
:mod:`~geis_pipeline.kk.elements` (M by the μ criterion),
:mod:`~geis_pipeline.kk.screening` (outlier and tail tests),
:mod:`~geis_pipeline.kk.verdict` (the check's loop and :class:`KKResult`),
:mod:`~geis_pipeline.kk.api` (:func:`check_kk`, :func:`check_kk_batch`).
"""

from __future__ import annotations

from geis_pipeline.kk.api import check_kk, check_kk_batch
from geis_pipeline.kk.basis import KKBasis, build_kk_basis
from geis_pipeline.kk.options import (
    DEFAULT_MAX_ELEMENTS,
    DEFAULT_MU_CRITERION,
    DEFAULT_THRESHOLD,
    MIN_POINTS,
)
from geis_pipeline.kk.verdict import KKResult

__all__ = [
    "DEFAULT_MAX_ELEMENTS",
    "DEFAULT_MU_CRITERION",
    "DEFAULT_THRESHOLD",
    "MIN_POINTS",
    "KKBasis",
    "KKResult",
    "build_kk_basis",
    "check_kk",
    "check_kk_batch",
]
