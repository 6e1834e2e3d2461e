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
:func:`build_kk_basis` builds it once; :func:`check_kk_batch` solves the
weighted normal equations of many spectra at once (one matrix product per M
for the whole batch), which is what brings the check to well under 2 ms per
spectrum. :func:`check_kk` is the same computation for one spectrum.

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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from geis_pipeline._arrays import readonly
from geis_pipeline._cache import GridCache, hashable
from geis_pipeline.errors import ValidationError
from geis_pipeline.spectrum import Experiment, Spectrum

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

#: Default pass threshold: RMS relative residual (per real/imaginary component), 1 %.
DEFAULT_THRESHOLD = 0.01
#: Schönleber's μ criterion for the number of RC elements.
DEFAULT_MU_CRITERION = 0.85
#: Default cap on the number of RC elements (also capped at the number of points).
DEFAULT_MAX_ELEMENTS = 50
#: Fewest points a spectrum (after cropping) must have to be checked.
MIN_POINTS = 8

ProgressCallback = Callable[[int, int], None]

# Tikhonov term on the unit-diagonal normal equations: invisible in the residuals
# (~1e-12 relative) but keeps the solve defined when truncation leaves a column weak.
_RIDGE = 1e-12
# Spectra solved together: bounds memory of the (batch, M+3, M+3) and tail-test arrays.
_CHUNK = 256
_TAIL_CHUNK = 64
# Every F-test keeps at least this many residual degrees of freedom.
_MIN_DOF = 4


@dataclass(frozen=True, eq=False)
class KKBasis:
    """The fixed Lin-KK basis of one frequency grid, for every candidate M.

    Build it with :func:`build_kk_basis`; reuse it for every spectrum measured
    on the same grid. Arrays are read-only.

    Attributes
    ----------
    freq
        The grid, Hz, in the order given.
    order
        Indices sorting ``freq`` from high to low (the internal order).
    max_elements
        Largest M tried (already capped at the number of points).
    include_inductance, include_capacitance
        Whether the model has a series jωL / 1/(jωC) term.
    tau_extension_decades
        How far the τ grid reaches beyond 1/(2π f_max) (down) and 1/(2π f_min) (up), decades.
    tau
        ``tau[M - 1]``: the M time constants, s, short to long.
    design_real, design_imag
        ``design_real[M - 1]``: (n_points, M + n_extra) real / imaginary parts of
        the model's columns at the sorted frequencies: the M RC elements
        1/(1 + jωτ_k), then R_0 (1), then jω (if inductance), then 1/(jω) (if
        capacitance).
    """

    freq: np.ndarray
    order: np.ndarray
    max_elements: int
    include_inductance: bool
    include_capacitance: bool
    tau_extension_decades: float
    tau: tuple[np.ndarray, ...]
    design_real: tuple[np.ndarray, ...]
    design_imag: tuple[np.ndarray, ...]
    # M -> per-point products of the design (the normal matrices' terms), made on
    # first use and kept: they depend on the grid alone.
    _point_products: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def n_points(self) -> int:
        """Number of frequencies in the grid."""
        return int(self.freq.size)

    @property
    def n_extra(self) -> int:
        """Columns besides the RC elements (R_0, and L and 1/C if included)."""
        return 1 + int(self.include_inductance) + int(self.include_capacitance)

    def matches(self, freq: np.ndarray) -> bool:
        """True when ``freq`` is this basis' grid (same values, same order)."""
        freq = np.asarray(freq, dtype=np.float64)
        return freq.shape == self.freq.shape and bool(
            np.allclose(freq, self.freq, rtol=1e-12, atol=0.0)
        )


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


@dataclass(frozen=True)
class _Options:
    threshold: float
    mu_criterion: float
    truncate: bool
    significance: float
    min_deviation: float
    max_outliers: int
    max_truncated_fraction: float


# --------------------------------------------------------------------------- validation


