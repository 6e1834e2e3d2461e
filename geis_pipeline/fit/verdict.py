"""From a solution's numbers to a result: Brug capacitances, arcs by physics, an honest verdict.

A fit is ``ok`` only when every number it reports is one the data support:

* the solver converged;
* no parameter of a resolved arc sits at a bound (an arc the data do not
  show may: it is flagged and its values are NaN);
* its residuals are consistent with the spectrum's noise (the Kramers-Kronig
  residual, when the caller knows it) and below an absolute limit;
* the spectrum passed Kramers-Kronig (when the caller knows it);
* every required role (``int`` by default) is matched to an arc of its
  capacitance class whose R and C the data determine: R above 10 standard
  errors and not negligible, the apex inside the fitted band and C known to
  better than a factor 1.5. (Other arcs count as resolved from 3 standard
  errors; below that their values are NaN.)
* the data do not contradict a value the user fixed (:func:`judge_fixed`).

Each failed condition is one code of :data:`~geis_pipeline.fit.result.REASONS`
and one clause of the status.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from types import MappingProxyType

import numpy as np

from geis_pipeline.elements import brug_capacitance, time_constant
from geis_pipeline.fit.options import FitOptions, _block_parameters
from geis_pipeline.fit.problem import Evaluated, _Problem
from geis_pipeline.fit.result import ArcCapacitance, FitResult, RoleValues
from geis_pipeline.fit.roles import ArcEstimate, identify_arcs

__all__ = ["FreedFit", "fixed_p_value", "judge", "judge_fixed"]

# R is determined when it exceeds this many standard errors (a required role's,
# the interface's, this many: a number to publish needs ~10 % precision) ...
_R_MIN_SIGMAS = 3.0
_REQUIRED_R_MIN_SIGMAS = 10.0
# ... and this fraction of the spectrum's largest |Z| (an arc with R -> 0 is not there).
_R_MIN_FRACTION = 1e-3
# C is determined when its relative standard error is below this ...
_C_MAX_REL_STDERR = 0.5
# ... and the apex lies inside the fitted band, widened by this factor on each side.
_BAND_MARGIN = 10**0.25
# Two arcs whose time constants lie closer than this (decades) are one process the fit
# split in two: their R trade freely (a depleted interface fitted as "gb" + "int", R_int
# 43 % low at 10 standard errors), so neither is resolved.
_MIN_SEPARATION_DECADES = 0.3
# The data contradict a fixed value when freeing it lowers chi-square beyond chance
# (F-test p below this) and moves a resolved role's R or C by more than this many of
# its standard errors and this fraction (CPE1_1 fixed at 0.8 against 0.95: R_gb 26 %
# low in every step, residuals 1.06x KK, all ok).
_FIXED_P_VALUE = 1e-3
_FIXED_SHIFT_SIGMAS = 3.0
_FIXED_SHIFT_FRACTION = 0.02


def _arc_numbers(
    options: FitOptions, values: np.ndarray, covariance_log: np.ndarray
) -> list[tuple[float, float, float, float, float, float, float, float]]:
    """(R, Q, alpha, C, tau, apex, R stderr, C stderr) of every R||CPE block."""
    arcs = options._layout.arcs
    if not arcs.resistors:
        return []
    resistance = values[arcs.resistance]
    q = values[arcs.charge]
    alpha = np.where(arcs.has_alpha, values[arcs.alpha], 1.0)
    with np.errstate(all="ignore"):
        capacitance = brug_capacitance(resistance, q, alpha)
        tau = time_constant(resistance, q, alpha)
        apex = 1.0 / (2.0 * np.pi * tau)  # elements.apex_frequency, without a second tau
    covariance = covariance_log.tolist()  # a few scalars per arc: Python floats beat numpy
    numbers = []
    for index, (r, q_value, a, c, t, f) in enumerate(
        zip(
            resistance.tolist(),
            q.tolist(),
            alpha.tolist(),
            capacitance.tolist(),
            tau.tolist(),
            apex.tolist(),
            strict=True,
        )
    ):
        # ln C = (ln Q + (1-a) ln R)/a: gradient in (ln R, ln Q, ln a) for the delta
        # method, over the free parameters (a fixed one contributes nothing).
        r_free = arcs.resistance_free[index]
        gradient = [
            (r_free, (1 - a) / a),
            (arcs.charge_free[index], 1 / a),
            (arcs.alpha_free[index], -(math.log(q_value) + math.log(r)) / a),
        ]
        gradient = [(position, value) for position, value in gradient if position >= 0]
        c_variance = sum(
            first * second * covariance[i][j] for i, first in gradient for j, second in gradient
        )
        r_stderr = r * math.sqrt(abs(covariance[r_free][r_free])) if r_free >= 0 else 0.0
        numbers.append((r, q_value, a, c, t, f, r_stderr, c * math.sqrt(abs(c_variance))))
    return numbers


def _twins(taus: list[float]) -> dict[int, int]:
    """Arc -> the other arc whose time constant lies within _MIN_SEPARATION_DECADES of its."""
    twins: dict[int, int] = {}
    for first, second in itertools.combinations(range(len(taus)), 2):
        a, b = taus[first], taus[second]
        if a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b):
            if abs(math.log10(a / b)) < _MIN_SEPARATION_DECADES:
                twins.setdefault(first, second)
                twins.setdefault(second, first)
    return twins


def _resolution(
    r: float,
    r_stderr: float,
    c: float,
    c_stderr: float,
    apex: float,
    band: tuple[float, float],
    z_max: float,
) -> tuple[bool, bool]:
    """Whether the data determine an arc's R and its C."""
    r_resolved = (
        math.isfinite(r_stderr) and r > _R_MIN_SIGMAS * r_stderr and r >= _R_MIN_FRACTION * z_max
    )
    c_resolved = (
        r_resolved
        and math.isfinite(c_stderr)
        and c > 0
        and c_stderr <= _C_MAX_REL_STDERR * c
        and band[0] / _BAND_MARGIN <= apex <= band[1] * _BAND_MARGIN
    )
    return r_resolved, c_resolved


