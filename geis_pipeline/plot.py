"""Figures of evolving spectra: what researchers look at instead of tables.

Every function takes a result object (an :class:`~geis_pipeline.results.ExperimentResults`,
or a :class:`~geis_pipeline.results.Results` holding one experiment) or plain arrays, an
optional ``ax`` (or ``fig``) to draw into, and returns the :class:`matplotlib.figure.Figure`.
Nothing calls ``pyplot``: figures are built with the object API and work on any backend
(Agg included); they are never shown.

Impedances and DRT amplitudes are drawn area-specific (ohm cm2), or in ohm when the
electrode area is unknown (the axis labels say which); times in hours. What is drawn is
decimated for long experiments (at most ``MAX_CURVES`` curves, ``MAX_MAP_ROWS`` rows of the
DRT map); the stored data are never changed.

Figures show failure instead of hiding it: steps whose fit is not ok (``fit_ok`` False)
are drawn as crosses, apart from the curves of the ok steps; points the Kramers-Kronig check
cut are drawn faint; axis limits follow the good data (:func:`robust_limits`), so one runaway
sweep does not push the others into a corner; a resistance axis is logarithmic when the
values span more than ``LOG_SPAN_DECADES`` decades.

>>> results = geis_pipeline.open_results("run.h5")
>>> fig = plot.nyquist(results["experiment"])
>>> fig.savefig("nyquist.png")
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from geis_pipeline.physics import FARADAY_C_MOL

__all__ = [
    "MAX_CURVES",
    "MAX_MAP_ROWS",
    "arrhenius",
    "arrhenius_data",
    "bode_phase",
    "capacitance",
    "contact_loss",
    "decimate",
    "decimate_series",
    "drt_crosscheck",
    "drt_curves",
    "drt_map",
    "evolution",
    "fit_residuals",
    "key_steps",
    "kk_residuals",
    "nyquist",
    "representative_steps",
    "robust_limits",
    "sand",
    "sand_data",
    "select_steps",
]

#: At most this many sweeps are drawn as curves in one axes.
MAX_CURVES = 300
#: At most this many time steps are drawn as rows of the DRT heat map.
MAX_MAP_ROWS = 1500
#: A time series of more steps than this is drawn decimated (:func:`decimate_series`): a
#: figure is ~700 pixels wide, so 1,500 evenly spaced steps and the envelope of 500 buckets
#: keep what the eye sees.
MAX_SERIES_POINTS = 3000
#: Colour map for time.
TIME_CMAP = "viridis"
#: A resistance or capacitance axis is logarithmic when its values span more decades than this.
LOG_SPAN_DECADES = 1.5
#: How steps whose fit is not ok are drawn (in their series' colour).
FAILED_STYLE = {"linestyle": "none", "marker": "x", "ms": 4, "alpha": 0.8}
_BOLTZMANN_EV_K = 8.617333262e-5


# -- helpers ------------------------------------------------------------------------------------


def _experiment(results):
    """An ExperimentResults from an ExperimentResults or a one-experiment Results."""
    if hasattr(results, "record"):
        return results
    if hasattr(results, "experiments"):
        names = results.experiments
        if len(names) != 1:
            raise ValueError(f"pass one experiment: the results hold {len(names)} ({names})")
        return results[names[0]]
    raise TypeError(f"not a results object: {type(results).__name__}")


def _axes(ax: Axes | None, figsize=(6.4, 4.8)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _figure(fig: Figure | None, figsize) -> Figure:
    if fig is not None:
        fig.clear()
        return fig
    return Figure(figsize=figsize, layout="constrained")


def decimate(n: int, max_count: int = MAX_CURVES) -> np.ndarray:
    """Indices of at most ``max_count`` evenly spaced items out of ``n`` (first and last kept)."""
    if n <= max_count:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_count)).astype(int))


def decimate_series(
    values, max_points: int = MAX_SERIES_POINTS, keep: Sequence[int] = ()
) -> np.ndarray:
    """Indices of the points of a time series worth drawing (all of them up to ``max_points``).

    Beyond, half the points are evenly spaced steps (what the bulk of the values looks like:
    a dense band stays a band) and half the envelope: the series is cut into
    ``max_points // 6`` buckets of consecutive steps and each keeps its lowest and its highest
    finite value (a spike stays visible) and its first non-finite one (a gap in a line stays a
    gap); plus the first and the last step and the ``keep`` steps (e.g. the depletion step).
    In one vectorised pass.
    """
    data = np.asarray(values, dtype=float).ravel()
    n = data.size
    if n <= max_points:
        return np.arange(n)
    n_buckets = max(1, max_points // 6)
    size = -(-n // n_buckets)
    padded = np.full(n_buckets * size, np.nan)
    padded[:n] = data
    padded = padded.reshape(n_buckets, size)
    finite = np.isfinite(padded)
    base = np.arange(n_buckets) * size
    lowest = base + np.argmin(np.where(finite, padded, np.inf), axis=1)
    highest = base + np.argmax(np.where(finite, padded, -np.inf), axis=1)
    gap = base + np.argmax(~finite, axis=1)
    has_finite = finite.any(axis=1)
    chosen = [
        lowest[has_finite],
        highest[has_finite],
        gap[~finite.all(axis=1)],
        decimate(n, max(2, max_points // 2)),
    ]
    keep = np.asarray(keep, dtype=np.int64)
    chosen.append(keep[(keep >= 0) & (keep < n)])
    indices = np.unique(np.concatenate(chosen).astype(np.int64))
    return indices[indices < n]


def key_steps(experiment) -> np.ndarray:
    """The steps a decimated figure must show: the first and last, the reference step and the
    step at the depletion time t0 (when reached)."""
    times = _times_h(experiment) * 3600.0
    n = times.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    steps = [0, n - 1]
    summary = experiment.summary
    reference = summary.get("reference_step")
    if isinstance(reference, int | np.integer) and 0 <= reference < n:
        steps.append(int(reference))
    t0 = summary.get("t0_s")
    if summary.get("t0_reached") and isinstance(t0, float | np.floating) and np.isfinite(t0):
        at = float(summary.get("current_onset_s", 0.0) or 0.0) + float(t0)
        finite = np.isfinite(times)
        if finite.any():
            candidates = np.flatnonzero(finite)
            steps.append(int(candidates[np.argmin(np.abs(times[candidates] - at))]))
    return np.unique(np.asarray(steps, dtype=np.int64))


def select_steps(n: int, count: int = 8) -> np.ndarray:
    """``count`` evenly spaced steps out of ``n`` (see :func:`representative_steps` for the
    steps the Nyquist and DRT curves show by default)."""
    return decimate(n, max(1, count))


def representative_steps(results, count: int = 8) -> np.ndarray:
    """``count`` steps that show how the spectra evolve (the default of the Nyquist and DRT
    curves): the :func:`key_steps` (first, last, reference, depletion t0), the steps where
    the interface resistance (log R_int of the ok fits) first reaches evenly spaced levels
    above its lowest value, up to its highest (99th percentile), topped up with evenly spaced
    steps.

    Evenly spaced steps alone miss a change that happens early: a stripping experiment whose
    R_int rises within its first hour and then plateaus for a hundred would show the plateau
    only.
    """
    experiment = _experiment(results)
    n = len(experiment.spectra)
    count = max(1, int(count))
    if n <= count:
        return np.arange(n)
    chosen = set(key_steps(experiment).tolist())
    quantity = experiment.quantity("R_int") if hasattr(experiment, "quantity") else None
    if quantity is not None and len(quantity.values) == n:
        values = np.asarray(quantity.values, dtype=float)
        good = _step_ok(experiment) & np.isfinite(values) & (values > 0)
        if good.sum() >= 2:
            level = np.full(n, -np.inf)
            level[good] = np.log(values[good])
            reached = np.maximum.accumulate(level)  # the highest level reached so far
            # The 99th percentile: one noisy step must not be the level no other reaches.
            low, high = float(level[good].min()), float(np.percentile(level[good], 99))
            # Up to the highest level (the largest arc): where the change ends.
            targets = np.linspace(low, high, max(2, count - len(chosen) + 1))[1:]
            for target in targets:
                if len(chosen) >= count:
                    break
                chosen.add(int(np.searchsorted(reached, target, side="left")))
    for step in decimate(n, count):
        if len(chosen) >= count:
            break
        chosen.add(int(step))
    steps = np.array(sorted(chosen), dtype=np.int64)
    return steps[(steps >= 0) & (steps < n)][:count] if steps.size > count else steps


def _offsets(experiment) -> np.ndarray:
    counts = np.fromiter((s.n_points for s in experiment.spectra), dtype=np.int64)
    return np.concatenate([[0], np.cumsum(counts)])


def _times_h(experiment) -> np.ndarray:
    table = experiment.tracking(as_frame=False)
    if "time_s" in table and len(table["time_s"]) == len(experiment.spectra):
        return np.asarray(table["time_s"], dtype=float) / 3600.0
    return np.array([s.time_s for s in experiment.spectra], dtype=float) / 3600.0


def _time_norm(times_h: np.ndarray) -> Normalize:
    finite = times_h[np.isfinite(times_h)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return Normalize(low, high if high > low else low + 1.0)


def _time_colourbar(fig: Figure, ax: Axes, norm: Normalize, follow_box: bool = False):
    """A time colourbar; ``follow_box``: beside the axes' actual (fixed-aspect) box."""
    from matplotlib.cm import ScalarMappable

    mappable = ScalarMappable(norm=norm, cmap=TIME_CMAP)
    if follow_box:
        # An inset axes sits in the parent's own coordinates: as tall as its box.
        colourbar = fig.colorbar(mappable, cax=ax.inset_axes((1.03, 0.0, 0.035, 1.0)))
    else:
        colourbar = fig.colorbar(mappable, ax=ax)
    colourbar.set_label("time (h)")
    return colourbar


