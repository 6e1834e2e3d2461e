"""Fit options: bounds, fixed parameters, roles and weighting, validated once per experiment.

:class:`FitOptions` holds everything about a fit except the data; its
``_layout`` (index arrays of the free, linear and arc parameters) is computed
once per options and shared by every spectrum fitted with them.

Default bounds (natural units), listed in ``configs/default.toml`` and the README:
R 1e-4..1e10 ohm, C 1e-16..1 F, L 0..1e-2 H, CPE Q 1e-16..1e3 F s^(a-1),
CPE alpha 0.3..1, W A 1e-6..1e10 ohm s^-1/2, Zarc R 1e-4..1e10 ohm,
tau 1e-12..1e5 s, gamma 0.3..1. An exponent below 0.3 is a distributed
tail rather than an arc; an R at 1e-4 ohm is an arc the data do not show.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np

from geis_pipeline.errors import FitError
from geis_pipeline.fit.circuit import (
    ELEMENT_PARAMETERS,
    LINEAR_KINDS,
    Circuit,
    _Grid,
    parse_circuit,
)
from geis_pipeline.fit.roles import SERIES_ROLES, RoleClass, role_classes

__all__ = ["DEFAULT_BOUNDS", "WEIGHTINGS", "FitOptions"]

#: Default bounds per element parameter (natural units: ohm, F, H, F s^(a-1), s).
DEFAULT_BOUNDS: dict[tuple[str, str], tuple[float, float]] = {
    ("R", "R"): (1e-4, 1e10),
    ("C", "C"): (1e-16, 1.0),
    ("L", "L"): (0.0, 1e-2),
    ("CPE", "Q"): (1e-16, 1e3),
    ("CPE", "alpha"): (0.3, 1.0),
    ("W", "A"): (1e-6, 1e10),
    ("Zarc", "R"): (1e-4, 1e10),
    ("Zarc", "tau"): (1e-12, 1e5),
    ("Zarc", "gamma"): (0.3, 1.0),
}

#: Residual weightings: modulus 1/|Z|, proportional 1/|Z'| and 1/|Z''|, unit 1.
WEIGHTINGS = ("modulus", "proportional", "unit")

# Frequency grids kept per options (an experiment has one or a few sweeps).
_GRID_CACHE_SIZE = 8


@dataclass(frozen=True)
class FitOptions:
    """Everything about a fit except the data, validated once per experiment.

    Attributes
    ----------
    circuit
        The compiled circuit.
    lower, upper
        Bounds of every parameter (natural units, impedance.py's order).
    fixed
        Parameter name -> fixed value.
    roles
        Element or parameter name -> role (``{"R3": "int"}``).
    weighting
        One of :data:`WEIGHTINGS`.
    area_cm2
        Electrode area for area-specific values, cm2 (None: NaN).
    max_iterations
        Levenberg-Marquardt iterations per start.
    classes
        Role -> :class:`~geis_pipeline.fit.roles.RoleClass` for every arc role
        (the built-in bulk, gb, int and the user's).
    required_roles
        Roles whose arc must be matched and resolved for a fit to be ok.
    noise_ratio
        The fit's RMS relative residual may be at most this times the
        spectrum's noise level (its Kramers-Kronig residual) ...
    noise_floor
        ... or this, whichever is larger: a CPE is not exactly a real arc, and
        Lin-KK's many RC elements fit some of the noise, so real spectra fitted
        well sit at 2-8x their KK residual (geis.mpt: ~1 % against 0.1-0.4 %).
    max_residual_rms
        A fit whose RMS relative residual exceeds this is never ok.
    """

    circuit: Circuit
    lower: np.ndarray
    upper: np.ndarray
    fixed: Mapping[str, float]
    roles: Mapping[str, str]
    weighting: str = "modulus"
    area_cm2: float | None = None
    max_iterations: int = 200
    classes: Mapping[str, RoleClass] = field(
        default_factory=lambda: MappingProxyType(role_classes())
    )
    required_roles: tuple[str, ...] = ()
    noise_ratio: float = 2.5
    noise_floor: float = 0.01
    max_residual_rms: float = 0.05

    @property
    def arc_roles(self) -> tuple[str, ...]:
        """The roles given to R||CPE blocks, in the circuit's order (each once)."""
        return self._layout.arcs.declared_roles

    @classmethod
    def build(
        cls,
        circuit: str | Circuit,
        *,
        bounds: Mapping[str, tuple[float, float]] | None = None,
        fixed: Mapping[str, float] | None = None,
        roles: Mapping[str, str] | None = None,
        weighting: str = "modulus",
        area_cm2: float | None = None,
        max_iterations: int = 200,
        role_classes: Mapping[str, tuple[float, float]] | None = None,
        role_tau_windows: Mapping[str, tuple[float, float]] | None = None,
        required_roles: tuple[str, ...] | list[str] | None = None,
        noise_ratio: float = 2.5,
        noise_floor: float = 0.01,
        max_residual_rms: float = 0.05,
    ) -> FitOptions:
        """Validate options against the circuit.

        Parameters
        ----------
        roles
            Element name -> role. An R||CPE block's role (``bulk``, ``gb``,
            ``int`` or a role declared in ``role_classes``) only declares that
            the process is in the circuit: which fitted arc gets it is decided
            by capacitance and time constant (:mod:`geis_pipeline.fit.roles`).
            A series element's role is fixed: ``cable`` (L), ``bulk``/``gb``/
            ``series`` (R), ``diffusion`` (CPE, W, C), ``blocking`` (CPE, C).
        role_classes
            Role -> (C_min, C_max) F/cm2: declares a custom role or changes a
            built-in class.
        role_tau_windows
            Role -> (tau_min, tau_max) s: narrows a role to a time-constant window.
        required_roles
            Roles that must be matched and resolved for the fit to be ok;
            default ``("int",)`` when the circuit has an ``int`` arc.

        Raises
        ------
        FitError
            Unknown parameter names or roles (the message lists the valid
            ones), bounds that are not 0 < lower < upper, fixed values outside
            their bounds, an unknown weighting.
        """
        compiled = circuit if isinstance(circuit, Circuit) else parse_circuit(circuit)
        names = compiled.parameter_names
        lower = np.empty(len(names))
        upper = np.empty(len(names))
        for position, (element, parameter) in enumerate(_parameter_kinds(compiled)):
            lower[position], upper[position] = DEFAULT_BOUNDS[(element, parameter)]
        valid = ", ".join(names)
        for name, (low, high) in (bounds or {}).items():
            if name not in names:
                raise FitError(f"unknown parameter {name!r}; valid: {valid}", key=f"bounds.{name}")
            minimum = 0.0 if name in _linear_names(compiled) else None
            if not (
                (low > 0 or (minimum == 0.0 and low == 0.0)) and low < high and math.isfinite(high)
            ):
                raise FitError(
                    f"bounds must satisfy 0 < lower < upper < inf (lower may be 0 for "
                    f"inductances), got ({low}, {high})",
                    key=f"bounds.{name}",
                )
            lower[names.index(name)], upper[names.index(name)] = low, high
        fixed = dict(fixed or {})
        for name, value in fixed.items():
            if name not in names:
                raise FitError(f"unknown parameter {name!r}; valid: {valid}", key=f"fixed.{name}")
            position = names.index(name)
            if not lower[position] <= value <= upper[position]:
                raise FitError(
                    f"fixed value {value} outside the bounds "
                    f"({lower[position]:g}, {upper[position]:g})",
                    key=f"fixed.{name}",
                )
        if len(fixed) == len(names):
            raise FitError("every parameter is fixed: nothing to fit", key="fixed")
        try:
            classes = _role_classes_of(role_classes, role_tau_windows)
        except ValueError as exc:
            raise FitError(str(exc), key=str(exc).split(":")[0]) from exc
        roles = _check_roles(compiled, dict(roles or {}), classes)
        arc_roles = {roles[name] for pair in compiled.zarcs for name in pair if name in roles}
        if required_roles is None:
            required = ("int",) if "int" in arc_roles else ()
        else:
            required = tuple(required_roles)
            for role in required:
                if role not in arc_roles:
                    raise FitError(
                        f"required role {role!r} is given to no R||CPE block of the circuit; "
                        f"arc roles: {', '.join(sorted(arc_roles)) or 'none'}",
                        key="required_roles",
                    )
        for key, value in (
            ("noise_ratio", noise_ratio),
            ("noise_floor", noise_floor),
            ("max_residual_rms", max_residual_rms),
        ):
            if not (value > 0 and math.isfinite(value)):
                raise FitError(f"must be a finite number > 0, got {value}", key=key)
        if weighting not in WEIGHTINGS:
            raise FitError(
                f"unknown weighting {weighting!r}; choose one of {', '.join(WEIGHTINGS)}",
                key="weighting",
            )
        if area_cm2 is not None and not area_cm2 > 0:
            raise FitError(f"electrode area must be > 0 cm2, got {area_cm2}", key="area_cm2")
        return cls(
            compiled,
            lower,
            upper,
            MappingProxyType(fixed),
            MappingProxyType(roles),
            weighting,
            area_cm2,
            max_iterations,
            MappingProxyType(classes),
            required,
            float(noise_ratio),
            float(noise_floor),
            float(max_residual_rms),
        )

    @functools.cached_property
    def user_bounded(self) -> frozenset[str]:
        """Parameters whose bounds are tighter than :data:`DEFAULT_BOUNDS` (``fit.bounds``)."""
        names = self.circuit.parameter_names
        tighter = set()
        for position, kind in enumerate(_parameter_kinds(self.circuit)):
            low, high = DEFAULT_BOUNDS[kind]
            if self.lower[position] > low or self.upper[position] < high:
                tighter.add(names[position])
        return frozenset(tighter)

    @functools.cached_property
    def fixed_blocks(self) -> tuple[tuple[int, str, tuple[str, ...]], ...]:
        """(block index, declared role, its fixed parameters) of each arc block holding one.

        A value fixed on a block written with a role was fixed for that process.
        """
        placed = []
        for index, (resistor, capacitor) in enumerate(self.circuit.zarcs):
            role = self.roles.get(resistor) or self.roles.get(capacitor)
            names = _block_parameters(self.circuit, index)
            fixed = tuple(name for name in names if name in self.fixed)
            if role is not None and fixed:
                placed.append((index, role, fixed))
        return tuple(placed)

    @functools.cached_property
    def _freed(self) -> FitOptions:
        """These options with every fixed parameter free: the test of the fixed values."""
        return replace(self, fixed=MappingProxyType({}))

    @functools.cached_property
    def _layout(self) -> _Layout:
        """What every fit with these options needs, computed once per options."""
        return _Layout.build(self)


@dataclass(frozen=True, eq=False)
class _Arcs:
    """The R||CPE and R||C blocks as index arrays, for all Brug capacitances at once."""

    resistors: tuple[str, ...]
    capacitors: tuple[str, ...]
    roles: tuple[str | None, ...]
    resistance: np.ndarray  # parameter index of each arc's R
    charge: np.ndarray  # ... of its Q (C for a capacitor)
    alpha: np.ndarray  # ... of its exponent (0 for a capacitor: unused)
    has_alpha: np.ndarray  # False for a capacitor (alpha = 1)
    # Positions among the free parameters (-1: fixed) for the delta method.
    resistance_free: tuple[int, ...]
    charge_free: tuple[int, ...]
    alpha_free: tuple[int, ...]
    # The arc roles the user declared (each once, in block order) and the block
    # each was written on (identification's last tie-breaker).
    declared_roles: tuple[str, ...] = ()
    named: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class _Layout:
    """Index arrays and names derived from the options (free, linear, arcs)."""

    free: np.ndarray  # bool per parameter
    free_index: np.ndarray  # indices of the free parameters
    free_names: tuple[str, ...]
    full: np.ndarray  # all parameters: the fixed values, 0 for the free ones
    linear_all: np.ndarray  # bool per parameter: fitted on a linear scale
    linear: np.ndarray  # bool per free parameter: fitted on a linear scale
    linear_index: np.ndarray  # positions of those among the free parameters
    linear_parameters: np.ndarray  # their indices among all parameters
    log_positions: np.ndarray  # positions of the log-scale ones among the free parameters
    log_parameters: np.ndarray  # their indices among all parameters
    all_free: bool
    # Solver bounds of the free parameters: ln of the bounds; a linear parameter's
    # natural bounds (each spectrum divides them by its own scale).
    lower: np.ndarray
    upper: np.ndarray
    # Free CPE exponents bounded above by 1: only their lower bound is a failure.
    ideal_at_upper: np.ndarray
    arcs: _Arcs
    fixed_index: np.ndarray  # indices of the fixed parameters
    # A start value must exceed this: 0 for log parameters, the largest negative
    # double for linear ones (which may be 0).
    start_floor: np.ndarray
    # Frequency grids by their frequencies' bytes: consecutive spectra of an
    # experiment share one sweep, whose grid is then computed once.
    grids: dict[bytes, _Grid] = field(default_factory=dict)

    def grid(self, circuit: Circuit, freq: np.ndarray) -> _Grid:
        key = freq.tobytes()
        grid = self.grids.get(key)
        if grid is None:
            if len(self.grids) >= _GRID_CACHE_SIZE:
                self.grids.clear()
            grid = self.grids[key] = circuit.grid(freq)
        return grid

    @classmethod
    def build(cls, options: FitOptions) -> _Layout:
        circuit = options.circuit
        names = circuit.parameter_names
        free = np.array([name not in options.fixed for name in names])
        full = np.zeros(len(names))
        for name, value in options.fixed.items():
            full[names.index(name)] = value
        linear_all = _linear_mask(circuit)
        linear = linear_all[free]
        free_names = tuple(name for name in names if name not in options.fixed)
        free_lower, free_upper = options.lower[free], options.upper[free]
        with np.errstate(divide="ignore"):
            lower = np.where(linear, free_lower, np.log(free_lower))
        upper = np.where(linear, free_upper, np.log(free_upper))
        ideal_at_upper = np.array(
            [
                _is_cpe_exponent(name, circuit) and math.isclose(high, 1.0)
                for name, high in zip(free_names, free_upper, strict=True)
            ],
            dtype=bool,
        )
        return cls(
            free=free,
            free_index=np.flatnonzero(free),
            free_names=free_names,
            full=full,
            linear_all=linear_all,
            linear=linear,
            linear_index=np.flatnonzero(linear),
            linear_parameters=np.flatnonzero(free & linear_all),
            log_positions=np.flatnonzero(~linear),
            log_parameters=np.flatnonzero(free & ~linear_all),
            all_free=bool(free.all()),
            lower=lower,
            upper=upper,
            ideal_at_upper=ideal_at_upper,
            arcs=_arc_layout(options, free_names),
            fixed_index=np.flatnonzero(~free),
            start_floor=np.where(linear_all, -np.finfo(np.float64).smallest_subnormal, 0.0),
        )


def _arc_layout(options: FitOptions, free_names: tuple[str, ...]) -> _Arcs:
    circuit = options.circuit
    names = circuit.parameter_names
    position = {name: index for index, name in enumerate(free_names)}
    resistance, charge, alpha, has_alpha, roles = [], [], [], [], []
    for resistor, capacitor in circuit.zarcs:
        resistance.append(names.index(resistor))
        if circuit.element_kinds[capacitor] == "C":
            charge.append(names.index(capacitor))
            alpha.append(0)
            has_alpha.append(False)
        else:
            charge.append(names.index(f"{capacitor}_0"))
            alpha.append(names.index(f"{capacitor}_1"))
            has_alpha.append(True)
        roles.append(options.roles.get(resistor) or options.roles.get(capacitor))
    has_alpha_array = np.array(has_alpha, dtype=bool)

    def free_positions(indices: list[int], valid: list[bool] | None = None) -> tuple[int, ...]:
        found = [position.get(names[index], -1) for index in indices]
        if valid is not None:
            found = [place if ok else -1 for place, ok in zip(found, valid, strict=True)]
        return tuple(found)

    declared = tuple(role for role in roles if role is not None)
    return _Arcs(
        declared_roles=declared,
        named=MappingProxyType(
            {role: index for index, role in enumerate(roles) if role is not None}
        ),
        resistors=tuple(resistor for resistor, _ in circuit.zarcs),
        capacitors=tuple(capacitor for _, capacitor in circuit.zarcs),
        roles=tuple(roles),
        resistance=np.array(resistance, dtype=np.intp),
        charge=np.array(charge, dtype=np.intp),
        alpha=np.array(alpha, dtype=np.intp),
        has_alpha=has_alpha_array,
        resistance_free=free_positions(resistance),
        charge_free=free_positions(charge),
        alpha_free=free_positions(alpha, has_alpha),
    )


def _role_classes_of(
    custom: Mapping[str, tuple[float, float]] | None,
    tau_windows: Mapping[str, tuple[float, float]] | None,
) -> dict[str, RoleClass]:
    return role_classes(custom, tau_windows)


def _check_roles(
    circuit: Circuit, roles: dict[str, str], classes: Mapping[str, RoleClass]
) -> dict[str, str]:
    """Roles keyed by element: arc roles need a class, series roles fit their element.

    A role may be written on an R||CPE block's resistor or capacitor (or on a
    parameter of it, as before); it is stored on the element.
    """
    names = circuit.parameter_names
    block_of = {name: pair for pair in circuit.zarcs for name in pair}
    checked: dict[str, str] = {}
    by_block: dict[tuple[str, str], str] = {}
    for name, role in roles.items():
        element = name
        if element not in circuit.element_kinds and name in names:
            element = name.rsplit("_", 1)[0]
        if element not in circuit.element_kinds:
            raise FitError(
                f"unknown element {name!r}; valid: {', '.join(circuit.element_names)}",
                key=f"roles.{name}",
            )
        kind = circuit.element_kinds[element]
        if element in block_of:
            if role not in classes:
                raise FitError(
                    f"unknown arc role {role!r} for {element}; valid: {', '.join(classes)} "
                    "(declare a new one with its capacitance class in fit.role_classes, "
                    "e.g. sei = [1e-7, 1e-5] F/cm2)",
                    key=f"roles.{name}",
                )
            block = block_of[element]
            if by_block.get(block, role) != role:
                raise FitError(
                    f"{block[0]} and {block[1]} form one arc but have the roles "
                    f"{by_block[block]!r} and {role!r}",
                    key=f"roles.{name}",
                )
            by_block[block] = role
        else:
            allowed = sorted(series for series, kinds in SERIES_ROLES.items() if kind in kinds)
            if role not in allowed:
                raise FitError(
                    f"unknown role {role!r} for the series element {element} ({kind}); "
                    f"valid: {', '.join(allowed) or 'none'}",
                    key=f"roles.{name}",
                )
        checked[element] = role
    owner: dict[str, str] = {}
    for element, role in checked.items():
        block = block_of.get(element)
        first = block[0] if block else element
        if role in owner and owner[role] != first:
            raise FitError(
                f"role {role!r} is given to two parts of the circuit ({owner[role]} and "
                f"{first}); each process is one element or arc",
                key=f"roles.{element}",
            )
        owner[role] = first
    return checked


def _linear_names(circuit: Circuit) -> set[str]:
    """Parameters fitted on a linear scale, bounded below by 0.

    A cable inductance is often not identifiable next to a bulk arc above the
    measured range; its best value is then 0. In log space the fit would crawl
    towards 0 for dozens of iterations; on a linear scale one projected step
    reaches it.
    """
    return {name for name, kind in circuit.element_kinds.items() if kind in LINEAR_KINDS}


def _linear_mask(circuit: Circuit) -> np.ndarray:
    """True for each parameter (in the circuit's order) fitted on a linear scale."""
    linear = _linear_names(circuit)
    return np.array([name in linear for name in circuit.parameter_names])


def _parameter_kinds(circuit: Circuit) -> list[tuple[str, str]]:
    return [
        (kind, parameter)
        for name in circuit.element_names
        for kind in [circuit.element_kinds[name]]
        for parameter in ELEMENT_PARAMETERS[kind]
    ]


def _block_parameters(circuit: Circuit, index: int) -> tuple[str, ...]:
    """The parameter names of the circuit's ``index``-th R||CPE (or R||C) block."""
    resistor, capacitor = circuit.zarcs[index]
    if circuit.element_kinds[capacitor] == "C":
        return resistor, capacitor
    return resistor, f"{capacitor}_0", f"{capacitor}_1"


def _is_cpe_exponent(name: str, circuit: Circuit) -> bool:
    return name.endswith("_1") and circuit.element_kinds.get(name[:-2]) == "CPE"