def judge(
    problem: _Problem,
    evaluated: Evaluated,
    mask: np.ndarray,
    start: str,
    *,
    kk_ok: bool | None = None,
    noise_rms: float | None = None,
    previous: FitResult | None = None,
) -> FitResult:
    """Identify the arcs by their physics and give the verdict.

    Parameters
    ----------
    problem, evaluated
        The fitted problem and its numbers at the solution.
    mask
        Points used.
    start
        ``cold``, ``warm`` or ``fallback``.
    kk_ok
        The spectrum's Kramers-Kronig verdict (None: unknown).
    noise_rms
        The spectrum's noise level, RMS relative residual (its KK residual; None: unknown).
    previous
        The previous step's result: a role keeps its arc along a chain.
    """
    options = problem.options
    layout = problem.layout
    arcs = layout.arcs
    names = options.circuit.parameter_names
    values = evaluated.values
    area = options.area_cm2
    band = (float(problem.freq.min()), float(problem.freq.max()))
    z_max = float(np.abs(problem.z).max())
    numbers = _arc_numbers(options, values, evaluated.covariance_log)
    resolution = [
        _resolution(r, r_stderr, c, c_stderr, f, band, z_max)
        for r, _, _, c, _, f, r_stderr, c_stderr in numbers
    ]
    # A negligible arc (R -> 0) holds no share of a process to trade.
    twins = _twins(
        [tau if r >= _R_MIN_FRACTION * z_max else math.nan for r, _, _, _, tau, _, _, _ in numbers]
    )
    for index in twins:
        resolution[index] = (False, False)
    previous_roles = previous.roles if previous is not None else {}
    identification = identify_arcs(
        [
            ArcEstimate(tau_s=t, C_F=c, C_resolved=resolved[1])
            for (_, _, _, c, t, _, _, _), resolved in zip(numbers, resolution, strict=True)
        ],
        arcs.declared_roles,
        options.classes,
        area_cm2=area,
        previous_tau_s={
            role: value.tau_s
            for role, value in previous_roles.items()
            if value.arc is not None and math.isfinite(value.tau_s)
        },
        previous_arcs={role: value.arc for role, value in previous_roles.items()},
        named=arcs.named,
    )
    role_of_arc = {arc: role for role, arc in identification.arc_of.items() if arc is not None}
    # Two roles the physics cannot tell apart: neither arc's values belong to its label.
    for role in identification.ambiguous:
        resolution[identification.arc_of[role]] = (False, False)
    capacitances: dict[str, ArcCapacitance] = {}
    for index, (r, _, a, c, t, f, r_stderr, c_stderr) in enumerate(numbers):
        role = role_of_arc.get(index)
        r_resolved, c_resolved = resolution[index]
        capacitances[role or arcs.resistors[index]] = ArcCapacitance(
            resistor=arcs.resistors[index],
            capacitor=arcs.capacitors[index],
            role=role,
            R_ohm=r,
            C_F=c,
            tau_s=t,
            f_apex_hz=f,
            alpha=a,
            R_ohm_cm2=r * area if area else math.nan,
            C_F_cm2=c / area if area else math.nan,
            R_stderr_ohm=r_stderr,
            C_stderr_F=c_stderr,
            R_resolved=r_resolved,
            C_resolved=c_resolved,
        )
    roles = _role_table(options, values, evaluated.stderr, numbers, resolution, identification)

    reasons: list[str] = []
    clauses: list[str] = []
    if evaluated.diverged:
        reasons.append("diverged")
        clauses.append("fit diverged")
    elif not evaluated.converged:
        reasons.append("not_converged")
        clauses.append("not converged")
    # Parameters of an arc the data do not resolve may sit at a bound: the arc is flagged.
    # Not at a bound the user set (fit.bounds): that bound, not the data, put them there
    # (R3 held above 1e6 ohm moved the interface's role to another arc, R_b 22 % off, ok).
    exempt = set()
    for index, (r_resolved, c_resolved) in enumerate(resolution):
        if not (r_resolved and c_resolved):
            exempt.update(_block_parameters(options.circuit, index))
    exempt -= options.user_bounded
    stuck = [
        detail
        for name, detail in zip(evaluated.at_bounds, evaluated.bound_details, strict=True)
        if name not in exempt
    ]
    if stuck:
        reasons.append("bound")
        clauses.append("parameter at bound: " + ", ".join(stuck))
    rms = evaluated.residual_rms
    noise = noise_rms if noise_rms is not None and math.isfinite(noise_rms) else math.nan
    limit = options.max_residual_rms
    if math.isfinite(noise):
        limit = min(limit, max(options.noise_ratio * noise, options.noise_floor))
    if not rms <= limit:
        reasons.append("residual")
        if not math.isfinite(noise) or limit >= options.max_residual_rms:
            against = f"the limit {options.max_residual_rms:.1%} (fit.max_residual_rms)"
        elif limit > options.noise_floor:
            against = f"{options.noise_ratio:g}x the noise level {noise:.2%} (KK; fit.noise_ratio)"
        else:
            against = f"the floor {options.noise_floor:.1%} (fit.noise_floor; KK noise {noise:.2%})"
        clauses.append(f"residuals {rms:.2%} RMS exceed {against}")
    if kk_ok is False:
        reasons.append("kk")
        clauses.append("the spectrum failed Kramers-Kronig")
    unmatched = [role for role in options.required_roles if role in identification.unmatched]
    if unmatched:
        reasons.append("unmatched")
        clauses.extend(identification.unmatched[role] for role in unmatched)
    unresolved = []
    for role in options.required_roles:
        index = identification.arc_of.get(role)
        if index is None:
            continue
        r, _, _, c, tau, f, r_stderr, c_stderr = numbers[index]
        r_resolved, c_resolved = resolution[index]
        if role in identification.ambiguous:
            unresolved.append(
                f"{role} arc unresolved: {role} and {identification.ambiguous[role]} cannot be "
                "told apart by their physics (same rank, both arcs inside both capacitance "
                "classes): give one a time-constant window (fit.role_tau_windows)"
            )
        elif index in twins:
            twin = twins[index]
            unresolved.append(
                f"{role} arc unresolved: its time constant {tau:.3g} s lies within "
                f"{_MIN_SEPARATION_DECADES:g} decade of arc {arcs.resistors[twin]}'s "
                f"({numbers[twin][4]:.3g} s): one process split in two"
            )
        elif not r_resolved:
            unresolved.append(f"{role} arc unresolved: R = {r:.3g} +- {r_stderr:.2g} ohm")
        elif not r > _REQUIRED_R_MIN_SIGMAS * r_stderr:
            unresolved.append(
                f"{role} arc imprecise: R = {r:.3g} +- {r_stderr:.2g} ohm "
                f"(needs R > {_REQUIRED_R_MIN_SIGMAS:g} standard errors)"
            )
        elif not c_resolved:
            unresolved.append(
                f"{role} arc unresolved: C = {c:.3g} +- {c_stderr:.2g} F, apex {f:.3g} Hz "
                f"(fitted band {band[0]:.3g}..{band[1]:.3g} Hz)"
            )
    if unresolved:
        reasons.append("unresolved")
        clauses.extend(unresolved)
    # A value fixed for a declared process must not sit on an arc that is no process:
    # a fixed R3 parked on a spare arc at 650 s while bulk and gb merged (R_b +53 %, ok).
    # (On another declared process's arc it is that arc's value: the fixed-value test
    # judges it; the cold search prefers starts that keep it on its own block.)
    misplaced = [
        f"{', '.join(fixed)} fixed for {role} (block {arcs.resistors[index]}) sits on an "
        f"arc that is none of the declared processes (the fit's {role} is "
        + (
            f"block {arcs.resistors[identification.arc_of[role]]})"
            if identification.arc_of.get(role) is not None
            else "no arc)"
        )
        for index, role, fixed in options.fixed_blocks
        if index not in role_of_arc
    ]
    if misplaced:
        reasons.append("misplaced")
        clauses.extend(misplaced)
    return FitResult(
        circuit=options.circuit.text,
        parameters=MappingProxyType(dict(zip(names, values.tolist(), strict=True))),
        stderr=MappingProxyType(dict(zip(names, evaluated.stderr.tolist(), strict=True))),
        chi2=evaluated.chi2,
        ok=not reasons,
        status="; ".join(clauses) if clauses else "ok",
        mask=mask.copy(),
        z_fit=evaluated.z_fit,
        residuals_real=evaluated.residuals_real,
        residuals_imag=evaluated.residuals_imag,
        capacitances=MappingProxyType(capacitances),
        start=start,
        n_iterations=evaluated.n_iterations,
        at_bounds=evaluated.at_bounds,
        reasons=tuple(reasons),
        roles=MappingProxyType(roles),
        unmatched=identification.unmatched,
        residual_rms=rms,
        noise_rms=noise,
        converged=evaluated.converged and not stuck,
    )


