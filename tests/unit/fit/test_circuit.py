"""Circuit strings: impedance.py's syntax and names, our fast model, its exact Jacobian."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geis_pipeline import FitError
from geis_pipeline.fit import parse_circuit

FREQ = np.geomspace(7e6, 0.1, 60)

CIRCUITS = {
    "L0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)": [
        2e-7,
        250,
        1.2e-10,
        0.95,
        50,
        3e-8,
        0.9,
        130,
        2.6e-6,
        0.85,
    ],
    "L0-R0-p(R1,CPE1)-p(R2,CPE2)-CPE3": [1e-7, 20, 100, 1e-9, 0.9, 300, 1e-6, 0.8, 1e-3, 0.5],
    "R0-p(R1,C1)-W2": [10, 100, 1e-6, 30],
    "R0-p(R1-p(R2,C2),CPE1)": [5, 100, 40, 1e-5, 1e-6, 0.9],
    "L0-R0-Zarc1-p(C2,R2,L2)": [1e-7, 10, 200, 1e-4, 0.8, 1e-7, 70, 1e-5],
}


def _impedance_py(text: str, parameters: list[float]) -> np.ndarray:
    from impedance.models.circuits import CustomCircuit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Simulating circuit based on initial parameters"
        return CustomCircuit(text, initial_guess=parameters).predict(FREQ)


@pytest.mark.parametrize("text", sorted(CIRCUITS))
def test_matches_impedance_py_predict(text: str) -> None:
    circuit = parse_circuit(text)
    parameters = CIRCUITS[text]
    expected = _impedance_py(text, parameters)
    ours = circuit.impedance(FREQ, np.array(parameters))
    assert np.max(np.abs(ours - expected) / np.abs(expected)) < 1e-10


@pytest.mark.parametrize("text", sorted(CIRCUITS))
def test_jacobian_matches_finite_differences(text: str) -> None:
    circuit = parse_circuit(text)
    parameters = np.array(CIRCUITS[text])
    z, jacobian = circuit.impedance_and_jacobian(FREQ, parameters)
    for index in range(parameters.size):
        step = parameters[index] * 1e-6
        shifted = parameters.copy()
        shifted[index] += step
        numeric = (circuit.impedance(FREQ, shifted) - z) / step
        scale = np.max(np.abs(jacobian[:, index]))
        assert np.max(np.abs(numeric - jacobian[:, index])) < 1e-4 * scale


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(1e-2, 1e5), min_size=3, max_size=3),
    st.lists(st.floats(1e-12, 1e-2), min_size=3, max_size=3),
    st.lists(st.floats(0.5, 1.0), min_size=3, max_size=3),
    st.floats(0.0, 1e-6),
)
def test_random_parameters_match_impedance_py(resistances, charges, alphas, inductance) -> None:
    text = "L0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)"
    parameters = [inductance]
    for resistance, q, alpha in zip(resistances, charges, alphas, strict=True):
        parameters += [resistance, q, alpha]
    expected = _impedance_py(text, parameters)
    ours = parse_circuit(text).impedance(FREQ, np.array(parameters))
    assert np.max(np.abs(ours - expected) / np.abs(expected)) < 1e-10


def test_names_and_arcs() -> None:
    circuit = parse_circuit("L0-R0-p(R1,CPE1)-p(R2,C2)-p(R3,R4)")
    assert circuit.parameter_names == (
        "L0", "R0", "R1", "CPE1_0", "CPE1_1", "R2", "C2", "R3", "R4",
    )  # fmt: skip
    assert circuit.zarcs == (("R1", "CPE1"), ("R2", "C2"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("L0-p(R1", "missing"),
        ("R0-Q1", "unsupported element 'Q1'"),
        ("R0--R1", "expected an element"),
        ("R0-R0", "used twice"),
        ("p(R1)", "two branches"),
        ("", "empty"),
    ],
)
def test_bad_strings(text: str, message: str) -> None:
    with pytest.raises(FitError, match=message) as caught:
        parse_circuit(text)
    assert caught.value.key == "circuit"
