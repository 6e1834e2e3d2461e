"""The simulated Li | LLZO experiment: settings, physics, imperfections, and its EC-Lab files."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

import geis_pipeline
from geis_pipeline.elements import brug_capacitance, inductor, zarc
from geis_pipeline.errors import SimulationError
from geis_pipeline.simulate import (
    ACQUISITION_START,
    SimulatedExperiment,
    SimulationSettings,
    contact_fraction,
    sand_time_s,
    simulate_experiment,
    write_experiment,
)
from geis_pipeline.spectrum import Experiment

NAME = "Li_LLZO_stripping"
GEIS_FILE = f"{NAME}_01_GEIS_C01.mpt"
PEIS_FILE = f"{NAME}_02_PEIS_C01.mpt"
OCV_FILE = f"{NAME}_03_OCV_C01.mpt"


def circuit_from_truth(experiment: SimulatedExperiment, sweep: int) -> np.ndarray:
    """Noise-free Z of one sweep, rebuilt from its truth with the element functions."""
    truth = experiment.truth
    freq = experiment.freq[sweep]
    impedance = inductor(freq, truth.L_H[sweep])
    for arc in ("b", "gb", "int"):
        impedance = impedance + zarc(
            freq,
            getattr(truth, f"R_{arc}_ohm")[sweep],
            getattr(truth, f"Q_{arc}")[sweep],
            getattr(truth, f"alpha_{arc}")[sweep],
        )
    return impedance


@pytest.fixture(scope="module")
def simulated() -> SimulatedExperiment:
    return simulate_experiment()


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimulatedExperiment, float]:
    """The default experiment written once: folder, experiment, seconds taken."""
    folder = tmp_path_factory.mktemp("default_experiment")
    started = time.perf_counter()
    experiment = write_experiment(folder)
    return folder, experiment, time.perf_counter() - started


@pytest.fixture(scope="module")
def read_back(written: tuple[Path, SimulatedExperiment, float]) -> Experiment:
    return geis_pipeline.read_experiment(written[0], strict=True)


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("area_cm2", 0.0),
        ("area_cm2", float("nan")),
        ("current_density_mA_cm2", -0.1),
        ("R_b_ohm_cm2", 0.0),
        ("R_int0_ohm_cm2", -100.0),
        ("C_int0_F_cm2", 0.0),
        ("C_gb_F_cm2", -5e-9),
        ("alpha_int", 0.0),
        ("alpha_gb", 1.01),
        ("contact_fraction_min", 0.0),
        ("noise_rel", -0.001),
        ("L_H", -1e-7),
        ("n_sweeps", 0),
        ("n_relaxation", -1),
        ("recovered_fraction", 1.5),
        ("points_per_decade", 2.5),
        ("seed", "zero"),
        ("f_max_Hz", 1.0),
        ("relaxation_interval_s", 5.0),
        ("outlier_error_max", 0.01),
        ("incomplete_fraction_max", 0.5),
    ],
)
def test_impossible_settings_raise_with_the_field_as_key(key: str, value: object) -> None:
    with pytest.raises(SimulationError) as raised:
        SimulationSettings(**{key: value})
    assert raised.value.key == key


def test_default_settings_describe_the_brief() -> None:
    settings = SimulationSettings()
    freq = settings.frequencies_Hz
    assert freq.size == 69
    assert freq[0] == pytest.approx(7e6) and freq[-1] == pytest.approx(1.0)
    assert np.all(np.diff(freq) < 0)
    np.testing.assert_allclose(np.diff(np.log10(freq)), np.log10(freq[1] / freq[0]))
    assert settings.current_mA == pytest.approx(0.3 * 0.785)
    assert settings.sweep_duration_s < 30.0


def test_sand_time_for_li_at_100_uA_is_9_6_hours() -> None:
    # c0 of Li metal is 76.8 mmol/cm3 = 0.0768 mol/cm3.
    assert sand_time_s(0.1, 0.8e-11, 0.0768) / 3600 == pytest.approx(9.6, rel=0.01)


def test_sand_time_scales_with_inverse_square_current() -> None:
    settings = SimulationSettings()
    assert settings.sand_time_s / 3600 == pytest.approx(1.07, rel=0.01)
    assert sand_time_s(0.1, 0.8e-11, 0.0768) == pytest.approx(9 * settings.sand_time_s)


# --------------------------------------------------------------------------- truth


def test_stripping_covers_one_point_one_sand_times(simulated: SimulatedExperiment) -> None:
    settings = simulated.settings
    assert simulated.t0_s == pytest.approx(settings.sand_time_s)
    assert abs(simulated.current_stop_s - 1.1 * simulated.t0_s) < settings.sweep_duration_s
    assert simulated.n_stripping == settings.n_stripping
    assert simulated.n_relaxation == 12
    assert simulated.technique == ("GEIS",) * simulated.n_stripping + ("PEIS",) * 12


def test_interface_degrades_during_stripping(simulated: SimulatedExperiment) -> None:
    truth = simulated.truth
    stripping = slice(0, simulated.n_stripping)
    R_int = truth.R_int_ohm_cm2[stripping]
    C_int = truth.C_int_F_cm2[stripping]
    before_t0 = truth.time_s[stripping] < simulated.t0_s
    assert np.all(np.diff(R_int) >= 0) and np.all(np.diff(R_int[before_t0]) > 0)
    assert np.all(np.diff(C_int) <= 0) and np.all(np.diff(C_int[before_t0]) < 0)
    # Past Sand's time the contact is at its minimum: R_int0 / 0.005.
    assert R_int[-1] == pytest.approx(100.0 / 0.005)
    assert truth.R_b_ohm_cm2 == pytest.approx(np.full(len(truth), 200.0))
    assert truth.R_gb_ohm_cm2 == pytest.approx(np.full(len(truth), 40.0))


def test_contact_loss_from_c_and_from_r_both_equal_one_minus_phi(
    simulated: SimulatedExperiment,
) -> None:
    truth = simulated.truth
    settings = simulated.settings
    loss_from_c = 1 - truth.C_int_F_cm2 / settings.C_int0_F_cm2
    loss_from_r = 1 - settings.R_int0_ohm_cm2 / truth.R_int_ohm_cm2
    np.testing.assert_allclose(loss_from_c, 1 - truth.contact_fraction, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(loss_from_r, 1 - truth.contact_fraction, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        truth.contact_fraction,
        contact_fraction(truth.time_s, settings, simulated.current_stop_s),
        rtol=1e-14,
    )


def test_sand_contact_model_end_points() -> None:
    settings = SimulationSettings()
    t0 = settings.sand_time_s
    phi = contact_fraction(np.array([0.0, 0.25 * t0, t0, 2 * t0]), settings)
    np.testing.assert_allclose(phi, [1.0, 0.005 + 0.995 * 0.5, 0.005, 0.005], rtol=1e-14)


def test_interface_relaxes_at_open_circuit(simulated: SimulatedExperiment) -> None:
    truth = simulated.truth
    settings = simulated.settings
    relaxation = slice(simulated.n_stripping, None)
    phi = truth.contact_fraction[relaxation]
    phi_end = truth.contact_fraction[simulated.n_stripping - 1]
    phi_recovered = phi_end + settings.recovered_fraction * (1 - phi_end)
    assert phi[0] == pytest.approx(phi_end)
    assert np.all(np.diff(phi) > 0) and phi[-1] < phi_recovered
    elapsed = truth.time_s[relaxation][-1] - simulated.current_stop_s
    expected = phi_end + (phi_recovered - phi_end) * (1 - np.exp(-elapsed / settings.tau_relax_s))
    assert phi[-1] == pytest.approx(expected, rel=1e-12)
    assert np.all(np.diff(truth.R_int_ohm_cm2[relaxation]) < 0)
    np.testing.assert_array_equal(truth.current_mA[relaxation], 0.0)
    np.testing.assert_array_equal(truth.potential_V[relaxation], settings.ocv_V)


def test_truth_is_consistent_in_absolute_and_area_specific_units(
    simulated: SimulatedExperiment,
) -> None:
    truth = simulated.truth
    area = simulated.settings.area_cm2
    for arc in ("b", "gb", "int"):
        R_ohm = getattr(truth, f"R_{arc}_ohm")
        np.testing.assert_allclose(R_ohm * area, getattr(truth, f"R_{arc}_ohm_cm2"), rtol=1e-14)
        capacitance_F = brug_capacitance(
            R_ohm, getattr(truth, f"Q_{arc}"), getattr(truth, f"alpha_{arc}")
        )
        np.testing.assert_allclose(
            capacitance_F / area, getattr(truth, f"C_{arc}_F_cm2"), rtol=1e-10
        )
    np.testing.assert_allclose(truth.tau_int_s, truth.R_int_ohm * truth.C_int_F_cm2 * area)
    # The bulk arc sits mostly above the sweep, as in real Li | LLZO data.
    bulk_apex_Hz = 1 / (2 * np.pi * truth.R_b_ohm_cm2 * truth.C_b_F_cm2)
    assert np.all(bulk_apex_Hz > simulated.settings.f_max_Hz)


def test_dc_potential_follows_the_total_resistance(simulated: SimulatedExperiment) -> None:
    truth = simulated.truth
    settings = simulated.settings
    stripping = slice(0, simulated.n_stripping)
    total_ohm_cm2 = (
        truth.R_b_ohm_cm2 + truth.R_gb_ohm_cm2 + truth.R_int_ohm_cm2 + settings.R_dcac_ohm_cm2
    )[stripping]
    current_A_cm2 = settings.current_density_mA_cm2 * 1e-3
    np.testing.assert_allclose(truth.potential_V[stripping], current_A_cm2 * total_ohm_cm2)
    np.testing.assert_allclose(
        truth.charge_mAh[stripping], settings.current_mA * truth.time_s[stripping] / 3600
    )


def test_sweeps_run_back_to_back_then_every_relaxation_interval(
    simulated: SimulatedExperiment,
) -> None:
    settings = simulated.settings
    starts = simulated.time_s
    n_stripping = simulated.n_stripping
    assert starts[0] == pytest.approx(settings.hold_s)
    np.testing.assert_allclose(np.diff(starts[:n_stripping]), settings.sweep_duration_s)
    np.testing.assert_allclose(
        starts[n_stripping:] - simulated.current_stop_s, 300.0 * np.arange(12), atol=1e-9
    )
    # Each point lasts Na = 2 periods plus 0.05 s of instrument overhead.
    freq = settings.frequencies_Hz
    np.testing.assert_allclose(settings.point_durations_s, 2 / freq + 0.05, rtol=1e-14)
    for point_time, start in zip(simulated.point_time_s, starts, strict=True):
        assert point_time[0] == start
        np.testing.assert_allclose(np.diff(point_time), 2 / freq[: point_time.size - 1] + 0.05)
    assert simulated.point_time_s[n_stripping - 1][-1] < simulated.current_stop_s


def test_noise_is_proportional_at_the_requested_level(simulated: SimulatedExperiment) -> None:
    truth = simulated.truth
    relative_errors = []
    for sweep in range(len(simulated)):
        if truth.nonstationary[sweep]:
            continue
        model = circuit_from_truth(simulated, sweep)
        relative = (simulated.z[sweep] - model) / np.abs(model)
        keep = np.arange(model.size) != truth.outlier_index[sweep]
        relative_errors.append(np.concatenate([relative.real[keep], relative.imag[keep]]))
    spread = np.std(np.concatenate(relative_errors))
    assert spread == pytest.approx(simulated.settings.noise_rel, rel=0.2)


def test_noise_free_model_matches_the_truth(simulated: SimulatedExperiment) -> None:
    for sweep in (0, simulated.n_stripping - 1, len(simulated) - 1):
        np.testing.assert_allclose(
            simulated.z_model[sweep], circuit_from_truth(simulated, sweep), rtol=1e-12
        )


def test_imperfections_are_where_and_as_many_as_configured(
    simulated: SimulatedExperiment,
) -> None:
    truth = simulated.truth
    n_stripping = simulated.n_stripping
    assert truth.nonstationary.sum() == round(0.05 * n_stripping)
    # Only complete stripping sweeps reach the low-frequency tail that drifts.
    assert not truth.nonstationary[n_stripping - 1 :].any()
    outliers = truth.outlier_index >= 0
    assert outliers.sum() == round(0.03 * len(simulated))
    assert np.all(truth.outlier_index[outliers] < truth.n_points[outliers])
    assert np.flatnonzero(truth.incomplete).tolist() == [n_stripping - 1]
    kept_share = truth.n_points[n_stripping - 1] / simulated.settings.frequencies_Hz.size
    assert 0.6 - 0.01 <= kept_share <= 0.8 + 0.01
    assert [freq.size for freq in simulated.freq] == truth.n_points.tolist()


def test_the_seed_reproduces_the_experiment(simulated: SimulatedExperiment) -> None:
    again = simulate_experiment(SimulationSettings())
    other = simulate_experiment(SimulationSettings(seed=1))
    for first, second in zip(simulated.z, again.z, strict=True):
        np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(simulated.truth.outlier_index, again.truth.outlier_index)
    np.testing.assert_array_equal(simulated.rest.potential_V, again.rest.potential_V)
    assert not np.array_equal(simulated.z[0], other.z[0])
    assert not np.array_equal(simulated.truth.nonstationary, other.truth.nonstationary)


def test_hold_and_rest_rows(simulated: SimulatedExperiment) -> None:
    settings = simulated.settings
    np.testing.assert_allclose(simulated.hold.time_s, np.arange(30.0))
    np.testing.assert_allclose(simulated.hold.current_mA, settings.current_mA)
    rest_time = simulated.rest.time_s
    relaxation_starts = simulated.time_s[simulated.n_stripping :]
    # Every rest row lies between the end of one PEIS spectrum and the start of the next.
    follows = np.searchsorted(relaxation_starts, rest_time) - 1
    assert np.all(follows >= 0) and np.all(follows < relaxation_starts.size - 1)
    assert np.all(rest_time >= relaxation_starts[follows] + settings.sweep_duration_s)
    assert np.unique(follows).size == relaxation_starts.size - 1
    for spectrum in np.unique(follows):
        np.testing.assert_allclose(np.diff(rest_time[follows == spectrum]), 10.0)
    np.testing.assert_array_equal(simulated.rest.current_mA, 0.0)
    assert np.max(np.abs(simulated.rest.potential_V - settings.ocv_V)) < 1e-3


# --------------------------------------------------------------------------- files


def test_writing_the_default_experiment_is_fast(
    written: tuple[Path, SimulatedExperiment, float],
) -> None:
    _, experiment, seconds = written
    assert len(experiment) > 300
    assert seconds < 2.0


def test_files_look_like_ec_lab_exports(written: tuple[Path, SimulatedExperiment, float]) -> None:
    folder, experiment, _ = written
    names = sorted(path.name for path in folder.iterdir())
    assert names == sorted([GEIS_FILE, PEIS_FILE, OCV_FILE, "truth.json", "truth.npz"])
    assert [Path(path).name for path in experiment.files] == [GEIS_FILE, PEIS_FILE, OCV_FILE]
    titles = {
        GEIS_FILE: "Galvano Electrochemical Impedance Spectroscopy",
        PEIS_FILE: "Potentio Electrochemical Impedance Spectroscopy",
        OCV_FILE: "Open Circuit Voltage",
    }
    for name, title in titles.items():
        raw = (folder / name).read_bytes()
        assert raw.count(b"\r\n") == raw.count(b"\n")
        lines = raw.decode("latin-1").split("\r\n")
        assert lines[0] == "EC-Lab ASCII FILE"
        header_count = int(lines[1].split(":")[1])
        assert "time/s" in lines[header_count - 1].split("\t")
        assert not lines[header_count - 2].strip()
        assert lines[3] == title
        assert "Acquisition started on : 11/20/2026 10:00:00.000" in lines
        assert "Electrode surface area : 0.785 cm\xb2" in lines
        # EC-Lab numbers: mantissa, then a signed three-digit exponent (E+004).
        float_cells = [cell for cell in lines[header_count].split("\t") if "E" in cell]
        assert float_cells
        assert all(re.fullmatch(r"-?\d\.\d{7}(\d{8})?E[+-]\d{3}", cell) for cell in float_cells)


def test_read_back_gives_every_sweep_in_time_order(
    written: tuple[Path, SimulatedExperiment, float], read_back: Experiment
) -> None:
    _, experiment, _ = written
    assert len(read_back) == experiment.n_stripping + experiment.n_relaxation
    assert read_back.skipped == ()
    np.testing.assert_allclose(read_back.time_s, experiment.time_s, rtol=1e-12)
    sources = [Path(spectrum.source).name for spectrum in read_back.spectra]
    assert sources == [GEIS_FILE] * experiment.n_stripping + [PEIS_FILE] * 12
    assert read_back.metadata.techniques == ("GEIS", "PEIS", "OCV")
    assert read_back.metadata.start_time == ACQUISITION_START


def test_read_back_impedance_equals_the_simulated_to_eight_digits(
    written: tuple[Path, SimulatedExperiment, float], read_back: Experiment
) -> None:
    _, experiment, _ = written
    for spectrum, freq, z, point_time in zip(
        read_back.spectra, experiment.freq, experiment.z, experiment.point_time_s, strict=True
    ):
        np.testing.assert_allclose(spectrum.freq, freq, rtol=1e-7)
        assert np.all(np.abs(spectrum.z - z) <= 1e-6 * np.abs(z))
        np.testing.assert_allclose(spectrum.point_time_s, point_time, rtol=1e-13)


def test_read_back_flags_only_the_cut_sweep(
    written: tuple[Path, SimulatedExperiment, float], read_back: Experiment
) -> None:
    _, experiment, _ = written
    flagged = [spectrum.incomplete for spectrum in read_back.spectra]
    assert flagged == experiment.truth.incomplete.tolist()
    assert flagged[experiment.n_stripping - 1]


def test_read_back_metadata_and_dc_values(
    written: tuple[Path, SimulatedExperiment, float], read_back: Experiment
) -> None:
    _, experiment, _ = written
    truth = experiment.truth
    metadata = read_back.metadata
    assert metadata.area_cm2 == 0.785
    assert metadata.current_setpoint_mA == pytest.approx(0.3 * 0.785, rel=1e-9)
    current = np.array([spectrum.current_mA for spectrum in read_back.spectra])
    np.testing.assert_allclose(current, truth.current_mA, rtol=1e-7, atol=1e-12)
    charge = np.array([spectrum.charge_mAh for spectrum in read_back.spectra])
    np.testing.assert_allclose(charge, truth.charge_mAh, rtol=1e-12)
    # DC-AC gap from the read values: E/i - (R_b + R_gb + R_int) recovers R_DC-AC.
    stripping = slice(0, experiment.n_stripping)
    potential = np.array([spectrum.potential_V for spectrum in read_back.spectra])[stripping]
    current_A_cm2 = experiment.settings.current_density_mA_cm2 * 1e-3
    gap = (
        potential / current_A_cm2
        - (truth.R_b_ohm_cm2 + truth.R_gb_ohm_cm2 + truth.R_int_ohm_cm2)[stripping]
    )
    np.testing.assert_allclose(gap, experiment.settings.R_dcac_ohm_cm2, atol=0.5)


def test_read_back_dc_record_holds_the_hold_and_ocv_rows(
    written: tuple[Path, SimulatedExperiment, float], read_back: Experiment
) -> None:
    _, experiment, _ = written
    record = read_back.dc_record
    assert len(record) == len(experiment.hold) + len(experiment.rest) + experiment.n_points
    for rows in (experiment.hold, experiment.rest):
        position = np.searchsorted(record.time_s, rows.time_s)
        np.testing.assert_allclose(record.time_s[position], rows.time_s, rtol=1e-13)
        np.testing.assert_allclose(record.potential_V[position], rows.potential_V, rtol=1e-7)
        np.testing.assert_allclose(record.current_mA[position], rows.current_mA, rtol=1e-7)
    assert len(experiment.hold) == 30 and len(experiment.rest) > 0


def test_truth_files_hold_the_truth(written: tuple[Path, SimulatedExperiment, float]) -> None:
    folder, experiment, _ = written
    with np.load(folder / "truth.npz") as stored:
        for name, values in experiment.truth.as_dict().items():
            np.testing.assert_array_equal(stored[name], values)
    summary = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    assert summary["t0_s"] == pytest.approx(experiment.t0_s)
    assert summary["current_stop_s"] == pytest.approx(experiment.current_stop_s)
    assert summary["n_stripping"] == experiment.n_stripping
    assert summary["settings"] == dataclasses.asdict(experiment.settings)


def _relative_residuals(folder: Path, experiment: SimulatedExperiment) -> list[np.ndarray]:
    """(read z - noise-free model) / |model| for every sweep read back from ``folder``."""
    read = geis_pipeline.read_experiment(folder, strict=True)
    assert len(read) == len(experiment)
    return [
        (spectrum.z - circuit_from_truth(experiment, sweep))
        / np.abs(circuit_from_truth(experiment, sweep))
        for sweep, spectrum in enumerate(read.spectra)
    ]


def test_outlier_points_in_the_files_are_where_truth_says(tmp_path: Path) -> None:
    settings = SimulationSettings(
        n_sweeps=30, n_relaxation=4, noise_rel=1e-5, nonstationary_fraction=0.0,
        outlier_fraction=0.25, seed=11,
    )  # fmt: skip
    experiment = write_experiment(tmp_path, settings)
    found = [
        int(np.argmax(np.abs(residual))) if np.max(np.abs(residual)) > 0.02 else -1
        for residual in _relative_residuals(tmp_path, experiment)
    ]
    assert found == experiment.truth.outlier_index.tolist()
    assert sum(index >= 0 for index in found) == round(0.25 * 34)


def test_nonstationary_sweeps_in_the_files_are_where_truth_says(tmp_path: Path) -> None:
    settings = SimulationSettings(
        n_sweeps=30, n_relaxation=4, noise_rel=1e-5, nonstationary_fraction=0.2,
        outlier_fraction=0.0, seed=12,
    )  # fmt: skip
    experiment = write_experiment(tmp_path, settings)
    residuals = _relative_residuals(tmp_path, experiment)
    drifting = [bool(np.max(np.abs(residual)) > 1e-3) for residual in residuals]
    assert drifting == experiment.truth.nonstationary.tolist()
    assert sum(drifting) == 6
    for sweep in np.flatnonzero(drifting):
        low = experiment.freq[sweep] < settings.nonstationary_below_Hz
        residual = residuals[sweep]
        # Only the low-frequency tail drifts, growing along the sweep, towards higher Z'.
        assert np.max(np.abs(residual[~low])) < 1e-4
        assert np.all(np.diff(residual.real[low]) > 0) and residual.real[low][0] > 1e-3


def test_without_relaxation_only_the_geis_file_is_written(tmp_path: Path) -> None:
    experiment = write_experiment(tmp_path, SimulationSettings(n_sweeps=5, n_relaxation=0))
    assert [Path(path).name for path in experiment.files] == [GEIS_FILE]
    read = geis_pipeline.read_experiment(tmp_path, strict=True)
    assert len(read) == 5 and read.spectra[-1].incomplete
    assert len(experiment.rest) == 0


def test_bad_file_stem_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SimulationError) as raised:
        write_experiment(tmp_path, SimulationSettings(n_sweeps=3), name="../escape")
    assert raised.value.key == "name"
