"""EC-Lab .mpt and .mpr readers against the real files in shared/realdata."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

import geis_pipeline as gp
from geis_pipeline.ingest.eclab_mpr import spectra_from_records


def _raw_mpt_rows(path: Path) -> tuple[list[str], np.ndarray]:
    """Independent, naive parse of the .mpt body: column names and all numbers."""
    lines = path.read_text(encoding="latin-1").splitlines()
    header_count = int(lines[1].split(":")[1])
    names = lines[header_count - 1].split("\t")
    rows = [line.split("\t") for line in lines[header_count:] if line.strip()]
    values = np.array([[float(cell) for cell in row[: len(names) - 1]] for row in rows])
    return names, values


def test_geis_mpt_sweeps_as_stated(realdata: Path) -> None:
    spectra = gp.read_spectra(realdata / "geis.mpt")
    assert len(spectra) == 61
    assert [spectrum.n_points for spectrum in spectra] == [41] * 60 + [39]
    assert [spectrum.incomplete for spectrum in spectra] == [False] * 60 + [True]
    assert [spectrum.sweep_index for spectrum in spectra] == list(range(61))
    for spectrum in spectra:
        assert spectrum.freq[0] == pytest.approx(1.0000186e6)
        assert np.all(np.diff(spectrum.freq) < 0)
    assert spectra[0].freq[-1] == pytest.approx(0.19980815)


def test_geis_mpt_values_match_the_file(realdata: Path) -> None:
    path = realdata / "geis.mpt"
    names, values = _raw_mpt_rows(path)
    column = {name: index for index, name in enumerate(names)}
    impedance_rows = values[values[:, column["freq/Hz"]] > 0]
    spectra = gp.read_spectra(path)
    freq = np.concatenate([spectrum.freq for spectrum in spectra])
    z = np.concatenate([spectrum.z for spectrum in spectra])
    np.testing.assert_array_equal(freq, impedance_rows[:, column["freq/Hz"]])
    np.testing.assert_array_equal(z.real, impedance_rows[:, column["Re(Z)/Ohm"]])
    # EC-Lab writes -Im(Z): the true imaginary part is its negation.
    np.testing.assert_array_equal(z.imag, -impedance_rows[:, column["-Im(Z)/Ohm"]])
    first = impedance_rows[:41]
    assert spectra[0].time_s == first[0, column["time/s"]]
    assert spectra[0].current_mA == pytest.approx(first[:, column["<I>/mA"]].mean(), rel=1e-12)
    assert spectra[0].potential_V == pytest.approx(first[:, column["<Ewe>/V"]].mean(), rel=1e-12)
    assert spectra[0].charge_mAh == first[0, column["(Q-Qo)/mA.h"]]
    np.testing.assert_array_equal(spectra[0].point_time_s, first[:, column["time/s"]])


def test_geis_mpt_header(realdata: Path) -> None:
    instrument_file = gp.read_file(realdata / "geis.mpt")
    assert instrument_file.format == "eclab-mpt"
    assert instrument_file.technique == "GEIS"
    assert instrument_file.area_cm2 == pytest.approx(1.13)
    assert instrument_file.current_setpoint_mA == pytest.approx(0.38)
    assert instrument_file.start_time == datetime(2021, 3, 3, 20, 40, 41)
    # Every row is in the DC record, the 29 current-hold rows (freq = 0) included.
    assert len(instrument_file.dc_record) == 2528
    assert instrument_file.dc_record.time_s[0] == pytest.approx(45322.92049958)
    settings = dict(instrument_file.settings)
    assert settings["Is"] == "0.380"
    assert settings["unit Is"] == "mA"


def test_mpr_equals_mpt_to_float32(realdata: Path) -> None:
    from_mpt = gp.read_file(realdata / "geis.mpt")
    from_mpr = gp.read_file(realdata / "geis.mpr")
    assert from_mpr.format == "eclab-mpr"
    assert from_mpr.technique == "GEIS"
    assert from_mpr.start_time == from_mpt.start_time
    # The area decoded from the settings module is the one the text export states.
    assert from_mpr.area_cm2 == pytest.approx(from_mpt.area_cm2, rel=1e-6)
    assert len(from_mpr.spectra) == len(from_mpt.spectra) == 61
    for text_sweep, binary_sweep in zip(from_mpt.spectra, from_mpr.spectra, strict=True):
        assert text_sweep.flags == binary_sweep.flags
        np.testing.assert_allclose(binary_sweep.freq, text_sweep.freq, rtol=2e-7)
        scale = np.abs(text_sweep.z)
        assert np.max(np.abs(binary_sweep.z - text_sweep.z) / scale) < 2e-7
        np.testing.assert_allclose(binary_sweep.point_time_s, text_sweep.point_time_s, rtol=1e-12)
        assert binary_sweep.current_mA == pytest.approx(text_sweep.current_mA, rel=1e-6)
        assert binary_sweep.potential_V == pytest.approx(text_sweep.potential_V, rel=1e-6)


def test_peis_ssb_mpr(realdata: Path) -> None:
    instrument_file = gp.read_file(realdata / "PEIS_SSB.mpr")
    assert instrument_file.technique == "PEIS"
    (spectrum,) = instrument_file.spectra
    assert spectrum.n_points == 89
    assert spectrum.freq[0] == pytest.approx(7.0000185e6)
    assert spectrum.freq[-1] == pytest.approx(0.01, rel=0.01)
    # The solid-state cell's arcs are capacitive at mid frequency.
    assert np.median(spectrum.z.imag) < 0


def test_mpr_area_is_not_guessed_from_an_unknown_settings_layout(realdata: Path) -> None:
    from galvani import BioLogic

    from geis_pipeline.ingest.eclab_mpr import _area_from_settings

    modules = BioLogic.MPRfile(str(realdata / "geis.mpr")).modules
    settings = next(module for module in modules if module["shortname"].strip() == b"VMP Set")
    assert _area_from_settings([settings]) == pytest.approx(1.13)
    # PEIS_SSB.mpr keeps EC-Lab's untouched default, 0.001 cm² (as its export would say).
    peis = BioLogic.MPRfile(str(realdata / "PEIS_SSB.mpr")).modules
    assert _area_from_settings(peis) == pytest.approx(0.001)
    data = bytes(settings["data"])
    shifted = {**settings, "data": b"\x00" + data}  # the layout moved by one byte
    newer = {**settings, "version": 1}
    binary_follower = {**settings, "data": data[:534] + b"\x01" * 13 + data[547:]}
    for module in (shifted, newer, binary_follower, {**settings, "data": data[:530]}):
        assert _area_from_settings([module]) is None


def _geis_records(realdata: Path) -> np.ndarray:
    from galvani import BioLogic

    return np.asarray(BioLogic.MPRfile(str(realdata / "geis.mpr")).data)


def test_modulo_bat_modulus_and_phase_only(realdata: Path) -> None:
    """Modulo Bat .mpr files store |Z| and Phase(Z) but not Re/-Im: same spectra."""
    records = _geis_records(realdata)
    kept = [name for name in records.dtype.names if name not in ("Re(Z)/Ohm", "-Im(Z)/Ohm")]
    modulo_bat = np.empty(records.shape, dtype=[(name, records.dtype[name]) for name in kept])
    for name in kept:
        modulo_bat[name] = records[name]
    full = spectra_from_records(records, Path("geis.mpr")).spectra
    polar = spectra_from_records(modulo_bat, Path("modulo_bat.mpr")).spectra
    assert len(polar) == len(full) == 61
    for reference, spectrum in zip(full, polar, strict=True):
        # |Z| and phase are float32 in the file: agreement to float32 precision.
        assert np.max(np.abs(spectrum.z - reference.z) / np.abs(reference.z)) < 1e-5


def test_btlab_cycle_number_zero_gives_same_sweeps(realdata: Path) -> None:
    """BT-Lab writes cycle number 0 throughout; splitting must not depend on it."""
    records = _geis_records(realdata).copy()
    records["cycle number"] = 0
    spectra = spectra_from_records(records, Path("btlab.mpr")).spectra
    assert [spectrum.n_points for spectrum in spectra] == [41] * 60 + [39]


def test_mpr_setpoint_from_settings_matches_the_mpt(realdata: Path) -> None:
    from_mpt = gp.read_file(realdata / "geis.mpt")
    from_mpr = gp.read_file(realdata / "geis.mpr")
    assert from_mpt.current_setpoint_mA == pytest.approx(0.38)
    assert from_mpr.current_setpoint_mA == from_mpt.current_setpoint_mA
    # a PEIS file has no current setpoint
    assert gp.read_file(realdata / "PEIS_SSB.mpr").current_setpoint_mA is None


def test_mpr_setpoint_only_where_its_layout_is_verified(realdata: Path) -> None:
    from galvani import BioLogic

    from geis_pipeline.ingest.eclab_mpr import _setpoint_from_settings

    modules = BioLogic.MPRfile(str(realdata / "geis.mpr")).modules
    settings = next(module for module in modules if module["shortname"].strip() == b"VMP Set")
    assert _setpoint_from_settings([settings]) == pytest.approx(0.38)
    data = bytes(settings["data"])
    start = 0x1845

    def patched(offset: int, value: bytes) -> dict:
        return {**settings, "data": data[:offset] + value + data[offset + len(value) :]}

    micro = patched(start + 9, b"\x02")  # unit code 2: µA
    assert _setpoint_from_settings([micro]) == pytest.approx(0.38e-3)
    for module in (
        patched(start + 2, (54).to_bytes(2, "little")),  # another parameter count
        patched(start, (0).to_bytes(2, "little")),  # no sequence
        patched(start + 9, b"\x07"),  # an unknown unit code
        patched(0, b"\x1d"),  # a PEIS technique
        {**settings, "version": 1},
        {**settings, "data": b"\x00" + data},  # the layout moved by one byte
    ):
        assert _setpoint_from_settings([module]) is None


def test_mpr_technique_names(realdata: Path) -> None:
    from geis_pipeline.ingest.eclab_mpr import _technique_from_settings

    def module(technique_id: int) -> dict:
        return {"shortname": b"VMP Set   ", "version": 0, "data": bytes([technique_id]) + b"\0" * 8}

    assert _technique_from_settings([module(0x7F)]) == "MB"  # Modulo Bat
    assert _technique_from_settings([module(0x1E)]) == "GEIS"
    assert _technique_from_settings([module(0x0B)]) == "OCV"
    assert _technique_from_settings([module(0xEE)]) is None


def test_placeholder_area_of_an_mpr_is_no_area(realdata: Path, tmp_path: Path, caplog) -> None:
    import shutil

    folder = tmp_path / "ssb"
    folder.mkdir()
    shutil.copy(realdata / "PEIS_SSB.mpr", folder)
    # the file states the placeholder, as read
    assert gp.read_file(folder / "PEIS_SSB.mpr").area_cm2 == pytest.approx(0.001)
    with caplog.at_level("WARNING", logger="geis_pipeline"):
        experiment = gp.read_experiment(folder)
    assert experiment.metadata.area_cm2 is None
    (message,) = experiment.metadata.warnings
    assert message.startswith("PEIS_SSB.mpr: electrode area 0.001 cm2 is EC-Lab's placeholder")
    assert "--area-cm2" in message and "experiment.area_cm2" in message
    assert message in caplog.text
    assert gp.read_experiment(folder, area_cm2=0.2).metadata.warnings == ()


def test_geis_counter_electrode_is_kept_from_mpt_and_mpr(realdata: Path) -> None:
    path = realdata / "geis.mpt"
    names, values = _raw_mpt_rows(path)
    column = {name: index for index, name in enumerate(names)}
    rows = values[values[:, column["freq/Hz"]] > 0]
    spectra = gp.read_spectra(path)
    assert all(spectrum.has_counter for spectrum in spectra)
    z_ce = np.concatenate([spectrum.z_ce for spectrum in spectra])
    np.testing.assert_array_equal(z_ce.real, rows[:, column["Re(Zce)/Ohm"]])
    np.testing.assert_array_equal(z_ce.imag, -rows[:, column["-Im(Zce)/Ohm"]])
    assert spectra[0].potential_ce_V == pytest.approx(rows[:41, column["<Ece>/V"]].mean())
    # The whole cell is the sum of both electrodes (EC-Lab's Zwe-ce).
    z = np.concatenate([spectrum.z for spectrum in spectra])
    whole = rows[:, column["Re(Zwe-ce)/Ohm"]] - 1j * rows[:, column["-Im(Zwe-ce)/Ohm"]]
    np.testing.assert_allclose(z + z_ce, whole, rtol=1e-5, atol=1e-4)
    # The counter view: its own Z and potential, the opposite current.
    view = spectra[0].counter_view()
    np.testing.assert_array_equal(view.z, spectra[0].z_ce)
    assert view.current_mA == -spectra[0].current_mA and view.potential_V < 0
    record = gp.read_file(path).dc_record
    assert np.isfinite(record.potential_ce_V).all()
    from_mpr = gp.read_file(realdata / "geis.mpr")
    for text_sweep, binary_sweep in zip(spectra, from_mpr.spectra, strict=True):
        np.testing.assert_allclose(binary_sweep.z_ce, text_sweep.z_ce, rtol=1e-6)


def test_two_electrode_files_have_no_counter(realdata: Path) -> None:
    assert not any(spectrum.has_counter for spectrum in gp.read_spectra(realdata / "PEIS_SSB.mpr"))


@pytest.mark.parametrize(
    ("byte", "message"),
    [
        (6919, r"no 'freq/Hz' column"),  # the frequency column's id now names |Ewe|/V
        (6921, r"'\|Z\|/Ohm' appears twice"),  # Re(Z)'s id now names |Z|: galvani's "|Z|/Ohm 2"
    ],
)
def test_a_damaged_mpr_column_id_is_an_error_not_silent(
    realdata: Path, tmp_path: Path, byte: int, message: str
) -> None:
    """Both files read without a word: 61 sweeps gone, or Re(Z) taken for |Z| (fits 8 % off)."""
    data = bytearray((realdata / "geis.mpr").read_bytes())
    data[byte] ^= 1
    damaged = tmp_path / "geis.mpr"
    damaged.write_bytes(bytes(data))
    with pytest.raises(gp.IngestError, match=message):
        gp.read_file(damaged)
