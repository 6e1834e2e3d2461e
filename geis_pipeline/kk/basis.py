"""The fixed Lin-KK basis of a frequency grid: τ grids and design matrices for every M."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from geis_pipeline._arrays import readonly
from geis_pipeline.errors import ValidationError
from geis_pipeline.kk.options import (
    DEFAULT_MAX_ELEMENTS,
    MIN_POINTS,
    check_flag,
    check_freq,
    check_number,
    check_whole,
)


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
    freq = check_freq(freq)
    if freq.size < MIN_POINTS:
        raise ValidationError(
            f"a spectrum needs at least {MIN_POINTS} points for the KK check, got {freq.size}",
            column="freq",
        )
    max_elements = check_whole(max_elements, "max_elements", 1)
    include_inductance = check_flag(include_inductance, "include_inductance")
    include_capacitance = check_flag(include_capacitance, "include_capacitance")
    extension = check_number(tau_extension_decades, "tau_extension_decades")
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


def point_products(basis: KKBasis, n_elements: int) -> np.ndarray:
    """:func:`_point_products` of M = n_elements, computed once per basis."""
    cached = basis._point_products
    products = cached.get(n_elements)
    if products is None:
        products = _point_products(
            basis.design_real[n_elements - 1], basis.design_imag[n_elements - 1]
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
