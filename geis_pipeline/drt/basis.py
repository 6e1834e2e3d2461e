"""Discretisation of the DRT: the log-τ grid, basis functions and their matrices.

γ(ln τ) = Σ_m x_m φ_m(ln τ) on a log-uniform grid of centres ln τ_m with spacing
Δ (in ln τ). Two bases:

* ``"gaussian"``: φ_m(y) = exp(-(ε (y - y_m))²), full width at half maximum
  ``rbf_width`` · Δ (ε = 2 sqrt(ln 2) / (``rbf_width`` Δ));
* ``"pwl"``: hat functions, so γ is piecewise linear and x_m = γ(τ_m)
  (half hats at the grid ends: γ is 0 outside the grid).

The impedance of one basis function, ∫ φ_m(y) / (1 + jω e^y) dy, is computed
by Gauss-Legendre quadrature in the variable u = y - y_m, writing the kernels
as 1 / (1 + e^(2v)) = (1 - tanh v) / 2 and v-odd 1 / (2 cosh v) (v = ln ωτ),
which never overflow.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from geis_pipeline.errors import DRTError

__all__ = [
    "BASES",
    "DRTBasis",
    "build_basis",
    "tau_grid",
]

BASES = ("gaussian", "pwl")

BasisName = Literal["gaussian", "pwl"]

# Gaussian tails beyond ±7/ε are below exp(-49): nothing left to integrate.
_GAUSSIAN_REACH = 7.0
_NODES_PER_PANEL = 10
# Kernels vary on the scale of 1 in ln τ; panels of ≤ 0.25 make 10 nodes exact to ~1e-13.
_MAX_PANEL = 0.25
_NEGLIGIBLE = 1e-16
# Rows of K(v) evaluated at once: bounds memory at ~16 MB per chunk.
_CHUNK_ELEMENTS = 2_000_000


def tau_grid(
    freq: np.ndarray,
    points_per_decade: float,
    extend_decades: float,
    tau_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Log-uniform relaxation-time grid covering the data ``extend_decades`` beyond.

    Parameters
    ----------
    freq
        Frequencies of the data, Hz (> 0).
    points_per_decade
        Grid density, points per decade of τ.
    extend_decades
        How far the grid reaches beyond 1/(2π f_max) and 1/(2π f_min), decades.
    tau_range
        ``(tau_min, tau_max)`` in s to use instead of the range from ``freq``.

    Returns
    -------
    numpy.ndarray
        τ, s, ascending; both ends included.
    """
    if tau_range is None:
        tau_min = 1.0 / (2.0 * math.pi * float(np.max(freq))) * 10.0**-extend_decades
        tau_max = 1.0 / (2.0 * math.pi * float(np.min(freq))) * 10.0**extend_decades
    else:
        tau_min, tau_max = (float(value) for value in tau_range)
    decades = math.log10(tau_max / tau_min)
    n_points = max(3, math.ceil(points_per_decade * decades - 1e-9) + 1)
    return np.geomspace(tau_min, tau_max, n_points)


@dataclass(frozen=True, eq=False)
class DRTBasis:
    """A discretised DRT on one frequency grid.

    Attributes
    ----------
    kind
        ``"gaussian"`` or ``"pwl"``.
    freq
        Frequencies, Hz, in the order given.
    tau
        Basis centres τ_m, s, ascending (log uniform).
    spacing
        Grid spacing Δ in ln τ.
    epsilon
        Gaussian shape factor ε, 1 / (unit of ln τ) (0 for ``"pwl"``).
    A_re, A_im
        Real and imaginary impedance of each basis function at each frequency,
        ohm per unit x, shape (n_freq, n_tau): Z = A_re x + j A_im x.
    penalty
        D with ||D x||² = ∫ (d^k γ / d(ln τ)^k)² d ln τ, shape (rows, n_tau).
    derivative
        k, the order of the penalised derivative (1 or 2).
    """

    kind: str
    freq: np.ndarray
    tau: np.ndarray
    spacing: float
    epsilon: float
    A_re: np.ndarray
    A_im: np.ndarray
    penalty: np.ndarray
    derivative: int

    @property
    def n_tau(self) -> int:
        """Number of basis functions."""
        return int(self.tau.size)

    def evaluation_matrix(self, log_tau: np.ndarray) -> np.ndarray:
        """Matrix E with γ(ln τ_k) = (E x)_k.

        Parameters
        ----------
        log_tau
            Points ln τ_k (τ in s) where γ is wanted.

        Returns
        -------
        numpy.ndarray
            Shape (len(log_tau), n_tau).
        """
        offsets = np.asarray(log_tau, dtype=np.float64)[:, np.newaxis] - np.log(self.tau)
        if self.kind == "gaussian":
            return np.exp(-((self.epsilon * offsets) ** 2))
        hats = np.clip(1.0 - np.abs(offsets) / self.spacing, 0.0, None)
        # Half hats at the ends: nothing beyond the grid.
        hats[:, 0] = np.where(offsets[:, 0] < -1e-12 * self.spacing, 0.0, hats[:, 0])
        hats[:, -1] = np.where(offsets[:, -1] > 1e-12 * self.spacing, 0.0, hats[:, -1])
        return hats


