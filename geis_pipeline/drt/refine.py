"""Peak resistances that add up: the DRT's peaks refined by a fit of analytic ZARCs.

A Tikhonov-regularised γ is smoothed: each peak is broader and lower than
the true distribution, its tails spill into the neighbouring peaks' share
and into R_inf (a peak near the highest frequencies beside a large R_inf
loses a third of its area), and areas between valleys miss the part of a
tail beyond the valley. So the areas of γ are not the processes'
resistances. The peaks do say how many processes there are and where: this
module fits the spectrum with

    Z(ω) = R_inf + jωL + Σ_k R_k / (1 + (jωτ_k)^α_k)

started from the peaks (R_k = the peak's area, τ_k its position, α_k from
its width), with the DRT's own weights, by bounded Levenberg-Marquardt (the
fit package's solver, analytic Jacobian; ~1 ms). Each process's R is then
what its whole distribution holds, tails included; R_inf and L are fitted
beside the highest-frequency peak instead of trading area with it.

A refined fit is used only when it explains the data about as well as the
regularised inversion (weighted residual RMS at most ``_ACCEPT`` times the
DRT's): a process that is not ZARC-like (a Gerischer or diffusion shape,
two processes under one peak) keeps its areas of γ, and the result says so
(:attr:`~geis_pipeline.drt.DRTResult.refined`).

Which ZARCs a spectrum needs is found by a model search (merge, drop, split
by the Bayesian information criterion: ~7 fits, ~30 ms). Along an experiment
consecutive sweeps have the same processes, slightly moved: given the sweep
before (``previous``), one fit started from its ZARCs replaces the search
(~1-2 ms) when it explains the data as well as the last searched model did
(relative to the DRT's own residual: the noise changes from sweep to sweep).
The search runs again when it does not (a process appears), and at least
every ``_SEARCH_EVERY`` sweeps; then the warm-started fit and the search's
model compete by the criterion (a search can settle in a worse minimum than
the model the sweeps before carried). A term of the searched model that looks
redundant (small, or within a decade of another: a split the search kept by a
narrow margin) is simplified away as the search does before it is carried on.
γ's own peak count is no guide: its small peaks come and go with the noise.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from geis_pipeline.fit._solver import levenberg_marquardt

__all__ = ["Refined", "refine_peaks", "zarc_drt_width"]

#: The refined fit's weighted residual RMS may exceed the regularised one by this factor.
_ACCEPT = 1.5
_ALPHA_BOUNDS = (0.3, 1.0)
#: How far (decades) a refined τ may move from its peak.
_TAU_RANGE_DECADES = 1.0
#: Smallest and largest R of a term, relative to max |Z|.
_R_BOUNDS = (1e-9, 10.0)
_LN10 = math.log(10.0)
#: At most this many ZARCs (the largest peaks of γ), and this many splits of one in two.
_MAX_TERMS = 8
_MAX_SPLITS = 2
#: Steps of a fit in the model search (compared, not final: a split that has not
#: converged by then is not the better model) and of the chosen model's polish.
_SEARCH_ITERATIONS = 20
_FINAL_ITERATIONS = 60
#: A split puts the two halves this far (decades) either side of the term.
_SPLIT_DECADES = 0.5
#: Fits stop when a step lowers the cost by less than this fraction (search, final).
_SEARCH_TOLERANCE = 1e-6
_FINAL_TOLERANCE = 1e-8
#: Smallest share of the peaks' area a peak needs to start a term.
_MIN_SHARE = 0.01
#: A warm-started term with less than this share of the terms' R looks redundant.
_CLEAR_SHARE = 0.05
#: Terms closer than this (decades) are tried as one.
_MERGE_DECADES = 1.0
#: A term's τ stays within the measured range, 1/ω_max .. 1/ω_min, widened by this (decades).
_MARGIN_DECADES = 0.5
#: A warm-started fit is kept if its RMS relative to the DRT's is at most this factor
#: above that of the last searched model (else the model search runs).
_WARM_ACCEPT = 1.2
#: Initial damping of a warm-started fit: it starts next to its minimum (28 % fewer
#: model evaluations than the search's 1e-3 on a simulated experiment).
_WARM_DAMPING = 1e-5
#: A warm-started fit stops when a step lowers the cost by less than this fraction: for
#: ~130 residual degrees of freedom a chi2 decrease of ~0.013, parameters within ~0.1
#: standard error of the minimum (1e-8, the polish's, cost 65 % more iterations on the
#: 30k-sweep experiment, whose bulk arc crawls along a flat valley at the window's edge).
_WARM_TOLERANCE = 1e-4
#: The model search runs at least every this many sweeps of a warm-started series.
_SEARCH_EVERY = 50


@dataclass(frozen=True)
class Refined:
    """The ZARC fit of one spectrum (scaled units: ohm / max |Z|).

    Attributes
    ----------
    R, tau, alpha
        Per peak: resistance (scaled), time constant (s), exponent.
    R_stderr
        Per peak: standard error of R (scaled) from the fit's covariance,
        σ² (JᵀJ)⁻¹ with σ² the residual variance (NaN: singular). Calibrated
        where the data determine R (simulated Li | LLZO to 100 MHz: |error| /
        stderr of the grain boundary's R median 0.6, p95 1.7); not where an
        arc beside it peaks outside the measured range (its error is a bias).
    R_inf, L
        Series resistance (scaled) and inductance (scaled ohm s).
    rms
        Weighted residual RMS of the fit.
    drt_rms
        Weighted residual RMS of the regularised inversion it was accepted against.
    searched
        Sweeps since the model search last ran (0: this fit is a search's).
    searched_rms_ratio
        ``rms / drt_rms`` of the fit of that search: warm-started fits are
        measured against it, so a slow worsening cannot creep past the check.
    """

    R: np.ndarray
    tau: np.ndarray
    alpha: np.ndarray
    R_inf: float
    L: float
    rms: float
    R_stderr: np.ndarray | None = None
    drt_rms: float = math.nan
    searched: int = 0
    searched_rms_ratio: float = math.nan


def zarc_drt_width(alpha: float | np.ndarray) -> float | np.ndarray:
    """Full width at half maximum of a ZARC's exact DRT, decades of τ (0 for α = 1).

    γ ∝ sin((1-α)π) / (cosh(α x) - cos((1-α)π)) falls to half its maximum
    where cosh(α x) = 2 - cos((1-α)π).
    """
    cosine = np.cos((1.0 - np.asarray(alpha)) * math.pi)
    width = 2.0 * np.arccosh(2.0 - cosine) / np.asarray(alpha) / _LN10
    return float(width) if np.ndim(width) == 0 else width


def _alpha_table() -> tuple[np.ndarray, np.ndarray]:
    """FWHM (decades) of the exact ZARC DRT for α on a grid, increasing with 1 - α."""
    alpha = np.linspace(0.99, 0.3, 70)
    return zarc_drt_width(alpha), alpha  # type: ignore[return-value]


_WIDTHS, _ALPHAS = _alpha_table()


def _alpha_from_width(width_decades: float, resolution_decades: float) -> float:
    """Start α: the ZARC whose DRT is as wide as the peak less the inversion's own spread."""
    intrinsic = math.sqrt(max(width_decades**2 - resolution_decades**2, 0.0))
    alpha = float(np.interp(intrinsic, _WIDTHS, _ALPHAS))
    return min(max(alpha, 0.5), 0.98)


def refine_peaks(
    omega: np.ndarray,
    z_scaled: np.ndarray,
    weights: np.ndarray,
    R: np.ndarray,
    tau: np.ndarray,
    width: np.ndarray,
    R_inf: float,
    L: float,
    inductance: bool,
    resolution_decades: float,
    drt_rms: float,
    previous: Refined | None = None,
    rescale: float = 1.0,
) -> Refined | None:
    """Fit R_inf + jωL + ZARCs started from the peaks; None if the fit is not accepted.

    Parameters
    ----------
    omega
        Angular frequencies, rad/s.
    z_scaled
        Impedance / max |Z| of the kept points.
    weights
        Per-point weights (the DRT's; 0 for masked points).
    R, tau, width
        The peaks: area (scaled), position (s), FWHM (decades).
    R_inf, L
        The inversion's series resistance (scaled) and inductance (scaled ohm s).
    inductance
        Fit L (else it stays 0).
    resolution_decades
        FWHM of a single basis function (the narrowest peak the DRT draws).
    drt_rms
        Weighted residual RMS of the regularised inversion.
    previous
        The previous sweep's refinement (same grid, consecutive in time): its
        ZARCs start a single fit instead of the model search when they still
        describe the data (see the module docstring).
    rescale
        The previous sweep's max |Z| over this one's (its scaled values in this
        one's units).
    """
    if int(R.size) == 0:
        return None
    kept = weights > 0
    model = _Model(omega[kept], z_scaled[kept], weights[kept], inductance)
    # Peaks inside the measured range (with a margin), the largest first, at most
    # _MAX_TERMS (tiny ones are noise). Beyond it a ZARC is a resistor (above the top
    # frequency: R_inf's share) or a capacitor (below the lowest): not identifiable.
    model.log_tau_range = (
        -math.log(float(omega.max())) - _MARGIN_DECADES * _LN10,
        -math.log(float(omega[kept].min())) + _MARGIN_DECADES * _LN10,
    )
    inside = [
        i
        for i in np.argsort(-R)
        if model.log_tau_range[0] <= math.log(float(tau[i])) <= model.log_tau_range[1]
    ][:_MAX_TERMS]
    if not inside:
        return None
    # Peaks holding under _MIN_SHARE of the in-range area are noise the search would
    # drop one fit at a time.
    total = float(sum(R[i] for i in inside))
    inside = [i for i in inside if R[i] >= _MIN_SHARE * total]
    warm_state = None if previous is None else _warm_state(model, previous, rescale)
    search_due = previous is None or previous.searched + 1 >= _SEARCH_EVERY
    if warm_state is not None and not search_due:
        warm = _accepted(model, warm_state, drt_rms, warm_from=previous)
        if warm is not None and warm.rms / drt_rms <= _WARM_ACCEPT * warm.searched_rms_ratio:
            return warm
    # Without a warm-started model to fall back on, a search that explains the data
    # worse than γ may lack the bulk arc's term (:func:`_with_edge_term`).
    rescue_rms = drt_rms if warm_state is None else None
    state = _searched(model, R, tau, width, inside, R_inf, L, resolution_decades, rescue_rms)
    # A search can settle in a worse minimum than the model the sweeps before carried
    # (checked when the search is due): the lower criterion wins.
    if warm_state is not None and (state is None or warm_state.criterion < state.criterion):
        state = warm_state
    return None if state is None else _accepted(model, state, drt_rms)


def _searched(
    model: _Model,
    R: np.ndarray,
    tau: np.ndarray,
    width: np.ndarray,
    inside: list[int],
    R_inf: float,
    L: float,
    resolution_decades: float,
    rescue_rms: float | None = None,
) -> _State | None:
    """The model search from γ's peaks ``inside``: merge, drop, split by the criterion.

    ``rescue_rms``: the DRT's residual RMS, given when no warm-started model
    competes with the search. A model that explains the data worse than γ
    then gets a term at the top of the measured range (:func:`_with_edge_term`).
    """
    inductance = model.inductance
    terms = [
        (
            _log_resistance(float(R[i])),
            math.log(float(tau[i])),
            _alpha_from_width(float(width[i]), resolution_decades),
        )
        for i in inside
    ]
    series_start = [max(R_inf, 0.0)] + ([max(L, 0.0) * model.omega_max] if inductance else [])
    state = model.fit(series_start, terms)
    if state is None:
        return None
    # Backward: merge the two closest terms or drop the smallest while the information
    # criterion does not rise (a regularised γ splits peaks and rings beside them).
    state = _simplified(model, state)
    # Forward: split the broadest term in two while that lowers the criterion (two
    # processes under one peak of γ, a decade or so apart).
    for _ in range(_MAX_SPLITS):
        if len(state.terms) >= _MAX_TERMS:
            break
        broadest = int(np.argmin([term[2] for term in state.terms]))
        log_r, log_tau, alpha = state.terms[broadest]
        offset = _SPLIT_DECADES * _LN10
        halves = [
            (log_r - math.log(2.0), log_tau - offset, min(alpha + 0.1, 1.0)),
            (log_r - math.log(2.0), log_tau + offset, min(alpha + 0.1, 1.0)),
        ]
        split = model.fit(
            state.series,
            state.terms[:broadest] + halves + state.terms[broadest + 1 :],
        )
        if split is None or split.criterion >= state.criterion:
            break
        state = split
    if rescue_rms is not None and not _explains(model, state, rescue_rms):
        state = _with_edge_term(model, state)
    return model.polish(state.series, state.terms) or state


def _explains(model: _Model, state: _State, drt_rms: float) -> bool:
    """Whether the fit's weighted RMS is within ``_ACCEPT`` of the regularised DRT's."""
    rms = math.sqrt(state.cost / model.n_rows)
    return math.isfinite(rms) and rms <= _ACCEPT * drt_rms


def _with_edge_term(model: _Model, state: _State) -> _State:
    """The model with a ZARC added at the highest frequencies, if the criterion prefers it.

    A bulk arc whose apex lies above the top frequency shows in γ as a peak at
    the τ grid's edge, often beyond the range terms may start in, and a search
    from γ's other peaks then settles with a spurious term in its place (seen
    at the start of chunks deep in depletion, where R_int is ~500x R_gb: the
    sweeps a warm start carried were refined, the searched ones not).
    """
    edge_log_tau = model.log_tau_range[0]
    if len(state.terms) >= _MAX_TERMS or any(
        term[1] - edge_log_tau < _MERGE_DECADES * _LN10 for term in state.terms
    ):
        return state  # the model has a term up there already: its misfit is elsewhere
    total = sum(math.exp(term[0]) for term in state.terms)
    edge = (_log_resistance(0.01 * total), edge_log_tau, _ALPHA_BOUNDS[1] - 0.05)
    candidate = model.fit(state.series, [*state.terms, edge])
    if candidate is None or candidate.criterion >= state.criterion:
        return state
    return _simplified(model, candidate)


def _log_resistance(resistance: float) -> float:
    """ln R of a start value, inside the bounds (with room to move)."""
    return math.log(min(max(resistance, 2 * _R_BOUNDS[0]), _R_BOUNDS[1] / 2))


def _accepted(
    model: _Model,
    state: _State,
    drt_rms: float,
    warm_from: Refined | None = None,
) -> Refined | None:
    """The fit as a :class:`Refined`, or None if it explains the data worse than γ.

    ``warm_from``: the refinement a warm-started fit began at (None: a search's fit).
    """
    if not _explains(model, state, drt_rms):
        return None
    rms = math.sqrt(state.cost / model.n_rows)
    if warm_from is None:
        searched, searched_ratio = 0, rms / drt_rms
    else:
        searched, searched_ratio = warm_from.searched + 1, warm_from.searched_rms_ratio
    log_r, log_tau, alpha = (np.array(values) for values in zip(*state.terms, strict=True))
    return Refined(
        R=np.exp(log_r),
        R_stderr=np.exp(log_r) * _log_r_stderr(model, state),
        tau=np.exp(log_tau),
        alpha=alpha,
        R_inf=float(state.series[0]),
        L=float(state.series[1] / model.omega_max) if model.inductance else 0.0,
        rms=rms,
        drt_rms=drt_rms,
        searched=searched,
        searched_rms_ratio=searched_ratio,
    )


def _log_r_stderr(model: _Model, state: _State) -> np.ndarray:
    """Standard errors of the terms' ln R: σ² (JᵀJ)⁻¹ at the solution (NaN if singular)."""
    n_terms = len(state.terms)
    dof = model.n_rows - model.n_series - 3 * n_terms
    if state.normal is None or dof <= 0:
        return np.full(n_terms, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        try:
            covariance = np.linalg.inv(state.normal) * (state.cost / dof)
        except np.linalg.LinAlgError:
            return np.full(n_terms, np.nan)
        variance = np.diagonal(covariance)[model.n_series :: 3]
        return np.where(variance > 0, np.sqrt(np.abs(variance)), np.nan)


def _warm_state(model: _Model, previous: Refined, rescale: float) -> _State | None:
    """The fit started from the previous sweep's ZARCs; None if a τ left this sweep's range."""
    low, high = model.log_tau_range
    log_taus = np.log(previous.tau)
    if not (np.all(log_taus >= low) and np.all(log_taus <= high)):
        return None
    terms = [
        (_log_resistance(float(r) * rescale), float(log_tau), float(alpha))
        for r, log_tau, alpha in zip(previous.R, log_taus, previous.alpha, strict=True)
    ]
    series = [previous.R_inf * rescale] + (
        [previous.L * rescale * model.omega_max] if model.inductance else []
    )
    state = model.fit(series, terms, _FINAL_ITERATIONS, _WARM_DAMPING, _WARM_TOLERANCE)
    if state is not None and (
        _split(state.terms) or (previous.searched == 0 and _has_small_term(state.terms))
    ):
        # A term the search kept by a narrow margin (one process split in two, a
        # ring) must not be carried along the experiment: simplify as the search
        # does, once per searched model (a small process that is real stays small),
        # and whenever two terms have come within a decade (a ring that drifted onto
        # a peak and shares its area: both off, and the window counts two peaks).
        simpler = _simplified(model, state)
        if simpler is not state:
            state = model.polish(simpler.series, simpler.terms) or simpler
    return state


def _simplified(model: _Model, state: _State) -> _State:
    """Merge the two closest terms or drop the smallest while the criterion does not rise."""
    while len(state.terms) > 1:
        moves = [model.fit(state.series, _without_smallest(state.terms))]
        merged = _merge_closest(state.terms)
        if merged is not None:
            moves.append(model.fit(state.series, merged))
        best = min(
            (move for move in moves if move is not None),
            key=lambda move: move.criterion,
            default=None,
        )
        if best is None or best.criterion > state.criterion:
            break
        state = best
    return state


def _has_small_term(terms: list[tuple[float, float, float]]) -> bool:
    """Whether one of several terms holds under ``_CLEAR_SHARE`` of their R (a ring?)."""
    if len(terms) < 2:
        return False
    resistances = [math.exp(term[0]) for term in terms]
    return min(resistances) < _CLEAR_SHARE * sum(resistances)


def _split(terms: list[tuple[float, float, float]]) -> bool:
    """Whether two terms lie within ``_MERGE_DECADES`` of each other in τ."""
    log_taus = sorted(term[1] for term in terms)
    return any(
        later - earlier < _MERGE_DECADES * _LN10 for earlier, later in itertools.pairwise(log_taus)
    )


def _without_smallest(
    terms: list[tuple[float, float, float]],
) -> list[tuple[float, float, float]]:
    smallest = int(np.argmin([term[0] for term in terms]))
    return terms[:smallest] + terms[smallest + 1 :]


def _merge_closest(
    terms: list[tuple[float, float, float]],
) -> list[tuple[float, float, float]] | None:
    """The two terms closest in τ (within _MERGE_DECADES) as one; None if none are."""
    ordered = sorted(terms, key=lambda term: term[1])
    gaps = [later[1] - earlier[1] for earlier, later in itertools.pairwise(ordered)]
    if not gaps or min(gaps) > _MERGE_DECADES * _LN10:
        return None
    first = int(np.argmin(gaps))
    (log_r1, log_tau1, alpha1), (log_r2, log_tau2, alpha2) = ordered[first : first + 2]
    r1, r2 = math.exp(log_r1), math.exp(log_r2)
    share = r1 / (r1 + r2)
    one = (
        math.log(r1 + r2),
        share * log_tau1 + (1 - share) * log_tau2,
        max(min(alpha1, alpha2) - 0.05, _ALPHA_BOUNDS[0]),
    )
    return [*ordered[:first], one, *ordered[first + 2 :]]


@dataclass(frozen=True)
class _State:
    series: list[float]  # R_inf (and L ω_max), scaled
    terms: list[tuple[float, float, float]]  # (ln R, ln τ, α) per ZARC
    cost: float
    criterion: float  # Bayesian information criterion of the fit
    normal: np.ndarray | None = None  # JᵀJ at the solution


class _Model:
    """R_inf + jωL + Σ ZARC on the kept points, weighted residuals and Jacobian."""

    def __init__(
        self, omega: np.ndarray, z: np.ndarray, weights: np.ndarray, inductance: bool
    ) -> None:
        self.log_omega = np.log(omega)
        self.j_omega = 1j * omega
        self.omega_max = float(omega.max())
        self.z = z
        self.weights = weights
        self.inductance = inductance
        self.n_series = 2 if inductance else 1
        self.n_rows = 2 * omega.size
        self.log_tau_range = (-math.inf, math.inf)  # where a term's τ may go

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weighted residuals and their Jacobian at x.

        The rows are each point's real and imaginary parts interleaved (the
        complex arrays viewed as real ones, no copies): least squares does not
        care about the order of its rows.
        """
        n_series, w = self.n_series, self.weights
        resistance = np.exp(x[n_series::3])
        log_tau = x[n_series + 1 :: 3]
        alpha = x[n_series + 2 :: 3]
        # (jωτ)^α = (ωτ)^α e^{jαπ/2}: a real exponential and one phase per term.
        log_wt = self.log_omega + log_tau[:, np.newaxis]
        half_turn = 0.5 * math.pi * alpha
        phase = np.cos(half_turn) + 1j * np.sin(half_turn)
        power = np.exp(alpha[:, np.newaxis] * log_wt) * phase[:, np.newaxis]
        inverse = 1.0 / (1.0 + power)
        # One row of dZ/dx per parameter, written in place.
        rows = np.empty((x.size, w.size), dtype=np.complex128)
        terms = rows[n_series::3]  # dZ/d ln R = Z_k
        np.multiply(resistance[:, np.newaxis], inverse, out=terms)
        model = terms.sum(axis=0)
        model += x[0]
        rows[0] = 1.0
        if self.inductance:
            model += self.j_omega * (x[1] / self.omega_max)
            rows[1] = self.j_omega / self.omega_max
        # dZ/d ln τ = -α R u/(1+u)², dZ/dα = -R u ln(jωτ)/(1+u)².
        d_log_tau = terms * power
        d_log_tau *= inverse
        np.multiply(d_log_tau, -alpha[:, np.newaxis], out=rows[n_series + 1 :: 3])
        np.multiply(d_log_tau, -(log_wt + 0.5j * math.pi), out=rows[n_series + 2 :: 3])
        rows *= w
        model -= self.z
        model *= w
        return model.view(np.float64), rows.view(np.float64).T

    def polish(
        self, series: list[float], terms: list[tuple[float, float, float]], damping: float = 1e-3
    ) -> _State | None:
        """:meth:`fit` to the final tolerance: the model a result is made of."""
        return self.fit(series, terms, _FINAL_ITERATIONS, damping, _FINAL_TOLERANCE)

    def fit(
        self,
        series: list[float],
        terms: list[tuple[float, float, float]],
        max_iterations: int = _SEARCH_ITERATIONS,
        damping: float = 1e-3,
        tolerance: float = _SEARCH_TOLERANCE,
    ) -> _State | None:
        """Least squares from the given start; None with fewer data than unknowns.

        ``damping``: the solver's initial damping (light for a start near the
        minimum). ``tolerance``: the relative cost decrease at which it stops (the
        model search compares criteria that differ by ln n per parameter, far
        above the search's; a chosen model is polished, :meth:`polish`).
        """
        n_unknowns = self.n_series + 3 * len(terms)
        if self.n_rows <= n_unknowns + 1:
            return None
        x0 = list(series) + [value for term in terms for value in term]
        lower = [0.0] * self.n_series
        upper = [math.inf] * self.n_series
        low, high = self.log_tau_range
        for _, log_tau, _ in terms:
            # Around where the term started (it describes that peak, not another),
            # inside the measured range.
            lower += [
                math.log(_R_BOUNDS[0]),
                max(log_tau - _TAU_RANGE_DECADES * _LN10, low),
                _ALPHA_BOUNDS[0],
            ]
            upper += [
                math.log(_R_BOUNDS[1]),
                min(log_tau + _TAU_RANGE_DECADES * _LN10, high),
                _ALPHA_BOUNDS[1],
            ]
        solution = levenberg_marquardt(
            self.evaluate,
            np.array(x0),
            np.array(lower),
            np.array(upper),
            max_iterations=max_iterations,
            damping=damping,
            cost_tolerance=tolerance,
            gain_tolerance=tolerance,
        )
        cost = float(solution.cost)
        if not math.isfinite(cost):
            return None
        x = solution.x
        fitted = [
            tuple(float(value) for value in x[i : i + 3]) for i in range(self.n_series, x.size, 3)
        ]
        criterion = self.n_rows * math.log(max(cost, 1e-300) / self.n_rows) + n_unknowns * math.log(
            self.n_rows
        )
        return _State(
            series=[float(value) for value in x[: self.n_series]],
            terms=fitted,  # type: ignore[arg-type]
            cost=cost,
            criterion=criterion,
            normal=solution.normal,
        )
