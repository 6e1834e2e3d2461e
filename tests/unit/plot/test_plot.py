"""Every figure of geis_pipeline.plot, drawn from a small demo run and checked for content."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pytest
from matplotlib.collections import LineCollection, QuadMesh
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from geis_pipeline import plot
from geis_pipeline.results import open_results

UNIT = re.compile(r"\(.+\)")  # every axis label names its unit in parentheses


@pytest.fixture(scope="module")
def results(small_run):
    return open_results(small_run)


@pytest.fixture(scope="module")
def experiment(results):
    return results["experiment"]


def _all_axes(fig: Figure):
    """The figure's axes and their inset axes (a colourbar beside a fixed-aspect box)."""
    return [*fig.axes, *(child for ax in fig.axes for child in ax.child_axes)]


def _data_axes(fig: Figure):
    """The axes that are not colourbars."""
    return [ax for ax in fig.axes if not hasattr(ax, "_colorbar")]


def _colourbars(fig: Figure):
    return [ax for ax in _all_axes(fig) if hasattr(ax, "_colorbar")]


def _check_labels(fig: Figure) -> None:
    for ax in _all_axes(fig):
        if ax in _colourbars(fig):
            label = ax.get_ylabel() or ax.get_xlabel()
            assert UNIT.search(label), f"colourbar label without unit: {label!r}"
            continue
        assert UNIT.search(ax.get_ylabel()), f"y label without unit: {ax.get_ylabel()!r}"
        if ax.get_xlabel() or not ax.get_shared_x_axes().get_siblings(ax)[1:]:
            assert UNIT.search(ax.get_xlabel()), f"x label without unit: {ax.get_xlabel()!r}"


def _check_png(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=60)
    assert path.stat().st_size > 5000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nyquist(experiment, tmp_path: Path) -> None:
    fig = plot.nyquist(experiment, count=5)
    _check_labels(fig)
    (ax,) = _data_axes(fig)
    assert "Ω cm²" in ax.get_xlabel()
    assert len(_colourbars(fig)) == 1
    assert _colourbars(fig)[0].get_ylabel() == "time (h)"
    measured = [line for line in ax.lines if line.get_label() == "_measured"]
    fitted = [line for line in ax.lines if line.get_label() == "_fit"]
    assert len(measured) == 5
    assert len(fitted) == 5  # every fit of the demo succeeds
    assert ax.get_aspect() == 1.0
    steps = plot.representative_steps(experiment, 5)
    step = steps[2]
    z = experiment.spectra[step].z * experiment.metadata.area_cm2
    used = experiment.points("kk", "used", step).astype(bool)
    # the points Kramers-Kronig kept are the markers; the cut ones are drawn faint
    np.testing.assert_allclose(measured[2].get_xdata(), z.real[used])
    np.testing.assert_allclose(measured[2].get_ydata(), -z.imag[used])
    cut = [line for line in ax.lines if line.get_label() == "_kk_cut"]
    n_cut = sum(int((~experiment.points("kk", "used", s).astype(bool)).sum()) for s in steps)
    assert sum(len(line.get_xdata()) for line in cut) == n_cut
    assert all(line.get_alpha() < 0.5 for line in cut)
    # fitted curve close to the data (area-specific, same scale)
    assert np.nanmax(np.abs(fitted[2].get_xdata() - z.real)) < 0.1 * np.abs(z).max()
    # the axes hold every kept point of the drawn (all ok) sweeps
    kept = np.concatenate([line.get_xdata() for line in measured])
    low, high = ax.get_xlim()
    assert low <= kept.min() and kept.max() <= high
    _check_png(fig, tmp_path / "nyquist.png")


def test_nyquist_given_steps_and_axes(experiment) -> None:
    fig = Figure()
    ax = fig.add_subplot()
    assert plot.nyquist(experiment, steps=[0, 3], fit=False, ax=ax) is fig
    assert len(ax.lines) == 2 + 1  # two sweeps and the zero line is an axhline (a Line2D)


