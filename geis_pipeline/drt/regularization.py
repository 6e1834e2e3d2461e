"""Choice of the Tikhonov parameter λ from the data, in closed form.

GCV and the L-curve are evaluated on the unconstrained (ridge) problem

    x(λ) = argmin ||A x - b||² + λ xᵀ M x

which numpy solves exactly in a fraction of a millisecond, rather than on the
non-negative problem the inversion solves (as DRTtools does; Saccoccio et al.
2014). Methods:

* ``"gcv"``: generalised cross-validation, minimise
  m ||A x(λ) - b||² / (m - tr H(λ))², H = A (AᵀA + λM)⁻¹ Aᵀ;
* ``"lcurve"``: the corner (largest curvature) of
  (log ||A x(λ) - b||², log xᵀ M x) over log λ;
* ``"reim"``: real/imaginary cross-validation, minimise the misfit of the
  imaginary part predicted from a fit of the real part alone plus the reverse;
  computed on the non-negative problem (scipy's NNLS), see :func:`_reim`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geis_pipeline.errors import DRTError

__all__ = ["LAMBDA_METHODS", "RidgeSystem", "choose_lambda"]

LAMBDA_METHODS = ("gcv", "lcurve", "reim")

_GRID_POINTS = 61
# Each re/im point costs two NNLS fits: about 3 per decade, then refined.
_REIM_POINTS = 25
# Re/im CV picks the largest λ whose score is within this fraction of the best.
_CV_TOLERANCE = 0.05
_LCURVE_POINTS = 81


@dataclass(frozen=True, eq=False)
class RidgeSystem:
    """A weighted, scaled DRT least-squares system ||A x - b||² + λ xᵀ M x.

    Attributes
    ----------
    design
        A, weighted model matrix of the kept points (real rows then
        imaginary rows), shape (m, p).
    data
        b, weighted data, shape (m,).
    gram
        M = DᵀD, penalty Gram matrix (zero rows/columns for R_inf and L), (p, p).
    penalty
        D, shape (rows, p).
    real_rows
        Boolean mask of the rows of A that are real parts.
    rinf_column
        Column of R_inf in A.
    inductance_column
        Column of L in A, None when L is not fitted.
    """

    design: np.ndarray
    data: np.ndarray
    gram: np.ndarray
    penalty: np.ndarray
    real_rows: np.ndarray
    rinf_column: int
    inductance_column: int | None


class _RidgePath:
    """x(λ), tr H(λ) and the norms of one ridge problem for any λ, in O(p m) each.

    With N = AᵀA + δI = L Lᵀ (δ a jitter far below any λ M, so the
    unpenalised R_inf/L block stays factorisable) and L⁻¹ M L⁻ᵀ = U Θ Uᵀ,
    AᵀA + λM ≈ L U (I + λΘ) Uᵀ Lᵀ: with V = L⁻ᵀ U and β = Vᵀ Aᵀ b,
    x(λ) = V β / (1 + λθ), xᵀ M x = Σ θ β² / (1 + λθ)² and
    tr H(λ) = Σ (1 - δ |V_i|²) / (1 + λθ_i). One Cholesky and one symmetric
    eigen-decomposition per spectrum instead of one solve per λ.
    """

    def __init__(self, design: np.ndarray, data: np.ndarray, gram: np.ndarray) -> None:
        normal = design.T @ design
        jitter = 1e-12 * max(float(np.trace(normal)) / normal.shape[0], 1e-300)
        lower = np.linalg.cholesky(normal + jitter * np.eye(normal.shape[0]))
        from scipy.linalg import lapack  # scipy on first use: import geis_pipeline stays quick

        lower_inverse, info = lapack.dtrtri(lower, lower=1)
        if info != 0:
            raise np.linalg.LinAlgError("singular ridge system")
        whitened = lower_inverse @ gram @ lower_inverse.T
        eigenvalues, eigenvectors = np.linalg.eigh(0.5 * (whitened + whitened.T))
        self.theta = np.clip(eigenvalues, 0.0, None)
        self.basis = lower_inverse.T @ eigenvectors
        self.beta = self.basis.T @ (design.T @ data)
        self.fitted_basis = design @ self.basis
        self.data = data
        self.leverage = 1.0 - jitter * np.sum(self.basis**2, axis=0)

    def coefficients(self, lam: float | np.ndarray) -> np.ndarray:
        """β / (1 + λθ): x(λ) in the basis V (one row per λ for an array of λ)."""
        lam = np.asarray(lam, dtype=np.float64)
        return self.beta / (1.0 + lam[..., np.newaxis] * self.theta)

    def solution(self, lam: float) -> np.ndarray:
        """x(λ)."""
        return self.basis @ self.coefficients(lam)

    def misfit(self, lam: float | np.ndarray) -> float | np.ndarray:
        """||A x(λ) - b||² (an array for an array of λ)."""
        residual = self.coefficients(lam) @ self.fitted_basis.T - self.data
        misfits = np.sum(residual**2, axis=-1)
        return float(misfits) if misfits.ndim == 0 else misfits

    def roughness(self, lam: float | np.ndarray) -> float | np.ndarray:
        """x(λ)ᵀ M x(λ) (an array for an array of λ)."""
        roughness = np.sum(self.theta * self.coefficients(lam) ** 2, axis=-1)
        return float(roughness) if roughness.ndim == 0 else roughness

    def trace(self, lam: float) -> float:
        """tr H(λ), the effective number of parameters."""
        return float(np.sum(self.leverage / (1.0 + lam * self.theta)))


def _gcv(path: _RidgePath, log_lam: float) -> float:
    lam = math.exp(log_lam)
    rows = path.data.size
    return rows * path.misfit(lam) / max(rows - path.trace(lam), 1e-12) ** 2


def _nnls_fit(design: np.ndarray, data: np.ndarray, penalty: np.ndarray, lam: float) -> np.ndarray:
    """argmin ||A x - b||² + λ ||D x||² subject to x >= 0 (every unknown is >= 0)."""
    from scipy.optimize import nnls

    stacked = np.vstack([design, math.sqrt(lam) * penalty])
    target = np.concatenate([data, np.zeros(penalty.shape[0])])
    return nnls(stacked, target, maxiter=50 * design.shape[1])[0]


def _reim(system: RidgeSystem, log_lam: float) -> float:
    """Re/im cross-validation score, on the non-negative problem (as DRTtools does).

    Unlike GCV and the L-curve it is not computed on the ridge problem: the
    unconstrained real-only and imaginary-only fits oscillate and make the
    score prefer far too little regularisation for a non-negative γ.
    """
    lam = math.exp(log_lam)
    real, imag = system.real_rows, ~system.real_rows
    columns = np.arange(system.design.shape[1])
    real_columns = columns[columns != system.inductance_column]
    imag_columns = columns[columns != system.rinf_column]
    design, penalty = system.design, system.penalty
    x_real = np.zeros(columns.size)
    x_imag = np.zeros(columns.size)
    x_real[real_columns] = _nnls_fit(
        design[np.ix_(real, real_columns)], system.data[real], penalty[:, real_columns], lam
    )
    x_imag[imag_columns] = _nnls_fit(
        design[np.ix_(imag, imag_columns)], system.data[imag], penalty[:, imag_columns], lam
    )
    # Predict each part from the other's γ, keeping the offset it alone determines.
    predict_real = x_imag.copy()
    predict_real[system.rinf_column] = x_real[system.rinf_column]
    predict_imag = x_real.copy()
    if system.inductance_column is not None:
        predict_imag[system.inductance_column] = x_imag[system.inductance_column]
    misfit_real = design[real] @ predict_real - system.data[real]
    misfit_imag = design[imag] @ predict_imag - system.data[imag]
    return float(misfit_real @ misfit_real + misfit_imag @ misfit_imag)


def _lcurve_corner(path: _RidgePath, log_lams: np.ndarray) -> float:
    lams = np.exp(log_lams)
    # The whole curve in two matrix products (81 scalar evaluations cost ~3 ms a call).
    rho = np.log(np.maximum(path.misfit(lams), 1e-300))
    eta = np.log(np.maximum(path.roughness(lams), 1e-300))
    d_rho, d_eta = np.gradient(rho, log_lams), np.gradient(eta, log_lams)
    dd_rho, dd_eta = np.gradient(d_rho, log_lams), np.gradient(d_eta, log_lams)
    curvature = (d_rho * dd_eta - dd_rho * d_eta) / np.maximum((d_rho**2 + d_eta**2) ** 1.5, 1e-300)
    # The end points' one-sided differences make spurious corners: ignore them.
    inner = slice(2, -2)
    return float(log_lams[inner][int(np.argmax(curvature[inner]))])


def choose_lambda(
    system: RidgeSystem,
    method: str = "reim",
    bounds: tuple[float, float] = (1e-7, 1e1),
) -> float:
    """λ chosen by ``method`` for one spectrum's ridge system.

    Parameters
    ----------
    system
        The weighted, scaled least-squares system of the spectrum.
    method
        ``"gcv"``, ``"lcurve"`` or ``"reim"`` (see the module docstring).
    bounds
        Search interval of λ (dimensionless, for the scaled problem).

    Returns
    -------
    float
        λ within ``bounds``.

    Raises
    ------
    DRTError
        Unknown ``method`` (key ``lam``).
    """
    if method not in LAMBDA_METHODS:
        raise DRTError(f"must be a number or one of {LAMBDA_METHODS}, got {method!r}", key="lam")
    low, high = math.log(bounds[0]), math.log(bounds[1])
    if method == "lcurve":
        path = _RidgePath(system.design, system.data, system.gram)
        return math.exp(_lcurve_corner(path, np.linspace(low, high, _LCURVE_POINTS)))
    if method == "reim":
        log_lams = np.linspace(low, high, _REIM_POINTS)
        scores = np.array([_reim(system, log_lam) for log_lam in log_lams])
        # The score is often flat over decades of small λ (noise decides the
        # argmin there): take the most regularised λ within a tolerance of the
        # minimum, as the one-standard-error rule of cross-validation does.
        acceptable = np.flatnonzero(scores <= (1.0 + _CV_TOLERANCE) * scores.min())
        return math.exp(float(log_lams[acceptable.max()]))
    path = _RidgePath(system.design, system.data, system.gram)
    log_lams = np.linspace(low, high, _GRID_POINTS)
    values = np.array([_gcv(path, log_lam) for log_lam in log_lams])
    best = int(np.argmin(values))
    # Refine between the neighbours of the best grid point.
    left, right = log_lams[max(best - 1, 0)], log_lams[min(best + 1, log_lams.size - 1)]
    from scipy.optimize import minimize_scalar

    refined = minimize_scalar(
        lambda log_lam: _gcv(path, log_lam),
        bounds=(left, right),
        method="bounded",
        options={"xatol": 1e-3},
    )
    best_log = float(refined.x) if refined.fun <= values[best] else float(log_lams[best])
    return math.exp(best_log)
