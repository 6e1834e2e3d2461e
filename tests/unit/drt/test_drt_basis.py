"""The DRT discretisation: basis impedances and penalties against brute-force integrals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from geis_pipeline.drt.basis import build_basis, tau_grid
from geis_pipeline.elements import time_constant, zarc, zarc_drt
from geis_pipeline.errors import DRTError

FREQ = np.geomspace(1e6, 1e-2, 81)


def test_tau_grid_reaches_a_decade_beyond_the_data() -> None:
    tau = tau_grid(FREQ, points_per_decade=10, extend_decades=1.0)
    assert tau[0] == pytest.approx(1 / (2 * math.pi * 1e6) / 10)
    assert tau[-1] == pytest.approx(1 / (2 * math.pi * 1e-2) * 10)
    steps = np.diff(np.log10(tau))
    assert np.allclose(steps, steps[0]) and steps[0] <= 0.1


@pytest.mark.parametrize("kind", ["gaussian", "pwl"])
def test_basis_impedance_matches_direct_integration(kind: str) -> None:
    tau = tau_grid(FREQ, 10, 1.0)
    basis = build_basis(FREQ, tau, kind)
    log_tau = np.log(tau)
    for row, column in [(0, 5), (30, 40), (60, 70), (80, 99)]:
        omega = 2 * math.pi * FREQ[row]
        centre = log_tau[column]

        def phi(y: float, column: int = column) -> float:
            return float(basis.evaluation_matrix(np.array([y]))[0, column])

        def real_part(y: float, omega: float = omega) -> float:
            return phi(y) / (1 + (omega * math.exp(y)) ** 2)

        def imag_part(y: float, omega: float = omega) -> float:
            return -phi(y) * omega * math.exp(y) / (1 + (omega * math.exp(y)) ** 2)

        points = [centre - basis.spacing, centre, centre + basis.spacing]
        expected_re = quad(real_part, centre - 3, centre + 3, points=points, epsabs=1e-13)[0]
        expected_im = quad(imag_part, centre - 3, centre + 3, points=points, epsabs=1e-13)[0]
        assert basis.A_re[row, column] == pytest.approx(expected_re, rel=1e-7, abs=1e-12)
        assert basis.A_im[row, column] == pytest.approx(expected_im, rel=1e-7, abs=1e-12)


def test_piecewise_linear_basis_reproduces_a_zarc_from_its_exact_drt() -> None:
    R, Q, alpha = 100.0, 1e-4, 0.8
    tau = tau_grid(FREQ, 40, 1.5)
    basis = build_basis(FREQ, tau, "pwl")
    weights = zarc_drt(tau, R, time_constant(R, Q, alpha), alpha)
    z_model = basis.A_re @ weights + 1j * (basis.A_im @ weights)
    assert np.max(np.abs(z_model - zarc(FREQ, R, Q, alpha))) < 1e-3 * R


@pytest.mark.parametrize("derivative", [1, 2])
def test_gaussian_penalty_is_the_integral_of_the_squared_derivative(derivative: int) -> None:
    tau = tau_grid(FREQ[:20], 10, 0.5)
    basis = build_basis(FREQ[:20], tau, "gaussian", derivative=derivative)
    weights = np.random.default_rng(1).uniform(0, 1, tau.size)
    y = np.linspace(np.log(tau[0]) - 4, np.log(tau[-1]) + 4, 40001)
    gamma = basis.evaluation_matrix(y) @ weights
    for _ in range(derivative):
        gamma = np.gradient(gamma, y)
    expected = np.trapezoid(gamma**2, y)
    assert np.sum((basis.penalty @ weights) ** 2) == pytest.approx(expected, rel=1e-4)


def test_bad_basis_options_raise_drt_errors() -> None:
    tau = tau_grid(FREQ, 10, 1.0)
    with pytest.raises(DRTError, match="basis"):
        build_basis(FREQ, tau, "cubic")
    with pytest.raises(DRTError, match="derivative"):
        build_basis(FREQ, tau, derivative=3)
    with pytest.raises(DRTError, match="tau_range"):
        build_basis(FREQ, tau[::-1])
