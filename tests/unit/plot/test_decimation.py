"""What the figures of long experiments keep when they are decimated: the envelope of a
series, its gaps, the first / last / depletion steps, the steps of a fast change, and every
DRT peak event however many there are."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from matplotlib.figure import Figure

from geis_pipeline import plot
from geis_pipeline.results import Quantity


class _Experiment:
    """The few attributes the step selection reads from an ExperimentResults."""

    record = None  # marks it as one experiment's results

    def __init__(self, time_s, r_int, ok=None, summary=None, events=None) -> None:
        self.time_s = np.asarray(time_s, dtype=float)
        self.r_int = np.asarray(r_int, dtype=float)
        self.ok = np.ones(self.time_s.size, bool) if ok is None else np.asarray(ok, bool)
        self.summary = summary or {}
        self.events = events
        self.spectra = [None] * self.time_s.size

    def tracking(self, as_frame: bool = False):
        return {"time_s": self.time_s, "fit_ok": self.ok}

    def quantity(self, stem: str):
        return Quantity("R_int_ohm_cm2", self.r_int, "Ω cm²", True) if stem == "R_int" else None

    def stage(self, name: str):
        return None

    def drt_events(self, as_frame: bool = False):
        return self.events


def _stripping(n: int = 30_000, rise: int = 300):
    """R_int rising 100x within the first ``rise`` steps, then a noisy plateau; t0 in it."""
    rng = np.random.default_rng(3)
    time_s = np.arange(n) * 13.0
    r_int = np.where(
        np.arange(n) < rise, 100.0 * 100.0 ** (np.arange(n) / rise), 10_000.0
    ) * np.exp(0.03 * rng.standard_normal(n))
    t0_step = rise - 20
    summary = {
        "t0_reached": True,
        "t0_s": float(time_s[t0_step] - 100.0 + 4.0),  # 4 s after the sweep at t0_step
        "current_onset_s": 100.0,
        "reference_step": 0,
    }
    return _Experiment(time_s, r_int, summary=summary), t0_step


def test_a_short_series_is_drawn_whole() -> None:
    assert np.array_equal(plot.decimate_series(np.arange(50.0), max_points=60), np.arange(50))


def test_decimation_keeps_the_envelope_the_ends_and_the_gaps() -> None:
    rng = np.random.default_rng(0)
    values = rng.standard_normal(30_000)
    values[12_345] = 40.0  # one spike
    values[20_000:20_050] = np.nan  # a stretch without a value (not-ok fits)
    kept = plot.decimate_series(values, max_points=900, keep=[777])
    assert kept.size <= 900 + 3
    assert np.all(np.diff(kept) > 0)
    assert {0, 29_999, 777, 12_345} <= set(kept.tolist())
    assert np.nanmax(values[kept]) == np.nanmax(values)
    assert np.nanmin(values[kept]) == np.nanmin(values)
    assert np.isnan(values[kept]).any()  # the gap stays a gap in the drawn line


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float64, st.integers(1, 5000), elements=st.floats(allow_infinity=False)),
    st.integers(3, 600),
)
def test_decimation_never_loses_the_extremes(values, max_points) -> None:
    kept = plot.decimate_series(values, max_points=max_points)
    assert kept.size <= max(values.size if values.size <= max_points else max_points + 2, 1)
    assert kept.min() == 0 and kept.max() == values.size - 1
    finite = np.isfinite(values)
    if finite.any():
        assert np.nanmax(values[kept]) == values[finite].max()
        assert np.nanmin(values[kept]) == values[finite].min()


def test_key_steps_are_the_first_last_reference_and_depletion_step() -> None:
    experiment, t0_step = _stripping()
    steps = plot.key_steps(experiment)
    assert set(steps.tolist()) == {0, t0_step, 29_999}
    experiment.summary["t0_reached"] = False
    assert set(plot.key_steps(experiment).tolist()) == {0, 29_999}


def test_representative_steps_follow_a_fast_change() -> None:
    experiment, t0_step = _stripping()
    steps = plot.representative_steps(experiment, 8)
    assert steps.size == 8 and np.all(np.diff(steps) > 0)
    assert {0, t0_step, 29_999} <= set(steps.tolist())
    # Most of them show the rise (the first 1 % of the steps), which evenly spaced steps miss.
    assert np.sum(steps < 300) >= 5
    assert np.sum(plot.select_steps(30_000, 8) < 300) == 1
    # Their R_int climbs through the range: no two share a decade's quarter.
    rising = np.log10(experiment.r_int[steps[steps < 300]])
    assert np.all(np.diff(rising) > 0.2)


def test_representative_steps_without_r_int_are_evenly_spaced() -> None:
    experiment = _Experiment(np.arange(100.0), np.full(100, np.nan))
    steps = plot.representative_steps(experiment, 5)
    assert steps.size == 5 and steps[0] == 0 and steps[-1] == 99
    assert np.array_equal(plot.representative_steps(_Experiment([0.0, 1.0], [1.0, 2.0]), 8), [0, 1])


def _events(steps):
    steps = np.asarray(steps, dtype=np.int64)
    kinds = np.array(["appear", "vanish"] * (steps.size // 2 + 1), dtype=object)[: steps.size]
    return {"step": steps, "process": np.array(["gb"] * steps.size, dtype=object), "kind": kinds}


def test_thousands_of_peak_events_are_one_artist_along_the_top() -> None:
    n_events = 10_000
    steps = np.sort(np.random.default_rng(1).choice(30_000, n_events, replace=False))
    experiment = _Experiment(np.arange(30_000.0), np.ones(30_000), events=_events(steps))
    fig = Figure()
    ax = fig.add_subplot()
    plot._draw_events(ax, experiment, experiment.time_s / 3600.0)
    (line,) = [line for line in ax.lines if line.get_label() == "_events"]
    x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    assert np.array_equal(np.unique(x[np.isfinite(x)]), steps / 3600.0)  # every event drawn
    assert np.nanmin(y) == 1.0 - plot.EVENT_TICK_HEIGHT and np.nanmax(y) == 1.0
    assert len(ax.texts) <= plot.MAX_EVENT_LABELS
    (legend_entry,) = [line for line in ax.lines if "peak event" in line.get_label()]
    assert f"{n_events} peak event(s)" in legend_entry.get_label()
    assert "5000 appear" in legend_entry.get_label()


def test_a_few_peak_events_are_lines_across_the_map() -> None:
    experiment = _Experiment(np.arange(100.0), np.ones(100), events=_events([10, 60]))
    fig = Figure()
    ax = fig.add_subplot()
    plot._draw_events(ax, experiment, experiment.time_s)
    (line,) = [line for line in ax.lines if line.get_label() == "_events"]
    y = np.asarray(line.get_ydata(), float)
    assert np.nanmin(y) == 0.0 and np.nanmax(y) == 1.0
    assert [text.get_text() for text in ax.texts] == [" gb appear", " gb vanish"]
