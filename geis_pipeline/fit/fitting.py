"""The fitting verbs: one spectrum from automatic starts, a time series by warm starts.

:func:`fit_circuit` fits one spectrum. With no initial values it tries the
candidate starts of :func:`~geis_pipeline.fit.initial.initial_guesses` best
first, each in two stages, and keeps the best by chi-square among the fits
that converged clear of the bounds; it stops early at a fit whose residuals
are at the noise level and whose declared roles are all matched and resolved.
:func:`fit_experiment` fits a time series, starting each fit from the last
converged step and falling back to a fresh start when the warm fit degrades.
Every result is judged by :func:`~geis_pipeline.fit.verdict.judge`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType

import numpy as np

from geis_pipeline.errors import FitError
from geis_pipeline.fit._solver import Solution
from geis_pipeline.fit.circuit import Circuit
from geis_pipeline.fit.initial import initial_guesses
from geis_pipeline.fit.options import FitOptions, _is_cpe_exponent
from geis_pipeline.fit.problem import _check_data, _Problem, _solve, errors_at, evaluate
from geis_pipeline.fit.result import FitResult
from geis_pipeline.fit.verdict import FreedFit, fixed_p_value, judge, judge_fixed
from geis_pipeline.spectrum import Spectrum

__all__ = ["fit_circuit", "fit_experiment"]

# A warm-started fit is kept unless its chi-square is worse than this factor
# times the previous step's (the spectrum changed more than a warm start follows).
_WARM_CHI2_FACTOR = 3.0
# A cold fit stops trying starts at residuals within this factor of the noise level.
_CLEAN_NOISE_RATIO = 1.3
# Reasons that say the fit itself (not the data) failed: a fresh start may help.
_FIT_REASONS = frozenset(
    {"diverged", "not_converged", "bound", "unmatched", "unresolved", "misplaced"}
)


def fit_circuit(
    freq: np.ndarray,
    z: np.ndarray,
    circuit: str | Circuit | FitOptions,
    *,
    mask: np.ndarray | None = None,
    initial: Mapping[str, float] | np.ndarray | None = None,
    kk_ok: bool | None = None,
    noise_rms: float | None = None,
    previous: FitResult | None = None,
    **options,
) -> FitResult:
    """Fit an equivalent circuit to one spectrum, with no initial guess needed.

    Parameters
    ----------
    freq
        Frequencies, Hz.
    z
        Complex impedance, ohm.
    circuit
        impedance.py circuit string (``"L0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)"``),
        a compiled :class:`Circuit`, or prepared :class:`FitOptions`.
    mask
        Points to use (e.g. after Kramers-Kronig truncation); default all.
    initial
        Start values (name -> value, or a full vector); default: automatic.
    kk_ok, noise_rms
        The spectrum's Kramers-Kronig verdict and RMS relative residual
        (``KKResult.ok``, ``KKResult.rms``): the verdict fails a spectrum
        that failed KK and residuals above the noise level. None: unknown
        (only the absolute residual limit applies).
    previous
        The previous step's result: each role keeps its arc where the physics
        cannot tell two arcs apart.
    **options
        ``bounds``, ``fixed``, ``roles``, ``role_classes``, ``role_tau_windows``,
        ``required_roles``, ``weighting``, ``area_cm2``, ``max_iterations``,
        ``noise_ratio``, ``noise_floor``, ``max_residual_rms`` (see :meth:`FitOptions.build`).

    Returns
    -------
    FitResult
        Check ``ok``/``status``/``reasons``: a number is marked ok only when
        the data support it.

    Raises
    ------
    FitError
        Invalid circuit, options or data.
    """
    fit_options = (
        circuit if isinstance(circuit, FitOptions) else FitOptions.build(circuit, **options)
    )
    freq = np.asarray(freq, dtype=np.float64)
    z = np.asarray(z, dtype=np.complex128)
    used = _check_data(freq, z, mask)
    n_free = fit_options._layout.free_index.size
    if 2 * used.sum() <= n_free:
        raise FitError(
            f"{int(used.sum())} points cannot determine {n_free} free parameters", key="mask"
        )
    problem = _Problem(fit_options, freq, z, used, all_points=True if mask is None else None)
    verdict = {"kk_ok": kk_ok, "noise_rms": noise_rms, "previous": previous}
    if initial is None:
        result = _cold_fit(problem, freq, z, used, verdict)
    else:
        start = _start_vector(fit_options, initial)
        evaluated = evaluate(problem, _solve(problem, start, warm=True), freq, z, used)
        result = judge(problem, evaluated, used, "warm", **verdict)
    if not (fit_options.fixed and result.ok):
        return result
    # Fixed values are the user's assumption: test it against the same fit with them free.
    # At the noise level, one Gauss-Newton step from the fixed solution predicts the freed
    # fit (a score test, ~0.3 ms). A step that looks significant, or residuals above the
    # noise, pay the full refit (~2 ms): a freed minimum far away (li_in's interface
    # exponent fixed at 0.85 against 0.8: chi-square 82 % lower, R_sei -80 %) is beyond
    # the step's quadratic model.
    freed_problem = _Problem(fit_options._freed, freq, z, used, all_points=problem.all_points)
    at_noise = noise_rms is not None and result.residual_rms <= _CLEAN_NOISE_RATIO * noise_rms
    freed = _gauss_newton_step(freed_problem, result) if at_noise else None
    if freed is None or (
        fixed_p_value(result.chi2, freed.chi2, used, fit_options) < _REFIT_P_VALUE
    ):
        solution = _solve(freed_problem, result.vector, warm=True)
        refit = evaluate(freed_problem, solution, freq, z, used)
        freed = FreedFit(
            refit.values, refit.stderr, refit.covariance_log, refit.chi2, refit.converged
        )
    return judge_fixed(result, freed, fit_options)


#: A fit with fixed values is refitted with them free when one Gauss-Newton step
#: predicts a chi-square drop this unlikely by chance (the verdict's own limit is 1e-3).
_REFIT_P_VALUE = 1e-2


def _gauss_newton_step(problem: _Problem, result: FitResult) -> FreedFit | None:
    """The freed fit predicted by one undamped step from ``result`` (None: singular).

    Its chi-square is the linearised one, chi2 - g^T (J^T J)^-1 g, and its
    covariance that of J^T J at ``result``: the score test of the fixed values.
    """
    start = problem.to_solver(result.vector)
    with np.errstate(all="ignore"):
        residuals, jacobian = problem.residuals_and_jacobian(start)
        normal = jacobian.T @ jacobian
        gradient = jacobian.T @ residuals
        try:
            step = -np.linalg.solve(normal, gradient)
        except np.linalg.LinAlgError:
            return None
        drop = float(-gradient @ step)
        if not (math.isfinite(drop) and 0 <= drop < result.chi2):
            return None
        solution = Solution(
            x=np.minimum(np.maximum(start + step, problem.lower), problem.upper),
            cost=result.chi2 - drop,
            residuals=residuals,
            jacobian=jacobian,
            n_iterations=1,
            converged=True,
            normal=normal,
        )
        values, stderr, covariance_log = errors_at(problem, solution)
    return FreedFit(values, stderr, covariance_log, solution.cost, True)


def _cold_fit(problem: _Problem, freq, z, mask, verdict: dict) -> FitResult:
    """Fit from automatic start values, in two stages per candidate start.

    Stage one holds the CPE exponents and inductances at their start values
    (the well-determined R and Q settle first); stage two frees everything.
    From a cold start, freeing all at once lets a poorly resolved arc collapse
    into a bound before the others have settled. Fits that converged clear of
    the bounds are preferred, then the lowest chi-square wins; with the noise
    level known, the search stops at a fit that is clean (residuals within
    1.3x the noise, every declared role matched and resolved).
    """
    options = problem.options
    circuit = options.circuit
    names = circuit.parameter_names
    staged = [
        name
        for name in names
        if name not in options.fixed
        and (circuit.element_kinds.get(name) == "L" or _is_cpe_exponent(name, circuit))
    ]
    candidates = initial_guesses(
        problem.freq, problem.z, circuit, options.fixed, options.lower, options.upper
    )
    # Stop early only at a fit as close to the data as the noise allows (known from KK);
    # a local minimum a little above the noise can still hold a wrong arc. Not at the
    # verdict's floor (fit.noise_floor, 1 %): at 0.4 % noise the first start under 1 %
    # merged bulk and gb into one arc and parked a fixed R3 on a spare one (R_b +53 %, ok).
    noise = verdict["noise_rms"]
    clean_limit = (
        _CLEAN_NOISE_RATIO * noise if noise is not None and math.isfinite(noise) else -math.inf
    )
    best: FitResult | None = None

    # A start that puts another process on a block holding a fixed value is not clean:
    # the value was fixed for the block's declared role (the gb exponent on the block
    # the interface took: contradicted in every step).
    def clean(result: FitResult) -> bool:
        return (
            result.converged
            and result.residual_rms <= clean_limit
            and not result.unmatched
            and not (set(result.reasons) & {"unresolved", "misplaced"})
            and all(
                role in result.roles and result.roles[role].arc == index
                for index, role, _ in options.fixed_blocks
            )
        )

    for candidate in candidates:
        start = candidate
        if staged:
            held = dict(options.fixed) | {name: candidate[names.index(name)] for name in staged}
            stage_problem = _Problem(replace(options, fixed=MappingProxyType(held)), freq, z, mask)
            stage_solution = _solve(stage_problem, candidate)
            start = stage_problem.expand(stage_solution.x)
        evaluated = evaluate(problem, _solve(problem, start), freq, z, mask)
        result = judge(problem, evaluated, mask, "cold", **verdict)
        if best is None or _rank(result) < _rank(best):
            best = result
        if clean(result):
            break
    assert best is not None  # initial_guesses gives at least one candidate
    if not clean(best) and math.isfinite(clean_limit):
        # No start reached the noise: the best may hold two processes in one arc and a
        # spare arc at a bound (bulk + grain boundary as one depressed "bulk", R_b 53 %
        # high). Split its most depressed resolved arc in two, with the spare one.
        for start in _split_starts(problem, best):
            evaluated = evaluate(problem, _solve(problem, start), freq, z, mask)
            result = judge(problem, evaluated, mask, "cold", **verdict)
            if _rank(result) < _rank(best):
                best = result
            if clean(best):
                break
    return best


#: A split puts the spare arc this far (decades) beside the arc it splits, either side.
_SPLIT_DECADES = 0.75


def _split_starts(problem: _Problem, best: FitResult) -> list[np.ndarray]:
    """Starts with the most depressed resolved arc of ``best`` split into it and a spare arc."""
    options = problem.options
    arcs = options._layout.arcs
    if len(arcs.resistors) < 2 or not bool(np.all(arcs.has_alpha)):
        return []
    by_resistor = {arc.resistor: arc for arc in best.capacitances.values()}
    numbers = [by_resistor.get(name) for name in arcs.resistors]
    resolved = [i for i, arc in enumerate(numbers) if arc is not None and arc.R_resolved]
    spare = [i for i, arc in enumerate(numbers) if arc is not None and not arc.R_resolved]
    if not resolved or not spare:
        return []
    target = min(resolved, key=lambda i: numbers[i].alpha)
    arc = numbers[target]
    if not (arc.alpha < 0.9 and math.isfinite(arc.tau_s) and arc.tau_s > 0):
        return []
    # (R, Q, alpha) positions of the two arcs; none of them may be fixed.
    positions = [
        (int(arcs.resistance[index]), int(arcs.charge[index]), int(arcs.alpha[index]))
        for index in (target, spare[0])
    ]
    names = options.circuit.parameter_names
    if {names[position] for triple in positions for position in triple} & set(options.fixed):
        return []
    resistance, alpha = arc.R_ohm / 2, min(arc.alpha + 0.15, 1.0)
    starts = []
    for side in (-1.0, 1.0):
        vector = best.vector.copy()
        taus = (arc.tau_s, arc.tau_s * 10 ** (side * _SPLIT_DECADES))
        for (r_position, q_position, a_position), tau in zip(positions, taus, strict=True):
            vector[r_position] = resistance
            vector[a_position] = alpha
            vector[q_position] = tau**alpha / resistance  # tau = (R Q)^(1/alpha)
        starts.append(np.minimum(np.maximum(vector, options.lower), options.upper))
    return starts


def _rank(result: FitResult) -> tuple[bool, float]:
    return (not result.converged, result.chi2 if math.isfinite(result.chi2) else math.inf)


def _start_vector(options: FitOptions, initial: Mapping[str, float] | np.ndarray) -> np.ndarray:
    names = options.circuit.parameter_names
    if not isinstance(initial, np.ndarray) and isinstance(initial, Mapping):
        start = np.sqrt(options.lower * options.upper)
        for name, value in initial.items():
            if name not in names:
                raise FitError(f"unknown parameter {name!r}", key=f"initial.{name}")
            start[names.index(name)] = value
    else:
        start = np.array(initial, dtype=np.float64)
        if start.shape != (len(names),):
            raise FitError(f"initial vector needs {len(names)} values", key="initial")
    layout = options._layout
    if layout.fixed_index.size:
        start[layout.fixed_index] = layout.full[layout.fixed_index]
    # > floor: > 0, or >= 0 for inductances; NaN fails both comparisons.
    if not ((start > layout.start_floor).all() and (start < np.inf).all()):
        raise FitError(
            "initial values must be finite and > 0 (>= 0 for inductances)", key="initial"
        )
    return np.minimum(np.maximum(start, options.lower), options.upper)


def fit_experiment(
    spectra: Iterable[Spectrum] | Sequence[tuple[np.ndarray, np.ndarray]],
    circuit: str | Circuit | FitOptions,
    *,
    masks: Sequence[np.ndarray | None] | None = None,
    kk_ok: Sequence[bool | None] | None = None,
    noise_rms: Sequence[float | None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    **options,
) -> list[FitResult]:
    """Fit a time series of spectra, each warm-started from the last converged step.

    A warm fit is replaced by a fresh automatic start (``start="fallback"``)
    when it did not converge clear of the bounds, lost a required role, or
    its chi-square is more than 3x the previous step's; the better of the two
    is kept. The first spectrum, and any with no converged step before it,
    start cold. A step that fails only on the data (Kramers-Kronig, noise)
    still anchors the chain; each role keeps its arc along the chain.

    Parameters
    ----------
    spectra
        :class:`Spectrum` objects or ``(freq, z)`` pairs, in time order.
    circuit, **options
        As :func:`fit_circuit`.
    masks
        Points to use per spectrum (None entries: all).
    kk_ok, noise_rms
        Per spectrum, as :func:`fit_circuit` (None: unknown).
    progress
        Called as ``progress(done, total)``.
    """
    fit_options = (
        circuit if isinstance(circuit, FitOptions) else FitOptions.build(circuit, **options)
    )
    pairs = [
        (item.freq, item.z) if isinstance(item, Spectrum) else (item[0], item[1])
        for item in spectra
    ]
    for name, values in (("masks", masks), ("kk_ok", kk_ok), ("noise_rms", noise_rms)):
        if values is not None and len(values) != len(pairs):
            raise FitError(f"{len(values)} {name} for {len(pairs)} spectra", key=name)
    results: list[FitResult] = []
    anchor: FitResult | None = None
    # The last converged step whose roles the chain carries on: not one whose fixed
    # values the data contradict (its arcs are bent by them: li_in's sei and interface
    # labels came swapped out of six such steps, R_int 56 ohm against 1273, ok).
    labels: FitResult | None = None
    for index, (freq, z) in enumerate(pairs):
        keywords = {
            "mask": None if masks is None else masks[index],
            "kk_ok": None if kk_ok is None else kk_ok[index],
            "noise_rms": None if noise_rms is None else noise_rms[index],
            "previous": labels,
        }
        if anchor is None:
            result = fit_circuit(freq, z, fit_options, **keywords)
        else:
            result = fit_circuit(freq, z, fit_options, initial=anchor.vector, **keywords)
            if set(result.reasons) & _FIT_REASONS or result.chi2 > _WARM_CHI2_FACTOR * max(
                anchor.chi2, 1e-300
            ):
                fresh = fit_circuit(freq, z, fit_options, **keywords)
                if _better(fresh, result):
                    result = replace(fresh, start="fallback")
        results.append(result)
        if result.converged:
            anchor = result
            if "fixed" not in result.reasons:
                labels = result
        if progress is not None:
            progress(index + 1, len(pairs))
    return results


def _better(fresh: FitResult, warm: FitResult) -> bool:
    """Whether a fresh start beats the warm one: fewer fit failures, then chi-square."""
    fresh_failures = len(set(fresh.reasons) & _FIT_REASONS)
    warm_failures = len(set(warm.reasons) & _FIT_REASONS)
    if fresh_failures != warm_failures:
        return fresh_failures < warm_failures
    return fresh.chi2 < warm.chi2
