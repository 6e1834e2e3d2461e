"""Which circuit to write for a new cell: candidates from the spectra, fitted and ranked.

:func:`suggest_circuit` looks at representative sweeps (first, middle and
last) the way a researcher reads a new spectrum:

* Kramers-Kronig: points the check rejects at the top of the band (a
  reference-electrode or cable artefact) are cropped (``kk.max_freq_hz``);
  a non-stationary low-frequency tail is truncated as in a run;
* the resolved processes: the RC decomposition the fit's start values use
  (:func:`~geis_pipeline.fit.initial.arc_decomposition`) and the DRT's peaks;
* the low-frequency slope (a diffusion tail or a blocking spike keeps -Z''
  rising where an arc closes onto the real axis), the high-frequency
  inductance (Z'' > 0 at the top) and intercept.

From these it writes candidate circuits in impedance.py syntax (the number
of arcs seen, one fewer and one more; with and without a series R when the
fastest arc sits at the top of the band; with and without a tail when the
slope suggests one), fits each to every representative sweep, gives each arc
its role by its Brug capacitance and time constant (bulk, gb, int; a second
arc of one class becomes a custom role with its own time-constant window),
and ranks them: circuits whose fits converged clear of the bounds with every
arc resolved first, then by the Bayesian information criterion summed over
the sweeps (AIC, chi-square and the verdicts are reported beside it).
:func:`suggestion_toml` writes the winner as a config holding only what
differs from the defaults, with comments saying why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from types import MappingProxyType

import numpy as np

from geis_pipeline.drt import DRTResult, invert_drt_batch
from geis_pipeline.errors import GeisPipelineError, SuggestError
from geis_pipeline.fit import (
    DEFAULT_ROLE_CLASSES,
    ArcCapacitance,
    FitOptions,
    FitResult,
    fit_circuit,
    fit_experiment,
)
from geis_pipeline.fit.initial import arc_decomposition, tail_exponent
from geis_pipeline.kk import MIN_POINTS, KKResult, check_kk
from geis_pipeline.spectrum import Spectrum

__all__ = [
    "Candidate",
    "Evidence",
    "SuggestResult",
    "format_ranking",
    "representative_steps",
    "suggest_circuit",
    "suggestion_toml",
]

#: Arcs (R||CPE blocks) a candidate circuit may have at most.
MAX_ARCS = 5
# An arc of the RC decomposition counts when its R is this fraction of |Z| at its apex.
_MIN_ARC_FRACTION = 0.02
# The inductance is visible when omega L at the top frequency reaches this fraction of |Z|.
_MIN_INDUCTIVE_FRACTION = 0.005
# A tail is suspected when -Z'' rises towards low frequency over the lowest points, as
# omega^-slope with at least this slope, and is at least this fraction of |Z| there.
_TAIL_POINTS = 3
_TAIL_MIN_SLOPE = 0.1
_TAIL_MIN_FRACTION = 0.01
# A tail with a CPE exponent above this is a blocking electrode's spike, below a diffusion tail.
_BLOCKING_ALPHA = 0.75
# The fastest arc "sits at the top of the band" (a bulk the intercept may stand for) when
# its time constant is within this many decades of 1/(2 pi f_max).
_TOP_EDGE_DECADES = 0.5
# Cropping the top of the band: at most this many decades, and at least half the points kept.
_MAX_CROP_DECADES = 2.0
# A candidate is adequate when its residuals are within this factor of the best candidate's,
# or within the verdict's default limit (noise ratio x KK noise, at least the floor).
_ADEQUATE_FACTOR = 2.0
_NOISE_RATIO = next(item.default for item in fields(FitOptions) if item.name == "noise_ratio")
_NOISE_FLOOR = next(item.default for item in fields(FitOptions) if item.name == "noise_floor")
# Rounds of cropping the top points the winner misses.
_MAX_CROP_ROUNDS = 3
# Candidates refitted to judge a crop (all are ranked again at the crop chosen).
_CROP_LEADERS = 3
# Verdict residuals the suggestion may accept (fit.noise_floor) when no candidate reaches the
# KK noise: beyond this the circuit does not describe the data and the config says so.
_MAX_ACCEPTED_RESIDUAL = 0.03
# Brug capacitance classes' boundaries, F/cm2: bulk below 1e-10, grain boundary below 1e-8.
_BULK_MAX_F_CM2 = DEFAULT_ROLE_CLASSES["bulk"].C_max_F_cm2
_GB_MAX_F_CM2 = DEFAULT_ROLE_CLASSES["gb"].C_max_F_cm2
# A built-in class is kept when the arc lies within this many decades of it (identification
# matches within one decade; the margin keeps a drifting arc matched along a run).
_CLASS_MARGIN_DECADES = 0.5
_FIT_FAILURES = frozenset(
    {"diverged", "not_converged", "bound", "unmatched", "unresolved", "misplaced"}
)


@dataclass(frozen=True)
class Evidence:
    """What one representative sweep shows before any circuit is fitted.

    Attributes
    ----------
    step
        Index of the sweep in the input.
    kk
        Its Kramers-Kronig check (with the crop applied).
    mask
        Points used (the KK check's points, without outliers).
    r_inf_ohm
        High-frequency intercept of the RC decomposition, ohm.
    inductance_H
        Series inductance of the RC decomposition, H.
    inductive
        Whether the top of the band is visibly inductive (Z'' > 0 or omega L
        at least 0.5 % of |Z|).
    arcs
        (R in ohm, tau in s) of the arcs the decomposition resolves, fast to slow.
    arcs_with_tail
        The same with a series CPE tail given a column of its own.
    tail_alpha
        The tail's CPE exponent from the low-frequency slope, None when the
        low-frequency end closes like an arc.
    low_phase_deg
        Phase of Z at the lowest frequency used, degrees.
    """

    step: int
    kk: KKResult
    mask: np.ndarray
    r_inf_ohm: float
    inductance_H: float
    inductive: bool
    arcs: tuple[tuple[float, float], ...]
    arcs_with_tail: tuple[tuple[float, float], ...]
    tail_alpha: float | None
    low_phase_deg: float


@dataclass(frozen=True)
class Candidate:
    """One candidate circuit, fitted to every representative sweep.

    Attributes
    ----------
    circuit
        impedance.py circuit string.
    roles
        Element -> role, from the fitted arcs' capacitances and time constants.
    role_classes, role_tau_windows
        Custom roles (a second arc of one class, an arc outside every built-in
        class): role -> (C_min, C_max) F/cm2 and role -> (tau_min, tau_max) s.
    n_arcs
        R||CPE blocks.
    n_processes
        Physical processes: arcs, a series R standing for the bulk, a tail.
    n_parameters
        Free parameters.
    fits
        One :class:`~geis_pipeline.fit.FitResult` per representative sweep,
        judged with the roles (and ``noise_floor``).
    aic, bic
        Akaike and Bayesian information criteria summed over the scored sweeps:
        n ln(chi2/n) + 2k (AIC) or + k ln n (BIC), n residuals (real and
        imaginary of every point used), chi2 their sum of squares (relative
        residuals), k free parameters. Lower is better.
    chi2
        Sum over the sweeps of the squared relative residuals.
    residual_rms
        Largest RMS relative residual among the sweeps.
    resolved
        Every arc of every fit resolved: R above its standard errors and not
        negligible; C determined unless the apex lies outside the band.
    converged
        Every fit converged clear of the bounds (inductance 0 and exponent 1
        excepted) with its required roles matched.
    ok
        Every fit's verdict is ok.
    reasons
        The verdicts' reason codes, each once.
    noise_floor
        The ``fit.noise_floor`` the suggestion writes (None: the default);
        the verdicts in ``fits`` used it.
    scored
        Per sweep, whether it counts: the criteria, residuals, ``resolved``,
        ``converged``, ``ok`` and ``reasons`` are over the sweeps that pass
        Kramers-Kronig (all of them when none does): no circuit can be judged
        on a spectrum that is not stationary.
    """

    circuit: str
    roles: Mapping[str, str]
    role_classes: Mapping[str, tuple[float, float]]
    role_tau_windows: Mapping[str, tuple[float, float]]
    n_arcs: int
    n_processes: int
    n_parameters: int
    fits: tuple[FitResult, ...]
    aic: float
    bic: float
    chi2: float
    residual_rms: float
    resolved: bool
    converged: bool
    ok: bool
    reasons: tuple[str, ...]
    noise_floor: float | None = None
    scored: tuple[bool, ...] = ()

    @property
    def sound(self) -> bool:
        """Converged clear of the bounds with every arc resolved: eligible to win."""
        return self.converged and self.resolved

    @property
    def arc_roles(self) -> tuple[str, ...]:
        """The roles of the R||CPE blocks, fast to slow at the first sweep."""
        first = self.fits[0]
        arcs = sorted(first.capacitances.values(), key=lambda arc: arc.tau_s)
        return tuple(arc.role or arc.resistor for arc in arcs)


@dataclass(frozen=True)
class SuggestResult:
    """Ranked candidate circuits for a set of spectra.

    Attributes
    ----------
    candidates
        Best first (see :mod:`geis_pipeline.suggest` for the order).
    steps
        Indices (into the input) of the representative sweeps.
    freq, z
        Those sweeps, Hz and ohm.
    evidence
        What each showed (:class:`Evidence`).
    drt
        Their DRTs (None when not computed or failed).
    area_cm2
        Electrode area used for the capacitance classes (None: compared as 1 cm2).
    max_freq_hz
        The crop applied above the band's artefact (None: none).
    notes
        What a user should know, in words (crops, an unknown area, residuals
        above the noise).
    n_sweeps
        Sweeps in the input.
    n_failed
        Candidate circuits that could not be fitted (too few points).
    """

    candidates: tuple[Candidate, ...]
    steps: tuple[int, ...]
    freq: tuple[np.ndarray, ...]
    z: tuple[np.ndarray, ...]
    evidence: tuple[Evidence, ...]
    drt: tuple[DRTResult, ...] | None
    area_cm2: float | None
    max_freq_hz: float | None
    notes: tuple[str, ...] = ()
    n_sweeps: int = 0
    n_failed: int = 0

    @property
    def best(self) -> Candidate:
        """The winner."""
        return self.candidates[0]


# -- input ---------------------------------------------------------------------------------------


def representative_steps(n: int) -> tuple[int, ...]:
    """The first, middle and last of ``n`` sweeps (fewer when n < 3)."""
    if n < 1:
        raise SuggestError("no spectra to suggest a circuit for", key="spectra")
    return tuple(sorted({0, n // 2, n - 1}))


def _pairs(spectra) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for index, item in enumerate(spectra):
        if isinstance(item, Spectrum):
            freq, z = item.freq, item.z
        else:
            try:
                freq, z = item
            except (TypeError, ValueError):
                raise SuggestError(
                    f"spectrum {index}: give a Spectrum or a (freq, z) pair", key="spectra"
                ) from None
        freq = np.asarray(freq, dtype=np.float64)
        z = np.asarray(z, dtype=np.complex128)
        if freq.shape != z.shape or freq.ndim != 1 or freq.size < MIN_POINTS:
            raise SuggestError(
                f"spectrum {index}: needs matching 1-D freq and z of >= {MIN_POINTS} points",
                key="spectra",
            )
        if not (np.all(np.isfinite(freq)) and np.all(freq > 0) and np.all(np.isfinite(z))):
            raise SuggestError(
                f"spectrum {index}: frequencies must be finite and > 0, Z finite", key="spectra"
            )
        pairs.append((freq, z))
    return pairs


# -- what the sweeps show ------------------------------------------------------------------------


def _kk_all(pairs, max_freq_hz: float | None, kk_options: Mapping[str, object]):
    return [check_kk(freq, z, max_freq_hz=max_freq_hz, **kk_options) for freq, z in pairs]


def _auto_crop(pairs, kk_options) -> tuple[float | None, list[KKResult]]:
    """The highest crop of the band's top that makes the most sweeps pass Kramers-Kronig.

    None (no crop) unless cropping makes more sweeps pass than the whole band.
    """
    baseline = _kk_all(pairs, None, kk_options)
    passed = sum(result.ok for result in baseline)
    if passed == len(pairs):
        return None, baseline
    top = np.unique(np.concatenate([freq for freq, _ in pairs]))[::-1]
    n_min = min(freq.size for freq, _ in pairs)
    best: tuple[int, float | None, list[KKResult]] = (passed, None, baseline)
    for dropped in range(1, top.size):
        if top[dropped] < top[0] / 10**_MAX_CROP_DECADES or dropped > n_min // 2:
            break
        limit = _crop_between(top[dropped], top[dropped - 1])
        try:
            results = _kk_all(pairs, limit, kk_options)
        except GeisPipelineError:  # too few points left
            break
        count = sum(result.ok for result in results)
        if count > best[0]:
            best = (count, limit, results)
            if count == len(pairs):
                break
    return best[1], best[2]


def _evidence(step: int, freq: np.ndarray, z: np.ndarray, kk: KKResult) -> Evidence:
    mask = kk.points_used
    f, zz = freq[mask], z[mask]
    r_inf, inductance, arcs, _ = arc_decomposition(f, zz)
    alpha = tail_exponent(f, zz)
    _, _, arcs_tail, _ = arc_decomposition(f, zz, tails=[("CPE", alpha)])
    order = np.argsort(f)
    top = order[-3:]
    omega_max = 2 * np.pi * float(f.max())
    inductive = bool(
        np.any(zz.imag[top] > 0)
        or inductance * omega_max >= _MIN_INDUCTIVE_FRACTION * abs(zz[order[-1]])
    )
    phase = float(np.degrees(np.angle(zz[order[0]])))
    tail = alpha if _rising_tail(f[order], zz[order]) else None
    return Evidence(
        step=step,
        kk=kk,
        mask=mask,
        r_inf_ohm=r_inf,
        inductance_H=inductance,
        inductive=inductive,
        arcs=tuple(_significant(arcs, f, zz)),
        arcs_with_tail=tuple(_significant(arcs_tail, f, zz)),
        tail_alpha=tail,
        low_phase_deg=phase,
    )


def _rising_tail(freq: np.ndarray, z: np.ndarray) -> bool:
    """Whether -Z'' still rises towards the lowest frequencies (sorted low to high).

    An arc closing onto the real axis has -Z'' falling as omega^alpha there; a
    diffusion tail or a blocking spike has it rising as omega^-alpha. The tail
    must also stand out of the noise: -Z'' at least 1 % of |Z|.
    """
    minus_imag = -z.imag[: _TAIL_POINTS + 1]
    if minus_imag.size < 2 or not np.all(minus_imag > _TAIL_MIN_FRACTION * np.abs(z[0])):
        return False
    slope = np.polyfit(np.log(freq[: minus_imag.size]), np.log(minus_imag), 1)[0]
    return bool(slope < -_TAIL_MIN_SLOPE)


def _significant(
    arcs: list[tuple[float, float]], freq: np.ndarray, z: np.ndarray
) -> list[tuple[float, float]]:
    """The arcs that stand out of the spectrum where they relax.

    An arc counts when its R is at least 2 % of |Z| at its apex frequency (the
    nearest measured point): a small bulk arc at 5 MHz beside a kilo-ohm
    interface is as visible, with modulus weighting, as the interface itself.
    """
    order = np.argsort(freq)
    log_f, modulus = np.log(freq[order]), np.abs(z[order])
    kept = []
    for resistance, tau in arcs:
        at_apex = float(np.interp(math.log(1 / (2 * math.pi * tau)), log_f, modulus))
        if resistance >= _MIN_ARC_FRACTION * at_apex:
            kept.append((resistance, tau))
    return kept


# -- candidates ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Structure:
    inductance: bool
    series_r: bool
    n_arcs: int
    tail: str | None  # "CPE" or None

    @property
    def circuit(self) -> str:
        parts = (["L0"] if self.inductance else []) + (["R0"] if self.series_r else [])
        parts += [f"p(R{number},CPE{number})" for number in range(1, self.n_arcs + 1)]
        if self.tail:
            parts.append(f"{self.tail}{self.n_arcs + 1}")
        return "-".join(parts)


def _structures(evidence: Sequence[Evidence], freq_max: float, max_arcs: int) -> list[_Structure]:
    inductance = any(item.inductive for item in evidence)
    tail_seen = any(item.tail_alpha is not None for item in evidence)
    n_plain = max(len(item.arcs) for item in evidence)
    n_tail = max(len(item.arcs_with_tail) for item in evidence)
    tau_top = 1 / (2 * np.pi * freq_max)
    at_top = any(
        item.arcs and math.log10(item.arcs[0][1] / tau_top) <= _TOP_EDGE_DECADES
        for item in evidence
    )
    variants = [(False, n_plain)] + ([("CPE", n_tail)] if tail_seen else [])
    structures = []
    # Every count from one arc (none, with a tail) to one more than the decomposition saw:
    # it splits an arc whose shape is not a CPE's into two, more often than it misses one.
    for tail, seen in variants:
        for n_arcs in range(0 if tail else 1, min(max_arcs, max(seen, 1) + 1) + 1):
            for series_r in (True, False) if at_top else (True,):
                if not series_r and n_arcs == 0:
                    continue
                structures.append(_Structure(inductance, series_r, n_arcs, tail or None))
    return structures


def _assign_roles(
    fit: FitResult, area_cm2: float | None, structure: _Structure, band_hz: tuple[float, float]
) -> tuple[dict[str, str], dict[str, tuple[float, float]], dict[str, tuple[float, float]]]:
    """Roles of a fitted candidate: each arc by its Brug capacitance and time-constant order.

    The bulk relaxes fastest (below 1e-10 F/cm2, or its apex above the band),
    the grain boundary below 1e-8 F/cm2, the interface above. Of several arcs
    of one class the main role goes to the fastest bulk, the largest
    grain-boundary and interface arcs; the others become ``<class>2``,
    ``<class>3``... with the class and a time-constant window reaching to
    halfway (in log tau) to their neighbours, so that identification tells
    them apart along a run. An arc far outside its built-in class gets a class
    of whole decades around it.

    Returns
    -------
    roles, role_classes, role_tau_windows
    """
    area = area_cm2 or 1.0
    arcs = sorted(fit.capacitances.values(), key=lambda arc: arc.tau_s)
    bases = []
    for position, arc in enumerate(arcs):
        per_cm2 = arc.C_F / area
        above_band = position == 0 and not arc.C_resolved and arc.f_apex_hz > band_hz[1]
        if above_band or per_cm2 < _BULK_MAX_F_CM2:
            bases.append("bulk")
        elif per_cm2 < _GB_MAX_F_CM2:
            bases.append("gb")
        else:
            bases.append("int")
    names: list[str] = [""] * len(arcs)
    for base in ("bulk", "gb", "int"):
        members = [index for index, value in enumerate(bases) if value == base]
        if not members:
            continue
        main = members[0] if base == "bulk" else max(members, key=lambda i: arcs[i].R_ohm)
        names[main] = base
        for number, index in enumerate([m for m in members if m != main], start=2):
            names[index] = f"{base}{number}"
    roles: dict[str, str] = {}
    classes: dict[str, tuple[float, float]] = {}
    windows: dict[str, tuple[float, float]] = {}
    taus = [arc.tau_s for arc in arcs]
    for index, (arc, name) in enumerate(zip(arcs, names, strict=True)):
        roles[arc.resistor] = name
        per_cm2 = arc.C_F / area
        base = DEFAULT_ROLE_CLASSES[bases[index]]
        outside = _decades_outside(per_cm2, base.C_min_F_cm2, base.C_max_F_cm2)
        if name in DEFAULT_ROLE_CLASSES:
            if outside > _CLASS_MARGIN_DECADES and arc.C_resolved:
                classes[name] = _class_around(per_cm2)
            continue
        classes[name] = (
            (base.C_min_F_cm2, base.C_max_F_cm2)
            if outside <= _CLASS_MARGIN_DECADES
            else _class_around(per_cm2)
        )
        low = math.sqrt(taus[index - 1] * taus[index]) if index > 0 else taus[index] / 100
        high = (
            math.sqrt(taus[index] * taus[index + 1]) if index + 1 < len(taus) else taus[index] * 100
        )
        windows[name] = (_round(low), _round(high))
    if structure.inductance:
        roles["L0"] = "cable"
    if structure.series_r:
        roles["R0"] = "series" if "bulk" in names else "bulk"
    if structure.tail:
        tail = f"{structure.tail}{structure.n_arcs + 1}"
        alpha = fit.parameters.get(f"{tail}_1", 0.5)
        roles[tail] = "blocking" if alpha >= _BLOCKING_ALPHA else "diffusion"
    return roles, classes, windows


def _decades_outside(value: float, low: float, high: float) -> float:
    if not value > 0:
        return math.inf
    if value < low:
        return math.log10(low / value)
    if value > high:
        return math.log10(value / high)
    return 0.0


def _class_around(value: float) -> tuple[float, float]:
    """A capacitance class of whole decades, at least one decade either side of ``value``."""
    exponent = math.floor(math.log10(value))
    return (10.0 ** (exponent - 1), 10.0 ** (exponent + 2))


def _round(value: float) -> float:
    return float(f"{value:.2g}")


# -- fitting and ranking -------------------------------------------------------------------------


def _fit_candidate(
    structure: _Structure,
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    evidence: Sequence[Evidence],
    area_cm2: float | None,
) -> Candidate | None:
    """Fit one structure to every representative sweep, give its arcs roles, judge it.

    None when the sweeps have too few points for its parameters.
    """
    circuit = structure.circuit
    plain = FitOptions.build(circuit, area_cm2=area_cm2, required_roles=())
    n_free = plain._layout.free_index.size
    if any(2 * int(item.mask.sum()) <= n_free for item in evidence):
        return None
    # A chain, as in a run: each sweep warm-started from the one before, a fresh start
    # where that degrades (one cold fit alone can end in a local minimum).
    first_pass = fit_experiment(
        pairs,
        plain,
        masks=[item.mask for item in evidence],
        kk_ok=[item.kk.ok for item in evidence],
        noise_rms=[item.kk.rms for item in evidence],
    )
    reference = first_pass[0]
    band = _band(pairs[0][0], evidence[0].mask)
    roles, classes, windows = _assign_roles(reference, area_cm2, structure, band)
    options = FitOptions.build(
        circuit,
        roles=roles,
        role_classes=classes,
        role_tau_windows=windows,
        area_cm2=area_cm2,
    )
    fits = _judged(options, pairs, evidence, first_pass)
    return _candidate(structure, options, fits, pairs, evidence, roles, classes, windows)


def _judged(
    options: FitOptions,
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    evidence: Sequence[Evidence],
    solutions: Sequence[FitResult],
) -> tuple[FitResult, ...]:
    """Each solution re-judged with ``options`` (roles, verdict limits), warm from itself."""
    fits: list[FitResult] = []
    for (freq, z), item, solution in zip(pairs, evidence, solutions, strict=True):
        fits.append(
            fit_circuit(
                freq,
                z,
                options,
                mask=item.mask,
                initial=solution.vector,
                kk_ok=item.kk.ok,
                noise_rms=item.kk.rms,
                previous=fits[-1] if fits else None,
            )
        )
    return tuple(fits)


def _candidate(
    structure: _Structure,
    options: FitOptions,
    fits: Sequence[FitResult],
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    evidence: Sequence[Evidence],
    roles: Mapping[str, str],
    classes: Mapping[str, tuple[float, float]],
    windows: Mapping[str, tuple[float, float]],
    noise_floor: float | None = None,
) -> Candidate:
    k = int(options._layout.free_index.size)
    # A sweep that fails Kramers-Kronig is judged by no circuit: the others score.
    scored = tuple(item.kk.ok for item in evidence)
    if not any(scored):
        scored = (True,) * len(evidence)
    aic = bic = chi2_total = 0.0
    resolved = True
    counted = []
    for fit, (freq, _), item, counts in zip(fits, pairs, evidence, scored, strict=True):
        if not counts:
            continue
        counted.append(fit)
        used = fit.mask
        residuals = np.concatenate([fit.residuals_real[used], fit.residuals_imag[used]])
        n = residuals.size
        chi2 = float(residuals @ residuals) if np.all(np.isfinite(residuals)) else math.inf
        chi2_total += chi2
        log_term = n * math.log(max(chi2, 1e-300) / n) if math.isfinite(chi2) else math.inf
        aic += log_term + 2 * k
        bic += log_term + k * math.log(n)
        band = _band(freq, item.mask)
        resolved = resolved and all(_arc_resolved(arc, band) for arc in fit.capacitances.values())
    reasons = tuple(dict.fromkeys(reason for fit in counted for reason in fit.reasons))
    n_processes = (
        structure.n_arcs
        + (structure.tail is not None)
        + (structure.series_r and roles.get("R0") == "bulk")
    )
    return Candidate(
        circuit=structure.circuit,
        roles=MappingProxyType(dict(roles)),
        role_classes=MappingProxyType(dict(classes)),
        role_tau_windows=MappingProxyType(dict(windows)),
        n_arcs=structure.n_arcs,
        n_processes=int(n_processes),
        n_parameters=k,
        fits=tuple(fits),
        aic=aic,
        bic=bic,
        chi2=chi2_total,
        residual_rms=max(fit.residual_rms for fit in counted),
        resolved=resolved,
        converged=not (set(reasons) & _FIT_FAILURES),
        ok=all(fit.ok for fit in counted),
        reasons=reasons,
        noise_floor=noise_floor,
        scored=scored,
    )


_BAND_MARGIN = 10**0.25  # as the verdict's: an apex this far outside the band is not in it


def _arc_resolved(arc: ArcCapacitance, band: tuple[float, float]) -> bool:
    """R determined; C too unless the apex lies outside the band (an arc seen in part)."""
    if not arc.R_resolved:
        return False
    return arc.C_resolved or not (band[0] / _BAND_MARGIN <= arc.f_apex_hz <= band[1] * _BAND_MARGIN)


def _band(freq: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    used = freq[mask]
    return float(used.min()), float(used.max())


def _accept_residuals(
    candidate: Candidate,
    structure: _Structure,
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    evidence: Sequence[Evidence],
    area_cm2: float | None,
) -> Candidate:
    """The winner re-judged with a noise floor at its residuals, when only they fail.

    Real cells often fit to 1-2 % RMS where their KK residual is 0.3 %: the
    CPE arcs do not describe every detail of the spectrum. When the winner is
    sound and its only failure on the sweeps that pass KK is the residual,
    below 2.5 % RMS, the suggestion accepts 1.2x its residuals
    (``fit.noise_floor``, rounded up to 0.25 %) and says so.
    """
    kk_passed = [fit for fit, item in zip(candidate.fits, evidence, strict=True) if item.kk.ok]
    if not candidate.sound or not kk_passed:
        return candidate
    if not any("residual" in fit.reasons for fit in kk_passed):
        return candidate
    worst = max(fit.residual_rms for fit in kk_passed)
    if not worst * 1.2 <= _MAX_ACCEPTED_RESIDUAL:
        return candidate
    floor = math.ceil(worst * 1.2 / 0.0025) * 0.0025
    floor = float(f"{floor:.4g}")
    options = FitOptions.build(
        candidate.circuit,
        roles=candidate.roles,
        role_classes=candidate.role_classes,
        role_tau_windows=candidate.role_tau_windows,
        area_cm2=area_cm2,
        noise_floor=floor,
    )
    fits = _judged(options, pairs, evidence, candidate.fits)
    return _candidate(
        structure,
        options,
        fits,
        pairs,
        evidence,
        candidate.roles,
        candidate.role_classes,
        candidate.role_tau_windows,
        noise_floor=floor,
    )


def _ranked(
    steps: Sequence[int],
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    checks: Sequence[KKResult],
    area_cm2: float | None,
    max_arcs: int,
    only: Sequence[_Structure] | None = None,
) -> tuple[list[Evidence], list[tuple[Candidate, _Structure]], int]:
    """Evidence, the fitted candidates best first (with their structures), structures tried.

    ``only``: fit these structures instead of those the evidence suggests.
    """
    evidence = [
        _evidence(step, freq, z, check)
        for step, (freq, z), check in zip(steps, pairs, checks, strict=True)
    ]
    freq_max = max(
        float(freq[item.mask].max()) for (freq, _), item in zip(pairs, evidence, strict=True)
    )
    structures = list(only) if only is not None else _structures(evidence, freq_max, max_arcs)
    fitted = []
    for structure in structures:
        candidate = _fit_candidate(structure, pairs, evidence, area_cm2)
        if candidate is not None:
            fitted.append((candidate, structure))
    n_tried = len(structures)
    if not fitted:
        raise SuggestError(
            "the sweeps have too few points for any candidate circuit", key="spectra"
        )
    _sort(fitted, evidence)
    if not fitted[0][1].inductance:
        # An inductance next to a bulk arc at the top of the band rarely shows as Z'' > 0:
        # the winner is also tried with one, and the information criterion decides.
        structure = replace(fitted[0][1], inductance=True)
        inductive = _fit_candidate(structure, pairs, evidence, area_cm2)
        n_tried += 1
        if inductive is not None:
            fitted.append((inductive, structure))
            _sort(fitted, evidence)
    return evidence, fitted, n_tried


def _sort(fitted: list[tuple[Candidate, _Structure]], evidence: Sequence[Evidence]) -> None:
    """Best first: sound and adequate, then sound, then the rest; by BIC within each.

    Adequate: residuals within twice the best candidate's, or within the
    verdict's limit (2.5x the KK noise, at least 1 %): a sound circuit that
    leaves much of the spectrum unexplained does not beat one that explains it.
    """
    best = min(candidate.residual_rms for candidate, _ in fitted)
    noise = max(
        (item.kk.rms for item in evidence if item.kk.ok), default=max(i.kk.rms for i in evidence)
    )
    limit = max(_ADEQUATE_FACTOR * best, _NOISE_RATIO * noise, _NOISE_FLOOR)

    def key(item: tuple[Candidate, _Structure]) -> tuple[bool, bool, float]:
        candidate = item[0]
        adequate = candidate.residual_rms <= limit
        return (not (candidate.sound and adequate), not candidate.sound, candidate.bic)

    fitted.sort(key=key)


def _top_misfit_crop(ranked, pairs, kk_threshold: float) -> float | None:
    """A crop below the run of top points the winner misses, None when it misses none.

    A top point is missed when its residual exceeds 3x the sweep's median and
    twice the KK threshold; the run stops at the first point that is not, and
    at a third of the points. Sweeps that fail KK do not vote.
    """
    evidence, fitted, _ = ranked
    winner = fitted[0][0]
    crops = []
    for fit, (freq, _), item in zip(winner.fits, pairs, evidence, strict=True):
        if not item.kk.ok:
            continue
        used = np.flatnonzero(item.mask)
        order = used[np.argsort(freq[used])[::-1]]
        residual = np.hypot(fit.residuals_real[order], fit.residuals_imag[order])
        limit = max(3.0 * float(np.median(residual)), 2.0 * kk_threshold)
        missed = 0
        while missed < order.size // 3 and residual[missed] > limit:
            missed += 1
        if missed:
            crops.append(_crop_between(freq[order[missed]], freq[order[missed - 1]]))
    return min(crops) if crops else None


def _crop_between(kept: float, dropped: float) -> float:
    """A round frequency between the last kept and the first dropped point, Hz."""
    middle = math.sqrt(kept * dropped)
    rounded = float(f"{middle:.2g}")
    return rounded if kept <= rounded < dropped else middle


def _kk_rms(ranked) -> float:
    """The winner's worst residual among the sweeps that pass KK (all when none does)."""
    evidence, fitted, _ = ranked
    winner = fitted[0][0]
    passed = [
        fit.residual_rms for fit, item in zip(winner.fits, evidence, strict=True) if item.kk.ok
    ]
    return max(passed or [fit.residual_rms for fit in winner.fits])


def suggest_circuit(
    spectra: Sequence[Spectrum] | Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    area_cm2: float | None = None,
    steps: Sequence[int] | None = None,
    max_freq_hz: float | str | None = "auto",
    max_arcs: int = 4,
    drt: bool = True,
    kk_threshold: float = 0.01,
) -> SuggestResult:
    """Propose, fit and rank candidate circuits for a new cell.

    Parameters
    ----------
    spectra
        The sweeps of an experiment (:class:`Spectrum` or ``(freq, z)``
        pairs, freq in Hz, Z in ohm), in time order.
    area_cm2
        Electrode area, cm2: the roles' capacitance classes are per cm2
        (None: the cell's capacitances are compared as if it were 1 cm2).
    steps
        Indices of the sweeps to use (default: first, middle and last).
    max_freq_hz
        Crop points above this frequency, Hz; ``"auto"`` (default) crops the
        top of the band when that makes more sweeps pass Kramers-Kronig;
        None keeps every point.
    max_arcs
        Most R||CPE blocks a candidate has (1..5).
    drt
        Also compute the DRT of the sweeps (for the figures and the ranking
        table; the candidates come from the RC decomposition either way).
    kk_threshold
        Kramers-Kronig pass threshold, RMS relative residual (as ``kk.threshold``).

    Returns
    -------
    SuggestResult
        ``result.best`` is the winner; :func:`suggestion_toml` writes it as a config.

    Raises
    ------
    SuggestError
        No spectra, a malformed spectrum, a step out of range or an option out of range.
    """
    pairs_all = _pairs(spectra)
    if area_cm2 is not None and not (area_cm2 > 0 and math.isfinite(area_cm2)):
        raise SuggestError(f"electrode area must be > 0 cm2, got {area_cm2}", key="area_cm2")
    if not (isinstance(max_arcs, int) and 1 <= max_arcs <= MAX_ARCS):
        raise SuggestError(f"must be a whole number in 1..{MAX_ARCS}", key="max_arcs")
    if steps is None:
        steps = representative_steps(len(pairs_all))
    steps = tuple(int(step) for step in steps)
    if not steps or any(not 0 <= step < len(pairs_all) for step in steps):
        raise SuggestError(
            f"steps must be indices into the {len(pairs_all)} spectra, got {steps}", key="steps"
        )
    pairs = [pairs_all[step] for step in steps]
    kk_options = {"threshold": kk_threshold}
    notes: list[str] = []
    if max_freq_hz == "auto":
        crop, checks = _auto_crop(pairs, kk_options)
    elif max_freq_hz is None or (isinstance(max_freq_hz, int | float) and max_freq_hz > 0):
        crop = None if max_freq_hz is None else float(max_freq_hz)
        checks = _kk_all(pairs, crop, kk_options)
    else:
        raise SuggestError(
            f"must be > 0 Hz, None or 'auto', got {max_freq_hz!r}", key="max_freq_hz"
        )
    ranked = _ranked(steps, pairs, checks, area_cm2, max_arcs)
    if max_freq_hz == "auto":
        # Lin-KK follows an artefact no passive circuit does (its resistances may be
        # negative): where the winner misses a run of the top points, crop them; the leading
        # candidates decide whether that helps, then all are ranked again at the new crop.
        cropped = False
        for _ in range(_MAX_CROP_ROUNDS):
            lower = _top_misfit_crop(ranked, pairs, kk_threshold)
            if lower is None or (crop is not None and lower >= crop):
                break
            leaders = [structure for _, structure in ranked[1][:_CROP_LEADERS]]
            try:
                trial_checks = _kk_all(pairs, lower, kk_options)
                trial = _ranked(steps, pairs, trial_checks, area_cm2, max_arcs, only=leaders)
            except GeisPipelineError:
                break
            if not _kk_rms(trial) < _kk_rms(ranked):
                break
            crop, checks, ranked, cropped = lower, trial_checks, trial, True
        if cropped:
            ranked = _ranked(steps, pairs, checks, area_cm2, max_arcs)
    evidence, fitted, n_tried = ranked
    if crop is not None and max_freq_hz == "auto":
        negative = any(np.any(z.real[freq > crop] < 0) for freq, z in pairs)
        notes.append(
            f"the points above {crop:.3g} Hz are not those of a passive cell (Kramers-Kronig "
            "or the best fits miss them"
            + ("; Z' < 0 there: an instrument or reference-electrode artefact" if negative else "")
            + "): cropped (kk.max_freq_hz)"
        )
    for item in evidence:
        if not item.kk.ok:
            notes.append(
                f"sweep {item.step} fails Kramers-Kronig ({item.kk.rms:.2%} RMS): "
                "its fit cannot be ok whatever the circuit"
            )
    if area_cm2 is None:
        notes.append(
            "no electrode area: capacitances are compared with the classes (F/cm2) as if the "
            "cell were 1 cm2; give the area (--area-cm2, experiment.area_cm2) for per-cm2 roles"
        )
    candidates = [candidate for candidate, _ in fitted]
    winner = _accept_residuals(candidates[0], fitted[0][1], pairs, evidence, area_cm2)
    if winner.noise_floor is not None:
        kk_rms = max(item.kk.rms for item in evidence if item.kk.ok)
        notes.append(
            f"no candidate fits to the noise: the best leaves {candidates[0].residual_rms:.2%} "
            "on the sweeps that pass KK "
            f"RMS (KK {kk_rms:.2%}); the config accepts residuals up to {winner.noise_floor:.2%} "
            "(fit.noise_floor): remove that line to be strict"
        )
    candidates[0] = winner
    drt_results = None
    if drt:
        try:
            drt_results = tuple(
                invert_drt_batch(pairs, masks=[item.mask for item in evidence], solver="NNLS")
            )
        except GeisPipelineError as exc:
            notes.append(f"DRT not computed: {exc}")
    return SuggestResult(
        candidates=tuple(candidates),
        steps=steps,
        freq=tuple(freq for freq, _ in pairs),
        z=tuple(z for _, z in pairs),
        evidence=tuple(evidence),
        drt=drt_results,
        area_cm2=area_cm2,
        max_freq_hz=crop,
        notes=tuple(notes),
        n_sweeps=len(pairs_all),
        n_failed=n_tried - len(candidates),
    )


# -- output --------------------------------------------------------------------------------------


def _verdicts(candidate: Candidate) -> str:
    return f"{sum(fit.ok for fit in candidate.fits)}/{len(candidate.fits)}"


def format_ranking(result: SuggestResult, limit: int = 8) -> str:
    """The ranking as a text table, the winner's processes, and the notes."""
    steps = ", ".join(str(step) for step in result.steps)
    lines = [
        f"Candidate circuits on sweeps {steps} of {result.n_sweeps} "
        "(best first: converged with every arc resolved, then BIC; lower is better)",
        f"{'rank':>4}  {'circuit':<44} {'proc':>4} {'k':>3} {'BIC':>9} {'AIC':>9} "
        f"{'chi2':>9} {'RMS':>7}  {'resolved':<8} {'ok':>4}  reasons",
    ]
    for rank, candidate in enumerate(result.candidates[:limit], start=1):
        lines.append(
            f"{rank:>4}  {candidate.circuit:<44} {candidate.n_processes:>4} "
            f"{candidate.n_parameters:>3} {candidate.bic:>9.1f} {candidate.aic:>9.1f} "
            f"{candidate.chi2:>9.3g} {candidate.residual_rms:>7.2%}  "
            f"{'yes' if candidate.resolved else 'no':<8} {_verdicts(candidate):>4}  "
            f"{','.join(candidate.reasons) or '-'}"
        )
    if len(result.candidates) > limit:
        lines.append(f"      ... and {len(result.candidates) - limit} more")
    lines.append(f"Winner: {result.best.circuit}")
    lines.extend(f"  {line}" for line in _role_lines(result.best, result.area_cm2))
    lines.extend(f"Note: {note}" for note in result.notes)
    return "\n".join(lines)


def _role_lines(candidate: Candidate, area_cm2: float | None) -> list[str]:
    """One line per role of the winner at the first sweep: what it is and why."""
    fit = candidate.fits[0]
    lines = []
    for element, role in candidate.roles.items():
        lines.append(f"{element} = {role}: {_role_reason(fit, element, role, area_cm2)}")
    return lines


def _role_reason(fit: FitResult, element: str, role: str, area_cm2: float | None) -> str:
    unit, scale = ("ohm cm2", area_cm2) if area_cm2 else ("ohm", 1.0)
    c_unit = "F/cm2" if area_cm2 else "F"
    arc = next((item for item in fit.capacitances.values() if item.resistor == element), None)
    if role == "cable":
        return f"cable inductance {fit.parameters.get(element, math.nan):.3g} H"
    if arc is None and role in ("series", "bulk") and element in fit.parameters:
        resistance = fit.parameters[element] * scale
        what = (
            "high-frequency intercept: the bulk relaxes above the band"
            if role == "bulk"
            else "series resistance besides the bulk arc"
        )
        return f"{what}, R {resistance:.4g} {unit}"
    if role in ("diffusion", "blocking"):
        alpha = fit.parameters.get(f"{element}_1", math.nan)
        what = "diffusion tail" if role == "diffusion" else "blocking electrode's capacitive spike"
        return f"low-frequency {what}, CPE exponent {alpha:.2f}"
    if arc is None:
        return role
    c = arc.C_F / (area_cm2 or 1.0)
    text = (
        f"C {c:.2g} {c_unit}, tau {arc.tau_s:.2g} s (apex {arc.f_apex_hz:.3g} Hz), "
        f"R {arc.R_ohm * scale:.4g} {unit}, alpha {arc.alpha:.2f}"
    )
    if not arc.C_resolved:
        text += "; apex outside the band: C not determined"
    return text


def _default_fit_circuit() -> str:
    from geis_pipeline.config import FitConfig  # config is a leaf: no import cycle at load

    return FitConfig().circuit


def suggestion_toml(
    result: SuggestResult,
    candidate: Candidate | None = None,
    *,
    area_cm2: float | None = None,
    source: str | None = None,
) -> str:
    """The winner (or ``candidate``) as a config: only what differs from the defaults.

    Parameters
    ----------
    result
        From :func:`suggest_circuit`.
    candidate
        Another of ``result.candidates`` to write instead of the winner.
    area_cm2
        Write ``experiment.area_cm2`` (an area the files do not state).
    source
        The file or folder the spectra came from (named in the header).

    Returns
    -------
    str
        TOML text that :func:`geis_pipeline.config.parse_config` loads; each
        key carries a comment saying why.
    """
    from geis_pipeline import __version__
    from geis_pipeline.config import DRTConfig, toml_key, toml_value

    chosen = candidate or result.best
    steps = ", ".join(str(step) for step in result.steps)
    lines = [
        f"# Suggested by `geis-pipeline suggest` (geis-pipeline {__version__}) from sweeps "
        f"{steps} of {result.n_sweeps}" + (f" of {source}" if source else "") + ".",
        "# Only what differs from the defaults (configs/default.toml) is set; each key says why.",
        f"# {len(result.candidates)} candidates ranked (converged with every arc resolved "
        "first, then BIC summed over the sweeps):",
    ]
    for rank, item in enumerate(result.candidates[:5], start=1):
        marker = " <- this config" if item is chosen else ""
        lines.append(
            f"#   {rank}. {item.circuit}  BIC {item.bic:.1f}, processes {item.n_processes}, "
            f"RMS {item.residual_rms:.2%}, arcs {'resolved' if item.resolved else 'NOT resolved'}"
            f", {_verdicts(item)} fits ok{marker}"
        )
    lines.extend(f"# Note: {note}" for note in result.notes)
    lines.append("")
    if area_cm2 is not None:
        lines += [
            "[experiment]",
            f"area_cm2 = {toml_value(float(area_cm2))}  # given to suggest: the files state none",
            "",
        ]
    elif result.area_cm2 is None:
        lines += [
            "[experiment]",
            "# area_cm2 = ...  # no electrode area known: set it for ohm cm2 and per-cm2 roles",
            "",
        ]
    if result.max_freq_hz is not None:
        lines += [
            "[kk]",
            f"max_freq_hz = {toml_value(float(result.max_freq_hz))}  # the points above are "
            "not a passive cell's: Kramers-Kronig or the best fits miss them",
            "",
        ]
    fit = chosen.fits[0]
    area = result.area_cm2
    lines.append("[fit]")
    default_circuit = chosen.circuit == _default_fit_circuit()
    if not default_circuit:
        arcs = ", ".join(role for role in chosen.arc_roles) or "no arcs"
        lines.append(
            f"circuit = {toml_value(chosen.circuit)}  # {chosen.n_processes} processes "
            f"({arcs}); best of {len(result.candidates)} by BIC"
        )
    if chosen.noise_floor is not None:
        lines.append(
            f"noise_floor = {toml_value(chosen.noise_floor)}  # this circuit fits the sweeps "
            f"to {chosen.residual_rms:.2%} RMS, above the KK noise: accepted (delete to be "
            "strict)"
        )
    lines += ["", "[fit.roles]  # by each arc's Brug capacitance and time-constant order"]
    for element, role in chosen.roles.items():
        reason = _role_reason(fit, element, role, area)
        lines.append(f"{toml_key(element)} = {toml_value(role)}  # {reason}")
    if default_circuit:
        lines += ["", "[fit.fixed]  # every exponent fitted free (the default fixes CPE2_1)"]
    for table, values, why in (
        ("role_classes", chosen.role_classes, "[C_min, C_max] F/cm2"),
        ("role_tau_windows", chosen.role_tau_windows, "[tau_min, tau_max] s"),
    ):
        if values:
            lines += ["", f"[fit.{table}]  # {why}: tells a second arc of one class apart"]
            lines.extend(
                f"{toml_key(role)} = {toml_value(list(bounds))}" for role, bounds in values.items()
            )
    windows = _drt_windows(chosen, DRTConfig().windows)
    if windows:
        lines += ["", "[drt.windows]  # the arcs' time constants lie outside the default windows"]
        lines.extend(
            f"{toml_key(role)} = {toml_value(list(bounds))}" for role, bounds in windows.items()
        )
    return "\n".join(lines) + "\n"


def _drt_windows(
    candidate: Candidate, defaults: Mapping[str, tuple[float, float]]
) -> dict[str, tuple[float, float]]:
    """DRT windows around the arcs in the band, when the default windows miss them; else {}."""
    fit = candidate.fits[0]
    arcs = sorted(fit.capacitances.values(), key=lambda arc: arc.tau_s)
    taus = [arc.tau_s for arc in arcs]
    missed = False
    for arc in arcs:
        window = defaults.get(arc.role or "")
        if window is not None and arc.C_resolved and not window[0] <= arc.tau_s < window[1]:
            missed = True
    if not missed:
        return {}
    windows = {}
    for index, arc in enumerate(arcs):
        if not arc.C_resolved or arc.role is None:
            continue
        low = math.sqrt(taus[index - 1] * taus[index]) if index else taus[index] / 30
        high = (
            math.sqrt(taus[index] * taus[index + 1]) if index + 1 < len(taus) else taus[index] * 30
        )
        windows[arc.role] = (_round(low), _round(high))
    return windows