def _role_table(
    options: FitOptions,
    values: np.ndarray,
    stderr: np.ndarray,
    numbers,
    resolution,
    identification,
) -> dict[str, RoleValues]:
    """Every declared role's values, NaN where the data do not determine them."""
    area = options.area_cm2
    nan = math.nan
    table: dict[str, RoleValues] = {}
    arcs = options._layout.arcs
    for role in arcs.declared_roles:
        index = identification.arc_of.get(role)
        if index is None:
            table[role] = RoleValues(role, distance_decades=nan)
            continue
        r, _, a, c, t, f, r_stderr, c_stderr = numbers[index]
        r_resolved, c_resolved = resolution[index]
        arc = {"C_F": c, "C_stderr_F": c_stderr, "tau_s": t, "alpha": a, "f_apex_hz": f}
        table[role] = RoleValues.with_area(
            role,
            area,
            elements=(arcs.resistors[index], arcs.capacitors[index]),
            arc=index,
            **({"R_ohm": r, "R_stderr_ohm": r_stderr} if r_resolved else {}),
            **(arc if c_resolved else {}),
            R_resolved=r_resolved,
            C_resolved=c_resolved,
            distance_decades=identification.distance_decades.get(role, nan),
        )
    names = options.circuit.parameter_names
    block_elements = {name for pair in options.circuit.zarcs for name in pair}
    for element, role in options.roles.items():
        if element in block_elements:
            continue
        resolved, known = False, {}
        if options.circuit.element_kinds[element] == "R":
            position = names.index(element)
            r, r_stderr = float(values[position]), float(stderr[position])
            resolved = math.isfinite(r_stderr) and r > _R_MIN_SIGMAS * r_stderr
            known = {"R_ohm": r, "R_stderr_ohm": r_stderr} if resolved else {}
        # else: a cable inductance or a diffusion tail has no resistance of its own
        table[role] = RoleValues.with_area(
            role, area, elements=(element,), R_resolved=resolved, **known
        )
    return table


