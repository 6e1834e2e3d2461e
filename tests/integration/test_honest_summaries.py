"""Summaries, info and reports say what the data support (issue 12).

One case per way real files mislead: EC-Lab's placeholder area, no area at all,
PEIS at open circuit, a blocking-electrode spectrum, zero-DC GEIS, one current
only; and the real files of shared/realdata. Each runs the pipeline, then checks
the summary, ``geis-pipeline info`` and the report, with no warning leaked.
"""

from __future__ import annotations

import logging
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import serial_config

import geis_pipeline as gp
from geis_pipeline.cli import EXIT_OK, main
from geis_pipeline.elements import cpe, cpe_q_from_capacitance, zarc
from geis_pipeline.kind import spectra_labels
from geis_pipeline.pipeline import run
from geis_pipeline.report import write_report
from geis_pipeline.simulate import SimulationSettings, frequency_grid, write_experiment

FREQ = frequency_grid(7e6, 1.0, 10)
AREA = 0.785


def _li_llzo(r_int_ohm_cm2: float = 100.0) -> np.ndarray:
    """A Li | LLZO spectrum (ohm) of bulk, grain-boundary and interface arcs."""
    arcs = (
        (200.0, 3e-11, 0.95),
        (40.0, 5e-9, 0.9),
        (r_int_ohm_cm2, 2e-6, 0.85),
    )
    z = sum(zarc(FREQ, r, cpe_q_from_capacitance(c, r, a), a) for r, c, a in arcs)
    return z / AREA


def _blocking() -> np.ndarray:
    """Blocking electrodes: bulk and grain-boundary arcs, then a double-layer CPE line."""
    z = sum(
        zarc(FREQ, r, cpe_q_from_capacitance(c, r, a), a)
        for r, c, a in ((200.0, 3e-11, 0.95), (40.0, 5e-9, 0.9))
    )
    return (z + cpe(FREQ, 2e-6, 0.9)) / AREA


