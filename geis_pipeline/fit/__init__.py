"""Equivalent-circuit fitting: automatic starts, arcs identified by physics, an honest verdict.

:func:`fit_circuit` fits one spectrum and :func:`fit_experiment` a time series
(warm starts along the chain). Which fitted arc is the bulk, the grain
boundary or the interface is decided by its Brug capacitance and time
constant (:mod:`geis_pipeline.fit.roles`), not its place in the circuit
string, and a result is ``ok`` only when the numbers it reports are
supported by the data (:mod:`geis_pipeline.fit.verdict`).

Modules: :mod:`~geis_pipeline.fit.circuit` (circuit strings compiled to fast
numpy), :mod:`~geis_pipeline.fit.options` (bounds, roles, weighting),
:mod:`~geis_pipeline.fit.initial` (start values from the spectrum),
:mod:`~geis_pipeline.fit.problem` (the least-squares problem and its
solution), :mod:`~geis_pipeline.fit.roles`, :mod:`~geis_pipeline.fit.verdict`,
:mod:`~geis_pipeline.fit.result` and :mod:`~geis_pipeline.fit.fitting` (the verbs).
"""

from geis_pipeline.fit.circuit import Circuit, parse_circuit
from geis_pipeline.fit.fitting import fit_circuit, fit_experiment
from geis_pipeline.fit.options import DEFAULT_BOUNDS, WEIGHTINGS, FitOptions
from geis_pipeline.fit.result import (
    REASONS,
    ROLE_QUANTITIES,
    ArcCapacitance,
    FitResult,
    RoleValues,
    role_table,
)
from geis_pipeline.fit.roles import DEFAULT_ROLE_CLASSES, RoleClass, identify_arcs

__all__ = [
    "DEFAULT_BOUNDS",
    "DEFAULT_ROLE_CLASSES",
    "REASONS",
    "ROLE_QUANTITIES",
    "WEIGHTINGS",
    "ArcCapacitance",
    "Circuit",
    "FitOptions",
    "FitResult",
    "RoleClass",
    "RoleValues",
    "fit_circuit",
    "fit_experiment",
    "identify_arcs",
    "parse_circuit",
    "role_table",
]
