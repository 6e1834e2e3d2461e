"""Circuit strings: impedance.py's syntax and names, our fast model, its exact Jacobian."""

from __future__ import annotations

import dataclasses
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


# Parts of a flat circuit (a series of elements and R||CPE / R||C blocks) with
# parameter ranges; the number is filled in per position.
_FLAT_PARTS = {
    "R{n}": [(1e-2, 1e4)],
    "L{n}": [(0.0, 1e-5)],
    "C{n}": [(1e-10, 1e-3)],
    "CPE{n}": [(1e-10, 1e-2), (0.3, 1.0)],
    "W{n}": [(1e-2, 1e3)],
    "Zarc{n}": [(1e-2, 1e4), (1e-8, 1e2), (0.3, 1.0)],
    "p(R{n},CPE{n})": [(1e-2, 1e5), (1e-12, 1e-2), (0.3, 1.0)],
    "p(CPE{n},R{n})": [(1e-12, 1e-2), (0.3, 1.0), (1e-2, 1e5)],
    "p(R{n},C{n})": [(1e-2, 1e5), (1e-12, 1e-2)],
}


@st.composite
def _flat_circuits(draw):
    kinds = draw(st.lists(st.sampled_from(sorted(_FLAT_PARTS)), min_size=1, max_size=6))
    text = "-".join(kind.format(n=number) for number, kind in enumerate(kinds))
    parameters = [draw(st.floats(low, high)) for kind in kinds for low, high in _FLAT_PARTS[kind]]
    return text, np.array(parameters)


@settings(max_examples=60, deadline=None)
@given(_flat_circuits())
def test_flat_evaluator_matches_the_tree(case) -> None:
    """Series circuits take the flat evaluator; it agrees with the general tree walk."""
    text, parameters = case
    circuit = parse_circuit(text)
    assert circuit._flat is not None
    tree = dataclasses.replace(circuit, _flat=None)
    grid = circuit.grid(FREQ)
    z_flat, rows_flat = circuit.impedance_and_log_jacobian_on(grid, parameters)
    z_tree, rows_tree = tree.impedance_and_log_jacobian_on(grid, parameters)
    # Z may be 0 (L0 = 0 H) or subnormal (L0 = 2e-313 H: both sides round to 5e-324 apart).
    floor = 1e-290
    assert np.all(np.abs(z_flat - z_tree) <= 1e-12 * np.abs(z_tree) + floor)
    assert np.all(
        np.abs(circuit.impedance(FREQ, parameters) - z_tree) <= 1e-12 * np.abs(z_tree) + floor
    )
    # Each row relative to its own largest entry (a row of an inductance at 0 H is
    # still dZ/dL; a row can be zero only where the parameter has no effect).
    scale = np.maximum(np.abs(rows_tree).max(axis=1, keepdims=True), 1e-300)
    assert np.max(np.abs(rows_flat - rows_tree) / scale) < 1e-12


def test_log_jacobian_rows_are_p_times_dz_dp() -> None:
    """The fit's rows: p dZ/dp, except dZ/dL for an inductance (it may be 0)."""
    text = "L0-R0-p(R1,CPE1)-p(R2,C2)-CPE3"
    circuit = parse_circuit(text)
    parameters = np.array([1e-7, 20, 100, 1e-9, 0.9, 300, 1e-6, 1e-3, 0.5])
    z, jacobian = circuit.impedance_and_jacobian(FREQ, parameters)
    z_rows, rows = circuit.impedance_and_log_jacobian_on(circuit.grid(FREQ), parameters)
    chain = np.where([name == "L0" for name in circuit.parameter_names], 1.0, parameters)
    np.testing.assert_allclose(z_rows, z, rtol=1e-13)
    np.testing.assert_allclose(rows, (jacobian * chain).T, rtol=1e-12, atol=1e-300)
    assert not parse_circuit("R0-p(R1-p(R2,C2),CPE1)")._flat  # nested: the tree


def _impedance_py_names(text: str) -> tuple[str, ...] | None:
    """impedance.py's parameter names for a string; None if it rejects it."""
    from impedance.models.circuits import CustomCircuit
    from impedance.models.circuits.fitting import calculateCircuitLength

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            length = calculateCircuitLength(text.replace(" ", ""))
            reference = CustomCircuit(text, initial_guess=[1.0] * length)
            return tuple(reference.get_param_names()[0])
    except Exception:  # impedance.py rejects with ValueError, TypeError or AssertionError
        return None


_TOKENS = ["R", "C", "L", "CPE", "W", "Zarc", "Q", "_", "0", "1", "2", "-", ",", "p(", ")", "a"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=12))
def test_strings_read_as_impedance_py_reads_them(tokens) -> None:
    """Our parser (no impedance.py import) accepts only what impedance.py accepts, named alike."""
    text = "".join(tokens)
    try:
        ours = parse_circuit(text).parameter_names
    except FitError:
        return  # stricter is allowed (duplicate names, unbalanced or one-branch p(...))
    assert ours == _impedance_py_names(text)


@pytest.mark.parametrize(
    "text",
    ["L0-p(R1,CPE1)-p(R2,CPE2)", "R_0-p(R_1,CPE_1)-CPE", "R0-p(R1-p(R2,C2),CPE1)-Zarc3"],
)
def test_names_match_impedance_py(text: str) -> None:
    assert parse_circuit(text).parameter_names == _impedance_py_names(text)


@pytest.mark.parametrize(
    ("text", "message"), [("R-C1", "needs a number"), ("CPE1_2", "unexpected '_'")]
)
def test_names_impedance_py_would_misread(text: str, message: str) -> None:
    with pytest.raises(FitError, match=message):
        parse_circuit(text)