def test_bode_phase_draws_every_sweep(experiment, tmp_path: Path) -> None:
    fig = plot.bode_phase(experiment)
    _check_labels(fig)
    (ax,) = _data_axes(fig)
    (lines,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lines.get_segments()) == len(experiment.spectra)
    assert ax.get_xscale() == "log"
    assert len(_colourbars(fig)) == 1
    _check_png(fig, tmp_path / "bode.png")


def test_bode_phase_decimates_what_is_drawn(experiment) -> None:
    n = len(experiment.spectra)
    fig = plot.bode_phase(experiment, max_curves=10)
    (lines,) = _data_axes(fig)[0].collections
    assert len(lines.get_segments()) == 10
    assert len(experiment.spectra) == n  # the data are untouched
    indices = plot.decimate(30_000)
    assert len(indices) <= plot.MAX_CURVES
    assert indices[0] == 0
    assert indices[-1] == 29_999


@pytest.mark.parametrize("x", ["time", "charge"])
def test_evolution(experiment, x: str, tmp_path: Path) -> None:
    fig = plot.evolution(experiment, x=x)
    _check_labels(fig)
    top, bottom = _data_axes(fig)
    assert top.get_shared_x_axes().joined(top, bottom)
    assert top.get_ylabel() == "E (V)"
    assert [line.get_label() for line in bottom.lines] == ["R_b", "R_gb", "R_int"]
    n = len(experiment.spectra)
    assert all(len(line.get_xdata()) == n for line in bottom.lines)
    assert ("time (h)" if x == "time" else "mAh/cm²") in bottom.get_xlabel()
    assert len(top.lines) == (2 if x == "time" else 1)  # DC record only against time
    _check_png(fig, tmp_path / f"evolution_{x}.png")


def test_capacitance_normalised(experiment, tmp_path: Path) -> None:
    fig = plot.capacitance(experiment)
    _check_labels(fig)
    (ax,) = _data_axes(fig)
    line = ax.lines[0]
    assert len(line.get_xdata()) == len(experiment.spectra)
    assert line.get_ydata()[0] == pytest.approx(1.0)
    # stripping shrinks the contact: C_int falls
    assert np.nanmin(line.get_ydata()) < 0.9
    _check_png(fig, tmp_path / "capacitance.png")


def test_contact_loss(experiment, tmp_path: Path) -> None:
    fig = plot.contact_loss(experiment)
    _check_labels(fig)
    (ax,) = _data_axes(fig)
    assert ax.get_ylabel() == "contact loss (%)"
    assert len(ax.lines) == 3  # from C, from R, zero line
    table = experiment.tracking()
    np.testing.assert_allclose(ax.lines[0].get_ydata(), 100 * table["contact_loss_C"])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), 100 * table["contact_loss_R"])
    _check_png(fig, tmp_path / "contact_loss.png")


def test_drt_crosscheck_draws_what_is_not_a_measurement_hollow(experiment, tmp_path: Path) -> None:
    fig = plot.drt_crosscheck(experiment)
    _check_labels(fig)
    (ax,) = _data_axes(fig)
    table = experiment.tracking()
    lines = {line.get_label(): line for line in ax.lines}
    # Fast to slow: the grain boundary first.
    assert [label for label in lines if label.endswith(" fit")] == ["R_gb fit", "R_int fit"]
    # The bulk arc peaks above the top frequency: no DRT R_gb is a measurement.
    n_gb = int(np.isfinite(table["R_gb_drt_ohm_cm2"]).sum())
    hollow = lines[f"R_gb DRT, not a measurement ({n_gb} steps)"]
    assert hollow.get_markerfacecolor() == "none"
    assert len(hollow.get_xdata()) == n_gb
    assert "R_gb DRT" not in lines
    resolved = table["R_int_drt_resolved"].to_numpy()
    filled = lines["R_int DRT"]
    np.testing.assert_allclose(filled.get_ydata(), table["R_int_drt_ohm_cm2"][resolved])
    assert filled.get_color() == lines["R_int fit"].get_color()
    _check_png(fig, tmp_path / "drt_crosscheck.png")


