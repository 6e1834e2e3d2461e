"""Figures show failure and scale to the good data (issue 12), on hand-made results.

A small experiment is built directly (no pipeline run): resistances known per step,
some fits not ok, a runaway sweep, points cut by Kramers-Kronig, no electrode area.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from matplotlib.figure import Figure

from geis_pipeline import plot
from geis_pipeline.results import ExperimentResults, parameter_unit, pick_quantity
from geis_pipeline.spectrum import DCRecord, Experiment, ExperimentMetadata, Spectrum
from geis_pipeline.store import ExperimentRecord, StageData

FREQ = np.logspace(6, 0, 31)
N = 12
#: R_int grows by 3 decades; steps 4 and 9 are fits that are not ok (runaway values).
R_INT = 100.0 * 10 ** (3 * np.arange(N) / (N - 1))
FAILED = np.zeros(N, bool)
FAILED[[4, 9]] = True


def _experiment_results(area_cm2: float | None = None, c_int=None) -> ExperimentResults:
    spectra, z_fit, used = [], [], []
    for step in range(N):
        r = R_INT[step] * (50.0 if FAILED[step] else 1.0)
        z = 50.0 + r / (1 + 1j * 2 * np.pi * FREQ * r * 1e-6)
        spectra.append(
            Spectrum(FREQ, z, step * 600.0, step * 600.0 + np.arange(FREQ.size), 0.1, 0.1, 0.0)
        )
        z_fit.append(z * (1.001 if not FAILED[step] else 1.3))
        kept = np.ones(FREQ.size, bool)
        kept[-4:] = step != 6  # sweep 6: its low-frequency tail was cut
        used.append(kept)
    ok = ~FAILED
    stages = {
        "fit": StageData(
            "h",
            sweeps={
                "ok": ok,
                "chi2": np.where(ok, 1e-3, np.nan),
                "status": np.where(ok, "ok", "diverged").astype(object),
                "parameters": np.zeros((N, 1)),
                "stderr": np.zeros((N, 1)),
            },
            points={
                "z_fit_real_ohm": np.concatenate(z_fit).real,
                "z_fit_imag_ohm": np.concatenate(z_fit).imag,
            },
            attrs={"n_done": N, "parameter_names": ["R0"]},
        ),
        "kk": StageData(
            "h",
            sweeps={
                "ok": np.ones(N, bool),
                "rms": np.full(N, 0.004),
                "truncated_below_hz": np.where(np.arange(N) == 6, 2.0, np.nan),
                "reason": np.array([""] * N, dtype=object),
            },
            points={
                "used": np.concatenate(used),
                "residual_real": np.zeros(N * FREQ.size),
                "residual_imag": np.zeros(N * FREQ.size),
            },
            attrs={"n_done": N},
        ),
    }
    r_values = np.where(FAILED, R_INT * 50.0, R_INT)
    area = area_cm2 if area_cm2 else np.nan
    c_farad = np.full(N, 1e-6) if c_int is None else np.asarray(c_int, dtype=float)
    tracking = {
        "time_s": np.arange(N) * 600.0,
        "E_V": np.full(N, 0.1),
        "R_b_ohm": np.full(N, 50.0),
        "R_b_ohm_cm2": np.full(N, 50.0) * area,
        "R_int_ohm": r_values,
        "R_int_ohm_cm2": r_values * area,
        "C_int_F": c_farad,
        "C_int_F_cm2": c_farad / area,
        "C_int_reliable": ~FAILED,
        "contact_loss_C": np.full(N, np.nan),
        "contact_loss_R": np.full(N, np.nan),
        "charge_mAh_cm2": np.full(N, np.nan),
        "fit_ok": ok,
        "fit_reason": np.where(ok, "", "diverged").astype(str),
    }
    metadata = ExperimentMetadata(area_cm2, 0.1, ("GEIS",), None, ("cell.mpt",))
    experiment = Experiment(tuple(spectra), DCRecord.empty(), metadata)
    record = ExperimentRecord("cell", experiment, (), stages, tracking, {"reference_step": 0})
    return ExperimentResults(record)


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    assert not [str(item.message) for item in caught]


def test_evolution_without_area_in_ohm_with_failed_steps_apart(no_warnings) -> None:
    experiment = _experiment_results()
    fig = plot.evolution(experiment)
    bottom = fig.axes[1]
    assert bottom.get_ylabel() == "R (Ω)"
    assert bottom.get_yscale() == "log"  # R_int spans 3 decades
    lines = {line.get_label(): line for line in bottom.lines}
    r_int = lines["R_int"].get_ydata()
    assert np.isnan(r_int[FAILED]).all()  # the line joins the ok steps only
    np.testing.assert_allclose(r_int[~FAILED], R_INT[~FAILED])
    crosses = lines["_R_int not ok"]
    assert crosses.get_marker() == "x"
    np.testing.assert_allclose(crosses.get_ydata(), R_INT[FAILED] * 50.0)
    assert "fit not ok (2 of 12 steps)" in lines
    # the scale follows the ok values, not the runaway ones
    low, high = bottom.get_ylim()
    assert R_INT[~FAILED].max() <= high < R_INT[FAILED].max() * 50.0
    assert low <= 50.0


def test_nyquist_without_ok_fits_leaves_out_the_runaways(no_warnings) -> None:
    """No fit vouches for a large arc: sweeps beyond 3x the median extent are off the axes."""
    experiment = _experiment_results()
    experiment.stage("fit").sweeps["ok"][:] = False
    steps = [0, 1, 2, 3, 4]  # R_int 100..190 ohm, and sweep 4: a runaway (x50)
    fig = plot.nyquist(experiment, steps=steps)
    ax = fig.axes[0]
    assert ax.get_xlim()[1] < 2 * (R_INT[3] + 50.0)
    assert any("1 not-ok sweep(s) reach beyond the axes" in text.get_text() for text in ax.texts)
    # Without the runaway, every sweep is within the axes and no note says otherwise.
    fig = plot.nyquist(experiment, steps=steps[:4])
    assert not any("beyond the axes" in text.get_text() for text in fig.axes[0].texts)


def test_linear_axis_when_the_span_is_small(no_warnings) -> None:
    experiment = _experiment_results(area_cm2=1.0)
    table = experiment.record.tracking
    for name in ("R_int_ohm_cm2", "R_int_ohm"):
        table[name] = np.linspace(100.0, 300.0, N)
    fig = plot.evolution(experiment)
    assert fig.axes[1].get_yscale() == "linear"
    assert fig.axes[1].get_ylabel() == "R (Ω cm²)"


def test_nyquist_scales_to_the_good_sweeps_and_marks_the_rest(no_warnings) -> None:
    experiment = _experiment_results()
    fig = plot.nyquist(experiment, steps=range(N))
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert labels.count("_fit") == N - 2 and labels.count("_fit_not_ok") == 2
    (cut,) = [line for line in ax.lines if line.get_label() == "_kk_cut"]
    assert len(cut.get_xdata()) == 4 and cut.get_alpha() < 0.5
    hollow = [line for line in ax.lines if line.get_label() == "_measured"]
    assert sum(line.get_markerfacecolor() == "none" for line in hollow) == 2
    # limits: the largest kept point of an ok sweep, not the runaway sweeps (x50)
    good = max(R_INT[~FAILED]) + 50.0
    assert ax.get_xlim()[1] < 2 * good
    assert "x" not in ax.get_xlabel() and "(Ω)" in ax.get_xlabel()


def test_capacitance_without_values_draws_a_note_not_a_warning(no_warnings) -> None:
    experiment = _experiment_results(c_int=np.full(N, np.nan))
    fig = plot.capacitance(experiment)
    assert "no interface capacitance" in fig.axes[0].texts[0].get_text()
    fig = plot.contact_loss(experiment)  # the table's losses are NaN and C_int too
    lines = [line.get_label() for line in fig.axes[0].lines]
    assert "from R_int: 1 - R0/R" in lines and "from C_int: 1 - C/C0" not in lines


def test_contact_loss_from_the_absolute_twins(no_warnings) -> None:
    experiment = _experiment_results()
    fig = plot.contact_loss(experiment)
    line = next(line for line in fig.axes[0].lines if line.get_label() == "from R_int: 1 - R0/R")
    expected = 100 * (1 - R_INT[0] / R_INT)
    np.testing.assert_allclose(line.get_ydata()[~FAILED], expected[~FAILED])


def test_robust_limits() -> None:
    values = np.concatenate([np.linspace(0, 10, 200), [1e6]])
    low, high = plot.robust_limits(values)
    assert low < 0 and 10 < high < 100
    assert plot.robust_limits([np.nan, np.inf]) is None
    assert plot.robust_limits([5.0, 5.0]) == pytest.approx((4.75, 5.25))
    # few values: their whole range
    assert plot.robust_limits([0.0, 1.0, 1000.0])[1] > 1000.0


def test_quantities_and_units() -> None:
    experiment = _experiment_results()
    assert experiment.quantity("R_int").column == "R_int_ohm"
    assert experiment.quantity("C_int").unit == "F"
    assert experiment.quantity("R_gb") is None
    with_area = _experiment_results(area_cm2=0.5)
    quantity = with_area.quantity("R_int")
    assert (quantity.column, quantity.unit, quantity.area_specific) == (
        "R_int_ohm_cm2",
        "Ω cm²",
        True,
    )
    first, last, unit = with_area.first_last("R_int")
    assert (first, last, unit) == (
        pytest.approx(R_INT[0] * 0.5),
        pytest.approx(R_INT[-1] * 0.5),
        "Ω cm²",
    )
    # an area-specific column without a twin is what there is
    only = pick_quantity({"R_x_ohm_cm2": np.full(3, np.nan)}, "R_x")
    assert only.column == "R_x_ohm_cm2"
    for name, unit in (
        ("R1", "ohm"),
        ("CPE1_0", "F_s^(a-1)"),
        ("CPE1_1", ""),
        ("L0", "H"),
        ("C2", "F"),
        ("W1", "ohm_s^-0.5"),
        ("Zarc1_1", "s"),
        ("Zarc1_2", ""),
    ):
        assert parameter_unit(name) == unit, name


def test_quality_rows_count_the_reasons() -> None:
    quality = _experiment_results().quality()
    assert quality.n_fit_failed == 2 and quality.n_kk_failed == 0
    assert quality.n_kk_truncated == 1 and quality.n_drt_failed is None
    rows = dict(quality.rows())
    assert rows["circuit fits"] == (
        "2 of 12 not ok: diverged: the fit diverged (non-finite cost) (2)"
    )
    assert rows["DRT"] == "not run"


def test_equally_common_reasons_read_the_same_every_run() -> None:
    from geis_pipeline.results import _reasons

    # Each step's codes go through a set: without a tie order, the hash seed chose it.
    reasons = np.array(["residual,unresolved", "unresolved,residual", "kk", "zeta,kk"])
    failed = np.ones(4, dtype=bool)
    assert _reasons(reasons, failed, separator=",") == (
        ("kk", 2),
        ("residual", 2),
        ("unresolved", 2),
    )


def test_short_reprs() -> None:
    experiment = _experiment_results()
    text = repr(experiment)
    assert text.startswith("<ExperimentResults 'cell': 12 sweeps, unknown area")
    assert len(text) < 200
    assert len(repr(experiment.record)) < 300
    assert repr(experiment.spectra[0]).startswith("Spectrum(31 points")
    assert "12 sweeps from 1 file(s)" in repr(experiment.record.experiment)
    assert isinstance(plot.kk_residuals(experiment), Figure)
