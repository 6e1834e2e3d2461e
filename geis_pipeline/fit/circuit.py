"""Equivalent circuits in impedance.py's string syntax, evaluated fast with an analytic Jacobian.

``L0-R0-p(R1,CPE1)-p(R2,CPE2)``: ``-`` joins elements in series, ``p(a,b,...)``
in parallel. Element names and parameter names follow impedance.py (``R1``,
``CPE_2``; ``CPE1_0`` = Q, ``CPE1_1`` = alpha), so users' strings and results
carry over; the parser here reads strings as impedance.py does (tested
against it), without importing it (1.4 s). impedance.py's evaluation is a
Python ``eval`` of nested closures without derivatives: too slow to fit
30,000 spectra. :class:`Circuit` compiles the same string into vectorised
numpy with exact derivatives, tested to agree with ``CustomCircuit.predict``
to 1e-10. A circuit that is a series of
elements and p(R,CPE)/p(R,C) blocks (nearly every circuit fitted to these
cells) is also flattened: all its R||CPE blocks are evaluated together as
(n_blocks, n_freq) arrays with the derivatives the fit uses (by ln p), about
two dozen numpy operations per evaluation instead of a tree walk (tested
against the tree to 1e-12).

Elements (impedance.py's definitions, omega = 2 pi f):
R (R), C (1/(j omega C)), L (j omega L), CPE (1/(Q (j omega)^alpha)),
W (A (1 - j)/sqrt(omega)), Zarc (R/(1 + (j omega tau)^gamma)).
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass, field

import numpy as np

from geis_pipeline.errors import FitError

__all__ = ["ELEMENT_PARAMETERS", "Circuit", "parse_circuit"]

#: Parameters of each supported element type, in impedance.py's order.
ELEMENT_PARAMETERS: dict[str, tuple[str, ...]] = {
    "R": ("R",),
    "C": ("C",),
    "L": ("L",),
    "CPE": ("Q", "alpha"),
    "W": ("A",),
    "Zarc": ("R", "tau", "gamma"),
}
# An element name: its type's letters (underscores allowed, as impedance.py strips
# them) and a number; impedance.py reads a name without a number only at the end.
_NAME = re.compile(r"([A-Za-z_]+)(\d*)")


@dataclass(frozen=True)
class _Element:
    name: str  # as written, e.g. "CPE2"
    kind: str  # "CPE"
    first: int  # index of its first parameter in the circuit's parameter vector


@dataclass(frozen=True)
class _Series:
    parts: tuple[_Element | _Series | _Parallel, ...]


@dataclass(frozen=True)
class _Parallel:
    parts: tuple[_Element | _Series | _Parallel, ...]


@dataclass(frozen=True)
class _RQ:
    """p(R,CPE) or p(R,C): evaluated in closed form, R/(1 + R Q (j omega)^a).

    The field's most common block; closed form needs a third of the array
    operations of the generic parallel rule, and fitting spends its time here.
    """

    resistor: _Element
    capacitor: _Element


_Node = _Element | _Series | _Parallel | _RQ

#: Element types whose parameter the fit moves on a linear scale (an inductance may be 0):
#: :meth:`Circuit.impedance_and_log_jacobian_on` differentiates by them directly.
LINEAR_KINDS = frozenset({"L"})


_Index = slice | np.ndarray


@dataclass(frozen=True, eq=False)
class _Flat:
    """A circuit that is a series of elements and p(R,CPE)/p(R,C) blocks (the common case).

    The p(R,CPE) blocks are evaluated together, as (n_blocks, n_freq) arrays,
    in about twenty numpy operations whatever their number; series inductors and
    resistors as sums; the other parts (series C, CPE, W, Zarc, p(R,C)) one by
    one, without walking a tree. Indices are slices where the parameters are
    evenly spaced (``L0-p(R1,CPE1)-p(R2,CPE2)...``): views instead of copies.
    """

    resistors: _Index  # parameter index of each p(R,CPE) block's R
    charges: _Index  # ... of its Q
    exponents: _Index  # ... of its alpha
    n_blocks: int
    inductors: _Index  # series L
    n_inductors: int
    series_resistors: _Index  # series R
    n_series_resistors: int
    others: tuple[_Element | _RQ, ...]


def _index(indices: list[int]) -> _Index:
    """A slice for evenly spaced increasing indices, else an index array."""
    if len(indices) == 1:
        return slice(indices[0], indices[0] + 1)
    steps = {later - earlier for earlier, later in itertools.pairwise(indices)}
    if len(steps) == 1 and (step := steps.pop()) > 0:
        return slice(indices[0], indices[-1] + 1, step)
    return np.array(indices, dtype=np.intp)


class _Grid:
    """Angular frequencies and the functions of them every evaluation needs (computed once)."""

    __slots__ = ("_ones", "_warburg", "j_omega", "log_j_omega", "log_omega", "omega")

    def __init__(self, omega: np.ndarray) -> None:
        self.omega = omega
        self.j_omega = 1j * omega
        self.log_omega = np.log(omega)
        self.log_j_omega = self.log_omega + 0.5j * np.pi  # ln(j omega)
        self._warburg: np.ndarray | None = None
        self._ones: np.ndarray | None = None

    @property
    def warburg(self) -> np.ndarray:
        """(1 - j)/sqrt(omega), for Warburg elements (computed on first use)."""
        if self._warburg is None:
            self._warburg = (1 - 1j) / np.sqrt(self.omega)
        return self._warburg

    @property
    def ones(self) -> np.ndarray:
        """dZ/dR of a series resistor (computed on first use)."""
        if self._ones is None:
            self._ones = np.ones(self.omega.size, dtype=np.complex128)
        return self._ones


class _Parser:
    """Recursive descent over the circuit string (series of terms, p(...) groups)."""

    def __init__(self, text: str) -> None:
        self.text = text.replace(" ", "")
        self.position = 0
        self.elements: list[_Element] = []
        self.n_parameters = 0

    def error(self, message: str) -> FitError:
        return FitError(
            f"{message} at character {self.position + 1} of {self.text!r}", key="circuit"
        )

    def parse(self) -> _Node:
        node = self.series()
        if self.position != len(self.text):
            raise self.error(f"unexpected {self.text[self.position]!r}")
        return node

    def series(self) -> _Node:
        parts = [self.term()]
        while self.position < len(self.text) and self.text[self.position] == "-":
            self.position += 1
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else _Series(tuple(parts))

    def term(self) -> _Node:
        if self.text.startswith("p(", self.position):
            self.position += 2
            parts = [self.series()]
            while self.position < len(self.text) and self.text[self.position] == ",":
                self.position += 1
                parts.append(self.series())
            if self.position >= len(self.text) or self.text[self.position] != ")":
                raise self.error("missing ')'")
            self.position += 1
            if len(parts) < 2:
                raise self.error("p(...) needs at least two branches")
            return _Parallel(tuple(parts))
        match = _NAME.match(self.text, self.position)
        if not match:
            raise self.error("expected an element name or p(")
        self.position = match.end()
        name = match.group(0)
        kind = match.group(1).replace("_", "")
        if kind not in ELEMENT_PARAMETERS:
            raise FitError(
                f"unsupported element {name!r}; supported: {', '.join(ELEMENT_PARAMETERS)}",
                key="circuit",
            )
        if not match.group(2) and self.text[self.position :].strip(")"):
            # impedance.py would run this name into the next element's.
            raise self.error(f"element {name!r} needs a number ({kind}0, {kind}1...)")
        if any(element.name == name for element in self.elements):
            raise FitError(f"element name {name!r} used twice", key="circuit")
        element = _Element(name, kind, self.n_parameters)
        self.elements.append(element)
        self.n_parameters += len(ELEMENT_PARAMETERS[kind])
        return element


def _parameter_names(element: _Element) -> list[str]:
    count = len(ELEMENT_PARAMETERS[element.kind])
    if count == 1:
        return [element.name]
    return [f"{element.name}_{index}" for index in range(count)]


@dataclass(frozen=True)
class Circuit:
    """A compiled circuit: parameter names and a vectorised model with Jacobian.

    Attributes
    ----------
    text
        The circuit string.
    parameter_names
        impedance.py's names, in its order (``R1``, ``CPE1_0``, ``CPE1_1``...).
    element_names
        Elements in order of appearance.
    element_kinds
        Element name -> type (``R``, ``CPE``...).
    zarcs
        (R element, CPE/C element) pairs that form an R||CPE (or R||C) block
        on their own: the arcs whose capacitance is reported.
    """

    text: str
    parameter_names: tuple[str, ...]
    element_names: tuple[str, ...]
    element_kinds: dict[str, str]
    zarcs: tuple[tuple[str, str], ...]
    _root: _Node
    _elements: tuple[_Element, ...]
    _flat: _Flat | None = field(default=None, compare=False, repr=False)  # from _root

    @property
    def n_parameters(self) -> int:
        return len(self.parameter_names)

    def impedance(self, freq: np.ndarray, parameters: np.ndarray) -> np.ndarray:
        """Z(f) in ohm for a parameter vector (impedance.py's order)."""
        return self.impedance_on(self.grid(freq), np.asarray(parameters, dtype=np.float64))

    def impedance_and_jacobian(
        self, freq: np.ndarray, parameters: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Z(f) and dZ/dp, shape (n_freq, n_parameters), complex."""
        return self.impedance_and_jacobian_on(
            self.grid(freq), np.asarray(parameters, dtype=np.float64)
        )

    def grid(self, freq: np.ndarray) -> _Grid:
        """Precomputed frequency functions for repeated evaluation on one grid."""
        return _Grid(2 * np.pi * np.asarray(freq, dtype=np.float64))

    def impedance_on(self, grid: _Grid, parameters: np.ndarray) -> np.ndarray:
        """Z on a precomputed grid: the hot path of fitting."""
        if self._flat is not None:
            return _flat_evaluate(self._flat, grid, parameters, False)[0]
        return _evaluate(self._root, grid, parameters, False)[0]

    def impedance_and_jacobian_on(
        self, grid: _Grid, parameters: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Z and dZ/dp on a precomputed grid."""
        return _evaluate(self._root, grid, parameters, True)

    def impedance_and_log_jacobian_on(
        self, grid: _Grid, parameters: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Z and the fit's derivatives, one row per parameter: shape (n_parameters, n_freq).

        Row i is dZ/d(ln p_i) = p_i dZ/dp_i, except for inductances
        (:data:`LINEAR_KINDS`), whose row is dZ/dL. Rows, not columns: a
        row-major complex array viewed as float64 interleaves each row's real
        and imaginary parts, which the fit uses without copying.
        """
        if self._flat is not None:
            z, rows = _flat_evaluate(self._flat, grid, parameters, True)
            return z, rows  # type: ignore[return-value]  # rows exist with_jacobian
        z, jacobian = _evaluate(self._root, grid, parameters, True)
        chain = np.where(self._linear, 1.0, parameters)
        return z, np.ascontiguousarray((jacobian * chain).T)

    @functools.cached_property
    def _linear(self) -> np.ndarray:
        return np.array(
            [
                element.kind in LINEAR_KINDS
                for element in self._elements
                for _ in ELEMENT_PARAMETERS[element.kind]
            ]
        )


@functools.lru_cache(maxsize=64)
def parse_circuit(text: str) -> Circuit:
    """Compile a circuit string in impedance.py's syntax.

    Raises
    ------
    FitError
        The string is not valid (the message says where) or uses an element
        geis-pipeline does not evaluate.
    """
    if not isinstance(text, str) or not text.strip():
        raise FitError("the circuit string is empty", key="circuit")
    parser = _Parser(text)
    root = _closed_forms(parser.parse())
    elements = tuple(parser.elements)
    names = tuple(name for element in elements for name in _parameter_names(element))
    return Circuit(
        text=parser.text,
        parameter_names=names,
        element_names=tuple(element.name for element in elements),
        element_kinds={element.name: element.kind for element in elements},
        zarcs=_find_zarcs(root),
        _root=root,
        _elements=elements,
        _flat=_flatten(root),
    )


def _flatten(root: _Node) -> _Flat | None:
    """The flat form of a series of elements and R||CPE blocks; None for other circuits."""
    parts = root.parts if isinstance(root, _Series) else (root,)
    if not all(isinstance(part, _Element | _RQ) for part in parts):
        return None
    blocks = [part for part in parts if isinstance(part, _RQ) and part.capacitor.kind == "CPE"]
    inductors = [part.first for part in parts if isinstance(part, _Element) and part.kind == "L"]
    resistors = [part.first for part in parts if isinstance(part, _Element) and part.kind == "R"]
    return _Flat(
        resistors=_index([block.resistor.first for block in blocks]),
        charges=_index([block.capacitor.first for block in blocks]),
        exponents=_index([block.capacitor.first + 1 for block in blocks]),
        n_blocks=len(blocks),
        inductors=_index(inductors),
        n_inductors=len(inductors),
        series_resistors=_index(resistors),
        n_series_resistors=len(resistors),
        others=tuple(
            part
            for part in parts
            if not (
                any(part is block for block in blocks)
                or (isinstance(part, _Element) and part.kind in ("L", "R"))
            )
        ),
    )


def _closed_forms(node: _Node) -> _Node:
    """Replace every p(R,CPE) / p(R,C) block by its closed form."""
    if isinstance(node, _Parallel) and len(node.parts) == 2:
        kinds = {part.kind: part for part in node.parts if isinstance(part, _Element)}
        if len(kinds) == 2 and "R" in kinds and ("CPE" in kinds or "C" in kinds):
            return _RQ(kinds["R"], kinds.get("CPE") or kinds["C"])
    if isinstance(node, _Series):
        return _Series(tuple(_closed_forms(part) for part in node.parts))
    if isinstance(node, _Parallel):
        return _Parallel(tuple(_closed_forms(part) for part in node.parts))
    return node


def _find_zarcs(node: _Node) -> tuple[tuple[str, str], ...]:
    """R||CPE and R||C blocks: a parallel of exactly one R and one CPE or C."""
    found: list[tuple[str, str]] = []
    if isinstance(node, _RQ):
        return ((node.resistor.name, node.capacitor.name),)
    if isinstance(node, _Parallel):
        if len(node.parts) == 2 and all(isinstance(part, _Element) for part in node.parts):
            kinds = {part.kind: part.name for part in node.parts}  # type: ignore[union-attr]
            if "R" in kinds and ("CPE" in kinds or "C" in kinds):
                found.append((kinds["R"], kinds.get("CPE", kinds.get("C"))))
    if isinstance(node, _Series | _Parallel):
        for part in node.parts:
            found.extend(_find_zarcs(part))
    return tuple(found)


def _evaluate(
    node: _Node, grid: _Grid, parameters: np.ndarray, with_jacobian: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Impedance of the circuit and (optionally) dZ/dp for every parameter."""
    z, columns = _node_impedance(node, grid, parameters, with_jacobian)
    z = np.broadcast_to(z, grid.omega.shape).astype(np.complex128, copy=False)
    if not with_jacobian:
        return z, None
    jacobian = np.zeros((grid.omega.size, parameters.size), dtype=np.complex128)
    for index, column in columns:
        jacobian[:, index] = column
    return z, jacobian


_Columns = list[tuple[int, np.ndarray]]


def _node_impedance(
    node: _Node, grid: _Grid, parameters: np.ndarray, with_jacobian: bool
) -> tuple[np.ndarray | complex, _Columns]:
    """Z of a node and its non-zero derivative columns (parameter index, dZ/dp)."""
    if isinstance(node, _Element):
        return _element(node, grid, parameters, with_jacobian)
    if isinstance(node, _RQ):
        return _rq(node, grid, parameters, with_jacobian)
    results = [_node_impedance(part, grid, parameters, with_jacobian) for part in node.parts]
    if isinstance(node, _Series):
        z = results[0][0]
        for branch_z, _ in results[1:]:
            z = z + branch_z
        return z, [column for _, columns in results for column in columns]
    admittance = 1.0 / results[0][0]
    for branch_z, _ in results[1:]:
        admittance = admittance + 1.0 / branch_z
    z = 1.0 / admittance
    if not with_jacobian:
        return z, []
    # d(1/sum Y)/dp = (Z/Z_i)^2 dZ_i/dp: a branch's parameters appear only in its Z_i.
    columns: _Columns = []
    for branch_z, branch_columns in results:
        factor = (z / branch_z) ** 2
        columns.extend((index, factor * column) for index, column in branch_columns)
    return z, columns


def _element(
    element: _Element, grid: _Grid, parameters: np.ndarray, with_jacobian: bool
) -> tuple[np.ndarray | complex, _Columns]:
    first = element.first
    kind = element.kind
    columns: _Columns = []
    if kind == "R":
        z = complex(parameters[first])  # a scalar broadcasts: no array per call
        if with_jacobian:
            columns.append((first, grid.ones))
    elif kind == "C":
        capacitance = parameters[first]
        z = 1.0 / (grid.j_omega * capacitance)
        if with_jacobian:
            columns.append((first, -z / capacitance))
    elif kind == "L":
        z = grid.j_omega * parameters[first]
        if with_jacobian:
            columns.append((first, grid.j_omega))
    elif kind == "CPE":
        q, alpha = parameters[first], parameters[first + 1]
        z = np.exp(-alpha * grid.log_j_omega) / q
        if with_jacobian:
            columns.append((first, -z / q))
            columns.append((first + 1, -z * grid.log_j_omega))
    elif kind == "W":
        z = parameters[first] * grid.warburg
        if with_jacobian:
            columns.append((first, grid.warburg))
    else:  # Zarc: R / (1 + (j omega tau)^gamma)
        resistance, tau, gamma = parameters[first], parameters[first + 1], parameters[first + 2]
        log_j_omega_tau = grid.log_j_omega + np.log(tau)
        power = np.exp(gamma * log_j_omega_tau)
        denominator = 1 + power
        z = resistance / denominator
        if with_jacobian:
            common = -resistance * power / denominator**2
            columns.append((first, 1 / denominator))
            columns.append((first + 1, common * gamma / tau))
            columns.append((first + 2, common * log_j_omega_tau))
    return z, columns


def _rq(
    node: _RQ, grid: _Grid, parameters: np.ndarray, with_jacobian: bool
) -> tuple[np.ndarray, _Columns]:
    """Z = R/(1 + R Q x) with x = (j omega)^a (a = 1 for a capacitor), and dZ/dp."""
    r_index = node.resistor.first
    q_index = node.capacitor.first
    resistance = parameters[r_index]
    q = parameters[q_index]
    if node.capacitor.kind == "CPE":
        x = np.exp(parameters[q_index + 1] * grid.log_j_omega)
    else:
        x = grid.j_omega
    denominator = 1 + (resistance * q) * x
    z = resistance / denominator
    if not with_jacobian:
        return z, []
    # dZ/dR = 1/D^2, dZ/dQ = -R^2 x/D^2, dZ/da = -R^2 Q x ln(j omega)/D^2.
    inverse_square = 1 / denominator**2
    d_q = -(resistance * resistance) * x * inverse_square
    columns = [(r_index, inverse_square), (q_index, d_q)]
    if node.capacitor.kind == "CPE":
        columns.append((q_index + 1, d_q * q * grid.log_j_omega))
    return z, columns


def _flat_evaluate(
    flat: _Flat, grid: _Grid, parameters: np.ndarray, with_jacobian: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Z of a flat circuit and (optionally) its rows of dZ/d(ln p) (dZ/dL for inductances)."""
    rows = np.empty((parameters.size, grid.omega.size), np.complex128) if with_jacobian else None
    if flat.n_blocks:
        resistance = parameters[flat.resistors]
        alpha = parameters[flat.exponents]
        # R Q (j omega)^a = R Q omega^a e^(j pi a/2): a real exp and one phase per block.
        phase = (resistance * parameters[flat.charges]) * np.exp((0.5j * np.pi) * alpha)
        rqx = np.exp(np.multiply.outer(alpha, grid.log_omega)) * phase[:, None]
        inverse = 1.0 / (1.0 + rqx)
        branches = inverse * resistance[:, None]  # R/(1 + R Q x) per block
        z = np.add.reduce(branches, axis=0)
        if rows is not None:
            # R dZ/dR = R/D^2, Q dZ/dQ = -R^2 Q x/D^2, a dZ/da = a ln(j omega) Q dZ/dQ.
            d_r = branches * inverse
            d_q = d_r * rqx
            np.negative(d_q, out=d_q)
            rows[flat.resistors] = d_r
            rows[flat.charges] = d_q
            rows[flat.exponents] = d_q * np.multiply.outer(alpha, grid.log_j_omega)
    else:
        z = np.zeros(grid.omega.size, np.complex128)
    if flat.n_inductors:  # linear: the row is dZ/dL itself
        z += grid.j_omega * float(parameters[flat.inductors].sum())
        if rows is not None:
            rows[flat.inductors] = grid.j_omega
    if flat.n_series_resistors:
        resistance = parameters[flat.series_resistors]
        z += float(resistance.sum())
        if rows is not None:
            rows[flat.series_resistors] = resistance[:, None]
    for part in flat.others:
        # The rarer parts (series C, CPE, W, Zarc, p(R,C)) through the tree's own
        # element code; their dZ/dp columns become dZ/d(ln p) rows (none is linear).
        part_z, columns = _node_impedance(part, grid, parameters, rows is not None)
        z = z + part_z
        if rows is not None:
            for index, column in columns:
                rows[index] = parameters[index] * column
    return z, rows