def _number(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValidationError(f"must be a number, got {value!r}", key=key)
    value = float(value)
    if not math.isfinite(value):
        raise ValidationError(f"must be finite, got {value!r}", key=key)
    return value


def _whole(value: object, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValidationError(f"must be a whole number, got {value!r}", key=key)
    if value < minimum:
        raise ValidationError(f"must be >= {minimum}, got {value!r}", key=key)
    return int(value)


def _flag(value: object, key: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValidationError(f"must be True or False, got {value!r}", key=key)
    return bool(value)


def _check_options(
    *,
    threshold: float,
    mu_criterion: float,
    truncate: bool,
    significance: float,
    min_deviation: float,
    max_outliers: int,
    max_truncated_fraction: float,
) -> _Options:
    threshold = _number(threshold, "threshold")
    if threshold <= 0:
        raise ValidationError(f"must be > 0, got {threshold!r}", key="threshold")
    mu_criterion = _number(mu_criterion, "mu_criterion")
    if not 0 < mu_criterion < 1:
        raise ValidationError(f"must be in (0, 1), got {mu_criterion!r}", key="mu_criterion")
    significance = _number(significance, "significance")
    if not 0 < significance < 1:
        raise ValidationError(f"must be in (0, 1), got {significance!r}", key="significance")
    min_deviation = _number(min_deviation, "min_deviation")
    if min_deviation < 0:
        raise ValidationError(f"must be >= 0, got {min_deviation!r}", key="min_deviation")
    fraction = _number(max_truncated_fraction, "max_truncated_fraction")
    if not 0 <= fraction < 1:
        raise ValidationError(f"must be in [0, 1), got {fraction!r}", key="max_truncated_fraction")
    return _Options(
        threshold=threshold,
        mu_criterion=mu_criterion,
        truncate=_flag(truncate, "truncate"),
        significance=significance,
        min_deviation=min_deviation,
        max_outliers=_whole(max_outliers, "max_outliers", 0),
        max_truncated_fraction=fraction,
    )


def _check_freq(freq: ArrayLike) -> np.ndarray:
    try:
        freq = np.asarray(freq, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValidationError(
            f"frequencies must be real numbers ({error})", column="freq"
        ) from None
    if freq.ndim != 1:
        raise ValidationError(f"frequencies must be 1-D, got shape {freq.shape}", column="freq")
    if not np.all(np.isfinite(freq)):
        raise ValidationError("frequencies must be finite (found NaN or inf)", column="freq")
    if np.any(freq <= 0):
        raise ValidationError("frequencies must be > 0 Hz", column="freq")
    return freq


def _check_spectrum(freq: ArrayLike, z: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    freq = _check_freq(freq)
    try:
        z = np.asarray(z, dtype=np.complex128)
    except (TypeError, ValueError) as error:
        raise ValidationError(f"impedance must be complex numbers ({error})", column="z") from None
    if z.shape != freq.shape:
        raise ValidationError(
            f"freq and z must have the same shape, got {freq.shape} and {z.shape}", column="z"
        )
    if not np.all(np.isfinite(z)):
        raise ValidationError("impedance values must be finite (found NaN or inf)", column="z")
    if np.any(z == 0):
        raise ValidationError("impedance values must be non-zero (weights are 1/|Z|)", column="z")
    if freq.size < MIN_POINTS:
        raise ValidationError(
            f"a spectrum needs at least {MIN_POINTS} points for the KK check, got {freq.size}",
            column="freq",
        )
    return freq, z


def _crop(
    freq: np.ndarray, z: np.ndarray, max_freq_hz: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points at or below ``max_freq_hz`` (all when None): (kept flags, freq, z)."""
    if max_freq_hz is None:
        kept = np.ones(freq.size, dtype=bool)
    else:
        kept = freq <= max_freq_hz
        if np.count_nonzero(kept) < MIN_POINTS:
            raise ValidationError(
                f"leaves {np.count_nonzero(kept)} points at or below {max_freq_hz:g} Hz; "
                f"the KK check needs at least {MIN_POINTS}",
                key="max_freq_hz",
            )
    return kept, freq[kept], z[kept]


def _check_max_freq(max_freq_hz: float | None) -> float | None:
    if max_freq_hz is None:
        return None
    max_freq_hz = _number(max_freq_hz, "max_freq_hz")
    if max_freq_hz <= 0:
        raise ValidationError(f"must be > 0, got {max_freq_hz!r}", key="max_freq_hz")
    return max_freq_hz


# --------------------------------------------------------------------------- basis


def build_kk_basis(
    freq: ArrayLike,
    *,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    include_inductance: bool = True,
    include_capacitance: bool = False,
    tau_extension_decades: float = 0.5,
) -> KKBasis:
    """Build the Lin-KK basis of a frequency grid, for M = 1 .. ``max_elements``.

    For each M the time constants are log-spaced from
    10^-e / (2π f_max) to 10^e / (2π f_min), e = ``tau_extension_decades``:
    the extension lets the fit follow arcs whose apex lies just outside the
    measured range (the bulk arc of LLZO above the highest frequency).

    Parameters
    ----------
    freq
        Frequencies, Hz (finite, > 0, at least :data:`MIN_POINTS`), any order.
    max_elements
        Largest number of RC elements tried; capped at the number of points.
    include_inductance
        Add a series inductance jωL (cable, high-frequency inductive points).
    include_capacitance
        Add a series capacitance 1/(jωC) (blocking low-frequency behaviour).
    tau_extension_decades
        Extension of the τ range beyond the measured one, decades, in [0, 2].

    Returns
    -------
    KKBasis

    Raises
    ------
    ValidationError
        Bad frequencies (``column='freq'``) or options (``key`` = the option).
    """
    freq = _check_freq(freq)
    if freq.size < MIN_POINTS:
        raise ValidationError(
            f"a spectrum needs at least {MIN_POINTS} points for the KK check, got {freq.size}",
            column="freq",
        )
    max_elements = _whole(max_elements, "max_elements", 1)
    include_inductance = _flag(include_inductance, "include_inductance")
    include_capacitance = _flag(include_capacitance, "include_capacitance")
    extension = _number(tau_extension_decades, "tau_extension_decades")
    if not 0 <= extension <= 2:
        raise ValidationError(
            f"must be in [0, 2] decades, got {tau_extension_decades!r}",
            key="tau_extension_decades",
        )
    if np.ptp(freq) <= 0:
        raise ValidationError("frequencies must span a range (all are equal)", column="freq")
    order = np.argsort(-freq, kind="stable")
    omega = 2.0 * np.pi * freq[order]
    # M <= number of points, as in Schönleber: more elements than points only fit noise.
    max_elements = min(max_elements, freq.size)
    tau_short = 10.0**-extension / omega[0]
    tau_long = 10.0**extension / omega[-1]
    extra_real = [np.ones_like(omega)]
    extra_imag = [np.zeros_like(omega)]
    if include_inductance:
        extra_real.append(np.zeros_like(omega))
        extra_imag.append(omega)
    if include_capacitance:
        extra_real.append(np.zeros_like(omega))
        extra_imag.append(-1.0 / omega)
    taus, design_real, design_imag = [], [], []
    for n_elements in range(1, max_elements + 1):
        tau = np.geomspace(tau_short, tau_long, n_elements)
        omega_tau = omega[:, np.newaxis] * tau[np.newaxis, :]
        denominator = 1.0 + omega_tau**2
        taus.append(readonly(tau))
        design_real.append(readonly(np.column_stack([1.0 / denominator, *extra_real])))
        design_imag.append(readonly(np.column_stack([-omega_tau / denominator, *extra_imag])))
    return KKBasis(
        freq=readonly(freq),
        order=readonly(order),
        max_elements=max_elements,
        include_inductance=include_inductance,
        include_capacitance=include_capacitance,
        tau_extension_decades=extension,
        tau=tuple(taus),
        design_real=tuple(design_real),
        design_imag=tuple(design_imag),
    )


# --------------------------------------------------------------------------- numerics


def _f_sf(statistic: np.ndarray, dof_num: np.ndarray, dof_den: np.ndarray) -> np.ndarray:
    """Survival function of the F distribution (vectorised; NaN-free for valid input)."""
    from scipy.special import betainc  # on first use: a quick package import

    statistic = np.maximum(statistic, 0.0)
    x = dof_den / (dof_den + dof_num * statistic)
    return betainc(dof_den / 2.0, dof_num / 2.0, x)


class _Group:
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

    def column_mask(self, rows: np.ndarray, n_elements: int) -> np.ndarray:
        tau = self.basis.tau[n_elements - 1]
        limit = self.tau_limit[self.n_keep[rows] - 1]
        # Once a tail is cut, the kept range ends where the data became suspect: no
        # elements beyond it, or they would bend the model to absorb the rest of a
        # drift -- unless a relaxation straddles the cut and needs them (``extended``).
        plain = (self.n_keep[rows] < self.basis.n_points) & ~self.extended[rows]
        limit = np.where(plain, self.tau_measured_long[self.n_keep[rows] - 1], limit)
        rc_kept = tau[np.newaxis, :] <= limit[:, np.newaxis]
        extra = np.ones((rows.size, self.basis.n_extra), dtype=bool)
        return np.concatenate([rc_kept, extra], axis=1)

    def mu_elements(self, rows: np.ndarray, n_elements: int) -> np.ndarray:
        """RC elements μ counts: τ inside the measured range of the kept points."""
        tau = self.basis.tau[n_elements - 1][np.newaxis, :]
        longest = self.tau_measured_long[self.n_keep[rows] - 1][:, np.newaxis]
        return (tau >= self.tau_measured_short) & (tau <= longest)


def _products(group: _Group, n_elements: int) -> np.ndarray:
    """:func:`_point_products` of M = n_elements, computed once per basis."""
    cached = group.basis._point_products
    products = cached.get(n_elements)
    if products is None:
        products = _point_products(
            group.basis.design_real[n_elements - 1], group.basis.design_imag[n_elements - 1]
        )
        products.flags.writeable = False
        cached[n_elements] = products
    return products


def _point_products(design_real: np.ndarray, design_imag: np.ndarray) -> np.ndarray:
    """Per-point contribution a_re a_reᵀ + a_im a_imᵀ to the normal matrix, (n, P*P)."""
    n_points, n_columns = design_real.shape
    products = design_real[:, :, np.newaxis] * design_real[:, np.newaxis, :]
    products += design_imag[:, :, np.newaxis] * design_imag[:, np.newaxis, :]
    return products.reshape(n_points, n_columns * n_columns)


def _cholesky(scaled: np.ndarray) -> np.ndarray:
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


def _forward(factor: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve L y = b for lower-triangular L (..., P, P) and b (..., P, m), vectorised.

    numpy's batched solve/inv cost 10-50 µs per small matrix; a column loop over
    the whole batch costs a fraction of a microsecond per system.
    """
    solution = np.empty_like(rhs)
    for column in range(factor.shape[-1]):
        known = np.einsum(
            "...k,...km->...m", factor[..., column, :column], solution[..., :column, :]
        )
        solution[..., column, :] = (rhs[..., column, :] - known) / factor[
            ..., column, column, np.newaxis
        ]
    return solution


def _backward(factor: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve Lᵀ x = y for lower-triangular L (..., P, P) and y (..., P, m), vectorised."""
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


def _solve_normal(
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
    scaled = normal * (scale[..., :, np.newaxis] * scale[..., np.newaxis, :])
    scaled_diagonal = np.einsum("...ii->...i", scaled)
    scaled_diagonal += 1.0 - column_weight
    factor = _cholesky(scaled)
    scaled_rhs = (rhs * scale)[..., np.newaxis]
    solution = _backward(factor, _forward(factor, scaled_rhs))[..., 0] * scale
    return solution, factor, scale


def _fit_rows(
    group: _Group, rows: np.ndarray, n_elements: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted Lin-KK fit of ``rows`` with M = n_elements: (solution, factor, scale, columns)."""
    basis = group.basis
    design_real = basis.design_real[n_elements - 1]
    design_imag = basis.design_imag[n_elements - 1]
    n_columns = design_real.shape[1]
    weight2 = group.weight2[rows] * group.used(rows)
    normal = (weight2 @ _products(group, n_elements)).reshape(rows.size, n_columns, n_columns)
    rhs = (weight2 * group.z_real[rows]) @ design_real + (
        weight2 * group.z_imag[rows]
    ) @ design_imag
    columns = group.column_mask(rows, n_elements)
    solution, factor, scale = _solve_normal(normal, rhs, columns)
    return solution, factor, scale, columns


def _mu(resistances: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """Schönleber's μ = 1 - Σ|R_k<0| / Σ|R_k≥0| over the counted elements, per row.

    1 when nothing is fitted.
    """
    resistances = np.where(counted, resistances, 0.0)
    positive = np.where(resistances >= 0, resistances, 0.0).sum(axis=-1)
    negative = -np.where(resistances < 0, resistances, 0.0).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = 1.0 - negative / positive
    return np.where(positive > 0, mu, np.where(negative > 0, -np.inf, 1.0))


def _select_elements(
    group: _Group, rows: np.ndarray, mu_criterion: float, significance: float
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
    for n_elements in range(1, last + 1):
        if pending.size == 0:
            break
        solution = _fit_rows(group, pending, n_elements)[0]
        mu = _mu(solution[:, :n_elements], group.mu_elements(pending, n_elements))
        done = (mu <= mu_criterion) | (n_elements == last)
        richer = min(n_elements + max(4, n_elements // 2), last)
        candidates = np.flatnonzero(done)
        if richer > n_elements and candidates.size:
            chi2, dof = _chi2_rows(group, pending[candidates], n_elements, solution[candidates])
            chi2_rich, dof_rich = _chi2_rows(group, pending[candidates], richer)
            added = np.maximum(dof - dof_rich, 1)
            statistic = (np.maximum(chi2 - chi2_rich, 0.0) / added) / (
                np.maximum(chi2_rich, 1e-300) / np.maximum(dof_rich, 1)
            )
            under_resolved = (dof_rich >= _MIN_DOF) & (
                _f_sf(statistic, added, np.maximum(dof_rich, 1)) < significance
            )
            done[candidates[under_resolved]] = False
        for row, values, value in zip(pending[done], solution[done], mu[done], strict=True):
            group.solution[row] = values
            group.n_elements[row] = n_elements
            group.mu[row] = value
        pending = pending[~done]


def _chi2_rows(
    group: _Group, rows: np.ndarray, n_elements: int, solution: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """χ² (weighted) and residual degrees of freedom of the M = n_elements fit of ``rows``."""
    basis = group.basis
    columns = group.column_mask(rows, n_elements)
    if solution is None:
        solution = _fit_rows(group, rows, n_elements)[0]
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


@dataclass(frozen=True)
class _Screen:
    """Most significant defect of each row (Bonferroni-corrected p-values)."""

    outlier_index: np.ndarray  # sorted index of the worst point, -1 if none testable
    outlier_p: np.ndarray
    outlier_size: np.ndarray  # excess RMS deviation of that point beyond the noise
    tail_length: np.ndarray  # k of the most significant tail, 0 if none testable
    tail_p: np.ndarray
    tail_size: np.ndarray
    outlier_variance: np.ndarray  # residual variance (χ²/dof) once the point is removed
    tail_variance: np.ndarray  # residual variance once the tail is removed


def _screen_rows(group: _Group, rows: np.ndarray, n_elements: int, options: _Options) -> _Screen:
    """Deletion F-tests for one outlier and for a free low-frequency tail, rows sharing M."""
    basis = group.basis
    n_points = basis.n_points
    design_real = basis.design_real[n_elements - 1]
    design_imag = basis.design_imag[n_elements - 1]
    n_columns = design_real.shape[1]
    products = _products(group, n_elements)
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
        solution, factor, scale, _ = _fit_rows(group, chunk, n_elements)
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
        projected_real = _forward(
            factor, (masked_real * scale[:, np.newaxis, :]).transpose(0, 2, 1)
        )
        projected_imag = _forward(
            factor, (masked_imag * scale[:, np.newaxis, :]).transpose(0, 2, 1)
        )
        hat_rr = weight2 * np.einsum("spn,spn->sn", projected_real, projected_real)
        hat_ii = weight2 * np.einsum("spn,spn->sn", projected_imag, projected_imag)
        hat_ri = weight2 * np.einsum("spn,spn->sn", projected_real, projected_imag)
        determinant = (1.0 - hat_rr) * (1.0 - hat_ii) - hat_ri**2
        testable = used & (determinant > 1e-6) & ((dof - 2) >= _MIN_DOF)[:, np.newaxis]
        safe_det = np.where(testable, determinant, 1.0)
        deleted = (
            residual_real**2 * (1.0 - hat_ii)
            + 2.0 * residual_real * residual_imag * hat_ri
            + residual_imag**2 * (1.0 - hat_rr)
        ) / safe_det
        deleted = np.where(testable, np.clip(deleted, 0.0, chi2[:, np.newaxis]), 0.0)
        rest_dof = np.maximum(dof - 2, 1)[:, np.newaxis]
        rest_var = np.maximum(chi2[:, np.newaxis] - deleted, 1e-300) / rest_dof
        p_point = np.where(testable, _f_sf(deleted / 2.0 / rest_var, 2.0, rest_dof), 1.0)
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
        solution_k = _solve_normal(normal_k, rhs_k, columns_k)[0]
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
            & (dof_k >= _MIN_DOF)
            & (freed > 0)
        )
        gain = np.maximum(chi2[:, np.newaxis] - chi2_k, 0.0)
        rest_var_k = np.maximum(chi2_k, 1e-300) / np.maximum(dof_k, 1)
        statistic = gain / np.maximum(freed, 1) / rest_var_k
        p_tail = np.where(valid, _f_sf(statistic, np.maximum(freed, 1), np.maximum(dof_k, 1)), 1.0)
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
    return _Screen(
        outlier_index,
        outlier_p,
        outlier_size,
        tail_length,
        tail_p,
        tail_size,
        outlier_variance,
        tail_variance,
    )


def _screen(group: _Group, rows: np.ndarray, options: _Options) -> _Screen:
    """:func:`_screen_rows` for rows of any M (grouped by M)."""
    n_rows = rows.size
    merged = _Screen(
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


def _needs_extension(group: _Group, row: int, significance: float) -> bool:
    """True when a truncated row's kept points need the τ extension beyond their range.

    Without the extension, a relaxation whose arc straddles the cut cannot be
    followed and its end looks like a further violation; truncating again
    would cascade. The extension columns are tested like any added terms (F-test).
    """
    if group.extended[row] or group.n_keep[row] == group.basis.n_points:
        return False
    rows = np.array([row])
    n_elements = int(group.n_elements[row])
    chi2, dof = _chi2_rows(group, rows, n_elements)
    group.extended[row] = True
    chi2_ext, dof_ext = _chi2_rows(group, rows, n_elements)
    group.extended[row] = False
    added = dof - dof_ext
    if added[0] <= 0 or dof_ext[0] < _MIN_DOF:
        return False
    statistic = (max(chi2[0] - chi2_ext[0], 0.0) / added) / (max(chi2_ext[0], 1e-300) / dof_ext)
    return bool(_f_sf(statistic, added, dof_ext)[0] < significance)


def _check_group(group: _Group, options: _Options) -> dict[str, np.ndarray]:
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
        _select_elements(group, pending, options.mu_criterion, options.significance)
        screen = _screen(group, pending, options)
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
                if options.truncate and _needs_extension(group, row, options.significance):
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
        _select_elements(group, np.array(folded), options.mu_criterion, options.significance)
    return {
        "tail_violation": tail_violation,
        "outlier_limit": limit_reached,
        "tail_p": tail_p,
    }


def _results(
    group: _Group,
    outcome: dict[str, np.ndarray],
    options: _Options,
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
                mu=float(_mu(rc[np.newaxis], group.mu_elements(np.array([row]), n_elements))[0]),
                n_elements=int(np.count_nonzero(columns[:n_elements])),
                rms=rms,
                tail_p_value=float(outcome["tail_p"][row]),
            )
        )
    return results


# --------------------------------------------------------------------------- public API


def check_kk(
    freq: ArrayLike,
    z: ArrayLike,
    *,
    basis: KKBasis | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    mu_criterion: float = DEFAULT_MU_CRITERION,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    truncate: bool = True,
    include_inductance: bool = True,
    include_capacitance: bool = False,
    max_freq_hz: float | None = None,
    tau_extension_decades: float = 0.5,
    significance: float = 1e-3,
    min_deviation: float = 0.002,
    max_outliers: int = 2,
    max_truncated_fraction: float = 0.5,
) -> KKResult:
    """Kramers-Kronig check of one spectrum (Lin-KK with μ criterion, outliers, truncation).

    Parameters
    ----------
    freq
        Frequencies, Hz (finite, > 0, at least :data:`MIN_POINTS`), any order.
    z
        Complex impedance Z' + jZ'', ohm, same shape.
    basis
        A basis from :func:`build_kk_basis` for this grid (after cropping at
        ``max_freq_hz``), built with the same ``max_elements``,
        ``include_inductance``, ``include_capacitance`` and
        ``tau_extension_decades``; built here when None.
    threshold
        Largest RMS relative residual (per component, of the points used) for
        ``ok``; 0.01 = 1 %.
    mu_criterion
        Schönleber's c, in (0, 1).
    max_elements
        Cap on the number of RC elements (also capped at the number of points).
    truncate
        Drop a low-frequency tail that violates KK (else the spectrum fails).
    include_inductance, include_capacitance
        Series jωL (default on) / 1/(jωC) (default off) in the model.
    max_freq_hz
        Crop points above this frequency, Hz (None: keep all; inductive
        points are then modelled by L).
    tau_extension_decades
        τ range extension beyond the measured range, decades.
    significance
        Family-wise false-alarm probability of each outlier / tail test.
    min_deviation
        Smallest RMS relative deviation (beyond the noise) acted upon by the
        outlier and tail tests; outliers must also deviate by ``threshold``.
    max_outliers
        Most isolated bad points removed; a further one fails the spectrum.
    max_truncated_fraction
        Largest share of the points truncation may drop, in [0, 1).

    Returns
    -------
    KKResult

    Raises
    ------
    ValidationError
        Bad data (``column`` 'freq' or 'z'), an option out of range (``key``
        = the option) or a basis for another grid or options (``key='basis'``).
    """
    freq, z = _check_spectrum(freq, z)
    options = _check_options(
        threshold=threshold,
        mu_criterion=mu_criterion,
        truncate=truncate,
        significance=significance,
        min_deviation=min_deviation,
        max_outliers=max_outliers,
        max_truncated_fraction=max_truncated_fraction,
    )
    max_freq_hz = _check_max_freq(max_freq_hz)
    kept, freq_cropped, z_cropped = _crop(freq, z, max_freq_hz)
    basis_options = {
        "max_elements": max_elements,
        "include_inductance": include_inductance,
        "include_capacitance": include_capacitance,
        "tau_extension_decades": tau_extension_decades,
    }
    if basis is None:
        key = (freq_cropped.tobytes(), hashable(basis_options))
        basis = _BASES.get(key, lambda: build_kk_basis(freq_cropped, **basis_options))
    else:
        _check_basis(basis, freq_cropped, basis_options)
    return _run(basis, [(freq, z, kept)], [z_cropped], options)[0]


#: The bases of the last few grids and options :func:`check_kk` was called with.
_BASES: GridCache[KKBasis] = GridCache(4)


def _check_basis(basis: object, freq: np.ndarray, basis_options: dict[str, object]) -> None:
    if not isinstance(basis, KKBasis):
        raise ValidationError(
            f"must be a KKBasis from build_kk_basis, got {type(basis).__name__}", key="basis"
        )
    if not basis.matches(freq):
        raise ValidationError(
            "was built for another frequency grid (after cropping at max_freq_hz): "
            "build it with build_kk_basis(freq) or pass basis=None",
            key="basis",
        )
    capped = min(int(basis_options["max_elements"]), freq.size)  # type: ignore[call-overload]
    for name, value in basis_options.items():
        have = getattr(basis, name)
        wanted = capped if name == "max_elements" else value
        if have != wanted:
            raise ValidationError(
                f"was built with {name} = {have!r} but the check was asked for {value!r}: "
                "pass the same options to build_kk_basis and check_kk",
                key="basis",
            )


def _run(
    basis: KKBasis,
    crops: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    z_cropped: Sequence[np.ndarray],
    options: _Options,
) -> list[KKResult]:
    z_sorted = np.stack([np.asarray(values)[basis.order] for values in z_cropped])
    group = _Group(basis, z_sorted)
    outcome = _check_group(group, options)
    return _results(group, outcome, options, crops)


def _as_arrays(item: object, position: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(item, Spectrum):
        return item.freq, item.z
    try:
        freq, z = item  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ValidationError(
            f"item {position} is neither a Spectrum nor a (freq, z) pair", key="spectra"
        ) from None
    return freq, z


def check_kk_batch(
    spectra: Experiment | Iterable[Spectrum | tuple[ArrayLike, ArrayLike]],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    mu_criterion: float = DEFAULT_MU_CRITERION,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    truncate: bool = True,
    include_inductance: bool = True,
    include_capacitance: bool = False,
    max_freq_hz: float | None = None,
    tau_extension_decades: float = 0.5,
    significance: float = 1e-3,
    min_deviation: float = 0.002,
    max_outliers: int = 2,
    max_truncated_fraction: float = 0.5,
    progress: ProgressCallback | None = None,
) -> list[KKResult]:
    """:func:`check_kk` for many spectra, one basis per distinct frequency grid.

    Spectra on the same grid (after cropping) share one :class:`KKBasis` and
    are solved together, in chunks; an incomplete sweep (fewer points) gets
    the basis of its own grid. Each result equals what :func:`check_kk` gives
    for that spectrum alone (to rounding).

    Parameters
    ----------
    spectra
        An :class:`~geis_pipeline.spectrum.Experiment`, or an iterable of
        :class:`~geis_pipeline.spectrum.Spectrum` or ``(freq, z)`` pairs.
    threshold, mu_criterion, max_elements, truncate, include_inductance, include_capacitance,
    max_freq_hz, tau_extension_decades, significance, min_deviation, max_outliers,
    max_truncated_fraction
        As for :func:`check_kk`.
    progress
        Called as ``progress(done, total)`` after each chunk of spectra.

    Returns
    -------
    list of KKResult
        In input order.

    Raises
    ------
    ValidationError
        As for :func:`check_kk`; the message names the spectrum's position.
    """
    options = _check_options(
        threshold=threshold,
        mu_criterion=mu_criterion,
        truncate=truncate,
        significance=significance,
        min_deviation=min_deviation,
        max_outliers=max_outliers,
        max_truncated_fraction=max_truncated_fraction,
    )
    max_freq_hz = _check_max_freq(max_freq_hz)
    items = spectra.spectra if isinstance(spectra, Experiment) else list(spectra)
    total = len(items)
    crops: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    cropped: list[tuple[np.ndarray, np.ndarray]] = []
    grids: dict[bytes, list[int]] = {}
    for position, item in enumerate(items):
        freq, z = _as_arrays(item, position)
        try:
            freq, z = _check_spectrum(freq, z)
            kept, freq_cropped, z_cropped = _crop(freq, z, max_freq_hz)
        except ValidationError as error:
            raise type(error)(
                f"spectrum {position}: {error.message}",
                column=error.column,
                key=error.key,
            ) from None
        crops.append((freq, z, kept))
        cropped.append((freq_cropped, z_cropped))
        grids.setdefault(freq_cropped.tobytes(), []).append(position)

    results: list[KKResult | None] = [None] * total
    done = 0
    for positions in grids.values():
        basis = build_kk_basis(
            cropped[positions[0]][0],
            max_elements=max_elements,
            include_inductance=include_inductance,
            include_capacitance=include_capacitance,
            tau_extension_decades=tau_extension_decades,
        )
        for start in range(0, len(positions), _CHUNK):
            chunk = positions[start : start + _CHUNK]
            chunk_results = _run(
                basis,
                [crops[position] for position in chunk],
                [cropped[position][1] for position in chunk],
                options,
            )
            for position, result in zip(chunk, chunk_results, strict=True):
                results[position] = result
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return [result for result in results if result is not None]
