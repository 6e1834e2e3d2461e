"""Impedance element functions against impedance.py, closed forms and the exact ZARC DRT."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from geis_pipeline.elements import (
    apex_frequency,
    brug_capacitance,
    cpe,
    cpe_q_from_capacitance,
    inductor,
    time_constant,
    zarc,
    zarc_drt,
)

# Typical Li | LLZO circuit in absolute units (0.785 cm2): L, then (R, Q, alpha) per arc.
L_H = 2e-7
ARCS = ((254.8, 1.2e-10, 0.95), (50.9, 2.9e-8, 0.9), (127.4, 2.6e-6, 0.85))
FREQ = np.geomspace(7e6, 1.0, 69)


@pytest.fixture(scope="module")
def custom_circuit() -> type:
    """impedance.py's CustomCircuit (it needs pandas: ECSHackWeek/impedance.py#305)."""
    from impedance.models.circuits import CustomCircuit

    return CustomCircuit


@pytest.mark.filterwarnings("ignore:Simulating circuit based on initial parameters")
def test_series_circuit_matches_impedance_py(custom_circuit: type) -> None:
    initial_guess = [L_H, *(value for arc in ARCS for value in arc)]
    circuit = custom_circuit("L0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)", initial_guess=initial_guess)
    expected = circuit.predict(FREQ)
    ours = inductor(FREQ, L_H) + sum(zarc(FREQ, *arc) for arc in ARCS)
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=0)


def test_zarc_is_resistor_parallel_to_cpe() -> None:
    R, Q, alpha = ARCS[2]
    parallel = 1.0 / (1.0 / R + 1.0 / cpe(FREQ, Q, alpha))
    np.testing.assert_allclose(zarc(FREQ, R, Q, alpha), parallel, rtol=1e-12)


def test_cpe_with_alpha_one_is_a_capacitor() -> None:
    capacitance = 1e-6
    expected = 1.0 / (1j * 2 * np.pi * FREQ * capacitance)
    np.testing.assert_allclose(cpe(FREQ, capacitance, 1.0), expected, rtol=1e-12)


def test_elements_broadcast_over_parameter_sets() -> None:
    resistances = np.array([10.0, 100.0, 1000.0])[:, np.newaxis]
    table = zarc(FREQ[np.newaxis, :], resistances, 1e-6, 0.9)
    assert table.shape == (3, FREQ.size)
    np.testing.assert_allclose(table[1], zarc(FREQ, 100.0, 1e-6, 0.9), rtol=1e-14)


def test_brug_capacitance_with_alpha_one_is_q() -> None:
    assert brug_capacitance(123.0, 4.5e-6, 1.0) == pytest.approx(4.5e-6, rel=1e-14)


def test_brug_capacitance_is_tau_over_r() -> None:
    R, Q, alpha = ARCS[1]
    assert brug_capacitance(R, Q, alpha) == pytest.approx(time_constant(R, Q, alpha) / R, rel=1e-12)


@given(
    capacitance=st.floats(1e-12, 1e-3),
    resistance=st.floats(1e-2, 1e6),
    alpha=st.floats(0.3, 1.0),
)
def test_brug_inverts_cpe_q_from_capacitance(
    capacitance: float, resistance: float, alpha: float
) -> None:
    q = cpe_q_from_capacitance(capacitance, resistance, alpha)
    assert brug_capacitance(resistance, q, alpha) == pytest.approx(capacitance, rel=1e-9)


@pytest.mark.parametrize("alpha", [0.6, 0.8, 0.95, 1.0])
def test_apex_frequency_is_the_maximum_of_minus_imaginary_part(alpha: float) -> None:
    R, Q = 127.4, 2.6e-6
    dense = np.geomspace(1e-2, 1e8, 200_001)
    peak = dense[np.argmax(-zarc(dense, R, Q, alpha).imag)]
    grid_step = np.log(dense[1] / dense[0])
    assert abs(np.log(peak / apex_frequency(R, Q, alpha))) <= grid_step


LOG_TAU_HALF_WIDTH = 40.0  # ln units either side of tau0: the alpha = 0.6 tails decay slowly


def _log_tau_grid(tau0: float) -> np.ndarray:
    return np.log(tau0) + np.linspace(-LOG_TAU_HALF_WIDTH, LOG_TAU_HALF_WIDTH, 40_001)


@pytest.mark.parametrize("alpha", [0.6, 0.8, 0.95])
def test_zarc_drt_integrates_to_r(alpha: float) -> None:
    R, tau0 = 50.0, 1e-4
    log_tau = _log_tau_grid(tau0)
    gamma = zarc_drt(np.exp(log_tau), R, tau0, alpha)
    assert np.all(gamma > 0)
    assert np.trapezoid(gamma, log_tau) == pytest.approx(R, rel=1e-3)


@pytest.mark.parametrize("alpha", [0.6, 0.8, 0.95])
def test_zarc_rebuilt_from_its_drt_matches_zarc(alpha: float) -> None:
    R, Q = 127.4, 2.6e-6
    tau0 = float(time_constant(R, Q, alpha))
    log_tau = _log_tau_grid(tau0)
    tau = np.exp(log_tau)
    gamma = zarc_drt(tau, R, tau0, alpha)
    freq = np.geomspace(1e-2, 1e2, 41) / (2 * np.pi * tau0)
    kernel = 1.0 / (1.0 + 1j * 2 * np.pi * freq[:, np.newaxis] * tau[np.newaxis, :])
    rebuilt = np.trapezoid(gamma * kernel, log_tau, axis=1)
    expected = zarc(freq, R, Q, alpha)
    assert np.max(np.abs(rebuilt - expected) / np.abs(expected)) < 1e-3


def test_zarc_drt_rejects_ideal_rc() -> None:
    with pytest.raises(ValueError, match="alpha"):
        zarc_drt(1e-3, 10.0, 1e-3, 1.0)


def test_inductor_is_positive_imaginary() -> None:
    z = inductor(FREQ, L_H)
    np.testing.assert_array_equal(z.real, 0.0)
    np.testing.assert_allclose(z.imag, 2 * np.pi * FREQ * L_H, rtol=1e-15)