class _WithoutFlags:
    """The experiment as a file written before the DRT's resolved flags reads."""

    def __init__(self, experiment) -> None:
        self._experiment = experiment

    def __getattr__(self, name: str):
        return getattr(self._experiment, name)

    def tracking(self, as_frame: bool = True):
        table = self._experiment.tracking(as_frame=False)
        return {name: values for name, values in table.items() if not name.endswith("_resolved")}


def test_drt_crosscheck_draws_values_of_an_older_file_as_unchecked(experiment) -> None:
    """No flag is not a measurement: every DRT value of an older file is hollow."""
    fig = plot.drt_crosscheck(_WithoutFlags(experiment))
    (ax,) = _data_axes(fig)
    table = experiment.tracking()
    lines = {line.get_label(): line for line in ax.lines}
    assert not any(label.endswith(" DRT") for label in lines), "nothing drawn as a measurement"
    for process in ("gb", "int"):
        n = int(np.isfinite(table[f"R_{process}_drt_ohm_cm2"]).sum())
        hollow = lines[f"R_{process} DRT, not checked: reprocess the file ({n} steps)"]
        assert hollow.get_markerfacecolor() == "none"
        assert len(hollow.get_xdata()) == n


def test_drt_map(experiment, tmp_path: Path) -> None:
    fig = plot.drt_map(experiment)
    _check_labels(fig)
    (ax,) = _data_axes(fig)
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    tau, _ = experiment.drt_map()
    assert mesh.get_array().shape == (len(tau), len(experiment.spectra))
    assert ax.get_yscale() == "log"
    peaks = {line.get_label(): line for line in ax.lines}
    assert {"int peak", "gb peak"} <= set(peaks)
    assert len(peaks["int peak"].get_xdata()) == len(experiment.spectra)
    # the int peak sits inside its window
    window = experiment.stage("drt").attrs["windows"]["int"]
    tau_int = np.asarray(peaks["int peak"].get_ydata())
    assert np.all((tau_int[np.isfinite(tau_int)] >= window[0]) & (tau_int <= window[1]))
    assert _colourbars(fig)[0].get_ylabel() == "γ (Ω cm²)"
    # log colour scale over 3 decades below the largest γ
    gamma_max = np.nanmax(experiment.drt_map()[1]) * experiment.metadata.area_cm2
    assert isinstance(mesh.norm, LogNorm)
    assert mesh.norm.vmax == pytest.approx(gamma_max)
    assert mesh.norm.vmin == pytest.approx(gamma_max * 1e-3)
    _check_png(fig, tmp_path / "drt_map.png")


def test_drt_map_linear_scale_and_bad_scale(experiment) -> None:
    fig = plot.drt_map(experiment, scale="linear")
    mesh = next(c for c in _data_axes(fig)[0].collections if isinstance(c, QuadMesh))
    assert not isinstance(mesh.norm, LogNorm)
    with pytest.raises(ValueError, match="scale"):
        plot.drt_map(experiment, scale="sqrt")


def test_drt_map_decimates_rows(experiment) -> None:
    fig = plot.drt_map(experiment, max_rows=7)
    mesh = next(c for c in _data_axes(fig)[0].collections if isinstance(c, QuadMesh))
    assert mesh.get_array().shape[1] == 7