def _area(experiment) -> float:
    area = experiment.metadata.area_cm2
    return float(area) if area else 1.0


def _z_unit(experiment) -> str:
    return "Ω cm²" if experiment.metadata.area_cm2 else "Ω"


def _column(table: Mapping[str, np.ndarray], name: str) -> np.ndarray | None:
    values = table.get(name)
    if values is None or len(values) == 0:
        return None
    return np.asarray(values, dtype=float)


def robust_limits(values, margin: float = 0.05) -> tuple[float, float] | None:
    """Axis limits holding the bulk of ``values``: the finite range, unless a few outliers
    stretch it: then the 1st..99th percentile widened by 3 interquartile ranges.

    Returns None when nothing is finite.
    """
    data = np.asarray(values, dtype=float).ravel()
    data = data[np.isfinite(data)]
    if data.size == 0:
        return None
    low, high = float(data.min()), float(data.max())
    if data.size >= 8:
        q1, q25, q75, q99 = np.percentile(data, [1, 25, 75, 99])
        spread = max(q75 - q25, 1e-12 * max(abs(q75), 1.0))
        low = max(low, q1 - 3 * spread)
        high = min(high, q99 + 3 * spread)
    pad = margin * (high - low) if high > low else max(abs(high), 1.0) * margin
    return low - pad, high + pad


def _log_axis(ax: Axes, values) -> None:
    """Log scale when the positive values span more than :data:`LOG_SPAN_DECADES`."""
    data = np.asarray(values, dtype=float).ravel()
    data = data[np.isfinite(data) & (data > 0)]
    if data.size >= 2 and np.log10(data.max() / data.min()) > LOG_SPAN_DECADES:
        ax.set_yscale("log")


def _step_ok(experiment) -> np.ndarray:
    """Per step: the fit is ok (the tracking table's ``fit_ok``, else the fit stage's)."""
    n = len(experiment.spectra)
    table = experiment.tracking(as_frame=False)
    if "fit_ok" in table and len(table["fit_ok"]) == n:
        return np.asarray(table["fit_ok"], dtype=bool)
    stage = experiment.stage("fit")
    if stage is not None and len(stage.sweeps.get("ok", ())) == n:
        return np.asarray(stage.sweeps["ok"], dtype=bool)
    return np.ones(n, dtype=bool)


def _kk_used(experiment) -> np.ndarray | None:
    """Per point: kept by the Kramers-Kronig check (None without the KK stage)."""
    stage = experiment.stage("kk")
    if stage is None or "used" not in stage.points:
        return None
    used = np.asarray(stage.points["used"], dtype=bool)
    return used if used.size == _offsets(experiment)[-1] else None


