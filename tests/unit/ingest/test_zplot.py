"""ZPlot .z reader: the real example file, layout variants and bad input."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from impedance.preprocessing import readZPlot

import geis_pipeline as gp
from geis_pipeline.ingest.zplot import read_z

REAL_FILE = "exampleDataZPlot.z"
N_POINTS = 21


def _raw_rows(path: Path) -> np.ndarray:
    """The data rows parsed independently of the reader (plain str.split)."""
    lines = path.read_text(encoding="latin-1").splitlines()
    start = lines.index("End Comments") + 1
    return np.array([[float(cell) for cell in line.split()] for line in lines[start:] if line])


@pytest.fixture(scope="module")
def real_path(realdata: Path) -> Path:
    return realdata / REAL_FILE


@pytest.fixture(scope="module")
def real_lines(real_path: Path) -> list[str]:
    return real_path.read_text(encoding="latin-1").splitlines()


@pytest.fixture(scope="module")
def real_file(real_path: Path) -> gp.InstrumentFile:
    return read_z(real_path)


def _write(tmp_path: Path, lines: list[str], newline: str = "\n") -> Path:
    path = tmp_path / "cell.z"
    path.write_bytes((newline.join(lines) + newline).encode("latin-1"))
    return path


# --- the real file -------------------------------------------------------------


def test_real_file_points(real_file: gp.InstrumentFile) -> None:
    assert real_file.format == "zplot-z"
    assert len(real_file.spectra) == 1
    spectrum = real_file.spectra[0]
    assert spectrum.n_points == N_POINTS
    assert spectrum.freq[0] == 300000.0
    assert spectrum.freq[-1] == 3000.0
    assert not spectrum.incomplete


def test_real_file_columns_and_sign(real_file: gp.InstrumentFile, real_path: Path) -> None:
    raw = _raw_rows(real_path)
    spectrum = real_file.spectra[0]
    np.testing.assert_array_equal(spectrum.freq, raw[:, 0])
    np.testing.assert_array_equal(spectrum.point_time_s, raw[:, 3])
    np.testing.assert_array_equal(spectrum.z.real, raw[:, 4])
    np.testing.assert_array_equal(spectrum.z.imag, raw[:, 5])  # signed: not negated
    assert np.all(spectrum.z.imag < 0)  # a capacitive arc
    assert spectrum.time_s == 2.67


def test_real_file_agrees_with_impedance_py(real_file: gp.InstrumentFile, real_path: Path) -> None:
    freq, z = readZPlot(str(real_path))
    np.testing.assert_array_equal(real_file.spectra[0].freq, freq)
    np.testing.assert_array_equal(real_file.spectra[0].z, z)


def test_real_file_header(real_file: gp.InstrumentFile) -> None:
    assert real_file.start_time == datetime(2018, 10, 12, 11, 4, 34)
    assert ("Date", "10-12-2018") in real_file.settings
    assert real_file.area_cm2 is None
    # "Experiment Type: Sweep Frequency, Control Voltage"
    assert real_file.technique == "PEIS"
    assert len(real_file.dc_record) == 0
    spectrum = real_file.spectra[0]
    assert math.isnan(spectrum.current_mA)
    assert math.isnan(spectrum.potential_V)
    assert math.isnan(spectrum.charge_mAh)


def test_dispatch_through_read_spectra(real_path: Path) -> None:
    assert gp.read_spectra(real_path)[0].n_points == N_POINTS


# --- variants -------------------------------------------------------------------


def test_without_end_comments(
    tmp_path: Path, real_lines: list[str], real_file: gp.InstrumentFile
) -> None:
    start = real_lines.index("End Comments")
    lines = [real_lines[start - 1], *real_lines[start + 1 :]]  # Freq(Hz) header, then rows
    spectrum = read_z(_write(tmp_path, lines)).spectra[0]
    np.testing.assert_array_equal(spectrum.z, real_file.spectra[0].z)
    assert read_z(_write(tmp_path, lines)).start_time is None


def test_comma_space_separated_and_crlf(
    tmp_path: Path, real_lines: list[str], real_file: gp.InstrumentFile
) -> None:
    start = real_lines.index("End Comments") + 1
    lines = real_lines[:start] + [", ".join(line.split("\t")) for line in real_lines[start:]]
    spectrum = read_z(_write(tmp_path, lines, newline="\r\n")).spectra[0]
    np.testing.assert_array_equal(spectrum.freq, real_file.spectra[0].freq)
    np.testing.assert_array_equal(spectrum.z, real_file.spectra[0].z)


def test_decimal_comma(tmp_path: Path, real_lines: list[str], real_file: gp.InstrumentFile) -> None:
    start = real_lines.index("End Comments") + 1
    lines = real_lines[:start] + [line.replace(".", ",") for line in real_lines[start:]]
    spectrum = read_z(_write(tmp_path, lines)).spectra[0]
    np.testing.assert_array_equal(spectrum.z, real_file.spectra[0].z)


def test_two_sweeps_in_one_file(tmp_path: Path, real_lines: list[str]) -> None:
    start = real_lines.index("End Comments") + 1
    lines = real_lines + real_lines[start : start + 10]
    spectra = read_z(_write(tmp_path, lines)).spectra
    assert [spectrum.n_points for spectrum in spectra] == [N_POINTS, 10]
    assert [spectrum.incomplete for spectrum in spectra] == [False, True]
    assert [spectrum.sweep_index for spectrum in spectra] == [0, 1]


# --- bad input ------------------------------------------------------------------

_HEADER = [
    "ZPLOT2 ASCII",  # line 1
    "  Date:                       10-12-2018",
    "  Time:                       11:04:34",
    "  Freq(Hz)\tAmpl\tBias\tTime(Sec)\tZ'(a)\tZ''(b)\tGD\tErr\tRange",
    "End Comments",  # line 5
]
_ROWS = [
    "3.0E+05\t0.01\t0\t1.0\t147.7\t-11.3\t0\t0\t3",  # line 6
    "3.0E+04\t0.01\t0\t2.0\t203.1\t-152.7\t0\t0\t3",  # line 7
    "3.0E+03\t0.01\t0\t3.0\t613.6\t-137.1\t0\t0\t3",  # line 8
]


def test_synthetic_baseline_reads(tmp_path: Path) -> None:
    spectrum = read_z(_write(tmp_path, _HEADER + _ROWS)).spectra[0]
    np.testing.assert_array_equal(spectrum.freq, [3e5, 3e4, 3e3])
    np.testing.assert_array_equal(spectrum.z, [147.7 - 11.3j, 203.1 - 152.7j, 613.6 - 137.1j])


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("3.0E+04\t0.01\t0\t2.0\tabc\t-152.7\t0\t0\t3", "Z'(a)"),  # non-numeric
        ("inf\t0.01\t0\t2.0\t203.1\t-152.7\t0\t0\t3", "Freq(Hz)"),  # inf
        ("0\t0.01\t0\t2.0\t203.1\t-152.7\t0\t0\t3", "Freq(Hz)"),  # frequency 0
        ("-3.0E+04\t0.01\t0\t2.0\t203.1\t-152.7\t0\t0\t3", "Freq(Hz)"),  # negative
        ("3.0E+04\t0.01\t0\t2.0\t203.1", "Z''(b)"),  # truncated row
        ("3.0E+04\t0.01\t0\tinf\t203.1\t-152.7\t0\t0\t3", "Time(Sec)"),
    ],
)
def test_bad_cell(tmp_path: Path, row: str, column: str) -> None:
    with pytest.raises(gp.IngestError) as caught:
        read_z(_write(tmp_path, [*_HEADER, _ROWS[0], row, _ROWS[2]]))
    assert caught.value.line == 7
    assert caught.value.column == column
    assert caught.value.file == str(tmp_path / "cell.z")


def test_non_finite_impedance_names_its_line_in_the_sweep(tmp_path: Path) -> None:
    row = "3.0E+04\t0.01\t0\t2.0\t203.1\tnan\t0\t0\t3"
    (spectrum,) = read_z(_write(tmp_path, [*_HEADER, _ROWS[0], row, _ROWS[2]])).spectra
    assert f"{tmp_path / 'cell.z'}:7" in spectrum.defect
    assert "Z''(b)" in spectrum.defect


def test_no_data_start_marker(tmp_path: Path) -> None:
    with pytest.raises(gp.IngestError, match="End Comments") as caught:
        read_z(_write(tmp_path, _HEADER[:3] + _ROWS))
    assert caught.value.line is None
    assert caught.value.column is None


def test_no_data_rows(tmp_path: Path) -> None:
    with pytest.raises(gp.IngestError, match="no data rows") as caught:
        read_z(_write(tmp_path, [*_HEADER, "", ""]))
    assert caught.value.line == 5
    assert caught.value.column is None


@pytest.mark.parametrize("name", ["exampleDataZPlot.z", "EISGALV_EISTest3.DTA"])
def test_a_last_line_cut_short_is_left_out_not_misread(
    realdata: Path, tmp_path: Path, name: str, caplog
) -> None:
    """Cut after two cells of its Z'' (ZPlot: ``-1.3`` of ``-1.3713E+02``): it was read as -1.3."""
    whole = (realdata / name).read_bytes().rstrip(b"\r\n")
    last_line_start = whole.rfind(b"\n") + 1
    cells = whole[last_line_start:].split(b"\t")
    cut = whole[:last_line_start] + b"\t".join(cells[: len(cells) // 2])
    path = tmp_path / name
    path.write_bytes(cut)
    expected = gp.read_file(realdata / name)
    got = gp.read_file(path)
    assert sum(s.n_points for s in got.spectra) == sum(s.n_points for s in expected.spectra) - 1
    for kept, reference in zip(got.spectra, expected.spectra, strict=True):
        np.testing.assert_array_equal(kept.z, reference.z[: kept.n_points])
    assert "cut short" in caplog.text and name in caplog.text
    # A whole last line without a line end (an export) is kept.
    path.write_bytes(whole)
    assert sum(s.n_points for s in gp.read_file(path).spectra) == sum(
        s.n_points for s in expected.spectra
    )
