"""Regularised DRT inversion with cvxpy, built once per frequency grid.

Model (DOMAIN.md, "DRT"):

    Z(ω) = R_inf + jωL + Σ_m x_m Φ_m(ω),   Φ_m(ω) = ∫ φ_m(ln τ) / (1 + jωτ) d ln τ

with γ(ln τ) = Σ_m x_m φ_m(ln τ) (:mod:`geis_pipeline.drt.basis`), x >= 0,
R_inf >= 0 and L >= 0 (optional). The real and imaginary parts are fitted
together:

    minimise  Σ_n w_n² |Z_model(ω_n) - Z_n|² / s²  +  λ ∫ (d^k γ / d(ln τ)^k)² / s² d ln τ

where s = max |Z| of the kept points (so λ is dimensionless and does not change
when the spectrum is multiplied by a constant) and w_n = s / |Z_n| ("modulus"
weights: relative residuals) or 1 ("unit"). Truncated or rejected points get
w_n = 0 (the mask), which is the same as leaving them out.

How it is solved
----------------
With A the weighted model matrix of a spectrum, the problem is the
non-negative quadratic program

    minimise ½ yᵀ P y + qᵀ y,  y >= 0,   P = S (AᵀA + λ DᵀD) S,  q = -S Aᵀ b

where S = diag(P_ii)^(-1/2) (Jacobi scaling: unit diagonal, so every solver
sees a well-scaled problem) and x = S y. The cvxpy problem is built once per
frequency grid with P and q as Parameters (DPP, quadratic objective with a
parametric P is DPP on cvxpy's QP path, ``quad_form_dpp``: verified with
cvxpy 1.9; older cvxpy rejects a parametric P); each spectrum only
writes new parameter values. ``batch_size`` spectra are stacked as
independent blocks of one problem so cvxpy's per-call overhead is shared; a
block problem that does not solve is re-solved spectrum by spectrum so that a
failure is reported for the spectrum that failed. A failed spectrum carries
its status, ``ok = False`` and NaN values, never zeros.

With DAQP (the default) even that shared overhead is paid once per grid:
cvxpy canonicalises a one-block problem once, and when its canonical data is
P and q themselves on the bounds y >= 0 (probed with a random P, see
:func:`~geis_pipeline.drt._block_qp.canonical_qp_is_direct`), every spectrum's
P and q go to DAQP directly. Through cvxpy's reductions a solve cost ~4 ms a
spectrum in a batch of 16, ten times DAQP's own ~0.3 ms.

Solvers and speed (benchmarks/drt_speed.py, 2-core VM, 69-point sweeps, 91 unknowns):
the default, ``DAQP``, is cvxpy with :class:`~geis_pipeline.drt._block_qp.BlockDAQP`,
a custom cvxpy solver that gives each spectrum's block of the batched problem
to DAQP (a dual active-set method for small dense QPs); it solves the QP
exactly (γ within 1e-5 of NNLS, tested); 1,000 spectra take ~2.9 ms each with
everything included (build, compilation, λ choice, peaks; batch of 16), against
~9.8 ms with Clarabel. Clarabel, the interior-point solver cvxpy would pick, takes
~8 ms of solver time per spectrum on this dense 91 x 91 Hessian (warm starts
and loose tolerances bring it only to ~4 ms), so it is offered but not the
default. OSQP and SCS are accepted but, being first-order methods on this
ill-conditioned Gram matrix, need thousands of iterations at small λ.
``NNLS`` solves the same problem without cvxpy (scipy's Lawson-Hanson).

The problem objects are not thread safe (they hold cvxpy parameter values):
use one :class:`DRTProblem` per thread or process.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from geis_pipeline._arrays import readonly
from geis_pipeline._blas import one_blas_thread
from geis_pipeline._cache import GridCache, hashable
from geis_pipeline.drt.basis import BASES, DRTBasis, build_basis, tau_grid
from geis_pipeline.drt.peaks import (
    DEFAULT_WINDOWS,
    DRTPeak,
    assign_process,
    detect_peaks,
    validate_windows,
)
from geis_pipeline.drt.refine import Refined, refine_peaks, zarc_drt_width
from geis_pipeline.drt.regularization import LAMBDA_METHODS, RidgeSystem, choose_lambda
from geis_pipeline.errors import DRTError

if TYPE_CHECKING:  # cvxpy (1.5 s to import) is imported by the first solve
    import cvxpy as cp

    from geis_pipeline.drt._block_qp import BlockDAQP

__all__ = [
    "SOLVERS",
    "WEIGHTINGS",
    "DRTOptions",
    "DRTProblem",
    "DRTResult",
    "build_drt_problem",
    "experiment_lambda",
    "invert_drt",
    "invert_drt_batch",
]

#: The solvers: DAQP (cvxpy, block by block, the default), cvxpy's CLARABEL, OSQP and
#: SCS, and NNLS: the same problem written as non-negative least squares,
#: min ||[W A; sqrt(lam) L] x - [W z; 0]||^2 with x >= 0, solved exactly by scipy's
#: active-set Lawson-Hanson without cvxpy. DAQP and NNLS reach the same optimum (tested).
SOLVERS = ("DAQP", "CLARABEL", "OSQP", "SCS", "NNLS")
WEIGHTINGS = ("modulus", "unit")

ProgressCallback = Callable[[int, int], None]

# Tight defaults: the scaled problem has a unit-diagonal P, so these are
# relative accuracies of γ. DAQP (exact active set) and Clarabel (1e-8) are already tight.
_SOLVER_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "DAQP": {},
    "CLARABEL": {},
    "OSQP": {"eps_abs": 1e-7, "eps_rel": 1e-7, "max_iter": 20_000},
    "SCS": {"eps_abs": 1e-7, "eps_rel": 1e-7, "max_iters": 100_000},
}
_OK = "optimal"
_INACCURATE = "optimal_inaccurate"
_MIN_POINTS = 3


@functools.cache
def _block_daqp() -> BlockDAQP:
    """The one BlockDAQP instance (made on first use, with the cvxpy import).

    One instance: cvxpy keys its cache of the compiled problem data by the solver,
    so a new instance per call would recompile the problem every time.
    """
    from geis_pipeline.drt._block_qp import BlockDAQP

    return BlockDAQP()


def _cvxpy_solver(name: str) -> str | BlockDAQP:
    """What ``Problem.solve`` takes for a solver name: DAQP goes block by block."""
    return _block_daqp() if name == "DAQP" else name


def _stacked_values(solutions: Sequence[cp.Variable]) -> np.ndarray | None:
    """The blocks' solutions as the columns of one array; None if any is missing."""
    values = [solution.value for solution in solutions]
    if any(value is None for value in values):
        return None
    return np.column_stack(values)