@dataclass(frozen=True, eq=False)
class FreedFit:
    """The numbers of a fit with the fixed parameters freed that :func:`judge_fixed` needs."""

    values: np.ndarray  # all parameters, natural units
    stderr: np.ndarray
    covariance_log: np.ndarray  # ln space, every parameter free
    chi2: float
    converged: bool


def judge_fixed(fixed: FitResult, freed: FreedFit, options: FitOptions) -> FitResult:
    """The verdict on an ok fit with fixed parameters, given the same fit with them freed.

    A fixed value is the user's assumption, and the fit's standard errors hold
    only if it is true. Two outcomes:

    * the data contradict it: freeing the fixed parameters lowers chi-square
      more than chance allows (F-test for nested models, p < 0.001) and moves
      some resolved role's R or C by more than 3 of its standard errors and
      2 %. The fit is not ok (reason ``fixed``); the status names the freed
      values, so the user can free or re-fix them;
    * otherwise each resolved role's standard error widens to cover the freed
      fit: hypot(the larger of the two fits' errors, shift) (CPE1_1 fixed at
      0.8 against 0.95 in data that cannot tell: R_gb 39.5 +- 3.1 ohm fixed,
      52 +- 9 freed, truth 51; reported 39.5 +- 15.5).
      A required role that is then imprecise fails as ``unresolved``.

    The values stay the fixed fit's.

    Parameters
    ----------
    fixed
        The fit with ``options.fixed`` held.
    freed
        The same spectrum and mask with every parameter free: a converged fit,
        or one Gauss-Newton step from ``fixed`` (with J^T J there).
    options
        The options of ``fixed``.
    """
    if not (fixed.ok and options.fixed and freed.converged):
        return fixed
    freed_options = options._freed
    names = options.circuit.parameter_names
    arc_numbers = _arc_numbers(freed_options, freed.values, freed.covariance_log)
    moved = []
    roles = dict(fixed.roles)
    for role, value in fixed.roles.items():
        if value.arc is not None:
            r, _, _, c, _, _, r_stderr, c_stderr = arc_numbers[value.arc]
        elif len(value.elements) == 1 and value.elements[0] in names:
            position = names.index(value.elements[0])
            r, r_stderr = float(freed.values[position]), float(freed.stderr[position])
            c = c_stderr = math.nan
        else:
            continue
        widened = {}
        for symbol, held, sigma, free, free_sigma, resolved, key in (
            ("R", value.R_ohm, value.R_stderr_ohm, r, r_stderr, value.R_resolved, "R_stderr_ohm"),
            ("C", value.C_F, value.C_stderr_F, c, c_stderr, value.C_resolved, "C_stderr_F"),
        ):
            if not (resolved and math.isfinite(held) and math.isfinite(free)):
                continue
            shift = free - held
            beyond = _FIXED_SHIFT_SIGMAS * sigma
            if abs(shift) > beyond and abs(shift) > _FIXED_SHIFT_FRACTION * abs(held):
                moved.append(f"{symbol}_{role} by {shift / held:+.0%}")
            # The error bar covers the freed fit's value and its own error bar.
            honest = math.hypot(max(free_sigma, sigma), shift)
            if honest > sigma:
                widened[key] = honest
        if widened:
            roles[role] = replace(value, **widened)
    p_value = fixed_p_value(fixed.chi2, freed.chi2, fixed.mask, options) if moved else 1.0
    if p_value < _FIXED_P_VALUE:
        values = ", ".join(
            f"{name} = {value:.3g} (freed: {freed.values[names.index(name)]:.3g})"
            for name, value in options.fixed.items()
        )
        status = (
            f"the data contradict the fixed {values}: freed, chi-square falls "
            f"{1 - freed.chi2 / fixed.chi2:.0%} (F-test p = {p_value:.1g}) and "
            + ", ".join(moved)
            + " (free them or fix them where the data put them: fit.fixed)"
        )
        return replace(fixed, ok=False, status=status, reasons=("fixed",))
    capacitances = {
        key: replace(arc, R_stderr_ohm=roles[key].R_stderr_ohm, C_stderr_F=roles[key].C_stderr_F)
        if key in roles and roles[key] is not fixed.roles[key]
        else arc
        for key, arc in fixed.capacitances.items()
    }
    imprecise = []
    for role in options.required_roles:
        value = roles.get(role)
        if value is None or value is fixed.roles.get(role):
            continue
        if value.R_resolved and not value.R_ohm > _REQUIRED_R_MIN_SIGMAS * value.R_stderr_ohm:
            imprecise.append(
                f"{role} arc imprecise once the fixed values are freed: R = {value.R_ohm:.3g} "
                f"+- {value.R_stderr_ohm:.2g} ohm (needs R > {_REQUIRED_R_MIN_SIGMAS:g} "
                "standard errors)"
            )
        elif value.C_resolved and not value.C_stderr_F < _C_MAX_REL_STDERR * abs(value.C_F):
            imprecise.append(
                f"{role} arc unresolved once the fixed values are freed: C = {value.C_F:.3g} "
                f"+- {value.C_stderr_F:.2g} F"
            )
    return replace(
        fixed,
        roles=MappingProxyType(roles),
        capacitances=MappingProxyType(capacitances),
        ok=not imprecise,
        status="; ".join(imprecise) if imprecise else fixed.status,
        reasons=("unresolved",) if imprecise else fixed.reasons,
    )


def fixed_p_value(
    fixed_chi2: float, freed_chi2: float, mask: np.ndarray, options: FitOptions
) -> float:
    """F-test p-value that freeing ``options.fixed`` lowers chi-square this much by chance."""
    dof = 2 * int(mask.sum()) - options._freed._layout.free_index.size
    if dof < 1 or not 0 < freed_chi2 < fixed_chi2:
        return 1.0
    from scipy.special import fdtrc  # only fits with fixed values pay the import

    n_freed = len(options.fixed)
    f_statistic = (fixed_chi2 - freed_chi2) / n_freed / (freed_chi2 / dof)
    return float(fdtrc(n_freed, dof, f_statistic))
