"""EC-Lab .mpt variants (locale, line ends, column order, header-less) and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import geis_pipeline as gp

N_DATA_ROWS = 200  # 29 hold rows + four full sweeps and a part of a fifth


@pytest.fixture(scope="module")
def snippet_lines(realdata: Path) -> list[str]:
    """Header and the first data rows of the real geis.mpt."""
    lines = (realdata / "geis.mpt").read_text(encoding="latin-1").splitlines()
    return lines[: 76 + N_DATA_ROWS]


def _write(tmp_path: Path, lines: list[str], name: str = "cell.mpt", newline: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(newline.join(lines).encode("latin-1") + newline.encode())
    return path


@pytest.fixture
def reference(tmp_path: Path, snippet_lines: list[str]) -> list[gp.Spectrum]:
    return gp.read_spectra(_write(tmp_path, snippet_lines, "reference.mpt"))


def _assert_same(spectra: list[gp.Spectrum], reference: list[gp.Spectrum]) -> None:
    assert len(spectra) == len(reference)
    for spectrum, expected in zip(spectra, reference, strict=True):
        np.testing.assert_array_equal(spectrum.freq, expected.freq)
        np.testing.assert_array_equal(spectrum.z, expected.z)
        assert spectrum.time_s == expected.time_s
        assert spectrum.flags == expected.flags


def test_snippet_sweeps(reference: list[gp.Spectrum]) -> None:
    # 171 impedance rows = 4 full sweeps of 41 and 7 points of a fifth.
    assert [spectrum.n_points for spectrum in reference] == [41, 41, 41, 41, 7]
    assert [spectrum.incomplete for spectrum in reference] == [False] * 4 + [True]


def test_crlf_line_ends(tmp_path: Path, snippet_lines, reference) -> None:
    _assert_same(gp.read_spectra(_write(tmp_path, snippet_lines, newline="\r\n")), reference)


def test_german_decimal_comma(tmp_path: Path, snippet_lines, reference) -> None:
    german = snippet_lines[:76] + [line.replace(".", ",") for line in snippet_lines[76:]]
    german = [line.replace("1.130 cm", "1,130 cm") for line in german]
    path = _write(tmp_path, german, newline="\r\n")
    _assert_same(gp.read_spectra(path), reference)
    assert gp.read_file(path).area_cm2 == pytest.approx(1.13)


def test_columns_found_by_name_not_position(tmp_path: Path, snippet_lines, reference) -> None:
    rows = [line.split("\t") for line in snippet_lines[75:]]
    width = len(rows[0]) - 1  # the trailing tab makes an empty last cell
    order = list(reversed(range(width)))
    shuffled = ["\t".join(row[index] for index in order) for row in rows]
    _assert_same(gp.read_spectra(_write(tmp_path, snippet_lines[:75] + shuffled)), reference)


def test_headerless_export(tmp_path: Path, snippet_lines, reference) -> None:
    lines = ["EC-Lab ASCII FILE", *snippet_lines[75:]]
    _assert_same(gp.read_spectra(_write(tmp_path, lines)), reference)


def _cell_column(snippet_lines: list[str], name: str) -> int:
    return snippet_lines[75].split("\t").index(name)


def _replace_cell(lines: list[str], row: int, column: int, text: str) -> list[str]:
    cells = lines[row].split("\t")
    cells[column] = text
    return [*lines[:row], "\t".join(cells), *lines[row + 1 :]]


@pytest.mark.parametrize("text", ["abc", "1.2.3", ""])
def test_non_numeric_cell_names_line_and_column(tmp_path, snippet_lines, text) -> None:
    row = 76 + 40  # file line 117
    lines = _replace_cell(snippet_lines, row, _cell_column(snippet_lines, "Re(Z)/Ohm"), text)
    with pytest.raises(gp.IngestError) as caught:
        gp.read_spectra(_write(tmp_path, lines))
    assert caught.value.line == row + 1
    assert caught.value.column == "Re(Z)/Ohm"
    assert "cell.mpt:117" in str(caught.value)


@pytest.mark.parametrize("text", ["NaN", "inf", "-Inf"])
def test_non_finite_impedance_spoils_its_sweep_only(tmp_path, snippet_lines, text) -> None:
    row = 76 + 50
    lines = _replace_cell(snippet_lines, row, _cell_column(snippet_lines, "-Im(Z)/Ohm"), text)
    path = _write(tmp_path, lines)
    clean = gp.read_spectra(_write(tmp_path, snippet_lines, name="clean.mpt"))
    spectra = gp.read_spectra(path)
    defective = [spectrum for spectrum in spectra if spectrum.defect]
    assert len(defective) == 1
    assert f"{path}:{row + 1}" in defective[0].defect
    assert "-Im(Z)/Ohm" in defective[0].defect and "non-finite" in defective[0].defect
    # The other sweeps are read exactly as from the unspoilt file.
    others = [spectrum for spectrum in spectra if not spectrum.defect]
    assert len(others) == len(clean) - 1
    kept = [s for s in clean if s.sweep_index != defective[0].sweep_index]
    for read, expected in zip(others, kept, strict=True):
        np.testing.assert_array_equal(read.z, expected.z)


def test_negative_frequency(tmp_path, snippet_lines) -> None:
    row = 76 + 60
    lines = _replace_cell(snippet_lines, row, _cell_column(snippet_lines, "freq/Hz"), "-5.0E+000")
    with pytest.raises(gp.IngestError, match="negative frequency") as caught:
        gp.read_spectra(_write(tmp_path, lines))
    assert (caught.value.line, caught.value.column) == (row + 1, "freq/Hz")


def test_truncated_mid_row(tmp_path, snippet_lines) -> None:
    # A file cut mid-row is still being written: its last line is left for the next run.
    text = "\n".join(snippet_lines)
    path = tmp_path / "cell.mpt"
    whole = gp.read_spectra(_write(tmp_path, snippet_lines))
    path.write_bytes(text[: len(text) - 300].encode("latin-1"))
    cut = gp.read_spectra(path)
    assert sum(s.n_points for s in cut) == sum(s.n_points for s in whole) - 1
    # A short row that ends its line is damage, not a row being written.
    lines = list(snippet_lines)
    lines[-2] = lines[-2].split("\t")[0]
    with pytest.raises(gp.IngestError, match="truncated") as caught:
        gp.read_spectra(_write(tmp_path, [*lines, ""]))
    assert caught.value.line == len(snippet_lines) - 1


def test_header_count_beyond_file(tmp_path, snippet_lines) -> None:
    lines = [snippet_lines[0], "Nb header lines : 9999", *snippet_lines[2:]]
    with pytest.raises(gp.IngestError, match="truncated") as caught:
        gp.read_spectra(_write(tmp_path, lines))
    assert caught.value.line == 2


def test_header_count_not_at_column_header(tmp_path, snippet_lines) -> None:
    lines = [snippet_lines[0], "Nb header lines : 50", *snippet_lines[2:]]
    with pytest.raises(gp.IngestError, match="not the column header") as caught:
        gp.read_spectra(_write(tmp_path, lines))
    assert caught.value.line == 50


def test_missing_impedance_columns(tmp_path, snippet_lines) -> None:
    drop = {
        _cell_column(snippet_lines, name)
        for name in ("Re(Z)/Ohm", "-Im(Z)/Ohm", "|Z|/Ohm", "Phase(Z)/deg")
    }
    lines = snippet_lines[:75] + [
        "\t".join(cell for index, cell in enumerate(line.split("\t")) if index not in drop)
        for line in snippet_lines[75:]
    ]
    with pytest.raises(gp.IngestError, match="neither") as caught:
        gp.read_spectra(_write(tmp_path, lines))
    assert caught.value.column == "Re(Z)/Ohm"


def test_no_impedance_rows(tmp_path, snippet_lines) -> None:
    path = _write(tmp_path, snippet_lines[: 76 + 29])  # only the current-hold rows
    assert len(gp.read_file(path).dc_record) == 29
    with pytest.raises(gp.NoImpedanceDataError):
        gp.read_spectra(path)


def test_binary_garbage_in_text_file(tmp_path, snippet_lines) -> None:
    path = _write(tmp_path, snippet_lines)
    raw = bytearray(path.read_bytes())
    raw[5000:5004] = b"\x00\x00\x02\x03"
    path.write_bytes(bytes(raw))
    with pytest.raises(gp.IngestError, match="binary"):
        gp.read_spectra(path)


def test_unknown_format(tmp_path) -> None:
    path = tmp_path / "notes.xyz"
    path.write_text("hello")
    with pytest.raises(gp.UnknownFormatError, match=r"notes\.xyz"):
        gp.read_spectra(path)
    with pytest.raises(gp.UnknownFormatError, match="choose one of"):
        gp.read_spectra(path, format="nova")


def test_truncated_mpr(tmp_path, realdata) -> None:
    raw = (realdata / "geis.mpr").read_bytes()
    path = tmp_path / "cut.mpr"
    path.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(gp.IngestError, match=r"cut\.mpr"):
        gp.read_spectra(path)


def test_missing_file() -> None:
    with pytest.raises(gp.IngestError, match="cannot open"):
        gp.read_spectra("/nonexistent/cell.mpt")


@pytest.mark.parametrize(
    ("stated", "area_cm2", "warned"),
    [
        ("1.130 cm\xb2", 1.13, None),
        ("113.0 mm\xb2", 1.13, None),  # read as 113 cm2, every per-area value was 100x off
        ("1.130e-4 m2", 1.13, None),
        ("1.130", 1.13, None),  # EC-Lab's unit
        ("1.130 in\xb2", None, "unknown unit"),
        ("1e30 cm\xb2", None, "implausible"),
        ("inf cm\xb2", None, "implausible"),
        ("1e-30 cm\xb2", None, "implausible"),
    ],
)
def test_header_area_unit_is_converted_and_implausible_areas_are_not_used(
    tmp_path: Path, snippet_lines, stated: str, area_cm2: float | None, warned: str | None, caplog
) -> None:
    assert any("Electrode surface area : 1.130 cm\xb2" in line for line in snippet_lines)
    lines = [line.replace("1.130 cm\xb2", stated) for line in snippet_lines]
    path = _write(tmp_path, lines)
    area = gp.read_file(path).area_cm2
    if area_cm2 is None:
        assert area is None
        assert warned in caplog.text and path.name in caplog.text and "--area-cm2" in caplog.text
    else:
        assert area == pytest.approx(area_cm2)
        assert "area" not in caplog.text


def test_impedance_columns_without_a_frequency_column_are_an_error(
    tmp_path: Path, snippet_lines
) -> None:
    """freq/kHz in the header: the file read as DC rows alone, its sweeps gone, "skipped 0"."""
    lines = [line.replace("freq/Hz", "freq/kHz") for line in snippet_lines]
    assert lines != snippet_lines
    with pytest.raises(gp.IngestError, match=r"no 'freq/Hz' column") as raised:
        gp.read_file(_write(tmp_path, lines))
    assert "cell.mpt" in str(raised.value) and "Re(Z)/Ohm" in str(raised.value)


def test_a_column_the_reader_uses_appearing_twice_is_an_error(
    tmp_path: Path, snippet_lines
) -> None:
    """Re(Z)/Ohm renamed |Z|/Ohm: the Re data were read as |Z|, fits 8 % off and ok."""
    header = next(i for i, line in enumerate(snippet_lines) if line.startswith("freq/Hz"))
    lines = list(snippet_lines)
    lines[header] = lines[header].replace("Re(Z)/Ohm", "|Z|/Ohm")
    assert lines[header].count("|Z|/Ohm") == 2
    with pytest.raises(gp.IngestError, match=r"appears twice") as raised:
        gp.read_file(_write(tmp_path, lines))
    assert "cell.mpt" in str(raised.value)