def _note(ax: Axes, text: str) -> None:
    """A message in the middle of an empty panel (what is missing and why)."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", wrap=True,
            fontsize="small", color="0.3")  # fmt: skip


def _x_axis(experiment, x: str) -> tuple[np.ndarray, str]:
    table = experiment.tracking(as_frame=False)
    if x == "charge":
        charge = _column(table, "charge_mAh_cm2")
        if charge is not None and np.isfinite(charge).any():
            return charge, "passed charge (mAh/cm²)"
        absolute = np.array([spectrum.charge_mAh for spectrum in experiment.spectra], dtype=float)
        if not np.isfinite(absolute).any():
            raise ValueError("no passed charge recorded")
        return absolute, "passed charge (mAh)"
    if x != "time":
        raise ValueError(f"x must be 'time' or 'charge', got {x!r}")
    return _times_h(experiment), "time (h)"


# -- spectra ------------------------------------------------------------------------------------


def nyquist(
    results,
    steps: Sequence[int] | None = None,
    *,
    count: int = 8,
    fit: bool = True,
    ax: Axes | None = None,
) -> Figure:
    """Nyquist plot (-Z'' vs Z', ohm cm2, equal aspect) of selected sweeps coloured by time.

    ``steps`` defaults to ``count`` :func:`representative_steps`. Measured points are markers; the
    fitted curve of each (when the fit stage ran and succeeded) is a line in the same colour.
    Points the Kramers-Kronig check cut are drawn faint (label ``_kk_cut``; the kept ones are
    ``_measured``); a sweep whose fit is not ok has hollow markers and its fit dashed
    (``_fit_not_ok``). The axes are scaled to the kept points of the sweeps with an ok fit.
    """
    experiment = _experiment(results)
    own_figure = ax is None
    fig, ax = _axes(ax, (6.4, 5.2))
    steps = (
        representative_steps(experiment, count) if steps is None else np.asarray(steps, dtype=int)
    )
    times = _times_h(experiment)
    norm = _time_norm(times[steps] if len(steps) else times)
    cmap = _cmap()
    area = _area(experiment)
    stage = experiment.stage("fit") if fit else None
    offsets = _offsets(experiment)
    used = _kk_used(experiment)
    ok = _step_ok(experiment)
    good_real, good_imag, kept_real, kept_imag, all_real, all_imag = [], [], [], [], [], []
    notes: list[str] = []
    n_cut = n_failed = 0
    for step in steps:
        spectrum = experiment.spectra[step]
        colour = cmap(norm(times[step]))
        z = spectrum.z * area
        kept = (
            used[offsets[step] : offsets[step + 1]]
            if used is not None
            else np.ones(z.size, dtype=bool)
        )
        n_cut += int(np.sum(~kept))
        style = {"ms": 3, "color": colour, "alpha": 0.8}
        if not ok[step]:
            n_failed += 1
            style |= {"mfc": "none", "alpha": 0.6}
        ax.plot(z.real[kept], -z.imag[kept], "o", label="_measured", **style)
        if (~kept).any():
            ax.plot(z.real[~kept], -z.imag[~kept], "o", **(style | {"alpha": 0.2}),
                    label="_kk_cut")  # fmt: skip
        all_real.append(z.real)
        all_imag.append(-z.imag)
        kept_real.append(z.real[kept])
        kept_imag.append(-z.imag[kept])
        if ok[step]:
            good_real.append(z.real[kept])
            good_imag.append(-z.imag[kept])
        if stage is None:
            continue
        window = slice(offsets[step], offsets[step + 1])
        z_fit = (
            stage.points["z_fit_real_ohm"][window] + 1j * stage.points["z_fit_imag_ohm"][window]
        ) * area
        if not np.all(np.isfinite(z_fit)):
            continue
        if ok[step]:
            ax.plot(z_fit.real, -z_fit.imag, "-", lw=1.2, color=colour, label="_fit")
        else:  # the fit exists but is not trusted: thin and dashed
            ax.plot(z_fit.real, -z_fit.imag, "--", lw=0.7, color=colour, alpha=0.6,
                    label="_fit_not_ok")  # fmt: skip
    # Scale to the kept points of the ok sweeps, else to the kept points of all but the
    # runaways (with no ok fit to vouch for a large arc, one runaway sweep would shrink the
    # others into a corner).
    real = imag = None
    for tier, (reals, imags) in enumerate(
        ((good_real, good_imag), (kept_real, kept_imag), (all_real, all_imag))
    ):
        if reals and np.concatenate(reals).size:
            if tier:
                reals, imags, n_beyond = _without_runaways(reals, imags)
                if n_beyond:
                    notes.append(f"{n_beyond} not-ok sweep(s) reach beyond the axes")
            real, imag = np.concatenate(reals), np.concatenate(imags)
            break
    unit = _z_unit(experiment)
    ax.set_xlabel(f"Z' ({unit})")
    ax.set_ylabel(f"-Z'' ({unit})")
    ax.axhline(0.0, color="0.7", lw=0.6, zorder=0)
    limits = _nyquist_limits(real, imag) if real is not None else None
    if limits is not None:
        (x0, x1), (y0, y1) = limits
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        n_inductive = int(np.sum(np.concatenate(all_imag) < y0))
        if n_inductive:
            notes.append(f"{n_inductive} inductive point(s) below -Z'' = {y0:.3g} not shown")
        if own_figure:
            # A figure of the data's shape: the equal-aspect box then fills it.
            ratio = min(max((y1 - y0) / (x1 - x0), 0.3), 1.2)
            fig.set_size_inches(6.4, 5.0 * ratio + 0.9)
    # Equal scales; the box takes the limits' shape (the limits above hold).
    ax.set_aspect("equal", adjustable="box")
    ax.set_title(f"{experiment.name}: Nyquist (markers: data, lines: fit)")
    if n_cut:
        notes.append(f"faint: {n_cut} point(s) cut by Kramers-Kronig")
    if n_failed:
        notes.append(f"hollow, dashed fit: {n_failed} sweep(s) whose fit is not ok")
    if notes:
        # Under the axes: inside, the notes would hide the high-frequency points.
        ax.annotate("\n".join(notes), xy=(0.0, 0.0), xycoords="axes fraction",
                    xytext=(0, -32), textcoords="offset points", va="top",
                    fontsize="x-small", color="0.3", annotation_clip=False)  # fmt: skip
    _time_colourbar(fig, ax, norm, follow_box=True)
    return fig


def _without_runaways(
    reals: list[np.ndarray], imags: list[np.ndarray], factor: float = 3.0
) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """The sweeps whose extent is at most ``factor`` x the median sweep's, and how many are not.

    The extent is the largest ``|Z|`` of the sweep's points; all are kept when
    fewer than three sweeps are finite (no median to speak of).
    """
    extent = np.array(
        [np.max(np.hypot(r, i)) if r.size else np.nan for r, i in zip(reals, imags, strict=True)]
    )
    finite = np.isfinite(extent)
    if finite.sum() < 3:
        return reals, imags, 0
    within = finite & (extent <= factor * np.median(extent[finite]))
    kept = [index for index in range(len(reals)) if within[index]]
    return [reals[i] for i in kept], [imags[i] for i in kept], int(finite.sum() - within.sum())


def _nyquist_limits(real: np.ndarray, imag: np.ndarray):
    """Limits around the points and the line -Z'' = 0 (None when nothing is finite)."""
    # The full range of the good points: a large legitimate arc (late in stripping) is
    # data, not an outlier; what was cut or failed is already left out.
    x_limits = _range(real)
    y_limits = _range(np.concatenate([imag, [0.0]]))
    if x_limits is None or y_limits is None:
        return None
    # An inductive tail (-Z'' < 0: the cables, above the arcs) is cropped to a quarter of
    # the width: left whole, it makes a tall, narrow plot of the wiring.
    y_low = max(y_limits[0], -0.25 * (x_limits[1] - x_limits[0]))
    return x_limits, (y_low, y_limits[1])


def _range(values, margin: float = 0.04) -> tuple[float, float] | None:
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    if data.size == 0:
        return None
    low, high = float(data.min()), float(data.max())
    pad = margin * (high - low) if high > low else max(abs(high), 1.0) * margin
    return low - pad, high + pad


def _cmap():
    from matplotlib import colormaps

    return colormaps[TIME_CMAP]


def bode_phase(results, *, max_curves: int = MAX_CURVES, ax: Axes | None = None) -> Figure:
    """Phase angle -phi (degrees) vs frequency of every sweep (at most ``max_curves``) by time."""
    experiment = _experiment(results)
    fig, ax = _axes(ax)
    times = _times_h(experiment)
    steps = decimate(len(experiment.spectra), max_curves)
    segments = []
    for step in steps:
        spectrum = experiment.spectra[step]
        phase = -np.degrees(np.angle(spectrum.z))
        segments.append(np.column_stack([spectrum.freq, phase]))
    norm = _time_norm(times)
    lines = LineCollection(segments, cmap=TIME_CMAP, norm=norm, linewidths=0.8, alpha=0.8)
    lines.set_array(times[steps])
    ax.add_collection(lines)
    ax.set_xscale("log")
    ax.autoscale()
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("-phase angle (°)")
    ax.set_title(
        f"{experiment.name}: Bode phase ({len(steps)} of {len(experiment.spectra)} sweeps)"
    )
    colourbar = fig.colorbar(lines, ax=ax)
    colourbar.set_label("time (h)")
    return fig


# -- tracking -----------------------------------------------------------------------------------


def _points(ax: Axes, x, y, fmt: str, keep: Sequence[int] = (), **style):
    """``ax.plot(x, y, fmt)`` of a time series, decimated (:func:`decimate_series`)."""
    x, y = np.asarray(x), np.asarray(y, dtype=float)
    shown = decimate_series(y, keep=keep)
    return ax.plot(x[shown], y[shown], *([fmt] if fmt else []), **style)[0]


def _series(ax: Axes, x: np.ndarray, y: np.ndarray, ok: np.ndarray, label: str,
            keep: Sequence[int] = (), **style):  # fmt: skip
    """Ok steps as a line with dots; not-ok steps as crosses of the same colour, not joined.

    Long series are decimated (:func:`decimate_series`), keeping the ``keep`` steps.
    """
    good = np.where(ok, y, np.nan)
    line = _points(ax, x, good, ".-", keep=keep, ms=3, lw=0.8, label=label, **style)
    failed = ~ok & np.isfinite(y)
    if failed.any():
        _points(ax, np.asarray(x)[failed], np.asarray(y)[failed], "", label=f"_{label} not ok",
                **(FAILED_STYLE | {"color": line.get_color()}))  # fmt: skip
    return line


def _failed_legend(ax: Axes, ok: np.ndarray) -> None:
    if (~ok).any():
        ax.plot([], [], label=f"fit not ok ({int(np.sum(~ok))} of {ok.size} steps)",
                **(FAILED_STYLE | {"color": "0.3"}))  # fmt: skip


def _value_axis(ax: Axes, values: list[np.ndarray], ok: np.ndarray) -> None:
    """Log scale when the ok values span > LOG_SPAN_DECADES, limits from the ok values
    (from all values when no step is ok)."""
    mask = ok if ok.any() else np.ones_like(ok)
    good = np.concatenate([value[mask] for value in values]) if values else np.empty(0)
    _log_axis(ax, good)
    if ax.get_yscale() == "log":
        positive = good[np.isfinite(good) & (good > 0)]
        if positive.size:
            ax.set_ylim(positive.min() / 1.5, positive.max() * 1.5)
        return
    limits = robust_limits(good)
    if limits is not None:
        ax.set_ylim(*limits)


#: How the counter electrode of a 3-electrode cell is drawn beside the working electrode.
COUNTER_STYLE = {"dashes": (4, 2), "alpha": 0.85}


def _counter(experiment):
    """The counter electrode's results when stored for every step drawn, else None."""
    if "ce" not in getattr(experiment, "electrodes", ()):
        return None
    counter = experiment.electrode("ce")
    if len(counter.record.tracking.get("time_s", ())) != len(experiment.record.tracking["time_s"]):
        return None  # not processed as far as the working electrode yet
    return counter


def evolution(results, *, x: str = "time", fig: Figure | None = None) -> Figure:
    """Voltage profile (top) and R_b, R_gb, R_int (bottom) on a shared time/charge axis.

    Resistances are in ohm cm2, or in ohm when the area is unknown. Steps whose fit
    is not ok are crosses; the resistance axis is logarithmic when the ok values span
    more than :data:`LOG_SPAN_DECADES` decades. A 3-electrode cell's counter electrode
    (its potential E_ce and its R_int) is drawn dashed beside the working electrode's.
    """
    experiment = _experiment(results)
    fig = _figure(fig, (7.0, 6.0))
    top, bottom = fig.subplots(2, 1, sharex=True)
    table = experiment.tracking(as_frame=False)
    values, label = _x_axis(experiment, x)
    keep = key_steps(experiment)
    dc = experiment.dc_record
    if x == "time" and dc is not None and len(dc.time_s):
        keep = decimate(len(dc.time_s), 20_000)
        top.plot(dc.time_s[keep] / 3600.0, dc.potential_V[keep], "-", lw=0.8, label="DC record")
    potential = _column(table, "E_V")
    if potential is not None:
        _points(top, values, potential, ".", keep=keep, ms=3, label="at each sweep")
    counter = _counter(experiment)
    if counter is not None:
        _points(
            top, values, counter.record.tracking["E_V"], ".", keep=keep, ms=3, label="counter E_ce"
        )
    top.set_ylabel("E (V)")
    if top.lines:
        top.legend(loc="best", fontsize="small")
    top.set_title(f"{experiment.name}: voltage profile and resistances")
    ok = _step_ok(experiment)
    drawn, unit = [], "Ω cm²" if experiment.metadata.area_cm2 else "Ω"
    for stem in ("R_b", "R_gb", "R_int"):
        quantity = experiment.quantity(stem) if hasattr(experiment, "quantity") else None
        if quantity is None or not np.isfinite(quantity.values).any():
            continue
        _series(bottom, values, quantity.values, ok, stem, keep=keep)
        drawn.append(quantity.values)
        unit = quantity.unit
    counter_r = counter.quantity("R_int") if counter is not None else None
    if counter_r is not None and np.isfinite(counter_r.values).any():
        counter_ok = _step_ok(counter)
        _series(
            bottom,
            values,
            counter_r.values,
            counter_ok,
            "R_int counter",
            keep=keep,
            **COUNTER_STYLE,
        )
        drawn.append(np.where(counter_ok, counter_r.values, np.nan))
    if drawn:
        _failed_legend(bottom, ok)
        _value_axis(bottom, drawn, ok)
        bottom.legend(loc="best", fontsize="small")
    else:
        _note(bottom, "no resistances to draw (no ok fit, or no area and no ohm columns)")
    bottom.set_ylabel(f"R ({unit})")
    bottom.set_xlabel(label)
    return fig


#: How a DRT resistance is drawn beside the fit's line: filled where it is a measurement,
#: hollow where it is not (``R_<process>_drt_resolved`` False).
DRT_RESOLVED_STYLE = {"linestyle": "none", "marker": "o", "ms": 3}
DRT_UNRESOLVED_STYLE = {"linestyle": "none", "marker": "o", "ms": 4, "mfc": "none", "alpha": 0.5}


def drt_crosscheck(results, *, x: str = "time", ax: Axes | None = None) -> Figure:
    """Each process's R from the circuit fit (line) beside the DRT's (dots), ohm cm2 or ohm.

    A DRT value that is not a measurement (``R_<process>_drt_resolved`` False: γ's own
    area, an apex beyond the measured frequencies, a second refined peak in its window,
    or a spectrum failing KK) is a hollow circle; a resolved one a filled dot. A file
    written before the flag existed has no such column: its DRT values are hollow too,
    labelled "not checked". Processes the DRT tracks but the fit has no role for are
    drawn as dots only. Steps whose fit is not ok are crosses.
    """
    experiment = _experiment(results)
    fig, ax = _axes(ax, (7.0, 4.8))
    table = experiment.tracking(as_frame=False)
    values, label = _x_axis(experiment, x)
    keep = key_steps(experiment)
    ok = _step_ok(experiment)
    suffix, unit = ("_ohm_cm2", "Ω cm²") if experiment.metadata.area_cm2 else ("_ohm", "Ω")
    processes = [
        name.removeprefix("R_").removesuffix(f"_drt{suffix}")
        for name in table
        if name.startswith("R_") and name.endswith(f"_drt{suffix}")
    ]
    # Fast to slow, as the legend of a spectrum reads.
    processes.sort(key=lambda process: _median_tau(table, f"tau_{process}_drt_s"))
    drawn = []
    for process in processes:
        drt = np.asarray(table[f"R_{process}_drt{suffix}"], dtype=float)
        if not np.isfinite(drt).any():
            continue
        fitted = _column(table, f"R_{process}{suffix}")
        colour = None
        if fitted is not None and np.isfinite(fitted).any():
            colour = _series(ax, values, fitted, ok, f"R_{process} fit", keep=keep).get_color()
            drawn.append(fitted)
        # A file written before the flag existed cannot say which values are measurements:
        # unknown is drawn as not a measurement (``reprocess`` computes the flag).
        flagged = f"R_{process}_drt_resolved" in table
        resolved = np.asarray(
            table.get(f"R_{process}_drt_resolved", np.zeros(drt.size, bool)), dtype=bool
        )
        style = {} if colour is None else {"color": colour}
        if resolved.any():
            line = _points(ax, values[resolved], drt[resolved], "", label=f"R_{process} DRT",
                           **(DRT_RESOLVED_STYLE | style))  # fmt: skip
            style = {"color": line.get_color()}
        unresolved = ~resolved & np.isfinite(drt)
        if unresolved.any():
            n = int(unresolved.sum())
            steps = f"{n} step{'s' if n > 1 else ''}"
            why = "not a measurement" if flagged else "not checked: reprocess the file"
            _points(ax, values[unresolved], drt[unresolved], "",
                    label=f"R_{process} DRT, {why} ({steps})",
                    **(DRT_UNRESOLVED_STYLE | style))  # fmt: skip
        drawn.append(drt)
    if drawn:
        _failed_legend(ax, ok)
        _value_axis(ax, drawn, np.ones(ok.size, bool))
        ax.legend(loc="best", fontsize="small")
    else:
        _note(ax, "no DRT resistances to draw (no DRT stage, or no tracked peak)")
    ax.set_xlabel(label)
    ax.set_ylabel(f"R ({unit})")
    ax.set_title(f"{experiment.name}: resistances, circuit fit and DRT")
    return fig


def _median_tau(table: Mapping[str, np.ndarray], name: str) -> float:
    values = _column(table, name)
    finite = values[np.isfinite(values)] if values is not None else np.empty(0)
    return float(np.median(finite)) if finite.size else math.inf


def _relative(experiment, stem: str, reference: int) -> tuple[np.ndarray, float] | None:
    """Values of ``stem`` and their reference value (the reference step, else the first ok)."""
    quantity = experiment.quantity(stem)
    if quantity is None:
        return None
    values = quantity.values
    candidates = [reference] if 0 <= reference < len(values) else []
    candidates += list(np.flatnonzero(np.isfinite(values) & _step_ok(experiment)))
    for step in candidates:
        if np.isfinite(values[step]) and values[step] != 0:
            return values, float(values[step])
    return None


def capacitance(results, *, x: str = "time", ax: Axes | None = None) -> Figure:
    """C_int normalised to its value at the reference step (dimensionless).

    Steps whose C_int is not reliable (``C_int_reliable`` False) are circled, steps whose
    fit is not ok are crosses.
    """
    experiment = _experiment(results)
    fig, ax = _axes(ax)
    values, label = _x_axis(experiment, x)
    reference = int(experiment.summary.get("reference_step", 0) or 0)
    relative = _relative(experiment, "C_int", reference)
    if relative is not None:
        c_int, c0 = relative
        ok = _step_ok(experiment)
        unit = experiment.quantity("C_int").unit
        reliable = np.asarray(
            experiment.tracking(as_frame=False).get("C_int_reliable", ok), dtype=bool
        )
        keep = key_steps(experiment)
        line = _series(ax, values, c_int / c0, ok, f"C_int(0) = {c0:.3g} {unit}", keep=keep)
        doubtful = ok & ~reliable & np.isfinite(c_int)
        if doubtful.any():
            _points(ax, values[doubtful], (c_int / c0)[doubtful], "o", ms=4, mfc="none",
                    color=line.get_color(), alpha=0.5, label="C_int not reliable")  # fmt: skip
        drawn = [c_int / c0]
        counter = _counter(experiment)
        counter_c = _relative(counter, "C_int", reference) if counter is not None else None
        if counter_c is not None:
            counter_ok = _step_ok(counter)
            c_ce, c0_ce = counter_c
            _series(ax, values, c_ce / c0_ce, counter_ok,
                    f"counter: C_int(0) = {c0_ce:.3g} {unit}", keep=keep,
                    **COUNTER_STYLE)  # fmt: skip
            drawn.append(np.where(counter_ok, c_ce / c0_ce, np.nan))
        _failed_legend(ax, ok)
        _value_axis(ax, drawn, ok)
        ax.legend(loc="best", fontsize="small")
    else:
        _note(ax, "no interface capacitance to draw: C_int undetermined, or no ok fit")
    ax.axhline(1.0, color="0.7", lw=0.6, zorder=0)
    ax.set_xlabel(label)
    ax.set_ylabel("C_int / C_int(0) (1)")
    ax.set_title(f"{experiment.name}: interface capacitance")
    return fig


def contact_loss(results, *, x: str = "time", ax: Axes | None = None) -> Figure:
    """Contact loss (%) from capacitance, 1 - C/C0, and from resistance, 1 - R0/R.

    From the tracking table's ``contact_loss_C`` / ``contact_loss_R``; when those are NaN
    (no electrode area) from the absolute C_int and R_int (the ratios need no area).
    """
    experiment = _experiment(results)
    fig, ax = _axes(ax)
    table = experiment.tracking(as_frame=False)
    values, label = _x_axis(experiment, x)
    ok = _step_ok(experiment)
    reference = int(experiment.summary.get("reference_step", 0) or 0)
    drawn = []
    counter = _counter(experiment)
    for source, column, stem, name in (
        (experiment, "contact_loss_C", "C_int", "from C_int: 1 - C/C0"),
        (experiment, "contact_loss_R", "R_int", "from R_int: 1 - R0/R"),
        *(
            ((counter, "contact_loss_C", "C_int", "counter, from C_int"),
             (counter, "contact_loss_R", "R_int", "counter, from R_int"))
            if counter is not None
            else ()
        ),
    ):  # fmt: skip
        table = source.tracking(as_frame=False)
        loss = _column(table, column)
        if loss is None or not np.isfinite(loss).any():
            relative = _relative(source, stem, reference)
            if relative is None:
                continue
            quantity, q0 = relative
            with np.errstate(divide="ignore", invalid="ignore"):
                loss = 1 - quantity / q0 if stem == "C_int" else 1 - q0 / quantity
        style = COUNTER_STYLE if source is counter else {}
        source_ok = _step_ok(source)
        _series(ax, values, 100.0 * loss, source_ok, name, keep=key_steps(experiment), **style)
        drawn.append(np.where(source_ok, 100.0 * loss, np.nan))
    if drawn:
        _failed_legend(ax, ok)
        limits = robust_limits(np.concatenate([value[ok] for value in drawn] + [[0.0]]))
        if limits is not None:
            ax.set_ylim(*limits)
        ax.legend(loc="best", fontsize="small")
    else:
        _note(ax, "no contact loss to draw: no ok fit to refer to")
    ax.axhline(0.0, color="0.7", lw=0.6, zorder=0)
    ax.set_xlabel(label)
    ax.set_ylabel("contact loss (%)")
    ax.set_title(f"{experiment.name}: contact loss")
    return fig


# -- DRT ----------------------------------------------------------------------------------------


def _edges(centres: np.ndarray, log: bool = False) -> np.ndarray:
    values = np.log10(centres) if log else np.asarray(centres, dtype=float)
    if len(values) == 1:
        edges = np.array([values[0] - 0.5, values[0] + 0.5])
    else:
        middle = 0.5 * (values[1:] + values[:-1])
        edges = np.concatenate(
            [
                [values[0] - (middle[0] - values[0])],
                middle,
                [values[-1] + (values[-1] - middle[-1])],
            ]
        )
    return 10.0**edges if log else edges


def drt_map(
    results,
    *,
    max_rows: int = MAX_MAP_ROWS,
    peaks: bool = True,
    scale: str = "log",
    decades: float = 3.0,
    ax: Axes | None = None,
    electrode: str = "we",
) -> Figure:
    """gamma(tau) (ohm cm2) of every step as a heat map: time (h) vs tau (s, log).

    The tracked peaks (``<process>_tau_s`` of the DRT stage, e.g. ``int`` and ``gb``) are
    drawn on top, and the peak events (a process's peak splitting, appearing or
    vanishing: ``drt_events``) as dotted lines labelled with the process and kind.
    Rows are decimated to ``max_rows``. ``electrode="ce"``: the counter electrode's.

    ``scale="log"`` (default) colours log γ over the top ``decades`` decades, so the
    small early peaks stay visible next to the large late ones (the interface
    resistance grows by orders of magnitude during stripping); ``"linear"``
    colours γ itself.
    """
    if scale not in ("log", "linear"):
        raise ValueError(f"scale must be 'log' or 'linear', got {scale!r}")
    experiment = _experiment(results).electrode(electrode)
    fig, ax = _axes(ax, (7.0, 4.8))
    drt = experiment.drt_map()
    if drt is None:
        raise ValueError(f"{experiment.name}: no DRT stage in the results")
    tau, gamma = drt
    times = _times_h(experiment)
    rows = decimate(len(times), max_rows)
    values = (np.nan_to_num(gamma[rows], nan=0.0) * _area(experiment)).T
    norm = None
    if scale == "log":
        top = float(np.max(values)) if values.size and np.max(values) > 0 else 1.0
        # Values below the range (including γ = 0) take the darkest colour.
        norm = LogNorm(top * 10.0**-decades, top, clip=True)
    # pcolormesh needs increasing edges: sweep times are (sorted) sweep starts.
    mesh = ax.pcolormesh(
        _edges(times[rows]),
        _edges(tau, log=True),
        values,
        cmap="magma",
        norm=norm,
        shading="flat",
        rasterized=True,
    )
    ax.set_yscale("log")
    if peaks:
        stage = experiment.stage("drt")
        markers = iter(("o", "s", "^", "D", "v"))
        colours = iter(("tab:cyan", "tab:green", "tab:red", "tab:blue", "white"))
        for key in sorted(stage.sweeps):
            if not key.endswith("_tau_s"):
                continue
            process = key[: -len("_tau_s")]
            ax.plot(
                times[rows],
                np.asarray(stage.sweeps[key])[rows],
                linestyle="none",
                marker=next(markers, "o"),
                ms=2.5,
                color=next(colours, "white"),
                label=f"{process} peak",
            )
        _draw_events(ax, experiment, times)
        ax.legend(loc="lower left", fontsize="small", framealpha=0.6)  # event labels are on top
    ax.set_ylim(tau[0], tau[-1])
    ax.set_xlabel("time (h)")
    ax.set_ylabel("τ (s)")
    which = "" if electrode == "we" else " (counter electrode)"
    ax.set_title(f"{experiment.name}: DRT map{which}")
    colourbar = fig.colorbar(mesh, ax=ax)
    colourbar.set_label(f"γ ({_z_unit(experiment)})")
    return fig


#: At most this many peak events are labelled on a DRT map (the rest are counted in the legend).
MAX_EVENT_LABELS = 12
#: A label needs this share of the time axis free since the last one (closer labels overlap).
EVENT_LABEL_GAP = 0.06
#: Up to this many events are drawn as dotted lines across the map; more (a peak that comes
#: and goes with the noise for hours) as ticks along its top edge, which leave the map visible.
MAX_EVENT_LINES = 40
#: Height of those ticks, as a share of the axes.
EVENT_TICK_HEIGHT = 0.04


def _draw_events(ax: Axes, experiment, times: np.ndarray) -> None:
    """The stored DRT peak events as dotted vertical lines with their process and kind.

    Events too close to the last labelled one are drawn unlabelled; the legend counts them
    all by kind. Beyond :data:`MAX_EVENT_LINES` events the lines become ticks along the top
    edge (one artist, however many events).
    """
    events = experiment.drt_events(as_frame=False)
    if not events or not len(events["step"]):
        return
    steps = np.asarray(events["step"], dtype=int)
    at = times[steps]
    span = float(np.ptp(times)) or 1.0
    transform = ax.get_xaxis_transform()  # x in data, y in axes fraction
    low = 0.0 if steps.size <= MAX_EVENT_LINES else 1.0 - EVENT_TICK_HEIGHT
    # One line of NaN-separated segments: one path to transform and draw, however many events.
    xs = np.column_stack([at, at, np.full(at.size, np.nan)]).ravel()
    ys = np.tile([low, 1.0, np.nan], at.size)
    ax.plot(xs, ys, color="white", lw=0.8, alpha=0.8, ls=":" if low == 0.0 else "-",
            transform=transform, scalex=False, scaley=False, label="_events")  # fmt: skip
    labelled: list[float] = []
    for step, process, kind in zip(steps, events["process"], events["kind"], strict=True):
        free = not labelled or times[step] - labelled[-1] >= EVENT_LABEL_GAP * span
        if free and len(labelled) < MAX_EVENT_LABELS:
            ax.text(
                times[step],
                0.98 - 0.06 * (len(labelled) % 4) - (EVENT_TICK_HEIGHT if low else 0.0),
                f" {process} {kind}",
                transform=transform,
                color="white",
                fontsize="x-small",
                va="top",
            )
            labelled.append(float(times[step]))
        elif len(labelled) >= MAX_EVENT_LABELS:
            break
    kinds, counts = np.unique(np.asarray(events["kind"], dtype=str), return_counts=True)
    by_kind = ", ".join(f"{count} {kind}" for kind, count in zip(kinds, counts, strict=True))
    where = ": " if low == 0.0 else " (ticks at the top):\n"
    ax.plot([], [], color="white", ls=":", label=f"{steps.size} peak event(s){where}{by_kind}")


def drt_curves(
    results, steps: Sequence[int] | None = None, *, count: int = 8, ax: Axes | None = None
) -> Figure:
    """gamma(tau) (ohm cm2) of selected steps (default: :func:`representative_steps`),
    coloured by time."""
    experiment = _experiment(results)
    fig, ax = _axes(ax)
    drt = experiment.drt_map()
    if drt is None:
        raise ValueError(f"{experiment.name}: no DRT stage in the results")
    tau, gamma = drt
    times = _times_h(experiment)
    steps = (
        representative_steps(experiment, count) if steps is None else np.asarray(steps, dtype=int)
    )
    norm = _time_norm(times[steps])
    cmap = _cmap()
    area = _area(experiment)
    for step in steps:
        ax.plot(tau, gamma[step] * area, "-", lw=1.2, color=cmap(norm(times[step])))
    stage = experiment.stage("drt")
    shades = iter(("#dbe9f6", "#fde3c8", "#dcefd9", "#eadcf0", "#f3f3c9"))
    for process, window in (stage.attrs.get("windows") or {}).items():
        ax.axvspan(
            float(window[0]),
            float(window[1]),
            color=next(shades, "0.9"),
            zorder=0,
            label=f"{process} window",
        )
    ax.set_xscale("log")
    ax.set_xlabel("τ (s)")
    ax.set_ylabel(f"γ ({_z_unit(experiment)})")
    ax.set_title(f"{experiment.name}: DRT of {len(steps)} steps")
    if stage.attrs.get("windows"):
        ax.legend(loc="upper left", fontsize="small", framealpha=0.6)
    _time_colourbar(fig, ax, norm)
    return fig


# -- quality control ----------------------------------------------------------------------------


def _residual_panel(fig, ax, experiment, residuals, steps, times, ylabel):
    """Relative residuals (%) vs frequency of the given steps as a LineCollection."""
    offsets = _offsets(experiment)
    segments = []
    for step in steps:
        window = slice(offsets[step], offsets[step + 1])
        values = 100.0 * np.asarray(residuals[window], dtype=float)
        segments.append(np.column_stack([experiment.spectra[step].freq, values]))
    norm = _time_norm(times)
    lines = LineCollection(segments, cmap=TIME_CMAP, norm=norm, linewidths=0.7, alpha=0.7)
    lines.set_array(times[steps])
    ax.add_collection(lines)
    ax.set_xscale("log")
    ax.autoscale()
    # The bulk of the residuals sets the scale (at least +-1 %), not the worst sweep.
    drawn = np.concatenate([segment[:, 1] for segment in segments]) if segments else []
    limits = robust_limits(np.concatenate([drawn, [-1.0, 1.0]]))
    if limits is not None:
        ax.set_ylim(*limits)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel(ylabel)
    colourbar = fig.colorbar(lines, ax=ax)
    colourbar.set_label("time (h)")
    return lines


def kk_residuals(results, *, max_curves: int = MAX_CURVES, fig: Figure | None = None) -> Figure:
    """Lin-KK relative residuals (%) per point, real and imaginary, and the rms per sweep."""
    experiment = _experiment(results)
    stage = experiment.stage("kk")
    if stage is None:
        raise ValueError(f"{experiment.name}: no Kramers-Kronig stage in the results")
    fig = _figure(fig, (7.0, 8.0))
    real_ax, imag_ax, rms_ax = fig.subplots(3, 1)
    times = _times_h(experiment)
    steps = decimate(len(times), max_curves)
    _residual_panel(
        fig, real_ax, experiment, stage.points["residual_real"], steps, times, "Δ' / |Z| (%)"
    )
    _residual_panel(
        fig, imag_ax, experiment, stage.points["residual_imag"], steps, times, "Δ'' / |Z| (%)"
    )
    real_ax.set_title(f"{experiment.name}: Kramers-Kronig residuals ({len(steps)} sweeps)")
    ok = np.asarray(stage.sweeps["ok"], dtype=bool)
    rms = 100.0 * np.asarray(stage.sweeps["rms"], dtype=float)
    truncated = np.isfinite(np.asarray(stage.sweeps["truncated_below_hz"], dtype=float))
    if ok.any():
        _points(rms_ax, times[ok], rms[ok], ".", ms=3, label="passed")
    if (~ok).any():
        _points(rms_ax, times[~ok], rms[~ok], "x", color="tab:red", label="failed")
    if truncated.any():
        _points(
            rms_ax,
            times[truncated],
            rms[truncated],
            "o",
            mfc="none",
            color="tab:orange",
            label="low-f tail truncated",
        )
    rms_ax.set_xlabel("time (h)")
    rms_ax.set_ylabel("KK rms residual (%)")
    rms_ax.legend(loc="best", fontsize="small")
    return fig


def fit_residuals(results, *, max_curves: int = MAX_CURVES, fig: Figure | None = None) -> Figure:
    """Relative fit residuals (Z - Z_fit)/|Z| (%) per point, and chi2 per sweep.

    The residuals of the ok fits; when no fit is ok, those of the fits that are not
    (what to look at to see why), as the title says.
    """
    experiment = _experiment(results)
    stage = experiment.stage("fit")
    if stage is None:
        raise ValueError(f"{experiment.name}: no fit stage in the results")
    fig = _figure(fig, (7.0, 8.0))
    real_ax, imag_ax, chi_ax = fig.subplots(3, 1)
    times = _times_h(experiment)
    ok = _step_ok(experiment)
    steps = np.flatnonzero(ok) if ok.any() else np.arange(ok.size)
    which = "ok fits" if ok.any() else "no fit is ok: the not-ok fits"
    steps = steps[decimate(len(steps), max_curves)]
    offsets = _offsets(experiment)
    n_points = int(offsets[-1])
    relative = np.full(n_points, np.nan, dtype=complex)
    for step in steps:  # only the drawn steps are computed
        window = slice(offsets[step], offsets[step + 1])
        z = experiment.spectra[step].z
        z_fit = stage.points["z_fit_real_ohm"][window] + 1j * stage.points["z_fit_imag_ohm"][window]
        relative[window] = (z - z_fit) / np.abs(z)
    _residual_panel(
        fig, real_ax, experiment, relative.real, steps, times, "(Z' - Z'_fit) / |Z| (%)"
    )
    _residual_panel(
        fig, imag_ax, experiment, relative.imag, steps, times, "(Z'' - Z''_fit) / |Z| (%)"
    )
    real_ax.set_title(f"{experiment.name}: fit residuals ({len(steps)} sweeps, {which})")
    chi2 = np.asarray(stage.sweeps["chi2"], dtype=float)
    if ok.any():
        _points(chi_ax, times[ok], chi2[ok], ".", ms=3, label="fit ok")
    failed = ~ok
    if failed.any():
        finite = chi2[np.isfinite(chi2) & (chi2 > 0)]
        floor = float(finite.min()) if finite.size else 1.0
        shown = np.where(np.isfinite(chi2[failed]) & (chi2[failed] > 0), chi2[failed], floor)
        _points(chi_ax, times[failed], shown, "x", color="tab:red", label="fit not ok")
    chi_ax.set_yscale("log")
    chi_ax.set_xlabel("time (h)")
    chi_ax.set_ylabel("χ² (1)")
    chi_ax.legend(loc="best", fontsize="small")
    return fig


# -- studies ------------------------------------------------------------------------------------


def _first(mapping: Mapping[str, object], *keys: str):
    for key in keys:
        if key in mapping and mapping[key] is not None:
            return mapping[key]
    return None


def _float(value) -> float | None:
    try:
        number = float(np.asarray(value).reshape(-1)[0]) if np.size(value) else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and math.isfinite(number) else None


def sand_data(results) -> dict[str, object] | None:
    """The Sand-plot data of a result file, or None when there is none.

    Per experiment: ``summary["t0_s"]`` (depletion time) and the current density
    (``summary["current_density_mA_cm2"]``, else setpoint / area). Study level
    (``results.study["sand"]``): ``D_eff_cm2_s`` with ``c0_mol_cm3``, or a ``slope``.
    None unless the study holds a Sand fit or the experiments reached t0 at two or
    more current densities (a line through one point says nothing).
    """
    currents, t0s, names = [], [], []
    for experiment in results:
        summary = experiment.summary
        t0 = _float(_first(summary, "t0_s", "depletion_time_s"))
        current = _float(_first(summary, "current_density_mA_cm2", "i_mA_cm2"))
        if current is None:
            setpoint, area = experiment.metadata.current_setpoint_mA, experiment.metadata.area_cm2
            if setpoint is not None and area:
                current = float(setpoint) / float(area)
        if t0 is None or current is None or t0 <= 0:
            continue
        currents.append(abs(current))
        t0s.append(t0)
        names.append(experiment.name)
    study = dict(results.study.get("sand", {}))
    if not study and np.unique(np.round(currents, 12)).size < 2:
        return None  # a Sand line needs two or more current densities
    data: dict[str, object] = {
        "current_density_mA_cm2": np.asarray(
            study.get("current_density_mA_cm2", currents), dtype=float
        ),
        "t0_s": np.asarray(study.get("t0_s", t0s), dtype=float),
        "names": names,
    }
    for key in ("D_eff_cm2_s", "c0_mol_cm3", "slope", "intercept"):
        value = _float(study.get(key)) if key in study else None
        if value is not None:
            data[key] = value
    if len(data["t0_s"]) == 0:  # type: ignore[arg-type]
        return None
    return data


def sand(
    current_density_mA_cm2,
    t0_s,
    *,
    D_eff_cm2_s: float | None = None,
    c0_mol_cm3: float | None = None,
    slope: float | None = None,
    intercept: float | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Sand plot: t0^(-1/2) (s^-1/2) vs current density (mA/cm2), with the Sand line.

    The line is 2 i / (sqrt(pi D_eff) c0 F) when ``D_eff_cm2_s`` and ``c0_mol_cm3`` are given,
    else ``slope`` (s^-1/2 per mA/cm2) and ``intercept``, else a least-squares line through 0.
    """
    fig, ax = _axes(ax)
    current = np.asarray(current_density_mA_cm2, dtype=float)
    t0 = np.asarray(t0_s, dtype=float)
    y = 1.0 / np.sqrt(t0)
    ax.plot(current, y, "o", label="experiments")
    label = None
    if D_eff_cm2_s is not None and c0_mol_cm3 is not None:
        slope = 2.0 * 1e-3 / (math.sqrt(math.pi * D_eff_cm2_s) * c0_mol_cm3 * FARADAY_C_MOL)
        intercept = 0.0
        label = f"Sand, D_eff = {D_eff_cm2_s:.3g} cm²/s"
    elif slope is None and len(current) and np.any(current > 0):
        slope = float(np.sum(current * y) / np.sum(current * current))
        intercept = 0.0
        label = "least squares through 0"
    if slope is not None:
        line_x = np.linspace(0.0, float(np.max(current)) * 1.1 if len(current) else 1.0, 50)
        ax.plot(line_x, slope * line_x + (intercept or 0.0), "-", label=label or "Sand line")
    ax.set_xlim(left=0.0)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("current density i (mA/cm²)")
    ax.set_ylabel("t0^(-1/2) (s^(-1/2))")
    ax.legend(loc="best", fontsize="small")
    ax.set_title("Sand plot")
    return fig


def arrhenius_data(results) -> dict[str, object] | None:
    """Arrhenius data: ``results.study["arrhenius"]`` (``temperature_K``, ``R_ohm_cm2``,
    optional ``E_A_eV``), else per experiment ``summary["temperature_K"]`` with the interface
    resistance (``summary["R_int_ohm_cm2"]``, else the first tracked R_int). None when absent.
    """
    study = dict(results.study.get("arrhenius", {}))
    temperature = _first(study, "temperature_K", "T_K")
    resistance = _first(study, "R_ohm_cm2", "R_int_ohm_cm2")
    if temperature is None or resistance is None:
        temperatures, resistances = [], []
        for experiment in results:
            summary = experiment.summary
            t = _float(_first(summary, "temperature_K", "T_K"))
            r = _float(_first(summary, "R_int_ohm_cm2", "R_int_initial_ohm_cm2"))
            if r is None:
                column = experiment.tracking(as_frame=False).get("R_int_ohm_cm2")
                r = _float(column[0]) if column is not None and len(column) else None
            if t is not None and r is not None and r > 0:
                temperatures.append(t)
                resistances.append(r)
        temperature, resistance = temperatures, resistances
    temperature = np.atleast_1d(np.asarray(temperature, dtype=float))
    resistance = np.atleast_1d(np.asarray(resistance, dtype=float))
    if len(temperature) < 2 or len(temperature) != len(resistance):
        return None
    data: dict[str, object] = {"temperature_K": temperature, "R_ohm_cm2": resistance}
    e_a = _float(_first(study, "E_A_eV", "activation_energy_eV"))
    if e_a is not None:
        data["E_A_eV"] = e_a
    return data


def arrhenius(
    temperature_K, R_ohm_cm2, *, E_A_eV: float | None = None, ax: Axes | None = None
) -> Figure:
    """Arrhenius plot: ln(T/R) vs 1000/T; slope -E_A/k_B (fitted when ``E_A_eV`` is None)."""
    fig, ax = _axes(ax)
    temperature = np.asarray(temperature_K, dtype=float)
    resistance = np.asarray(R_ohm_cm2, dtype=float)
    x = 1000.0 / temperature
    y = np.log(temperature / resistance)
    ax.plot(x, y, "o", label="experiments")
    if len(x) >= 2:
        if E_A_eV is None:
            slope, intercept = np.polyfit(1.0 / temperature, y, 1)
            E_A_eV = -slope * _BOLTZMANN_EV_K
        else:
            slope = -E_A_eV / _BOLTZMANN_EV_K
            intercept = float(np.mean(y - slope / temperature))
        line_t = np.linspace(temperature.min(), temperature.max(), 50)
        ax.plot(1000.0 / line_t, slope / line_t + intercept, "-", label=f"E_A = {E_A_eV:.3g} eV")
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel("ln(T / R) (ln(K / (Ω cm²)))")
    ax.legend(loc="best", fontsize="small")
    ax.set_title("Arrhenius plot")
    return fig
