"""Automatic start values from the spectrum itself, so nobody types initial guesses.

A non-negative least-squares fit of the spectrum with a fixed grid of RC
elements (a coarse, DRT-like decomposition) shows where the arcs are: each
cluster of non-zero RC weights is one arc, its summed R the arc's resistance
and its weighted mean log time constant the arc's tau. The circuit's R||CPE
blocks take these arcs in order of appearance from fast to slow (the usual way
circuits are written: bulk, grain boundary, interface), and Q follows from
tau = (R Q)^(1/alpha).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.optimize import nnls

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


def arc_decomposition(
    freq: np.ndarray, z: np.ndarray
) -> tuple[float, float, list[tuple[float, float]]]:
    """Series resistance, inductance and arcs (R in ohm, tau in s) of a spectrum.

    Returns
    -------
    r_inf, inductance, arcs
        Arcs sorted by tau, fast first.
    """
    omega = 2 * np.pi * freq
    log_tau_min = np.log10(1 / omega.max()) - _EXTEND_DECADES
    log_tau_max = np.log10(1 / omega.min()) + _EXTEND_DECADES
    n_tau = int(np.ceil((log_tau_max - log_tau_min) * _POINTS_PER_DECADE)) + 1
    tau = np.logspace(log_tau_min, log_tau_max, n_tau)
    magnitude = float(np.max(np.abs(z)))
    inductance_unit = magnitude / omega.max()  # an L with |Z| = max|Z| at the top frequency
    design = np.column_stack(
        [np.ones_like(omega), 1j * omega * inductance_unit, 1 / (1 + 1j * np.outer(omega, tau))]
    )
    weight = 1 / np.abs(z)
    weighted = design * weight[:, None]
    penalty = np.zeros((n_tau - 1, n_tau + 2))
    # First differences of neighbouring RC weights: favours smooth peaks.
    penalty[:, 2:-1] -= np.eye(n_tau - 1)
    penalty[:, 3:] += np.eye(n_tau - 1)
    matrix = np.vstack([weighted.real, weighted.imag, _RIDGE * penalty])
    target = np.concatenate([(z * weight).real, (z * weight).imag, np.zeros(n_tau - 1)])
    solution, _ = nnls(matrix, target / magnitude, maxiter=50 * matrix.shape[1])
    solution *= magnitude
    weights = solution[2:]
    return (
        float(solution[0]),
        float(solution[1] * inductance_unit / magnitude),
        _peaks(tau, weights),
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
    r_inf, inductance, arcs = arc_decomposition(freq, z)
    index = {name: position for position, name in enumerate(circuit.parameter_names)}
    zarcs = circuit.zarcs
    arcs = _match_arcs(arcs, len(zarcs)) if zarcs else arcs
    series_resistors = [
        name
        for name, kind in circuit.element_kinds.items()
        if kind == "R" and all(name != resistor for resistor, _ in zarcs)
    ]
    candidates = []
    for alpha_start in (0.9, 0.75, 0.97):
        start = np.sqrt(lower * upper)  # geometric middle for anything not set below
        for name in circuit.parameter_names:
            if name.endswith("_1") and circuit.element_kinds.get(name[:-2]) == "CPE":
                start[index[name]] = alpha_start
        for kind_name, kind in circuit.element_kinds.items():
            if kind == "L":
                # In log space a parameter started near 0 has no gradient to grow:
                # start at least where omega L is 1 % of |Z| at the top frequency.
                top = int(np.argmax(freq))
                visible = 0.01 * abs(z[top]) / (2 * np.pi * freq[top])
                start[index[kind_name]] = max(inductance, visible)
        if series_resistors:
            for name in series_resistors:
                start[index[name]] = max(r_inf / len(series_resistors), 1e-3)
        arc_values = list(arcs)
        if not series_resistors and arc_values and zarcs:
            # No series R: the fastest arc (often a bulk arc above the measured range)
            # carries the high-frequency intercept.
            resistance, tau = arc_values[0]
            arc_values[0] = (resistance + r_inf, tau)
        for (resistor, capacitor), (resistance, tau) in zip(zarcs, arc_values, strict=False):
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