def _gauss_legendre_panels(breaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of composite Gauss-Legendre quadrature over ``breaks``."""
    unit_nodes, unit_weights = np.polynomial.legendre.leggauss(_NODES_PER_PANEL)
    starts, ends = breaks[:-1, np.newaxis], breaks[1:, np.newaxis]
    half = 0.5 * (ends - starts)
    nodes = (starts + ends) * 0.5 + half * unit_nodes
    weights = half * unit_weights
    return nodes.ravel(), weights.ravel()


def _panel_breaks(start: float, stop: float, kinks: tuple[float, ...] = ()) -> np.ndarray:
    """Breakpoints from ``start`` to ``stop`` through ``kinks``, panels ≤ _MAX_PANEL wide."""
    anchors = np.unique(np.array([start, *kinks, stop], dtype=np.float64))
    pieces = []
    for left, right in itertools.pairwise(anchors):
        count = max(1, math.ceil((right - left) / _MAX_PANEL))
        pieces.append(np.linspace(left, right, count + 1)[:-1])
    pieces.append(anchors[-1:])
    return np.concatenate(pieces)


def _kernel_matrices(
    log_omega: np.ndarray,
    log_tau: np.ndarray,
    nodes: np.ndarray,
    node_weights: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """A_re[n, m] = Σ_j W[m, j] K_re(ln ω_n + ln τ_m + u_j), same for K_im.

    ``node_weights`` is (n_tau, n_nodes): the quadrature weight times φ_m(u_j).
    """
    n_freq, n_tau = log_omega.size, log_tau.size
    A_re = np.empty((n_freq, n_tau))
    A_im = np.empty((n_freq, n_tau))
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // (n_tau * nodes.size))
    for first in range(0, n_freq, rows_per_chunk):
        rows = slice(first, first + rows_per_chunk)
        v = log_omega[rows, np.newaxis, np.newaxis] + log_tau[:, np.newaxis] + nodes
        A_re[rows] = np.einsum("nmj,mj->nm", 0.5 * (1.0 - np.tanh(v)), node_weights)
        # 1 / (2 cosh v) written with exp(-|v|) so large |v| underflows to 0, never overflows.
        decay = np.exp(-np.abs(v))
        A_im[rows] = -np.einsum("nmj,mj->nm", decay / (1.0 + decay * decay), node_weights)
    return A_re, A_im


def _gaussian_gram(offsets: np.ndarray, epsilon: float, derivative: int) -> np.ndarray:
    """∫ φ_n^(k) φ_m^(k) dy for Gaussians φ(u) = exp(-(εu)²), closed form.

    With a = ε (y_n - y_m): k = 1 gives ε sqrt(π/2) (1 - a²) e^(-a²/2),
    k = 2 gives ε³ sqrt(π/2) (3 - 6a² + a⁴) e^(-a²/2).
    """
    a_squared = (epsilon * offsets) ** 2
    envelope = math.sqrt(math.pi / 2.0) * np.exp(-a_squared / 2.0)
    if derivative == 1:
        return epsilon * (1.0 - a_squared) * envelope
    return epsilon**3 * (3.0 - 6.0 * a_squared + a_squared**2) * envelope


def _factor_gram(gram: np.ndarray) -> np.ndarray:
    """D with DᵀD = gram (symmetric PSD), from its eigen-decomposition."""
    eigenvalues, eigenvectors = np.linalg.eigh(0.5 * (gram + gram.T))
    keep = eigenvalues > eigenvalues.max() * 1e-13
    return np.sqrt(eigenvalues[keep])[:, np.newaxis] * eigenvectors[:, keep].T


def _pwl_penalty(n_tau: int, spacing: float, derivative: int) -> np.ndarray:
    """Finite differences of the node values, scaled to approximate the integral norm."""
    difference = np.diff(np.eye(n_tau), n=derivative, axis=0)
    return difference * math.sqrt(spacing) / spacing**derivative


def build_basis(
    freq: np.ndarray,
    tau: np.ndarray,
    kind: str = "gaussian",
    rbf_width: float = 2.0,
    derivative: int = 1,
) -> DRTBasis:
    """Impedance and penalty matrices of a DRT basis on a frequency grid.

    Parameters
    ----------
    freq
        Frequencies, Hz (> 0), any order.
    tau
        Log-uniform grid of basis centres, s, ascending (:func:`tau_grid`).
    kind
        ``"gaussian"`` (radial basis functions) or ``"pwl"`` (piecewise linear).
    rbf_width
        Full width at half maximum of the Gaussians, in grid spacings.
    derivative
        Order of the derivative in the Tikhonov penalty, 1 or 2.

    Returns
    -------
    DRTBasis

    Raises
    ------
    DRTError
        Unknown ``kind``, a non-uniform grid or fewer than 3 grid points.
    """
    freq = np.asarray(freq, dtype=np.float64)
    tau = np.asarray(tau, dtype=np.float64)
    if kind not in BASES:
        raise DRTError(f"must be one of {BASES}, got {kind!r}", key="basis")
    if derivative not in (1, 2):
        raise DRTError(f"must be 1 or 2, got {derivative!r}", key="derivative")
    log_tau = np.log(tau)
    steps = np.diff(log_tau)
    if tau.size < 3 or np.any(steps <= 0) or np.ptp(steps) > 1e-6 * steps.mean():
        raise DRTError("the τ grid must be ascending, log uniform, >= 3 points", key="tau_range")
    spacing = float(steps.mean())
    log_omega = np.log(2.0 * math.pi * freq)
    if kind == "gaussian":
        epsilon = 2.0 * math.sqrt(math.log(2.0)) / (rbf_width * spacing)
        reach = _GAUSSIAN_REACH / epsilon
        nodes, weights = _gauss_legendre_panels(_panel_breaks(-reach, reach))
        node_weights = np.broadcast_to(
            weights * np.exp(-((epsilon * nodes) ** 2)), (tau.size, nodes.size)
        )
        offsets = log_tau[:, np.newaxis] - log_tau
        penalty = _factor_gram(_gaussian_gram(offsets, epsilon, derivative))
    else:
        epsilon = 0.0
        nodes, weights = _gauss_legendre_panels(_panel_breaks(-spacing, spacing, (0.0,)))
        hat = weights * np.clip(1.0 - np.abs(nodes) / spacing, 0.0, None)
        node_weights = np.repeat(hat[np.newaxis, :], tau.size, axis=0)
        node_weights[0, nodes < 0] = 0.0
        node_weights[-1, nodes > 0] = 0.0
        penalty = _pwl_penalty(tau.size, spacing, derivative)
    A_re, A_im = _kernel_matrices(log_omega, log_tau, nodes, np.ascontiguousarray(node_weights))
    # Entries below 1e-16 of the largest change no fit, but as subnormal numbers
    # they would slow every later product by orders of magnitude.
    for matrix in (A_re, A_im):
        matrix[np.abs(matrix) < _NEGLIGIBLE * np.abs(matrix).max()] = 0.0
    penalty[np.abs(penalty) < _NEGLIGIBLE * np.abs(penalty).max()] = 0.0
    return DRTBasis(
        kind=kind,
        freq=freq,
        tau=tau,
        spacing=spacing,
        epsilon=epsilon,
        A_re=A_re,
        A_im=A_im,
        penalty=penalty,
        derivative=derivative,
    )
