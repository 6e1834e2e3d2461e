"""Gamry .DTA reader: the real EISGALV file, header/layout variants and bad input."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from impedance.preprocessing import readGamry

import geis_pipeline as gp
from geis_pipeline.ingest.gamry_dta import read_dta

REAL_FILE = "EISGALV_EISTest3.DTA"
N_POINTS = 71


def _raw_zcurve(path: Path) -> dict[str, np.ndarray]:
    """The ZCURVE columns parsed independently of the reader (plain str.split)."""
    lines = path.read_text(encoding="latin-1").splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("ZCURVE\t"))
    names = lines[start + 1].split("\t")
    rows = []
    for line in lines[start + 3 :]:
        if not line.startswith("\t"):
            break
        rows.append([float(cell) for cell in line.split("\t")[1:]])
    values = np.array(rows)
    return {name: values[:, index - 1] for index, name in enumerate(names) if name}


@pytest.fixture(scope="module")
def real_path(realdata: Path) -> Path:
    return realdata / REAL_FILE


@pytest.fixture(scope="module")
def real_lines(real_path: Path) -> list[str]:
    return real_path.read_text(encoding="latin-1").splitlines()


@pytest.fixture(scope="module")
def real_file(real_path: Path) -> gp.InstrumentFile:
    return read_dta(real_path)


def _write(tmp_path: Path, lines: list[str], newline: str = "\n", name: str = "cell.DTA") -> Path:
    path = tmp_path / name
    path.write_bytes((newline.join(lines) + newline).encode("latin-1"))
    return path


# --- the real file -------------------------------------------------------------


def test_real_file_points_and_frequency_range(real_file: gp.InstrumentFile) -> None:
    assert real_file.format == "gamry-dta"
    assert len(real_file.spectra) == 1
    spectrum = real_file.spectra[0]
    assert spectrum.n_points == N_POINTS
    assert spectrum.freq[0] == 1000078.0
    assert spectrum.freq[-1] == 0.1001603
    assert np.all(np.diff(spectrum.freq) < 0)
    assert not spectrum.incomplete


def test_real_file_zimag_is_signed_not_negated(
    real_file: gp.InstrumentFile, real_path: Path
) -> None:
    raw = _raw_zcurve(real_path)
    spectrum = real_file.spectra[0]
    np.testing.assert_array_equal(spectrum.freq, raw["Freq"])
    np.testing.assert_array_equal(spectrum.z.real, raw["Zreal"])
    np.testing.assert_array_equal(spectrum.z.imag, raw["Zimag"])
    assert spectrum.z.imag[0] > 0  # inductive at 1 MHz
    assert spectrum.z.imag[-1] < 0  # capacitive at 0.1 Hz


def test_real_file_agrees_with_impedance_py(real_file: gp.InstrumentFile, real_path: Path) -> None:
    freq, z = readGamry(str(real_path))
    np.testing.assert_array_equal(real_file.spectra[0].freq, freq)
    np.testing.assert_array_equal(real_file.spectra[0].z, z)


def test_real_file_times_and_dc(real_file: gp.InstrumentFile, real_path: Path) -> None:
    raw = _raw_zcurve(real_path)
    spectrum = real_file.spectra[0]
    assert spectrum.time_s == 1.541807
    np.testing.assert_array_equal(spectrum.point_time_s, raw["Time"])
    assert spectrum.current_mA == pytest.approx(raw["Idc"].mean() * 1000, rel=1e-12)
    assert spectrum.current_mA == pytest.approx(497.54, abs=0.01)  # "~0.5 A DC"
    assert spectrum.potential_V == pytest.approx(raw["Vdc"].mean(), rel=1e-12)
    assert math.isnan(spectrum.charge_mAh)
    record = real_file.dc_record
    assert len(record) == N_POINTS
    np.testing.assert_array_equal(record.time_s, raw["Time"])
    np.testing.assert_allclose(record.current_mA, raw["Idc"] * 1000, rtol=1e-15)
    np.testing.assert_array_equal(record.potential_V, raw["Vdc"])
    assert np.all(np.isnan(record.charge_mAh))


def test_real_file_header(real_file: gp.InstrumentFile) -> None:
    assert real_file.start_time == datetime(2024, 10, 25, 21, 9, 58, 727375)
    assert real_file.technique == "GEIS"  # TAG GALVEIS
    assert real_file.area_cm2 is None
    assert real_file.current_setpoint_mA is None
    assert ("TAG", "GALVEIS") in real_file.settings
    assert ("DATE", "10/25/2024") in real_file.settings


def test_dispatch_through_read_spectra(real_path: Path) -> None:
    spectra = gp.read_spectra(real_path)
    assert len(spectra) == 1
    assert spectra[0].n_points == N_POINTS


# --- variants built from the real file ------------------------------------------


def _zcurve_index(lines: list[str]) -> int:
    return next(index for index, line in enumerate(lines) if line.startswith("ZCURVE\t"))


def test_area_setpoint_and_technique_from_header(tmp_path: Path, real_lines: list[str]) -> None:
    lines = list(real_lines)
    at = _zcurve_index(lines)
    lines[at:at] = [
        "AREA\tQUANT\t1.13\tSample Area (cm^2)",
        "IDC\tQUANT\t5.00000E-001\tDC Current (A)",
    ]
    lines[1] = "TAG\tEISPOT"
    instrument_file = read_dta(_write(tmp_path, lines))
    assert instrument_file.area_cm2 == pytest.approx(1.13)
    assert instrument_file.current_setpoint_mA == pytest.approx(500.0)
    assert instrument_file.technique == "PEIS"


@pytest.mark.parametrize(
    ("tag", "technique"), [("EISGALV", "GEIS"), ("GALVEIS", "GEIS"), ("HYBRIDEIS", "HYBRIDEIS")]
)
def test_technique_tags(tmp_path: Path, real_lines: list[str], tag: str, technique: str) -> None:
    lines = list(real_lines)
    lines[1] = f"TAG\t{tag}"
    assert read_dta(_write(tmp_path, lines)).technique == technique


def test_zero_area_is_not_an_area(tmp_path: Path, real_lines: list[str]) -> None:
    lines = list(real_lines)
    lines.insert(_zcurve_index(lines), "AREA\tQUANT\t0\tSample Area (cm^2)")
    assert read_dta(_write(tmp_path, lines)).area_cm2 is None


@pytest.mark.parametrize("value", ["1e30", "1e-30"])
def test_implausible_area_is_not_used_and_said(
    tmp_path: Path, real_lines: list[str], value: str, caplog
) -> None:
    lines = list(real_lines)
    lines.insert(_zcurve_index(lines), f"AREA\tQUANT\t{value}\tSample Area (cm^2)")
    path = _write(tmp_path, lines)
    assert read_dta(path).area_cm2 is None
    assert "implausible" in caplog.text and path.name in caplog.text


@pytest.mark.parametrize(
    ("date", "time", "expected"),
    [
        ("25.10.2024", "21:09:58", datetime(2024, 10, 25, 21, 9, 58)),
        ("2024-10-25", "21:09:58.5", datetime(2024, 10, 25, 21, 9, 58, 500000)),
        ("10/25/2024", "21:09:58.12345678", datetime(2024, 10, 25, 21, 9, 58, 123456)),
        ("not a date", "21:09:58", None),
    ],
)
def test_start_time_formats(
    tmp_path: Path, real_lines: list[str], date: str, time: str, expected: datetime | None
) -> None:
    lines = list(real_lines)
    lines[3] = f"DATE\tLABEL\t{date}\tDate"
    lines[4] = f"TIME\tLABEL\t{time}\tTime"
    assert read_dta(_write(tmp_path, lines)).start_time == expected


def test_experiment_aborted_flags_incomplete(tmp_path: Path, real_lines: list[str]) -> None:
    lines = real_lines[: _zcurve_index(real_lines) + 3 + 40]
    lines.append("EXPERIMENTABORTED\tTOGGLE\tT\tExperiment Aborted")
    spectra = read_dta(_write(tmp_path, lines)).spectra
    assert [spectrum.n_points for spectrum in spectra] == [40]
    assert spectra[0].incomplete


def test_table_ends_at_next_section(tmp_path: Path, real_lines: list[str]) -> None:
    lines = [*real_lines, "OCVCURVE\tTABLE\t3", "\tPt\tT\tVf", "\t#\ts\tV vs. Ref.", "\t0\t1\t2"]
    assert read_dta(_write(tmp_path, lines)).spectra[0].n_points == N_POINTS


def test_earlier_table_is_skipped(tmp_path: Path, real_lines: list[str]) -> None:
    lines = list(real_lines)
    lines[_zcurve_index(lines) : _zcurve_index(lines)] = [
        "OCVCURVE\tTABLE\t2",
        "\tPt\tT\tVf",
        "\t#\ts\tV vs. Ref.",
        "\t0\t1\t2",
        "\t1\t2\t3",
    ]
    spectra = read_dta(_write(tmp_path, lines)).spectra
    assert spectra[0].n_points == N_POINTS
    assert spectra[0].freq[0] == 1000078.0


def test_decimal_comma_and_crlf(
    tmp_path: Path, real_lines: list[str], real_file: gp.InstrumentFile
) -> None:
    start = _zcurve_index(real_lines) + 3
    german = real_lines[:start] + [line.replace(".", ",") for line in real_lines[start:]]
    spectrum = read_dta(_write(tmp_path, german, newline="\r\n")).spectra[0]
    np.testing.assert_array_equal(spectrum.freq, real_file.spectra[0].freq)
    np.testing.assert_array_equal(spectrum.z, real_file.spectra[0].z)


def test_columns_found_by_name(
    tmp_path: Path, real_lines: list[str], real_file: gp.InstrumentFile
) -> None:
    def swap(line: str) -> str:  # exchange the Zreal and Zimag columns (cells 4 and 5)
        cells = line.split("\t")
        cells[4], cells[5] = cells[5], cells[4]
        return "\t".join(cells)

    start = _zcurve_index(real_lines) + 1
    lines = real_lines[:start] + [swap(line) for line in real_lines[start:]]
    spectrum = read_dta(_write(tmp_path, lines)).spectra[0]
    np.testing.assert_array_equal(spectrum.z, real_file.spectra[0].z)


def test_without_time_column(tmp_path: Path, real_lines: list[str]) -> None:
    def drop_time(line: str) -> str:  # Time is cell 2
        cells = line.split("\t")
        return "\t".join(cells[:2] + cells[3:])

    start = _zcurve_index(real_lines) + 1
    lines = real_lines[:start] + [drop_time(line) for line in real_lines[start:]]
    instrument_file = read_dta(_write(tmp_path, lines))
    spectrum = instrument_file.spectra[0]
    assert spectrum.n_points == N_POINTS
    assert spectrum.time_s == 0.0
    assert np.all(np.isnan(spectrum.point_time_s))
    assert len(instrument_file.dc_record) == 0


def test_current_in_milliampere_units(tmp_path: Path, real_lines: list[str]) -> None:
    units_index = _zcurve_index(real_lines) + 2
    lines = list(real_lines)
    lines[units_index] = lines[units_index].replace("\tA\t", "\tmA\t")
    spectrum = read_dta(_write(tmp_path, lines)).spectra[0]
    assert spectrum.current_mA == pytest.approx(0.4975, abs=1e-4)


# --- bad input: IngestError naming line and column --------------------------------

_HEADER = [
    "EXPLAIN",  # line 1
    "TAG\tGALVEIS",
    "DATE\tLABEL\t10/25/2024\tDate",
    "TIME\tLABEL\t21:09:58\tTime",
    "ZCURVE\tTABLE",  # line 5
    "\tPt\tTime\tFreq\tZreal\tZimag\tIdc\tVdc",  # line 6
    "\t#\ts\tHz\tohm\tohm\tA\tV",  # line 7
]
_ROWS = [
    "\t0\t1.0\t1000\t0.5\t-0.1\t0.5\t1.4",  # line 8
    "\t1\t2.0\t100\t0.6\t-0.2\t0.5\t1.4",  # line 9
    "\t2\t3.0\t10\t0.7\t-0.3\t0.5\t1.4",  # line 10
]


def _bad_file(tmp_path: Path, rows: list[str], header: list[str] | None = None) -> Path:
    return _write(tmp_path, (_HEADER if header is None else header) + rows)


def test_synthetic_baseline_reads(tmp_path: Path) -> None:
    spectrum = read_dta(_bad_file(tmp_path, _ROWS)).spectra[0]
    np.testing.assert_array_equal(spectrum.freq, [1000, 100, 10])
    np.testing.assert_array_equal(spectrum.z, [0.5 - 0.1j, 0.6 - 0.2j, 0.7 - 0.3j])


@pytest.mark.parametrize(
    ("row", "line", "column"),
    [
        ("\t1\t2.0\t100\tabc\t-0.2\t0.5\t1.4", 9, "Zreal"),  # non-numeric
        ("\t1\t2.0\tinf\t0.6\t-0.2\t0.5\t1.4", 9, "Freq"),  # inf
        ("\t1\t2.0\t0\t0.6\t-0.2\t0.5\t1.4", 9, "Freq"),  # frequency 0
        ("\t1\t2.0\t-100\t0.6\t-0.2\t0.5\t1.4", 9, "Freq"),  # negative frequency
        ("\t1\t2.0\t100\t0.6", 9, "Zimag"),  # truncated row
        ("\t1\tnan\t100\t0.6\t-0.2\t0.5\t1.4", 9, "Time"),  # time must be finite
    ],
)
def test_bad_cell(tmp_path: Path, row: str, line: int, column: str) -> None:
    rows = [_ROWS[0], row, _ROWS[2]]
    with pytest.raises(gp.IngestError) as caught:
        read_dta(_bad_file(tmp_path, rows))
    assert caught.value.line == line
    assert caught.value.column == column
    assert caught.value.file == str(tmp_path / "cell.DTA")


def test_non_finite_impedance_names_its_line_in_the_sweep(tmp_path: Path) -> None:
    path = _bad_file(tmp_path, [_ROWS[0], "\t1\t2.0\t100\t0.6\tnan\t0.5\t1.4", _ROWS[2]])
    (spectrum,) = read_dta(path).spectra
    assert f"{path}:9" in spectrum.defect
    assert "Zimag" in spectrum.defect
    assert gp.sweep_defect(spectrum) == spectrum.defect


def test_no_zcurve_table(tmp_path: Path) -> None:
    with pytest.raises(gp.IngestError, match="ZCURVE") as caught:
        header = [*_HEADER[:4], "OCVCURVE\tTABLE", *_HEADER[5:]]
        read_dta(_bad_file(tmp_path, _ROWS, header=header))
    assert caught.value.line is None
    assert caught.value.column is None


@pytest.mark.parametrize("name", ["Freq", "Zreal", "Zimag"])
def test_missing_required_column(tmp_path: Path, name: str) -> None:
    header = list(_HEADER)
    header[5] = header[5].replace(f"\t{name}\t", "\tOther\t")
    with pytest.raises(gp.IngestError) as caught:
        read_dta(_bad_file(tmp_path, _ROWS, header=header))
    assert caught.value.line == 6
    assert caught.value.column == name


def test_empty_table(tmp_path: Path) -> None:
    with pytest.raises(gp.IngestError, match="no data rows") as caught:
        read_dta(_bad_file(tmp_path, ["EXPERIMENTABORTED\tTOGGLE\tT\tExperiment Aborted"]))
    assert caught.value.line == 5
    assert caught.value.column is None


def test_table_without_column_names(tmp_path: Path) -> None:
    with pytest.raises(gp.IngestError, match="column-name line") as caught:
        read_dta(_bad_file(tmp_path, [], header=_HEADER[:5]))
    assert caught.value.line == 6


def test_unknown_current_unit(tmp_path: Path) -> None:
    header = list(_HEADER)
    header[6] = header[6].replace("\tA\t", "\tkA\t")
    with pytest.raises(gp.IngestError, match="current unit") as caught:
        read_dta(_bad_file(tmp_path, _ROWS, header=header))
    assert caught.value.line == 7
    assert caught.value.column == "Idc"
