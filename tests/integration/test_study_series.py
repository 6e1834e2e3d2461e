"""Study series end to end on simulated truth: temperatures, stack pressures, DC-only folders.

* Li at 25, 50 and 80 C with krauskopf2020's D(T) (3e-11 cm2/s at 25 C, 0.57 eV) and an
  interface resistance with E_A = 0.37 eV: the study's Arrhenius gives both activation
  energies and D_eff at 0-100 C.
* Li at three stack pressures with R_int(0) ~ p^(-1/2) (constriction): the pressure series
  gives the exponent, t0 and the contact loss at t0 per pressure, and the constriction column.
* A folder of DC files only (an OCV rest and a chronopotentiometry to a 1 V cutoff) gives
  t_cutoff, q_cutoff, the stripped thickness and Sand's D_eff from the capacity, with errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from geis_pipeline.config import parse_config
from geis_pipeline.physics import (
    BOLTZMANN_EV_K,
    arrhenius_extrapolate,
    constriction_resistance_ohm,
    stripped_thickness_um,
)
from geis_pipeline.pipeline import run
from geis_pipeline.results import open_results
from geis_pipeline.simulate import (
    SimulationSettings,
    sand_time_s,
    write_dc_experiment,
    write_experiment,
)

CELSIUS = 273.15
T_REF = 298.15
D_REF, E_A_D = 3e-11, 0.57  # krauskopf2020, section 3
E_A_R_INT = 0.37  # Li | LLZO interface
KRAUSKOPF2020_D = [(0, 3.9e-12), (50, 1.7e-10), (80, 9.5e-10), (100, 2.6e-9)]
C0 = 0.0768
T0_TARGET_S = 700.0
THRESHOLD = 1e4  # ohm cm2
SERIAL = '[executor]\nkind = "serial"\n[drt]\nsolver = "NNLS"\nlam = 0.3\n'


def _r_at(value: float, temperature_K: float, activation_eV: float) -> float:
    """A resistance with ln(T/R) linear in 1/T (slope -E_A/k_B), ``value`` at 25 C."""
    return (
        value
        * (temperature_K / T_REF)
        * math.exp(activation_eV / BOLTZMANN_EV_K * (1 / temperature_K - 1 / T_REF))
    )


def _threshold_share(settings: SimulationSettings, threshold: float) -> float:
    """t/t0 where R_int = R_int(0)/φ crosses ``threshold``: φ = φ_min + (1-φ_min)(1-sqrt(t/t0))."""
    phi, phi_min = settings.R_int0_ohm_cm2 / threshold, settings.contact_fraction_min
    return (1 - (phi - phi_min) / (1 - phi_min)) ** 2


def _current_for(diffusivity: float) -> float:
    """The current density (mA/cm2) that depletes in T0_TARGET_S: short simulated runs."""
    return 1e3 * math.sqrt(math.pi * diffusivity * (C0 * 96485.33212) ** 2 / (4 * T0_TARGET_S))


@pytest.fixture(scope="module")
def temperatures(tmp_path_factory):
    root = tmp_path_factory.mktemp("temperatures")
    folders, tables, truth = [], [], {}
    for seed, celsius in enumerate((25.0, 50.0, 80.0)):
        temperature = CELSIUS + celsius
        diffusivity = arrhenius_extrapolate(D_REF, T_REF, E_A_D, temperature)
        name = f"Li_{int(celsius)}C"
        settings = SimulationSettings(
            current_density_mA_cm2=_current_for(diffusivity),
            D_eff_cm2_s=diffusivity,
            R_b_ohm_cm2=_r_at(200.0, temperature, 0.45),
            R_gb_ohm_cm2=_r_at(40.0, temperature, 0.45),
            R_int0_ohm_cm2=_r_at(100.0, temperature, E_A_R_INT),
            # Fully depleted R_int 3x the threshold at every T: fits stay ok past it.
            contact_fraction_min=_r_at(100.0, temperature, E_A_R_INT) / (3 * THRESHOLD),
            overhead_per_point_s=0.01,
            hold_s=2.0,
            n_relaxation=0,
            seed=20 + seed,
        )
        write_experiment(root / name, settings)
        folders.append(root / name)
        tables.append(f'[experiments.{name}]\ncomposition = "Li"\ntemperature_K = {temperature}\n')
        truth[name] = settings
    config = parse_config(
        SERIAL + f"[track]\nr_int_threshold_ohm_cm2 = {THRESHOLD}\n" + "\n".join(tables)
    )
    run(folders, config, root / "study.h5")
    return open_results(root / "study.h5"), truth


def test_arrhenius_of_r_int_across_temperatures(temperatures) -> None:
    results, _ = temperatures
    arrhenius = results.study["arrhenius"]
    assert arrhenius["n_experiments"] == 3
    assert arrhenius["E_A_R_int_eV"] == pytest.approx(E_A_R_INT, abs=0.01)
    assert 0 < arrhenius["E_A_R_int_stderr_eV"] < 0.01
    # R_b (15-200 ohm cm2, its arc above the band) is a series resistance: less well fitted.
    assert arrhenius["E_A_R_b_eV"] == pytest.approx(0.45, abs=0.03)


def test_arrhenius_of_d_eff_gives_krauskopf2020(temperatures) -> None:
    """E_A and D_eff(T) from the three depletion times, against the printed D(T)."""
    from geis_pipeline.physics import arrhenius_extrapolate as at

    results, truth = temperatures
    for name, settings in truth.items():
        # Sand's D times the share of t0 at which R_int crosses the threshold (0.98-1).
        share = _threshold_share(settings, THRESHOLD)
        assert results[name].summary["D_eff_cm2_s"] == pytest.approx(
            share * settings.D_eff_cm2_s, rel=0.02
        ), name
    entry = results.study["arrhenius"]["D_eff"]["Li"]
    assert entry["n_experiments"] == 3
    assert list(entry["D_eff_from"]) == ["t0"] * 3
    assert entry["E_A_eV"] == pytest.approx(E_A_D, abs=0.015)
    assert 0 < entry["E_A_stderr_eV"] < 0.02
    # Sand's fit is per composition and temperature: one current each here, so none.
    sand = results.study["sand"]
    assert set(sand) == {f"Li@{CELSIUS + celsius:g}K" for celsius in (25, 50, 80)}
    assert all("two currents" in group["reason"] for group in sand.values())
    assert entry["D_ref_cm2_s"] == pytest.approx(D_REF, rel=0.03)
    for celsius, printed in KRAUSKOPF2020_D:
        value = at(entry["D_ref_cm2_s"], entry["reference_temperature_K"], entry["E_A_eV"],
                   CELSIUS + celsius)  # fmt: skip
        assert value == pytest.approx(printed, rel=0.05), celsius


PRESSURES_MPA = (2.0, 8.0, 32.0)


@pytest.fixture(scope="module")
def pressures(tmp_path_factory):
    root = tmp_path_factory.mktemp("pressures")
    folders, tables, truth, simulated = [], [], {}, {}
    for seed, pressure in enumerate(PRESSURES_MPA):
        name = f"Li_{int(pressure)}MPa"
        settings = SimulationSettings(
            current_density_mA_cm2=_current_for(0.8e-11),
            R_int0_ohm_cm2=200.0 * pressure**-0.5,
            contact_fraction_min=1e-4,
            overhead_per_point_s=0.01,
            hold_s=2.0,
            n_relaxation=0,
            seed=40 + seed,
        )
        simulated[name] = write_experiment(root / name, settings)
        folders.append(root / name)
        tables.append(
            f'[experiments.{name}]\ncomposition = "Li"\nstack_pressure_MPa = {pressure}\n'
        )
        truth[name] = settings
    config = parse_config(
        SERIAL + "[track]\nr_int_threshold_ohm_cm2 = 5000.0\n" + "\n".join(tables)
    )
    run(folders, config, root / "study.h5")
    return open_results(root / "study.h5"), truth, simulated


def test_pressure_series(pressures) -> None:
    """R_int(0) ~ p^(-1/2); at t0 (R_int = 5000 ohm cm2) the contact left is R_int(0)/5000."""
    results, truth, simulated = pressures
    series = results.study["pressure"]
    assert list(series["stack_pressure_MPa"]) == list(PRESSURES_MPA)
    assert series["R_int_pressure_exponent"] == pytest.approx(-0.5, abs=0.03)
    for index, name in enumerate(series["experiments"]):
        settings = truth[name]
        left = settings.R_int0_ohm_cm2 / 5000.0
        # The reference sweep's R_int lies between the truth at its start and at its end
        # (the interface arc is measured last), within the 3 % the fit may miss.
        step = results[name].summary["reference_step"]
        start, end = simulated[name].truth.R_int_ohm_cm2[step : step + 2]
        assert 0.97 * start < series["R_int_ref_ohm_cm2"][index] < 1.03 * end
        assert series["contact_loss_R_t0"][index] == pytest.approx(1 - left, abs=0.01)
        assert series["contact_loss_C_t0"][index] == pytest.approx(1 - left, abs=0.02)
        t0 = _threshold_share(settings, 5000.0) * sand_time_s(
            settings.current_density_mA_cm2, settings.D_eff_cm2_s, C0
        )
        assert series["t0_s"][index] == pytest.approx(t0, rel=0.02)
        # krauskopf2019 eq. 1 for pressure times area, in ohm cm2.
        force = PRESSURES_MPA[index] * 100 * settings.area_cm2
        expected = constriction_resistance_ohm(force, 4.6e-4, 5.0) * settings.area_cm2
        assert series["force_N"][index] == pytest.approx(force)
        assert series["R_constriction_ohm_cm2"][index] == pytest.approx(expected)
        assert results[name].summary["R_constriction_ohm_cm2"] == pytest.approx(expected)


@pytest.fixture(scope="module")
def dc_only(tmp_path_factory):
    root = tmp_path_factory.mktemp("dc_only")
    truths = {}
    for seed, current in enumerate((0.3, 0.6)):
        name = f"LiNa_{int(current * 1000)}uA"
        settings = SimulationSettings(current_density_mA_cm2=current, ocv_V=0.01, seed=60 + seed)
        truths[name] = write_dc_experiment(root / name, settings, cutoff_V=1.0, interval_s=10.0)
    config = parse_config(
        SERIAL + '[track]\ncutoff_V = 1.0\n[experiments.LiNa_300uA]\ncomposition = "LiNa"\n'
    )
    report = run([root / name for name in truths], config, root / "dc.h5")
    return open_results(root / "dc.h5"), truths, report


def test_dc_only_folder_gives_the_cutoff_end_point(dc_only) -> None:
    results, truths, report = dc_only
    for name, truth in truths.items():
        summary = results[name].summary
        assert summary["experiment_kind"] == "dc_only"
        assert summary["n_spectra"] == 0 and not results[name].spectra
        assert summary["cutoff_reached"]
        assert summary["t_cutoff_s"] == pytest.approx(truth.t_cutoff_s, abs=10.0)
        assert summary["q_cutoff_mAh_cm2"] == pytest.approx(truth.q_cutoff_mAh_cm2, rel=0.003)
        assert summary["stripped_cutoff_um"] == pytest.approx(
            stripped_thickness_um(truth.q_cutoff_mAh_cm2), abs=0.2
        )
        assert summary["D_eff_cutoff_cm2_s"] == pytest.approx(truth.D_eff_cutoff_cm2_s, rel=0.005)
        # Errors from the 10 s sampling: the truth within 3 of them.
        t_stderr = summary["t_cutoff_stderr_s"]
        assert 0 < t_stderr and abs(summary["t_cutoff_s"] - truth.t_cutoff_s) < 3 * t_stderr
        d_stderr = summary["D_eff_cutoff_stderr_cm2_s"]
        assert abs(summary["D_eff_cutoff_cm2_s"] - truth.D_eff_cutoff_cm2_s) < 3 * d_stderr
        assert summary["E_ocv_V"] == pytest.approx(0.01, abs=1e-3)
        assert math.isnan(summary["t0_s"]) and "DC-only" in summary["t0_reason"]
    assert results["LiNa_300uA"].summary["composition"] == "LiNa"
    assert all(experiment.n_spectra == 0 for experiment in report.experiments)


def test_dc_only_folder_info_and_report(dc_only, tmp_path) -> None:
    import subprocess
    import sys

    results, _, _ = dc_only
    done = subprocess.run(
        [sys.executable, "-m", "geis_pipeline.cli", "info", str(results.path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.count("voltage cutoff") == 2
    assert done.stdout.count("DC record only") == 2
    from geis_pipeline.report import write_report

    index = write_report(results.path, tmp_path / "report")
    assert "t_cutoff_s" in index.read_text(encoding="utf-8")
    from geis_pipeline import plot_study

    assert not plot_study.overlay(results).axes[0].lines  # nothing tracked, nothing drawn
    assert np.all([experiment.summary["cutoff_reached"] for experiment in results])


def test_nested_study_groups_export(temperatures) -> None:
    """/study/arrhenius/D_eff/Li (numpy scalars read back) goes into the study table as JSON."""
    import json

    from geis_pipeline.export import study_tables

    results, _ = temperatures
    row = study_tables(results)["arrhenius"]
    nested = json.loads(row["D_eff"][0])
    assert nested["Li"]["n_experiments"] == 3


def test_study_figures_and_report_page(temperatures, pressures, tmp_path, monkeypatch) -> None:
    """Arrhenius (resistances and D_eff), pressure series and overlays; the report's study page."""
    from geis_pipeline import plot_study
    from geis_pipeline.report import write_report

    results, _ = temperatures
    fig = plot_study.arrhenius(results)
    resistances, diffusivity = fig.axes
    labels = [text.get_text() for text in resistances.get_legend().get_texts()]
    r_int = next(label for label in labels if label.startswith("R_int"))
    assert float(r_int.split("= ")[1].split()[0]) == pytest.approx(E_A_R_INT, abs=0.01)
    assert diffusivity.get_yscale() == "log"
    assert "Li: E$_A$ = 0.57" in diffusivity.get_legend().get_texts()[0].get_text()
    normalised = plot_study.overlay(results, x="normalised", colour_by="current")
    assert len(normalised.axes[0].lines) == 3
    # Every experiment ends its depletion at q/q(t0) = 1: R_int crosses the threshold there.
    for line in normalised.axes[0].lines:
        x, y = line.get_data()
        assert np.interp(THRESHOLD, y, x) == pytest.approx(1.0, abs=0.02)
    pressure_fig = plot_study.pressure_series(pressures[0])
    assert len(pressure_fig.axes) == 3
    with pytest.raises(ValueError, match="pressure series"):
        plot_study.pressure_series(results)

    # The report's study page: every study figure of the pressure series' file, and the
    # jobs it would draw for the temperature series.
    from geis_pipeline.report import _study_jobs

    stems = {job[0] for job in _study_jobs(results)}
    assert {"study_arrhenius.png", "study_overlay_normalised.png"} <= stems
    assert "study_pressure.png" not in stems
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "geis_pipeline.cli", "info", str(results.path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "Arrhenius D Li" in done.stdout and "E_A 0.57" in done.stdout
    # The per-experiment figures are the report tests' (and take a minute here).
    monkeypatch.setattr("geis_pipeline.report.EXPERIMENT_FIGURES", ())
    index = write_report(pressures[0].path, tmp_path / "report")
    page = index.read_text(encoding="utf-8")
    assert "<h2>Study</h2>" in page and "R_int_pressure_exponent" in page
    for stem in ("overlay_charge", "overlay_thickness", "overlay_normalised", "pressure"):
        assert (tmp_path / "report" / f"study_{stem}.png").stat().st_size > 10_000, stem


def test_read_experiment_of_a_dc_only_folder(tmp_path) -> None:
    """Without allow_dc_only a DC-only folder is still "no impedance data" (read_experiment's
    contract); with it, the GCPL/CP/OCV rows are the experiment's DC record."""
    from geis_pipeline.errors import NoImpedanceDataError
    from geis_pipeline.ingest import read_experiment

    write_dc_experiment(tmp_path, SimulationSettings(n_relaxation=0), cutoff_V=1.0)
    with pytest.raises(NoImpedanceDataError):
        read_experiment(tmp_path)
    experiment = read_experiment(tmp_path, allow_dc_only=True)
    assert not experiment.spectra
    assert experiment.metadata.techniques == ("OCV", "CP")
    assert experiment.metadata.current_setpoint_mA == pytest.approx(0.3 * 0.785, rel=1e-3)
    assert np.all(np.diff(experiment.dc_record.time_s) > 0)
