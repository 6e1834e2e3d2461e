"""Impedance of equivalent-circuit elements and the quantities derived from them.

Pure, vectorised numpy functions (no I/O, no state). Every argument broadcasts
against every other, so one call evaluates many spectra or many parameter
sets at once. Conventions (DOMAIN.md):

* frequency ``freq`` in Hz, angular frequency ω = 2π·freq in rad/s;
* complex impedance Z = Z' + jZ'' in ohm (capacitive arcs have Z'' < 0);
* CPE: Z = 1 / (Q (jω)^α), Q in F s^(α-1), 0 < α <= 1;
* ZARC (R in parallel with a CPE): Z = R / (1 + R Q (jω)^α);
* Brug capacitance C = (Q R^(1-α))^(1/α) = τ / R, time constant
  τ = (R Q)^(1/α), apex frequency f = 1 / (2π τ).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "apex_frequency",
    "brug_capacitance",
    "cpe",
    "cpe_q_from_capacitance",
    "inductor",
    "time_constant",
    "zarc",
    "zarc_drt",
]


def _angular(freq: ArrayLike) -> np.ndarray:
    return 2.0 * np.pi * np.asarray(freq, dtype=np.float64)


def _j_omega_power(freq: ArrayLike, alpha: ArrayLike) -> np.ndarray:
    """(jω)^α written as ω^α e^(jπα/2): exact for ω > 0, no complex power needed."""
    alpha = np.asarray(alpha, dtype=np.float64)
    return _angular(freq) ** alpha * np.exp(0.5j * np.pi * alpha)


def inductor(freq: ArrayLike, L: ArrayLike) -> np.ndarray:
    """Impedance of an inductor, Z = jωL.

    Parameters
    ----------
    freq
        Frequency, Hz.
    L
        Inductance, H.

    Returns
    -------
    numpy.ndarray of complex
        Impedance, ohm (broadcast shape of the arguments).
    """
    return 1j * _angular(freq) * np.asarray(L, dtype=np.float64)


def cpe(freq: ArrayLike, Q: ArrayLike, alpha: ArrayLike) -> np.ndarray:
    """Impedance of a constant-phase element, Z = 1 / (Q (jω)^α).

    Parameters
    ----------
    freq
        Frequency, Hz (> 0).
    Q
        CPE coefficient, F s^(α-1) (> 0).
    alpha
        CPE exponent, dimensionless, 0 < α <= 1 (α = 1: ideal capacitor Q).

    Returns
    -------
    numpy.ndarray of complex
        Impedance, ohm.
    """
    return 1.0 / (np.asarray(Q, dtype=np.float64) * _j_omega_power(freq, alpha))


def zarc(freq: ArrayLike, R: ArrayLike, Q: ArrayLike, alpha: ArrayLike) -> np.ndarray:
    """Impedance of a resistor in parallel with a CPE, Z = R / (1 + R Q (jω)^α).

    Parameters
    ----------
    freq
        Frequency, Hz (> 0).
    R
        Resistance, ohm (> 0).
    Q
        CPE coefficient, F s^(α-1) (> 0).
    alpha
        CPE exponent, dimensionless, 0 < α <= 1.

    Returns
    -------
    numpy.ndarray of complex
        Impedance, ohm: a (depressed) semicircle from R at low frequency to 0
        at high frequency.
    """
    R = np.asarray(R, dtype=np.float64)
    return R / (1.0 + R * np.asarray(Q, dtype=np.float64) * _j_omega_power(freq, alpha))


def brug_capacitance(R: ArrayLike, Q: ArrayLike, alpha: ArrayLike) -> np.ndarray:
    """Effective capacitance of a ZARC (Brug formula), C = (Q R^(1-α))^(1/α).

    Equal to τ / R with τ from :func:`time_constant`; α = 1 gives C = Q.

    Parameters
    ----------
    R
        Resistance, ohm.
    Q
        CPE coefficient, F s^(α-1).
    alpha
        CPE exponent, dimensionless, 0 < α <= 1.

    Returns
    -------
    numpy.ndarray of float
        Capacitance, F.
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    return (np.asarray(Q, dtype=np.float64) * R ** (1.0 - alpha)) ** (1.0 / alpha)


def time_constant(R: ArrayLike, Q: ArrayLike, alpha: ArrayLike) -> np.ndarray:
    """Characteristic time constant of a ZARC, τ = (R Q)^(1/α).

    Parameters
    ----------
    R
        Resistance, ohm.
    Q
        CPE coefficient, F s^(α-1).
    alpha
        CPE exponent, dimensionless, 0 < α <= 1.

    Returns
    -------
    numpy.ndarray of float
        Time constant, s.
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    return (np.asarray(R, dtype=np.float64) * np.asarray(Q, dtype=np.float64)) ** (1.0 / alpha)


def apex_frequency(R: ArrayLike, Q: ArrayLike, alpha: ArrayLike) -> np.ndarray:
    """Frequency at the top of a ZARC arc (maximum of -Z''), f = 1 / (2π τ).

    Parameters
    ----------
    R
        Resistance, ohm.
    Q
        CPE coefficient, F s^(α-1).
    alpha
        CPE exponent, dimensionless, 0 < α <= 1.

    Returns
    -------
    numpy.ndarray of float
        Apex frequency, Hz.
    """
    return 1.0 / (2.0 * np.pi * time_constant(R, Q, alpha))


def cpe_q_from_capacitance(C: ArrayLike, R: ArrayLike, alpha: ArrayLike) -> np.ndarray:
    """CPE coefficient giving Brug capacitance ``C`` with resistance ``R``: Q = C^α R^(α-1).

    The inverse of :func:`brug_capacitance` in Q.

    Parameters
    ----------
    C
        Capacitance, F.
    R
        Resistance, ohm.
    alpha
        CPE exponent, dimensionless, 0 < α <= 1.

    Returns
    -------
    numpy.ndarray of float
        CPE coefficient Q, F s^(α-1).
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    return np.asarray(C, dtype=np.float64) ** alpha * np.asarray(R, dtype=np.float64) ** (
        alpha - 1.0
    )


def zarc_drt(tau: ArrayLike, R: ArrayLike, tau0: ArrayLike, alpha: ArrayLike) -> np.ndarray:
    """Exact distribution of relaxation times of a ZARC, γ(ln τ).

    γ(ln τ) = (R / 2π) sin((1-α)π) / (cosh(α ln(τ/τ0)) - cos((1-α)π)),
    normalised so that Z(ω) = ∫ γ(ln τ) / (1 + jωτ) d ln τ and
    ∫ γ d ln τ = R.

    Parameters
    ----------
    tau
        Relaxation time, s (> 0).
    R
        Resistance of the ZARC, ohm.
    tau0
        Its time constant (R Q)^(1/α), s.
    alpha
        CPE exponent, 0 < α < 1. α = 1 (an ideal RC) has a Dirac-delta DRT,
        which no function value can represent.

    Returns
    -------
    numpy.ndarray of float
        γ, ohm (per unit of ln τ).

    Raises
    ------
    ValueError
        ``alpha`` outside (0, 1).
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    if np.any((alpha <= 0.0) | (alpha >= 1.0)):
        raise ValueError("zarc_drt needs 0 < alpha < 1 (alpha = 1 is a Dirac delta)")
    angle = (1.0 - alpha) * np.pi
    log_ratio = np.log(np.asarray(tau, dtype=np.float64) / np.asarray(tau0, dtype=np.float64))
    return (
        np.asarray(R, dtype=np.float64)
        / (2.0 * np.pi)
        * np.sin(angle)
        / (np.cosh(alpha * log_ratio) - np.cos(angle))
    )