def test_drt_curves(experiment, tmp_path: Path) -> None:
    fig = plot.drt_curves(experiment, count=4)
    _check_labels(fig)
    (ax,) = _data_axes(fig)
    assert len(ax.lines) == 4
    tau, gamma = experiment.drt_map()
    np.testing.assert_allclose(ax.lines[0].get_xdata(), tau)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), gamma[0] * experiment.metadata.area_cm2)
    assert len(_colourbars(fig)) == 1
    # one shaded, labelled band per peak window, each its own colour
    windows = experiment.stage("drt").attrs["windows"]
    bands = [patch for patch in ax.patches if patch.get_label().endswith(" window")]
    assert sorted(band.get_label() for band in bands) == sorted(f"{p} window" for p in windows)
    assert len({band.get_facecolor() for band in bands}) == len(windows)
    _check_png(fig, tmp_path / "drt_curves.png")


@pytest.mark.parametrize("function", [plot.kk_residuals, plot.fit_residuals])
def test_residuals(experiment, function, tmp_path: Path) -> None:
    fig = function(experiment)
    _check_labels(fig)
    real_ax, imag_ax, per_sweep = _data_axes(fig)
    for ax in (real_ax, imag_ax):
        (lines,) = [c for c in ax.collections if isinstance(c, LineCollection)]
        assert len(lines.get_segments()) == len(experiment.spectra)
        assert "%" in ax.get_ylabel()
    assert len(_colourbars(fig)) == 2
    assert sum(len(line.get_xdata()) for line in per_sweep.lines) >= len(experiment.spectra)
    _check_png(fig, tmp_path / f"{function.__name__}.png")


def test_sand_plot_with_diffusivity(tmp_path: Path) -> None:
    current = np.array([0.05, 0.1, 0.2])
    d_eff, c0 = 0.8e-11, 0.0768
    t0 = np.array(
        [(np.sqrt(np.pi * d_eff) * c0 * 96485.33212 / (2 * i * 1e-3)) ** 2 for i in current]
    )
    assert t0[1] / 3600 == pytest.approx(9.6, abs=0.05)  # DOMAIN.md check
    fig = plot.sand(current, t0, D_eff_cm2_s=d_eff, c0_mol_cm3=c0)
    _check_labels(fig)
    (ax,) = fig.axes
    points, line = ax.lines
    assert len(points.get_xdata()) == 3
    # the points lie on the Sand line
    np.testing.assert_allclose(
        np.interp(points.get_xdata(), line.get_xdata(), line.get_ydata()),
        points.get_ydata(),
        rtol=1e-6,
    )
    _check_png(fig, tmp_path / "sand.png")


def test_arrhenius_plot_recovers_activation_energy(tmp_path: Path) -> None:
    temperature = np.array([273.15, 298.15, 323.15, 348.15])
    resistance = temperature * np.exp(0.37 / (8.617333262e-5 * temperature)) * 1e-5
    fig = plot.arrhenius(temperature, resistance)
    _check_labels(fig)
    (ax,) = fig.axes
    assert len(ax.lines[0].get_xdata()) == 4
    assert "E_A = 0.37 eV" in ax.lines[1].get_label()
    _check_png(fig, tmp_path / "arrhenius.png")


def test_study_data_absent_or_present(results, experiment) -> None:
    assert plot.arrhenius_data(results) is None  # one experiment, no temperatures
    # the demo run may or may not hold a depletion time yet: both shapes are valid
    data = plot.sand_data(results)
    if data is not None:
        assert len(data["t0_s"]) == len(data["current_density_mA_cm2"])

    summary = SimpleNamespace(
        name="a",
        summary={"t0_s": 3600.0, "current_density_mA_cm2": 0.1},
        metadata=experiment.metadata,
    )

    class _Study(list):
        study: ClassVar[dict] = {"sand": {"D_eff_cm2_s": 1e-11, "c0_mol_cm3": 0.0768}}

    data = plot.sand_data(_Study([summary]))
    assert data["D_eff_cm2_s"] == 1e-11
    np.testing.assert_allclose(data["t0_s"], [3600.0])


def test_one_experiment_results_accepted(results) -> None:
    assert isinstance(plot.capacitance(results), Figure)
