"""Automatic start values from the spectrum itself, so nobody types initial guesses.

A non-negative least-squares fit of the spectrum with a fixed grid of RC
elements (a coarse, DRT-like decomposition) shows where the arcs are: each
cluster of non-zero RC weights is one arc, its summed R the arc's resistance
and its weighted mean log time constant the arc's tau; a circuit's series
CPE, Warburg or capacitor (a diffusion tail, a blocking spike) gets a column of
its own, its exponent read off the low-frequency slope, so the tail does not
pose as a slow arc. Q follows from tau = (R Q)^(1/alpha).

Several candidate starts come out: the arcs merged or split to the circuit's
count, or (no series R) the high-frequency intercept as a bulk arc above the
band; each put on the R||CPE blocks in every order that differs (blocks with
a fixed exponent or own bounds are not interchangeable); and three CPE
exponents. The fit tries them best first and keeps the best by chi-square.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np

from geis_pipeline._nnls import nnls
from geis_pipeline.fit.circuit import Circuit

__all__ = ["arc_decomposition", "initial_guesses"]

_POINTS_PER_DECADE = 6
# The grid reaches half a decade beyond the measured time constants: enough for a
# bulk arc whose apex lies just above the top frequency, without the far ends
# soaking up noise as huge, meaningless RC weights.
_EXTEND_DECADES = 0.5
# Ridge penalty relative to the weighted data: smooths the RC weights into
# peaks (one per arc) instead of NNLS's isolated spikes.
_RIDGE = 3e-3
# Lowest-frequency points whose -Z'' slope gives a tail's exponent.
_TAIL_POINTS = 4
# CPE exponents the candidates start from (the first is the best guess).
_ALPHA_STARTS = (0.9, 0.75, 0.97)
# Arc orderings tried per arc set when the blocks are not interchangeable.
_MAX_ORDERINGS = 6


def tail_exponent(freq: np.ndarray, z: np.ndarray) -> float:
    """A low-frequency tail's CPE exponent from the slope of log(-Z'') over the last points.

    Where the arcs have closed, -Z'' of a tail 1/(Q (j omega)^a) falls as omega^-a;
    clipped to 0.35..1 (a non-rising -Z'' gives 0.5, a Warburg-like guess).
    """
    order = np.argsort(freq)[:_TAIL_POINTS]
    minus_imag = -z.imag[order]
    if order.size < 2 or not (minus_imag > 0).all():
        return 0.5
    slope = np.polyfit(np.log(freq[order]), np.log(minus_imag), 1)[0]
    return float(np.clip(-slope, 0.35, 1.0))


def arc_decomposition(
    freq: np.ndarray,
    z: np.ndarray,
    tails: Sequence[tuple[str, float]] = (),
) -> tuple[float, float, list[tuple[float, float]], list[float]]:
    """Series resistance, inductance, arcs (R in ohm, tau in s) and tails of a spectrum.

    Parameters
    ----------
    freq, z
        The spectrum, Hz and ohm.
    tails
        Series tail elements to give a column each: ``("CPE", alpha)``,
        ``("W", 0.5)`` or ``("C", 1.0)``.

    Returns
    -------
    r_inf, inductance, arcs, tail_coefficients
        Arcs sorted by tau, fast first; each tail's coefficient (1/Q of a CPE
        or C, A of a Warburg; natural units).
    """
    omega = 2 * np.pi * freq
    log_tau_min = np.log10(1 / omega.max()) - _EXTEND_DECADES
    log_tau_max = np.log10(1 / omega.min()) + _EXTEND_DECADES
    n_tau = int(np.ceil((log_tau_max - log_tau_min) * _POINTS_PER_DECADE)) + 1
    tau = np.logspace(log_tau_min, log_tau_max, n_tau)
    magnitude = float(np.max(np.abs(z)))
    inductance_unit = magnitude / omega.max()  # an L with |Z| = max|Z| at the top frequency
    omega_min = float(omega.min())
    tail_columns, tail_units = [], []
    for kind, alpha in tails:
        # Unit: a tail with |Z| = max|Z| at the lowest frequency.
        if kind == "W":
            shape = (1 - 1j) / np.sqrt(omega)
            unit = magnitude * math.sqrt(omega_min) / math.sqrt(2)
        else:
            shape = 1 / (1j * omega) ** alpha
            unit = magnitude * omega_min**alpha
        tail_columns.append(shape * unit)
        tail_units.append(unit)
    n_fixed = 2 + len(tail_columns)
    rc_columns = 1 / (1 + 1j * np.outer(omega, tau))
    design = np.column_stack(
        [np.ones_like(omega), 1j * omega * inductance_unit, *tail_columns, rc_columns]
    )
    weight = 1 / np.abs(z)
    weighted = design * weight[:, None]
    penalty = np.zeros((n_tau - 1, n_tau + n_fixed))
    # First differences of neighbouring RC weights: favours smooth peaks.
    penalty[:, n_fixed:-1] -= np.eye(n_tau - 1)
    penalty[:, n_fixed + 1 :] += np.eye(n_tau - 1)
    matrix = np.vstack([weighted.real, weighted.imag, _RIDGE * penalty])
    target = np.concatenate([(z * weight).real, (z * weight).imag, np.zeros(n_tau - 1)])
    solution, _ = nnls(matrix, target / magnitude, maxiter=50 * matrix.shape[1])
    solution *= magnitude
    weights = solution[n_fixed:]
    tail_coefficients = [
        float(solution[2 + index] * tail_units[index] / magnitude) for index in range(len(tails))
    ]
    return (
        float(solution[0]),
        float(solution[1] * inductance_unit / magnitude),
        _peaks(tau, weights),
        tail_coefficients,
    )


def _peaks(tau: np.ndarray, weights: np.ndarray) -> list[tuple[float, float]]:
    """Split the RC weights at their local minima: one arc per local maximum."""
    if not np.any(weights > 0):
        return []
    padded = np.concatenate([[0.0], weights, [0.0]])
    maxima = [
        index - 1
        for index in range(1, padded.size - 1)
        if padded[index] > padded[index - 1] and padded[index] >= padded[index + 1]
    ]
    arcs = []
    for position, peak in enumerate(maxima):
        left = (
            0
            if position == 0
            else int(np.argmin(weights[maxima[position - 1] : peak + 1])) + maxima[position - 1]
        )
        right = (
            weights.size - 1
            if position == len(maxima) - 1
            else int(np.argmin(weights[peak : maxima[position + 1] + 1])) + peak
        )
        members = slice(left, right + 1)
        resistance = float(weights[members].sum())
        if resistance <= 0:
            continue
        log_tau = float(np.average(np.log(tau[members]), weights=weights[members]))
        arcs.append((resistance, float(np.exp(log_tau))))
    return arcs


def _match_arcs(arcs: list[tuple[float, float]], count: int) -> list[tuple[float, float]]:
    """Exactly ``count`` arcs: merge the smallest into a neighbour, or split the largest."""
    arcs = sorted(arcs, key=lambda arc: arc[1])
    while len(arcs) > count:
        smallest = min(range(len(arcs)), key=lambda index: arcs[index][0])
        if smallest == 0:
            neighbour = 1
        elif smallest == len(arcs) - 1:
            neighbour = smallest - 1
        else:  # the neighbour closer in log tau
            gap_left = np.log(arcs[smallest][1] / arcs[smallest - 1][1])
            gap_right = np.log(arcs[smallest + 1][1] / arcs[smallest][1])
            neighbour = smallest - 1 if gap_left < gap_right else smallest + 1
        merged_r = arcs[smallest][0] + arcs[neighbour][0]
        merged_log_tau = (
            arcs[smallest][0] * np.log(arcs[smallest][1])
            + arcs[neighbour][0] * np.log(arcs[neighbour][1])
        ) / merged_r
        low, high = sorted((smallest, neighbour))
        arcs[low : high + 1] = [(merged_r, float(np.exp(merged_log_tau)))]
    while len(arcs) < count:
        if not arcs:
            arcs = [(1.0, 1e-3)]
            continue
        largest = max(range(len(arcs)), key=lambda index: arcs[index][0])
        resistance, tau = arcs[largest]
        arcs[largest : largest + 1] = [(resistance / 2, tau / 10), (resistance / 2, tau * 10)]
    return arcs


def initial_guesses(
    freq: np.ndarray,
    z: np.ndarray,
    circuit: Circuit,
    fixed: Mapping[str, float],
    lower: np.ndarray,
    upper: np.ndarray,
) -> list[np.ndarray]:
    """Candidate start vectors (all parameters, impedance.py's order), best guess first.

    Parameters
    ----------
    freq, z
        The spectrum (points to fit only), Hz and ohm.
    circuit
        The compiled circuit.
    fixed
        Parameter name -> fixed value (used as is in every candidate).
    lower, upper
        Bounds of every parameter (natural units), for parameters the arcs
        do not determine (start at the geometric middle).
    """
    index = {name: position for position, name in enumerate(circuit.parameter_names)}
    zarcs = circuit.zarcs
    in_blocks = {name for pair in zarcs for name in pair}
    tail_elements = [
        (name, kind)
        for name, kind in circuit.element_kinds.items()
        if name not in in_blocks and kind in ("CPE", "W", "C")
    ]
    tail_alpha = tail_exponent(freq, z)
    tails = []
    for name, kind in tail_elements:
        if kind == "CPE":
            tails.append(("CPE", fixed.get(f"{name}_1", tail_alpha)))
        else:
            tails.append((kind, 0.5 if kind == "W" else 1.0))
    r_inf, inductance, arcs, tail_coefficients = arc_decomposition(freq, z, tails)
    series_resistors = [
        name
        for name, kind in circuit.element_kinds.items()
        if kind == "R" and name not in in_blocks
    ]
    arc_sets = _arc_sets(arcs, len(zarcs), r_inf, freq, has_series_r=bool(series_resistors))
    orderings = _orderings(circuit, fixed, lower, upper)
    top = int(np.argmax(freq))
    visible = 0.01 * abs(z[top]) / (2 * np.pi * freq[top])
    magnitude = float(np.max(np.abs(z)))
    omega_min = float(2 * np.pi * np.min(freq))
    candidates = []
    for alpha_start in _ALPHA_STARTS:
        for arc_values, carries_intercept in arc_sets:
            for ordering in orderings:
                start = np.sqrt(lower * upper)  # geometric middle for anything not set below
                for name in circuit.parameter_names:
                    if name.endswith("_1") and circuit.element_kinds.get(name[:-2]) == "CPE":
                        start[index[name]] = alpha_start
                for kind_name, kind in circuit.element_kinds.items():
                    if kind == "L":
                        # In log space a parameter started near 0 has no gradient to grow:
                        # start at least where omega L is 1 % of |Z| at the top frequency.
                        start[index[kind_name]] = max(inductance, visible)
                for name in series_resistors:
                    start[index[name]] = max(r_inf / len(series_resistors), 1e-3)
                for (name, kind), (_, alpha), coefficient in zip(
                    tail_elements, tails, tail_coefficients, strict=True
                ):
                    # A tail the decomposition did not see starts small: |Z| = 10 % of
                    # the spectrum's at the lowest frequency.
                    floor = 0.1 * magnitude * (omega_min**alpha if kind != "W" else 1.0)
                    if kind == "W":
                        start[index[name]] = max(
                            coefficient, 0.1 * magnitude * math.sqrt(omega_min)
                        )
                    elif kind == "C":
                        start[index[name]] = 1 / max(coefficient, floor)
                    else:
                        start[index[f"{name}_0"]] = 1 / max(coefficient, floor)
                        start[index[f"{name}_1"]] = alpha
                values = list(arc_values)
                if not series_resistors and values and zarcs and not carries_intercept:
                    # No series R: the fastest arc (often a bulk arc above the measured
                    # range) carries the high-frequency intercept.
                    resistance, tau = values[0]
                    values[0] = (resistance + r_inf, tau)
                for block, (resistance, tau) in zip(ordering, values, strict=False):
                    resistor, capacitor = zarcs[block]
                    resistance = max(resistance, 1e-3)
                    start[index[resistor]] = resistance
                    if circuit.element_kinds[capacitor] == "C":
                        start[index[capacitor]] = tau / resistance
                    else:
                        alpha = fixed.get(f"{capacitor}_1", start[index[f"{capacitor}_1"]])
                        start[index[f"{capacitor}_0"]] = tau**alpha / resistance
                for name, value in fixed.items():
                    start[index[name]] = value
                candidates.append(np.clip(start, lower, upper))
    return candidates


def _arc_sets(
    arcs: list[tuple[float, float]],
    count: int,
    r_inf: float,
    freq: np.ndarray,
    *,
    has_series_r: bool,
) -> list[tuple[list[tuple[float, float]], bool]]:
    """Arc sets of exactly ``count`` arcs, each with whether it carries the intercept already.

    The arcs the decomposition found, merged or split to the count; and, with
    no series R and fewer arcs seen than blocks, the high-frequency intercept
    as a bulk arc above the band (the usual Li | LLZO case: the bulk relaxes
    above 7 MHz).
    """
    if not count:
        return [([], False)]
    sets = [(_match_arcs(arcs, count), False)]
    if not has_series_r and r_inf > 0 and len(arcs) < count:
        tau_above = 1 / (2 * np.pi * float(np.max(freq))) / 10
        sets.append(([(r_inf, tau_above), *_match_arcs(arcs, count - 1)], True))
    return sets


def _orderings(
    circuit: Circuit, fixed: Mapping[str, float], lower: np.ndarray, upper: np.ndarray
) -> list[tuple[int, ...]]:
    """Ways to put the arcs (fast to slow) on the R||CPE blocks that give different fits.

    Blocks with the same element types, fixed values and bounds are
    interchangeable: only orderings that differ in which kind of block an arc
    lands on are kept, the circuit's own order first.
    """
    names = circuit.parameter_names
    signatures = []
    for resistor, capacitor in circuit.zarcs:
        parameters = [resistor] + (
            [capacitor]
            if circuit.element_kinds[capacitor] == "C"
            else [f"{capacitor}_0", f"{capacitor}_1"]
        )
        signatures.append(
            (
                circuit.element_kinds[capacitor],
                tuple(
                    (
                        fixed.get(name),
                        float(lower[names.index(name)]),
                        float(upper[names.index(name)]),
                    )
                    for name in parameters
                ),
            )
        )
    seen, orderings = set(), []
    for ordering in itertools.permutations(range(len(signatures))):
        key = tuple(signatures[block] for block in ordering)
        if key in seen:
            continue
        seen.add(key)
        orderings.append(ordering)
        if len(orderings) >= _MAX_ORDERINGS:
            break
    return orderings