def _positive_number(value: object) -> bool:
    return (
        isinstance(value, int | float | np.number)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _check_positive(name: str, value: object) -> None:
    if not _positive_number(value):
        raise DRTError(f"must be a finite number > 0, got {value!r}", key=name)


def _check_range(name: str, value: object) -> tuple[float, float]:
    try:
        low, high = (float(bound) for bound in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise DRTError(f"must be a pair (low, high), got {value!r}", key=name) from None
    if not (0 < low < high < math.inf):
        raise DRTError(f"needs 0 < low < high, got {value!r}", key=name)
    return low, high


@dataclass(frozen=True, eq=False)
class DRTOptions:
    """Every option of the DRT inversion (the ``**options`` of the verbs).

    Attributes
    ----------
    basis
        ``"gaussian"`` (radial basis functions) or ``"pwl"`` (piecewise linear).
    points_per_decade
        τ grid density, points per decade.
    extend_decades
        How far the τ grid reaches beyond 1/(2π f_max) and 1/(2π f_min), decades.
    tau_range
        ``(tau_min, tau_max)``, s, instead of the range from the frequencies.
    rbf_width
        Full width at half maximum of the Gaussians, in grid spacings.
    derivative
        Order of the penalised derivative of γ, 1 or 2.
    inductance
        Fit a series inductance L >= 0.
    weights
        ``"modulus"`` (w = 1/|Z|, relative residuals) or ``"unit"``, or a
        1-D array of per-point weights (multiplying the scaled residuals,
        one per frequency).
    lam
        λ (dimensionless, >= 0), or how to choose it: ``"gcv"``,
        ``"lcurve"`` or ``"reim"``.
    lam_per_spectrum
        Choose λ for every spectrum; by default it is chosen once per
        experiment on ``lam_spectra`` representative spectra (the median of
        their log λ) and kept fixed, so that γ is comparable between steps.
    lam_spectra
        How many spectra, evenly spread over the experiment, choose λ.
    lam_bounds
        Search interval of λ.
    solver
        ``"DAQP"`` (default; cvxpy, each spectrum's block solved by DAQP),
        ``"CLARABEL"``, ``"OSQP"``, ``"SCS"`` (cvxpy) or ``"NNLS"`` (scipy).
    solver_options
        Keyword arguments for the solver, on top of tight defaults.
    batch_size
        Spectra stacked in one solve (1: no batching).
    accept_inaccurate
        Accept the solver status ``optimal_inaccurate`` as ok.
    windows
        Process name -> (τ_low, τ_high), s, for assigning peaks.
    peak_prominence
        A peak must stand out by this fraction of max γ.
    peak_oversample
        γ is sampled this many times more finely than the grid to find peaks.
    refine
        Refine each peak's R and τ (and R_inf, L) by fitting the spectrum with
        one ZARC per peak started from the DRT (:mod:`geis_pipeline.drt.refine`):
        a peak's R is then its whole process's, tails included.
    """

    basis: str = "gaussian"
    points_per_decade: float = 10.0
    extend_decades: float = 1.0
    tau_range: tuple[float, float] | None = None
    rbf_width: float = 2.0
    derivative: int = 1
    inductance: bool = True
    weights: str | np.ndarray = "modulus"
    lam: float | str = "lcurve"
    lam_per_spectrum: bool = False
    lam_spectra: int = 5
    lam_bounds: tuple[float, float] = (1e-7, 1e1)
    solver: str = "DAQP"
    solver_options: Mapping[str, Any] | None = None
    batch_size: int = 16
    accept_inaccurate: bool = False
    windows: Mapping[str, tuple[float, float]] = field(default_factory=lambda: DEFAULT_WINDOWS)
    peak_prominence: float = 0.02
    peak_oversample: int = 10
    refine: bool = True

    def __post_init__(self) -> None:
        if self.basis not in BASES:
            raise DRTError(f"must be one of {BASES}, got {self.basis!r}", key="basis")
        for name in ("points_per_decade", "rbf_width", "peak_oversample", "lam_spectra"):
            _check_positive(name, getattr(self, name))
        for name in ("batch_size", "lam_spectra", "peak_oversample"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or isinstance(value, bool):
                raise DRTError(f"must be a whole number >= 1, got {value!r}", key=name)
        if not (
            isinstance(self.extend_decades, int | float)
            and math.isfinite(self.extend_decades)
            and self.extend_decades >= 0
        ):
            raise DRTError(f"must be >= 0, got {self.extend_decades!r}", key="extend_decades")
        if self.tau_range is not None:
            object.__setattr__(self, "tau_range", _check_range("tau_range", self.tau_range))
        object.__setattr__(self, "lam_bounds", _check_range("lam_bounds", self.lam_bounds))
        if self.derivative not in (1, 2) or isinstance(self.derivative, bool):
            raise DRTError(f"must be 1 or 2, got {self.derivative!r}", key="derivative")
        for name in ("inductance", "refine"):
            if not isinstance(getattr(self, name), bool):
                raise DRTError(f"must be True or False, got {getattr(self, name)!r}", key=name)
        if isinstance(self.weights, str):
            if self.weights not in WEIGHTINGS:
                raise DRTError(f"must be one of {WEIGHTINGS} or an array", key="weights")
        else:
            weights = np.array(self.weights, dtype=np.float64)
            if weights.ndim != 1 or not np.all(np.isfinite(weights)) or np.any(weights < 0):
                raise DRTError("an array of weights must be 1-D, finite and >= 0", key="weights")
            weights.flags.writeable = False
            object.__setattr__(self, "weights", weights)
        if isinstance(self.lam, str):
            if self.lam not in LAMBDA_METHODS:
                raise DRTError(f"must be a number or one of {LAMBDA_METHODS}", key="lam")
        elif (
            not isinstance(self.lam, int | float | np.number)
            or isinstance(self.lam, bool)
            or not math.isfinite(self.lam)
            or self.lam < 0
        ):
            raise DRTError(f"must be a number >= 0 or a method name, got {self.lam!r}", key="lam")
        if not isinstance(self.solver, str) or self.solver.upper() not in SOLVERS:
            raise DRTError(f"must be one of {SOLVERS}, got {self.solver!r}", key="solver")
        object.__setattr__(self, "solver", self.solver.upper())
        if self.solver_options is not None and not isinstance(self.solver_options, Mapping):
            raise DRTError("must be a mapping of solver keyword arguments", key="solver_options")
        _check_positive("peak_prominence", self.peak_prominence)
        object.__setattr__(self, "windows", validate_windows(self.windows))

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> DRTOptions:
        """Options from keyword arguments; an unknown name raises :class:`DRTError`."""
        known = {spec.name for spec in dataclasses.fields(cls)}
        for name in options:
            if name not in known:
                raise DRTError(f"unknown DRT option; known: {sorted(known)}", key=name)
        return cls(**options)

    def key(self) -> tuple[object, ...]:
        """Every option's value, hashable: equal keys build the same problem."""
        return tuple(hashable(getattr(self, spec.name)) for spec in dataclasses.fields(self))


@dataclass(frozen=True, eq=False)
class DRTResult:
    """The DRT of one spectrum.

    Attributes
    ----------
    freq
        Frequencies of the spectrum, Hz, as given.
    tau
        Relaxation times of the grid, s, ascending.
    gamma
        γ(ln τ) on ``tau``, ohm (per unit of ln τ); ∫ γ d ln τ is the
        polarisation resistance. NaN if the inversion failed.
    R_inf
        Series (high-frequency) resistance, ohm (refined with the peaks when
        ``refined``).
    L
        Series inductance, H (0 when not fitted; refined when ``refined``).
    lam
        The λ used (dimensionless).
    z_fit
        Model impedance at ``freq``, ohm.
    residuals
        Relative residuals (Z - Z_fit) / |Z| at ``freq`` (complex; also at
        masked points, which did not take part in the fit).
    mask
        Points used in the fit.
    status
        The solver status (cvxpy's, e.g. ``optimal``), or ``solver_error``.
    ok
        True when the inversion succeeded (status ``optimal``, or also
        ``optimal_inaccurate`` with the ``accept_inaccurate`` option).
    peaks
        Peaks of γ, ascending τ (empty if the inversion failed); R and τ
        from the ZARC refinement when ``refined``.
    R_pol
        Polarisation resistance ∫ γ d ln τ over the grid, ohm.
    solver
        The solver that produced the result.
    refined
        True when the peaks, R_inf and L come from the ZARC refinement (the
        ``refine`` option, and the refined fit explained the data as well as γ).
    """

    freq: np.ndarray
    tau: np.ndarray
    gamma: np.ndarray
    R_inf: float
    L: float
    lam: float
    z_fit: np.ndarray
    residuals: np.ndarray
    mask: np.ndarray
    status: str
    ok: bool
    peaks: tuple[DRTPeak, ...]
    R_pol: float
    solver: str
    refined: bool = False

    def __post_init__(self) -> None:
        for name in ("freq", "tau", "gamma", "z_fit", "residuals", "mask"):
            object.__setattr__(self, name, readonly(getattr(self, name)))

    @property
    def tau_measured_s(self) -> tuple[float, float]:
        """(1/ω_max, 1/ω_min) of the points used, s: where an arc's apex is measured."""
        omega = 2 * math.pi * self.freq[self.mask]
        if omega.size == 0:
            return (math.nan, math.nan)
        return (1.0 / float(omega.max()), 1.0 / float(omega.min()))

    def peak(self, process: str) -> DRTPeak | None:
        """The single peak assigned to ``process``; None if none or several are."""
        found = [peak for peak in self.peaks if peak.process == process]
        return found[0] if len(found) == 1 else None


@dataclass(frozen=True, eq=False)
class _Weighted:
    """One spectrum's weighted, scaled least-squares system on the full grid."""

    z: np.ndarray
    mask: np.ndarray
    scale: float
    design: np.ndarray
    data: np.ndarray


@dataclass(eq=False)
class _Compiled:
    """A cvxpy problem of ``size`` independent blocks and its parameters."""

    problem: cp.Problem
    solutions: list[cp.Variable]
    hessians: list[cp.Parameter]
    linear: cp.Parameter


def _refined_peaks(
    peaks: tuple[DRTPeak, ...],
    refined: Refined,
    scale: float,
    windows: Mapping[str, tuple[float, float]],
    log_tau_fine: np.ndarray,
    gamma_fine: np.ndarray,
) -> tuple[DRTPeak, ...]:
    """One peak per refined ZARC, ascending τ.

    R, τ and α are the ZARC's, the width that of its exact DRT, the height γ
    at its τ, and ``R_gamma`` the area of the nearest peak of γ.
    """
    peak_log_tau = np.log([peak.tau for peak in peaks])
    updated = []
    stderrs = refined.R_stderr if refined.R_stderr is not None else np.full(refined.R.size, np.nan)
    for resistance, tau, alpha, stderr in zip(
        refined.R, refined.tau, refined.alpha, stderrs, strict=True
    ):
        log_tau = math.log(float(tau))
        nearest = peaks[int(np.argmin(np.abs(peak_log_tau - log_tau)))]
        updated.append(
            DRTPeak(
                tau=float(tau),
                R=scale * float(resistance),
                width=zarc_drt_width(float(alpha)),
                height=float(np.interp(log_tau, log_tau_fine, gamma_fine)),
                process=assign_process(float(tau), windows),
                alpha=float(alpha),
                R_gamma=nearest.R,
                R_stderr=scale * float(stderr),
            )
        )
    return tuple(sorted(updated, key=lambda peak: peak.tau))


def _validate_spectrum(
    freq: np.ndarray, z: ArrayLike, mask: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(z)
    if z.shape != freq.shape:
        raise DRTError(f"z must have the shape of freq {freq.shape}, got {z.shape}", key="z")
    if not np.iscomplexobj(z) and not np.issubdtype(z.dtype, np.number):
        raise DRTError("z must be complex impedance, ohm", key="z")
    z = z.astype(np.complex128)
    if not np.all(np.isfinite(z)):
        raise DRTError("z holds non-finite values: mask them out or drop them", key="z")
    if mask is None:
        mask_array = np.ones(freq.shape, dtype=bool)
    else:
        mask_array = np.asarray(mask)
        if mask_array.shape != freq.shape or mask_array.dtype != bool:
            raise DRTError(f"mask must be a boolean array of shape {freq.shape}", key="mask")
    if int(mask_array.sum()) < _MIN_POINTS:
        raise DRTError(f"at least {_MIN_POINTS} points must be kept", key="mask")
    if np.any(np.abs(z[mask_array]) == 0):
        raise DRTError("kept points with |Z| = 0 cannot be weighted", key="z")
    return z, mask_array.copy()


def _validate_freq(freq: ArrayLike) -> np.ndarray:
    freq = np.asarray(freq, dtype=np.float64)
    if freq.ndim != 1 or freq.size < _MIN_POINTS:
        raise DRTError(f"freq must be 1-D with at least {_MIN_POINTS} points", key="freq")
    if not np.all(np.isfinite(freq)) or np.any(freq <= 0):
        raise DRTError("frequencies must be finite and > 0, Hz", key="freq")
    return freq


class DRTProblem:
    """The DRT inversion of one frequency grid, built once and solved many times.

    Build with :func:`build_drt_problem`. Holds the basis matrices, the τ grid
    and the compiled cvxpy problems (one for single spectra, one for blocks of
    ``batch_size``); every solve only writes parameter values.

    Attributes
    ----------
    freq
        Frequencies, Hz.
    tau
        τ grid, s.
    options
        The options it was built with.
    basis
        The discretisation (:class:`~geis_pipeline.drt.basis.DRTBasis`).
    """

    def __init__(self, freq: ArrayLike, options: DRTOptions) -> None:
        self.freq = readonly(_validate_freq(freq))
        self.options = options
        self.tau = readonly(
            tau_grid(
                self.freq, options.points_per_decade, options.extend_decades, options.tau_range
            )
        )
        self.basis: DRTBasis = build_basis(
            self.freq, self.tau, options.basis, options.rbf_width, options.derivative
        )
        n_freq, n_tau = self.freq.size, self.tau.size
        self._rinf_column = n_tau
        self._inductance_column = n_tau + 1 if options.inductance else None
        n_columns = n_tau + (2 if options.inductance else 1)
        self._omega_max = 2.0 * math.pi * float(self.freq.max())
        # Model columns: basis functions, R_inf, then L scaled by ω_max so it is O(1).
        model = np.zeros((2 * n_freq, n_columns))
        model[:n_freq, :n_tau] = self.basis.A_re
        model[n_freq:, :n_tau] = self.basis.A_im
        model[:n_freq, self._rinf_column] = 1.0
        if self._inductance_column is not None:
            model[n_freq:, self._inductance_column] = 2.0 * math.pi * self.freq / self._omega_max
        self._model = model
        penalty = np.zeros((self.basis.penalty.shape[0], n_columns))
        penalty[:, :n_tau] = self.basis.penalty
        self._penalty = penalty
        self._gram = penalty.T @ penalty
        log_tau = np.log(self.tau)
        self._gamma_on_grid = self.basis.evaluation_matrix(log_tau)
        n_fine = (n_tau - 1) * options.peak_oversample + 1
        self._log_tau_fine = np.linspace(log_tau[0], log_tau[-1], n_fine)
        self._gamma_on_fine = self.basis.evaluation_matrix(self._log_tau_fine)
        self._compiled: dict[tuple[int, str], _Compiled] = {}
        self._direct: bool | None = None  # see _canonical_is_direct

    @property
    def n_columns(self) -> int:
        """Unknowns per spectrum: basis weights, R_inf and (optionally) L."""
        return int(self._model.shape[1])

    # -- per-spectrum preparation ------------------------------------------------

    def _weights(self, z: np.ndarray, mask: np.ndarray, scale: float) -> np.ndarray:
        weighting = self.options.weights
        if isinstance(weighting, np.ndarray):
            if weighting.shape != z.shape:
                raise DRTError(
                    f"an array of weights needs one weight per frequency ({z.size})", key="weights"
                )
            weights = weighting.astype(np.float64, copy=True)
        elif weighting == "modulus":
            weights = np.divide(scale, np.abs(z), out=np.zeros(z.size), where=mask)
        else:
            weights = np.ones(z.size)
        weights[~mask] = 0.0
        return weights

    def _weighted(self, z: ArrayLike, mask: ArrayLike | None) -> _Weighted:
        z, mask = _validate_spectrum(self.freq, z, mask)
        scale = float(np.max(np.abs(z[mask])))
        weights = np.tile(self._weights(z, mask, scale), 2)
        scaled = z / scale
        data = weights * np.concatenate([scaled.real, scaled.imag])
        return _Weighted(
            z=z, mask=mask, scale=scale, design=weights[:, np.newaxis] * self._model, data=data
        )

    def _ridge_system(self, weighted: _Weighted) -> RidgeSystem:
        kept = np.tile(weighted.mask, 2)
        real_rows = np.zeros(kept.size, dtype=bool)
        real_rows[: self.freq.size] = True
        return RidgeSystem(
            design=weighted.design[kept],
            data=weighted.data[kept],
            gram=self._gram,
            penalty=self._penalty,
            real_rows=real_rows[kept],
            rinf_column=self._rinf_column,
            inductance_column=self._inductance_column,
        )

    def choose_lambda(
        self, z: ArrayLike, mask: ArrayLike | None = None, method: str | None = None
    ) -> float:
        """λ for one spectrum by GCV, L-curve or re/im cross-validation (closed form).

        Parameters
        ----------
        z
            Impedance at :attr:`freq`, ohm.
        mask
            Points to use (True), default all.
        method
            ``"gcv"``, ``"lcurve"`` or ``"reim"``; default the ``lam`` option
            (``"lcurve"`` if that is a number).

        Returns
        -------
        float
            λ, dimensionless.
        """
        if method is None:
            method = self.options.lam if isinstance(self.options.lam, str) else "lcurve"
        system = self._ridge_system(self._weighted(z, mask))
        return choose_lambda(system, method, self.options.lam_bounds)

    # -- cvxpy ---------------------------------------------------------------------

    def _compiled_problem(self, size: int, solver: str) -> _Compiled:
        key = (size, solver)
        if key not in self._compiled:
            import cvxpy as cp

            n_columns = self.n_columns
            # One variable per spectrum (not column slices of one matrix variable: a
            # slice adds equality rows, and BlockDAQP needs a bounds-only problem).
            solutions = [cp.Variable(n_columns, nonneg=True) for _ in range(size)]
            hessians = [cp.Parameter((n_columns, n_columns)) for _ in range(size)]
            linear = cp.Parameter((n_columns, size))
            # One independent block per spectrum; P is PSD by construction (a Gram matrix).
            objective = sum(
                linear[:, block] @ solutions[block]
                + 0.5 * cp.quad_form(solutions[block], hessians[block], assume_PSD=True)
                for block in range(size)
            )
            self._compiled[key] = _Compiled(
                cp.Problem(cp.Minimize(objective)), solutions, hessians, linear
            )
        return self._compiled[key]

    def _solve_nnls(
        self, weighted: Sequence[_Weighted], lams: Sequence[float]
    ) -> list[tuple[np.ndarray | None, str]]:
        """Each spectrum as non-negative least squares (the same optimum as the QP)."""
        results: list[tuple[np.ndarray | None, str]] = []
        for item, lam in zip(weighted, lams, strict=True):
            system = np.vstack([item.design, math.sqrt(lam) * self._penalty])
            target = np.concatenate([item.data, np.zeros(self._penalty.shape[0])])
            # Jacobi column scaling, as for the QP solvers: unit column norms.
            scale = 1.0 / np.maximum(np.linalg.norm(system, axis=0), 1e-300)
            from scipy.optimize import nnls

            try:
                scaled, _ = nnls(system * scale, target, maxiter=50 * system.shape[1])
            except RuntimeError:  # iteration limit: report, never return zeros
                results.append((None, "solver_error"))
                continue
            results.append((scaled * scale, _OK))
        return results

    def _scaled_qp(
        self, weighted: _Weighted, lam: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One spectrum's Jacobi-scaled QP: (P, q, S) with x = S y (module docstring)."""
        design, data = weighted.design, weighted.data
        hessian = design.T @ design + lam * self._gram
        jacobi = 1.0 / np.sqrt(np.maximum(np.diag(hessian), 1e-300))
        hessian = jacobi[:, np.newaxis] * hessian * jacobi
        return 0.5 * (hessian + hessian.T), -jacobi * (design.T @ data), jacobi

    def _canonical_is_direct(self) -> bool:
        """Whether cvxpy's canonical QP of a block is its P and q as they are (probed once).

        Then each spectrum goes to DAQP directly: cvxpy's reductions (parameter
        stuffing, block search, unpacking: ~4 ms a spectrum, 10x DAQP's own
        solve) are paid once per grid, not on every solve.
        """
        if self._direct is None:
            from geis_pipeline.drt._block_qp import canonical_qp_is_direct

            compiled = self._compiled_problem(1, "DAQP")
            self._direct = canonical_qp_is_direct(
                compiled.problem,
                compiled.hessians[0],
                compiled.linear,
                self.n_columns,
                _block_daqp(),
            )
        return self._direct

    def _solve_direct(self, weighted: _Weighted, lam: float) -> tuple[np.ndarray | None, str]:
        """One spectrum's QP by DAQP, on the data cvxpy's canonicalisation gives it."""
        from geis_pipeline.drt._block_qp import solve_dense_qp, status_of

        hessian, linear, jacobi = self._scaled_qp(weighted, lam)
        n_columns = self.n_columns
        solver_options = {**_SOLVER_DEFAULTS["DAQP"], **(self.options.solver_options or {})}
        x, _, exit_flag, _ = solve_dense_qp(
            hessian, linear, np.zeros(n_columns), np.full(n_columns, np.inf), solver_options
        )
        status = status_of(exit_flag)
        if status != _OK:
            return None, status
        # x >= 0 holds to solver tolerance; clip the last 1e-12 of negative noise.
        return np.clip(np.asarray(x) * jacobi, 0.0, None), status

    def _solve_blocks(
        self, weighted: Sequence[_Weighted], lams: Sequence[float], size: int
    ) -> list[tuple[np.ndarray | None, str]]:
        """Solve up to ``size`` spectra in one cvxpy call; (x or None, status) each."""
        options = self.options
        if options.solver == "NNLS":
            return self._solve_nnls(weighted, lams)
        if options.solver == "DAQP" and self._canonical_is_direct():
            return [self._solve_direct(item, lam) for item, lam in zip(weighted, lams, strict=True)]
        compiled = self._compiled_problem(size, options.solver)
        from cvxpy.error import SolverError

        n_columns = self.n_columns
        linear = np.zeros((n_columns, size))
        jacobi = np.ones((n_columns, size))
        for block in range(size):
            if block < len(weighted):
                hessian, linear[:, block], jacobi[:, block] = self._scaled_qp(
                    weighted[block], lams[block]
                )
                compiled.hessians[block].value = hessian
            else:
                # Padding block: minimum at 0, solved in no time.
                compiled.hessians[block].value = np.eye(n_columns)
        compiled.linear.value = linear
        solver_options = {**_SOLVER_DEFAULTS[options.solver], **(options.solver_options or {})}
        try:
            with warnings.catch_warnings():
                # The status says so, per spectrum: no need for cvxpy's warning too.
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                compiled.problem.solve(solver=_cvxpy_solver(options.solver), **solver_options)
            status = str(compiled.problem.status)
            values = _stacked_values(compiled.solutions)
        except SolverError:
            status, values = "solver_error", None
        accepted = {_OK, _INACCURATE} if options.accept_inaccurate else {_OK}
        if status not in accepted or values is None:
            if size > 1:
                # Find out which spectrum failed: solve each alone.
                return [
                    self._solve_blocks([item], [lam], 1)[0]
                    for item, lam in zip(weighted, lams, strict=True)
                ]
            return [(None, status)]
        # x >= 0 holds to solver tolerance; clip the last 1e-12 of negative noise.
        solution = np.clip(values * jacobi, 0.0, None)
        return [(solution[:, block], status) for block in range(len(weighted))]

    # -- results -------------------------------------------------------------------

    def _result(
        self,
        weighted: _Weighted,
        solution: np.ndarray | None,
        status: str,
        lam: float,
        points: np.ndarray | None,
        previous: tuple[Refined, float] | None = None,
    ) -> tuple[DRTResult, tuple[Refined, float] | None]:
        """The result of one solve, and its refinement with its scale (the next warm start).

        ``previous``: the refinement and scale (max |Z|, ohm) of the sweep before.
        """
        options = self.options
        accepted = {_OK, _INACCURATE} if options.accept_inaccurate else {_OK}
        ok = solution is not None and status in accepted
        select = slice(None) if points is None else points
        z, mask = weighted.z[select], weighted.mask[select]
        freq = self.freq[select]
        if not ok:
            nan_complex = np.full(z.shape, complex(math.nan, math.nan))
            failed = DRTResult(
                freq=freq,
                tau=self.tau,
                gamma=np.full(self.tau.shape, math.nan),
                R_inf=math.nan,
                L=math.nan,
                lam=lam,
                z_fit=nan_complex,
                residuals=nan_complex,
                mask=mask,
                status=status,
                ok=False,
                peaks=(),
                R_pol=math.nan,
                solver=options.solver,
            )
            return failed, None
        scale = weighted.scale
        n_tau, n_freq = self.tau.size, self.freq.size
        weights = solution[:n_tau]
        modelled = self._model @ solution
        z_fit = scale * (modelled[:n_freq] + 1j * modelled[n_freq:])[select]
        gamma_fine = scale * (self._gamma_on_fine @ weights)
        inductance = 0.0
        if self._inductance_column is not None:
            inductance = scale * float(solution[self._inductance_column]) / self._omega_max
        r_inf = scale * float(solution[self._rinf_column])
        peaks = detect_peaks(
            self._log_tau_fine, gamma_fine, options.windows, options.peak_prominence
        )
        refined = None
        if options.refine and peaks:
            refined = self._refine(
                weighted, solution, peaks, r_inf / scale, inductance / scale, previous
            )
        if refined is not None:
            r_inf, inductance = scale * refined.R_inf, scale * refined.L
            peaks = _refined_peaks(
                peaks, refined, scale, options.windows, self._log_tau_fine, gamma_fine
            )
        result = DRTResult(
            freq=freq,
            tau=self.tau,
            gamma=scale * (self._gamma_on_grid @ weights),
            R_inf=r_inf,
            L=inductance,
            lam=lam,
            z_fit=z_fit,
            residuals=(z - z_fit) / np.abs(z),
            mask=mask,
            status=status,
            ok=True,
            peaks=peaks,
            R_pol=float(np.trapezoid(gamma_fine, self._log_tau_fine)),
            solver=options.solver,
            refined=refined is not None,
        )
        return result, (None if refined is None else (refined, scale))

    def _refine(
        self,
        weighted: _Weighted,
        solution: np.ndarray,
        peaks: tuple[DRTPeak, ...],
        r_inf_scaled: float,
        inductance_scaled: float,
        previous: tuple[Refined, float] | None = None,
    ) -> Refined | None:
        """The ZARC refinement of the peaks (:mod:`geis_pipeline.drt.refine`), or None.

        ``previous``: the sweep before's refinement and scale, to start from.
        """
        n_kept = int(weighted.mask.sum())
        misfit = weighted.design @ solution - weighted.data
        drt_rms = math.sqrt(float(misfit @ misfit) / (2 * n_kept))
        options = self.options
        return refine_peaks(
            omega=2.0 * math.pi * self.freq,
            z_scaled=weighted.z / weighted.scale,
            weights=self._weights(weighted.z, weighted.mask, weighted.scale),
            R=np.array([peak.R for peak in peaks]) / weighted.scale,
            tau=np.array([peak.tau for peak in peaks]),
            width=np.array([peak.width for peak in peaks]),
            R_inf=r_inf_scaled,
            L=inductance_scaled,
            inductance=self._inductance_column is not None,
            resolution_decades=options.rbf_width / options.points_per_decade,
            drt_rms=drt_rms,
            previous=None if previous is None else previous[0],
            rescale=1.0 if previous is None else previous[1] / weighted.scale,
        )

    def _lam_for(self, weighted: _Weighted, lam: float | str | None) -> float:
        if lam is None:
            lam = self.options.lam
        if isinstance(lam, str):
            if lam not in LAMBDA_METHODS:
                raise DRTError(f"must be a number or one of {LAMBDA_METHODS}", key="lam")
            return choose_lambda(self._ridge_system(weighted), lam, self.options.lam_bounds)
        if not (math.isfinite(lam) and lam >= 0):
            raise DRTError(f"must be a number >= 0, got {lam!r}", key="lam")
        return float(lam)

    def solve(
        self, z: ArrayLike, mask: ArrayLike | None = None, lam: float | str | None = None
    ) -> DRTResult:
        """Invert one spectrum measured on :attr:`freq`.

        Parameters
        ----------
        z
            Complex impedance at :attr:`freq`, ohm.
        mask
            Boolean, True for the points to fit (e.g. False for a truncated
            sweep's missing or a rejected low-frequency tail); default all.
        lam
            λ, or a method name to choose it on this spectrum; default the
            ``lam`` option.

        Returns
        -------
        DRTResult
        """
        weighted = self._weighted(z, mask)
        lam_value = self._lam_for(weighted, lam)
        solution, status = self._solve_blocks([weighted], [lam_value], 1)[0]
        return self._result(weighted, solution, status, lam_value, None)[0]

    def solve_many(
        self,
        spectra: Iterable[ArrayLike],
        masks: Iterable[ArrayLike | None] | None = None,
        lam: float | str | Sequence[float] | None = None,
        progress: ProgressCallback | None = None,
        points: Sequence[np.ndarray | None] | None = None,
    ) -> list[DRTResult]:
        """Invert many spectra on :attr:`freq`, ``batch_size`` per cvxpy solve.

        Parameters
        ----------
        spectra
            Complex impedances at :attr:`freq`, ohm.
        masks
            One mask (or None) per spectrum.
        lam
            One λ for all, one per spectrum, or a method name (then λ is
            chosen once on representative spectra, or per spectrum with the
            ``lam_per_spectrum`` option); default the ``lam`` option.
        progress
            Called as ``progress(done, total)`` after each solve.
        points
            For each spectrum, the indices of the grid's frequencies it was
            measured at (the result then holds those points only); None: all.

        Returns
        -------
        list of DRTResult
        """
        spectra = list(spectra)
        total = len(spectra)
        masks = [None] * total if masks is None else list(masks)
        points = [None] * total if points is None else list(points)
        if len(masks) != total or len(points) != total:
            raise DRTError("give one mask per spectrum", key="mask")
        lam = self.options.lam if lam is None else lam
        if isinstance(lam, str) and not self.options.lam_per_spectrum:
            lam = experiment_lambda(
                [(self, z, mask) for z, mask in zip(spectra, masks, strict=True)], lam
            )
        if isinstance(lam, str):
            lams: list[float | str] = [lam] * total
        elif np.ndim(lam) == 0:
            lams = [float(lam)] * total  # type: ignore[arg-type]
        else:
            lams = [float(value) for value in lam]  # type: ignore[union-attr]
            if len(lams) != total:
                raise DRTError("give one λ per spectrum", key="lam")
        size = min(self.options.batch_size, max(total, 1))
        results: list[DRTResult] = []
        # Consecutive sweeps have the same processes: each refinement starts from the
        # one before (geis_pipeline.drt.refine), a failed or unrefined sweep restarts it.
        previous: tuple[Refined, float] | None = None
        for first in range(0, total, size):
            chunk = range(first, min(first + size, total))
            weighted = [self._weighted(spectra[index], masks[index]) for index in chunk]
            chunk_lams = [
                self._lam_for(item, lams[index])
                for item, index in zip(weighted, chunk, strict=True)
            ]
            solved = self._solve_blocks(weighted, chunk_lams, size)
            for item, (solution, status), lam_value, index in zip(
                weighted, solved, chunk_lams, chunk, strict=True
            ):
                result, previous = self._result(
                    item, solution, status, lam_value, points[index], previous
                )
                results.append(result)
            if progress is not None:
                progress(len(results), total)
        return results


def experiment_lambda(
    items: Sequence[tuple[DRTProblem, ArrayLike, ArrayLike | None]], method: str
) -> float:
    """One λ for an experiment: median of log λ over ``lam_spectra`` evenly spread spectra.

    Parameters
    ----------
    items
        ``(problem, z, mask)`` of every spectrum, in time order.
    method
        ``"gcv"``, ``"lcurve"`` or ``"reim"``.
    """
    if not items:
        return 0.0
    count = min(items[0][0].options.lam_spectra, len(items))
    chosen = np.unique(np.round(np.linspace(0, len(items) - 1, count)).astype(int))
    log_lams = [
        math.log(problem.choose_lambda(z, mask, method))
        for problem, z, mask in (items[index] for index in chosen)
    ]
    return math.exp(float(np.median(log_lams)))


def build_drt_problem(freq: ArrayLike, **options: Any) -> DRTProblem:
    """Build the reusable DRT problem of one frequency grid.

    Parameters
    ----------
    freq
        Frequencies, Hz (> 0, any order).
    **options
        See :class:`DRTOptions`.

    Returns
    -------
    DRTProblem
        Call :meth:`DRTProblem.solve` or :meth:`DRTProblem.solve_many`.

    Raises
    ------
    DRTError
        Invalid frequencies or options.
    """
    return DRTProblem(freq, DRTOptions.from_options(options))


def invert_drt(
    freq: ArrayLike, z: ArrayLike, *, mask: ArrayLike | None = None, **options: Any
) -> DRTResult:
    """Distribution of relaxation times of one spectrum.

    Parameters
    ----------
    freq
        Frequencies, Hz (> 0).
    z
        Complex impedance Z' + jZ'' at ``freq``, ohm (capacitive: Z'' < 0).
    mask
        Boolean, True for the points to fit; default all.
    **options
        See :class:`DRTOptions` (λ chosen on this spectrum unless a number).

    Returns
    -------
    DRTResult
        Check ``ok``: a failed solve has ``ok = False``, its status and NaN values.

    Raises
    ------
    DRTError
        Invalid input (shapes, non-finite values) or options.
    """
    parsed = DRTOptions.from_options(options)
    grid = _validate_freq(freq)
    key = (grid.tobytes(), parsed.key())
    problem, lock = _PROBLEMS.get(key, lambda: (DRTProblem(grid, parsed), threading.Lock()))
    # A problem holds parameter values while it solves; one BLAS thread for small solves.
    with lock, one_blas_thread:
        return problem.solve(z, mask)


#: The problems of the last few grids and options :func:`invert_drt` was called with
#: (with their locks): a repeated call on a grid only writes parameter values.
_PROBLEMS: GridCache[tuple[DRTProblem, threading.Lock]] = GridCache(4)


def _as_pair(item: object) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(item, "freq") and hasattr(item, "z"):
        return np.asarray(item.freq, dtype=np.float64), np.asarray(item.z)  # type: ignore[attr-defined]
    try:
        freq, z = item  # type: ignore[misc]
    except (TypeError, ValueError):
        raise DRTError(
            "each spectrum must be a Spectrum or a (freq, z) pair", key="spectra"
        ) from None
    return np.asarray(freq, dtype=np.float64), np.asarray(z)


def _grid_indices(base: np.ndarray, freq: np.ndarray) -> np.ndarray | None:
    """Indices of ``freq`` in ``base`` if every frequency is one of base's (rtol 1e-9)."""
    order = np.argsort(base)
    sorted_base = base[order]
    position = np.clip(np.searchsorted(sorted_base, freq), 1, base.size - 1)
    below, above = sorted_base[position - 1], sorted_base[position]
    nearest = np.where(np.abs(freq - below) <= np.abs(freq - above), position - 1, position)
    matched = np.abs(sorted_base[nearest] - freq) <= 1e-9 * freq
    if not np.all(matched):
        return None
    indices = order[nearest]
    if np.unique(indices).size != indices.size:
        return None
    return indices


def invert_drt_batch(
    spectra: Iterable[object],
    *,
    masks: Iterable[ArrayLike | None] | None = None,
    progress: ProgressCallback | None = None,
    **options: Any,
) -> list[DRTResult]:
    """DRT of every spectrum of an experiment, one problem per frequency grid.

    A spectrum whose frequencies are all in a longer spectrum's grid (an
    incomplete sweep) is solved on that grid with the missing points masked,
    so it shares its τ grid and problem. λ (unless a number) is chosen once
    for the whole experiment on ``lam_spectra`` representative spectra and
    kept fixed; ``lam_per_spectrum=True`` chooses it for each spectrum.

    Parameters
    ----------
    spectra
        :class:`~geis_pipeline.spectrum.Spectrum` objects or ``(freq, z)``
        pairs, in time order.
    masks
        One boolean mask (or None) per spectrum, on its own points.
    progress
        Called as ``progress(done, total)`` as spectra are solved.
    **options
        See :class:`DRTOptions`.

    Returns
    -------
    list of DRTResult
        One per spectrum, in the order given.

    Raises
    ------
    DRTError
        Invalid spectra or options.
    """
    parsed = DRTOptions.from_options(options)
    pairs = [_as_pair(item) for item in spectra]
    total = len(pairs)
    masks = [None] * total if masks is None else list(masks)
    if len(masks) != total:
        raise DRTError(f"give one mask per spectrum ({total}), got {len(masks)}", key="masks")
    # Distinct grids, longest first, so incomplete sweeps find the full grid.
    distinct: dict[bytes, np.ndarray] = {}
    for freq, _ in pairs:
        distinct.setdefault(_validate_freq(freq).tobytes(), freq)
    problems: list[DRTProblem] = []
    placement: dict[bytes, tuple[int, np.ndarray | None]] = {}
    for key, freq in sorted(distinct.items(), key=lambda item: -item[1].size):
        for number, problem in enumerate(problems):
            indices = _grid_indices(problem.freq, freq)
            if indices is not None:
                placement[key] = (number, indices)
                break
        else:
            problems.append(DRTProblem(freq, parsed))
            placement[key] = (len(problems) - 1, None)

    grouped: dict[int, list[int]] = {}
    full_z: list[np.ndarray] = []
    full_masks: list[np.ndarray | None] = []
    full_points: list[np.ndarray | None] = []
    for index, ((freq, z), mask) in enumerate(zip(pairs, masks, strict=True)):
        number, indices = placement[freq.tobytes()]
        grouped.setdefault(number, []).append(index)
        if indices is None:
            full_z.append(z)
            full_masks.append(mask)
            full_points.append(None)
            continue
        z_checked, mask_checked = _validate_spectrum(freq, z, mask)
        grid_size = problems[number].freq.size
        z_grid = np.zeros(grid_size, dtype=np.complex128)
        mask_grid = np.zeros(grid_size, dtype=bool)
        z_grid[indices] = z_checked
        mask_grid[indices] = mask_checked
        # Unmeasured points get |Z| = 1 placeholders: masked, never fitted.
        z_grid[~mask_grid] = np.where(z_grid[~mask_grid] == 0, 1.0, z_grid[~mask_grid])
        full_z.append(z_grid)
        full_masks.append(mask_grid)
        full_points.append(indices)

    lam: float | str = parsed.lam
    if isinstance(lam, str) and not parsed.lam_per_spectrum:
        items = [
            (problems[placement[freq.tobytes()][0]], full_z[index], full_masks[index])
            for index, (freq, _) in enumerate(pairs)
        ]
        with one_blas_thread:
            lam = experiment_lambda(items, lam)

    results: list[DRTResult | None] = [None] * total
    done = 0
    for number, members in grouped.items():

        def report(solved: int, _: int, offset: int = done) -> None:
            if progress is not None:
                progress(offset + solved, total)

        with one_blas_thread:
            solved = problems[number].solve_many(
                [full_z[index] for index in members],
                [full_masks[index] for index in members],
                lam=lam,
                progress=report,
                points=[full_points[index] for index in members],
            )
        for index, result in zip(members, solved, strict=True):
            results[index] = result
        done += len(members)
    return [result for result in results if result is not None]