def _noisy(z: np.ndarray, n_sweeps: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = (
        0.003
        * np.abs(z)
        * (rng.standard_normal((n_sweeps, z.size)) + 1j * rng.standard_normal((n_sweeps, z.size)))
    )
    return z + noise


def _run(folder: Path, output: Path | None = None) -> gp.results.ExperimentResults:
    output = output or folder.parent / f"{folder.name}.h5"
    run([folder], serial_config(), output)
    return gp.open_results(output)[folder.name]


def _info(path: Path, capsys) -> str:
    capsys.readouterr()
    assert main(["info", str(path)]) == EXIT_OK
    return capsys.readouterr().out


def _report(path: Path, out: Path) -> str:
    """The report page, checking that nothing warned while drawing it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = write_report(path, out)
    assert not [str(item.message) for item in caught]
    return index.read_text(encoding="utf-8")


@pytest.fixture
def no_leaks(caplog):
    """Fails the test on any Python warning, or any logged warning but ours."""
    caplog.set_level(logging.WARNING)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caplog
    assert not [str(item.message) for item in caught]
    foreign = [r for r in caplog.records if not r.name.startswith("geis_pipeline")]
    assert not [record.getMessage() for record in foreign]


# ------------------------------------------------------------------------ the area


def test_placeholder_area_is_no_area(placeholder_run: Path, tmp_path: Path, capsys) -> None:
    experiment = gp.open_results(placeholder_run)["experiment"]
    metadata = experiment.metadata
    assert metadata.area_cm2 is None
    (message,) = metadata.warnings
    for text in (
        "_01_GEIS_C01.mpt",
        "0.001 cm2",
        "placeholder",
        "--area-cm2",
        "experiment.area_cm2",
    ):
        assert text in message
    table = experiment.tracking(as_frame=False)
    # area-specific columns are NaN, never computed from the placeholder
    for column in ("R_int_ohm_cm2", "C_int_F_cm2", "charge_mAh_cm2", "current_density_mA_cm2"):
        assert np.isnan(table[column]).all(), column
    # the absolute twins carry the results (ohm, F)
    r_int = experiment.quantity("R_int")
    assert r_int.column == "R_int_ohm" and r_int.unit == "Ω" and not r_int.area_specific
    assert np.isfinite(r_int.values).mean() > 0.9
    truth = np.load(placeholder_run.parent / "experiment" / "truth.npz")
    ok = experiment.ok_steps()
    expected = truth["R_int_ohm_cm2"] / 0.785  # the simulated cell's real area
    assert np.median(np.abs(r_int.values[ok] / expected[ok] - 1)) < 0.05
    # The segments come from the DC record, not the (unknown) current density: the DC-AC gap
    # exists in ohm. Truth: the simulator's R_DC-AC (20 ohm cm2 by default) over the real area.
    strip = ok & (np.asarray(table["segment"]) == "strip")
    assert strip.sum() > 10
    assert np.isnan(table["R_dcac_ohm_cm2"]).all()
    gap = np.median(table["R_dcac_ohm"][strip])
    assert gap == pytest.approx(20.0 / 0.785, rel=0.15)
    summary = experiment.summary
    assert summary["experiment_kind"] == "galvanostatic strip"
    assert [segment["label"] for segment in summary["segments"]] == ["strip", "ocv"]
    assert not summary["t0_reached"] and math.isnan(summary["t0_s"])
    assert "no electrode area" in summary["t0_reason"]
    # relaxation is relative: it needs no area
    assert math.isfinite(summary["relaxation_tau_s"])
    out = _info(placeholder_run, capsys)
    assert "electrode area   unknown" in out
    assert "placeholder" in out and "--area-cm2" in out
    assert "depletion t0     none: no electrode area" in out
    page = _report(placeholder_run, tmp_path / "report")
    assert "unknown: values in Ω and F only" in page
    assert "placeholder" in page
    assert "R_int first -&gt; last (Ω, ok fits)" in page


def test_no_area_is_a_warning_naming_the_files(tmp_path: Path, area_line_setter, caplog) -> None:
    folder = tmp_path / "experiment"
    write_experiment(folder, SimulationSettings(seed=3, n_sweeps=4, n_relaxation=0))
    area_line_setter(folder, None)
    with caplog.at_level(logging.WARNING, logger="geis_pipeline"):
        experiment = gp.read_experiment(folder)
    assert experiment.metadata.area_cm2 is None
    (message,) = experiment.metadata.warnings
    assert "Li_LLZO_stripping_01_GEIS_C01.mpt: no electrode area stated" in message
    assert "--area-cm2" in message and "experiment.area_cm2" in message
    assert message in caplog.text
    text = gp.summary.format_summary(gp.summary.summarize(experiment))
    assert "unknown: results in ohm and F only" in text and message in text
    # an area given on the command line overrides: no warning then
    given = gp.read_experiment(folder, area_cm2=0.5)
    assert given.metadata.area_cm2 == 0.5 and not given.metadata.warnings


# ------------------------------------------------------------ not a stripping experiment


def _assert_no_depletion(experiment, kind: str, path: Path, tmp_path: Path, capsys) -> None:
    summary = experiment.summary
    assert summary["experiment_kind"] == kind
    assert not summary["t0_reached"] and math.isnan(summary["t0_s"])
    assert math.isnan(summary["D_eff_cm2_s"])
    assert "no galvanostatic stripping" in summary["t0_reason"]
    assert f"(kind: {kind})" in summary["t0_reason"]
    assert "none: no galvanostatic stripping" in _info(path, capsys)
    page = _report(path, tmp_path / "report")
    assert "depletion time t0 (h)</th><td>none: no galvanostatic stripping" in page
    assert not (tmp_path / "report" / "study_sand.png").exists()


def test_peis_at_open_circuit(tmp_path: Path, capsys, no_leaks) -> None:
    folder = tmp_path / "relaxation"
    write_experiment(folder, SimulationSettings(seed=4, n_sweeps=3, n_relaxation=5))
    next(folder.glob("*_01_GEIS_C01.mpt")).unlink()  # only the PEIS (and OCV) files
    experiment = _run(folder)
    assert set(experiment.tracking(as_frame=False)["segment"]) == {"ocv"}
    _assert_no_depletion(experiment, "open circuit", tmp_path / "relaxation.h5", tmp_path, capsys)


def test_blocking_electrode_spectrum(tmp_path: Path, mpt_writer, capsys, no_leaks) -> None:
    folder = tmp_path / "blocking"
    rng = np.random.default_rng(5)
    n_sweeps = 6
    mpt_writer(
        folder / "Au_LLZO_PEIS_C01.mpt",
        "PEIS",
        FREQ,
        _noisy(_blocking(), n_sweeps, 5),
        # an instrument offset of a few nA and its noise: no DC current
        current_mA=2e-6 + 1e-6 * rng.standard_normal((n_sweeps, FREQ.size)),
        potential_V=1e-4 * rng.standard_normal(n_sweeps),
        settings=(("E (V)", "0.0000"), ("vs.", "Eoc")),
    )
    experiment = _run(folder)
    _assert_no_depletion(experiment, "open circuit", tmp_path / "blocking.h5", tmp_path, capsys)


def _zero_dc_geis(folder: Path, writer, setpoint: str | None, density_mA_cm2: float) -> Path:
    n_sweeps = 8
    rng = np.random.default_rng(6)
    current = density_mA_cm2 * AREA + 0.005 * AREA * rng.uniform(-1, 1, (n_sweeps, FREQ.size))
    settings = (("Is", setpoint), ("unit Is", "mA")) if setpoint is not None else ()
    return writer(
        folder / "cell_GEIS_C01.mpt",
        "GEIS",
        FREQ,
        _noisy(_li_llzo(), n_sweeps, 6),
        current_mA=current,
        potential_V=0.02 * density_mA_cm2 + 1e-4 * rng.standard_normal(n_sweeps),
        settings=settings,
    )


@pytest.mark.parametrize("setpoint", ["0.000", None])
def test_zero_dc_geis_is_open_circuit_not_noise(tmp_path: Path, mpt_writer, setpoint) -> None:
    """+-0.005 mA/cm2 of noise on a zero-DC GEIS is no current (setpoint or tolerance)."""
    folder = tmp_path / "zero_dc"
    _zero_dc_geis(folder, mpt_writer, setpoint, 0.0)
    experiment = gp.read_experiment(folder)
    currents = np.array([spectrum.current_mA for spectrum in experiment.spectra])
    assert (currents > 0).any() and (currents < 0).any()  # the noise has both signs
    assert set(spectra_labels(experiment.spectra, experiment.metadata)) == {"ocv"}
    # the same file under a real 0.1 mA/cm2 is stripping (the tolerance is not everything)
    loaded = tmp_path / "loaded"
    _zero_dc_geis(loaded, mpt_writer, None if setpoint is None else f"{0.1 * AREA:.4f}", 0.1)
    under_current = gp.read_experiment(loaded)
    assert set(spectra_labels(under_current.spectra, under_current.metadata)) == {"strip"}


def test_zero_dc_geis_through_the_pipeline(tmp_path: Path, mpt_writer, capsys, no_leaks) -> None:
    folder = tmp_path / "zero_dc"
    _zero_dc_geis(folder, mpt_writer, "0.000", 0.0)
    experiment = _run(folder)
    table = experiment.tracking(as_frame=False)
    assert set(table["segment"]) == {"ocv"}
    assert np.isnan(table["R_dcac_ohm_cm2"]).all()  # no imposed current: no DC-AC gap
    _assert_no_depletion(experiment, "open circuit", tmp_path / "zero_dc.h5", tmp_path, capsys)


# ------------------------------------------------------------------ one current only


def test_one_current_gives_t0_but_no_sand_fit(tmp_path: Path, capsys, no_leaks) -> None:
    folder = tmp_path / "Li_1mA"
    settings = SimulationSettings(
        current_density_mA_cm2=1.0,
        n_relaxation=0,
        overhead_per_point_s=0.01,
        hold_s=2.0,
        seed=7,
    )
    write_experiment(folder, settings)
    output = tmp_path / "one.h5"
    config = tmp_path / "serial.toml"
    config.write_text('[executor]\nkind = "serial"\n[drt]\nsolver = "NNLS"\n')
    assert main(["run", str(folder), "-c", str(config), "-o", str(output), "-q"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "depletion t0     " in out and "Sand D_eff       " in out
    assert "Sand study       none: a Sand fit needs depletion times at two or more" in out
    results = gp.open_results(output)
    summary = results["Li_1mA"].summary
    assert summary["t0_reached"] and summary["t0_reason"] == ""
    assert summary["D_eff_cm2_s"] == pytest.approx(settings.D_eff_cm2_s, rel=0.1)
    assert "sand" not in results.study
    assert "none: a Sand fit needs depletion times at two or more" in _info(output, capsys)
    page = _report(output, tmp_path / "report")
    assert "No Sand plot: a Sand fit needs depletion times at two or more" in page
    assert "1 experiment(s) reached t0, at 1 current density(ies)" in page
    assert not (tmp_path / "report" / "study_sand.png").exists()


# ------------------------------------------------------------------------ real files


def test_real_peis_ssb_placeholder_and_open_circuit(
    realdata: Path, tmp_path: Path, capsys, no_leaks
) -> None:
    folder = tmp_path / "PEIS_SSB"
    folder.mkdir()
    shutil.copy(realdata / "PEIS_SSB.mpr", folder)
    experiment = _run(folder)
    assert experiment.metadata.area_cm2 is None  # EC-Lab's 0.001 cm2 placeholder
    assert "PEIS_SSB.mpr: electrode area 0.001 cm2" in experiment.metadata.warnings[0]
    assert experiment.quantity("R_int").unit == "Ω"
    _assert_no_depletion(experiment, "open circuit", tmp_path / "PEIS_SSB.h5", tmp_path, capsys)


def test_real_geis_mpt_report_and_info(realdata: Path, tmp_path: Path, capsys, no_leaks) -> None:
    folder = tmp_path / "geis"
    folder.mkdir()
    shutil.copy(realdata / "geis.mpt", folder)
    experiment = _run(folder)
    summary = experiment.summary
    assert summary["experiment_kind"] == "galvanostatic strip"
    assert summary["experiment_kind_description"] == "galvanostatic strip (61 steps at 0.38 mA)"
    assert not summary["t0_reached"] and summary["t0_reason"]
    quality = experiment.quality()
    out = _info(tmp_path / "geis.h5", capsys)
    assert f"Kramers-Kronig   {quality.n_kk_failed} of 61 failed" in out
    assert f"circuit fits     {quality.n_fit_failed} of 61 not ok" in out
    assert "experiment kind  galvanostatic strip (61 steps at 0.38 mA)" in out
    page = _report(tmp_path / "geis.h5", tmp_path / "report")
    assert "<h3>Quality</h3>" in page
    assert f"<th>KK truncated</th><td>{quality.n_kk_truncated} low-frequency tails cut" in page
    if quality.n_fit_failed:
        reason, _ = quality.fit_reasons[0]
        assert reason.split(":")[0] in page
    # the figures drew: every experiment figure is there, and (geis.mpt is a 3-electrode
    # file) the counter electrode's Nyquist plot and DRT map
    from geis_pipeline.report import COUNTER_FIGURES, EXPERIMENT_FIGURES

    drawn = {path.name for path in (tmp_path / "report").glob("geis_*.png")}
    assert drawn == {f"geis_{stem}.png" for stem, *_ in EXPERIMENT_FIGURES + COUNTER_FIGURES}
    assert len(COUNTER_FIGURES) == 2 and "geis_drt_crosscheck.png" in drawn


def test_reprocess_with_the_area_fills_the_area_specific_columns(
    placeholder_run: Path, tmp_path: Path
) -> None:
    from dataclasses import replace

    from geis_pipeline.pipeline import reprocess

    config = serial_config()
    config = replace(config, experiment=replace(config.experiment, area_cm2=0.785))
    output = tmp_path / "with_area.h5"
    reprocess(placeholder_run, config, output=output)
    experiment = gp.open_results(output)["experiment"]
    assert experiment.metadata.area_cm2 == 0.785 and experiment.metadata.warnings == ()
    quantity = experiment.quantity("R_int")
    assert quantity.column == "R_int_ohm_cm2"
    truth = np.load(placeholder_run.parent / "experiment" / "truth.npz")
    ok = experiment.ok_steps()
    assert np.median(np.abs(quantity.values[ok] / truth["R_int_ohm_cm2"][ok] - 1)) < 0.05
    assert "no electrode area" not in experiment.summary["t0_reason"]
