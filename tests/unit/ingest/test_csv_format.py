"""CSV convention: write/read round trip, accepted variants and bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import geis_pipeline as gp
from geis_pipeline.ingest.csv_format import WRITE_HEADER, read_csv, write_csv

# --- round trip -----------------------------------------------------------------

_finite = st.floats(allow_nan=False, allow_infinity=False)
_positive = st.floats(min_value=0.0, exclude_min=True, allow_infinity=False)


@st.composite
def _spectra(draw) -> list[gp.Spectrum]:
    """1-3 sweeps, each with strictly descending positive frequencies and finite Z and times."""
    spectra = []
    for sweep_index in range(draw(st.integers(1, 3))):
        freq = sorted(draw(st.lists(_positive, min_size=1, max_size=12, unique=True)), reverse=True)
        n_points = len(freq)
        real = draw(st.lists(_finite, min_size=n_points, max_size=n_points))
        imag = draw(st.lists(_finite, min_size=n_points, max_size=n_points))
        times = draw(st.lists(_finite, min_size=n_points, max_size=n_points))
        spectra.append(
            gp.Spectrum(
                freq=np.array(freq),
                z=np.array(real) + 1j * np.array(imag),
                time_s=times[0],
                point_time_s=np.array(times),
                sweep_index=sweep_index,
            )
        )
    return spectra


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spectra=_spectra())
def test_write_read_round_trip_is_exact(tmp_path: Path, spectra: list[gp.Spectrum]) -> None:
    path = tmp_path / "round_trip.csv"
    write_csv(path, spectra)
    back = read_csv(path).spectra
    assert len(back) == len(spectra)
    longest = max(spectrum.n_points for spectrum in spectra)
    for read, written in zip(back, spectra, strict=True):
        np.testing.assert_array_equal(read.freq, written.freq)
        # Part by part, sign of zero included (== treats -0.0 and 0.0 as equal).
        for read_part, written_part in (
            (read.z.real, written.z.real),
            (read.z.imag, written.z.imag),
        ):
            np.testing.assert_array_equal(read_part, written_part)
            np.testing.assert_array_equal(np.signbit(read_part), np.signbit(written_part))
        np.testing.assert_array_equal(read.point_time_s, written.point_time_s)
        assert read.time_s == written.time_s
        assert read.sweep_index == written.sweep_index
        assert read.incomplete == (written.n_points < longest)


def test_written_header_and_exact_floats(tmp_path: Path) -> None:
    spectrum = gp.Spectrum(
        freq=np.array([1e5, 0.1]),
        z=np.array([0.1 + 0.2j, 1 / 3 - 1e-300j]),
        time_s=0.5,
        point_time_s=np.array([0.5, 1.5]),
    )
    path = tmp_path / "out.csv"
    write_csv(path, [spectrum])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(WRITE_HEADER) == "sweep,freq/Hz,Re(Z)/Ohm,Im(Z)/Ohm,time/s"
    assert lines[1:] == ["0,100000.0,0.1,0.2,0.5", "0,0.1,0.3333333333333333,-1e-300,1.5"]


def test_write_without_point_times_omits_time_column(tmp_path: Path) -> None:
    spectrum = gp.Spectrum(
        freq=np.array([10.0, 1.0]),
        z=np.array([1 - 1j, 2 - 2j]),
        time_s=0.0,
        point_time_s=np.full(2, np.nan),
    )
    path = tmp_path / "out.csv"
    write_csv(path, [spectrum])
    assert path.read_text(encoding="utf-8").splitlines()[0] == "sweep,freq/Hz,Re(Z)/Ohm,Im(Z)/Ohm"
    back = read_csv(path).spectra[0]
    np.testing.assert_array_equal(back.z, spectrum.z)
    assert back.time_s == 0.0
    assert np.all(np.isnan(back.point_time_s))


def test_write_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no spectra"):
        write_csv(tmp_path / "out.csv", [])


# --- variants: same numbers in every accepted spelling ------------------------------

FREQ = np.array([100000.0, 1000.0, 10.0, 0.1])
Z = np.array([20.5 - 0.25j, 35.125 - 12.5j, 80.0 - 30.75j, 150.5 - 5.0j])
TIME = np.array([0.0, 1.5, 3.0, 12.25])


def _write(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "cell.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _reference_rows(delimiter: str = ",", decimal: str = ".") -> list[str]:
    rows = []
    for freq, z, time in zip(FREQ, Z, TIME, strict=True):
        cells = [repr(float(value)) for value in (freq, z.real, z.imag, time)]
        rows.append(delimiter.join(cell.replace(".", decimal) for cell in cells))
    return rows


def _cells(*values: float) -> str:
    """Comma-joined exact (repr) Python floats."""
    return ",".join(repr(float(value)) for value in values)


def _assert_reference(path: Path, *, with_time: bool = True) -> None:
    spectra = read_csv(path).spectra
    assert len(spectra) == 1
    spectrum = spectra[0]
    np.testing.assert_allclose(spectrum.freq, FREQ, rtol=1e-14)
    np.testing.assert_allclose(spectrum.z.real, Z.real, rtol=1e-14)
    np.testing.assert_allclose(spectrum.z.imag, Z.imag, rtol=1e-14)
    if with_time:
        np.testing.assert_allclose(spectrum.point_time_s, TIME, rtol=1e-14)
        assert spectrum.time_s == TIME[0]


def test_plain_comma_file(tmp_path: Path) -> None:
    text = "freq/Hz,Re(Z)/Ohm,Im(Z)/Ohm,time/s\n" + "\n".join(_reference_rows()) + "\n"
    _assert_reference(_write(tmp_path, text))


def test_semicolon_with_decimal_comma(tmp_path: Path) -> None:
    rows = _reference_rows(";", ",")
    assert "," in rows[0]  # the variant really uses decimal commas
    _assert_reference(_write(tmp_path, "freq/Hz;Re(Z)/Ohm;Im(Z)/Ohm;time/s\n" + "\n".join(rows)))


def test_quoted_header_names(tmp_path: Path) -> None:
    text = '"freq/Hz","Re(Z)/Ohm","Im(Z)/Ohm","time/s"\n' + "\n".join(_reference_rows())
    _assert_reference(_write(tmp_path, text))


def test_tab_delimiter(tmp_path: Path) -> None:
    text = "Frequency (Hz)\tZ' (Ohm)\tZ'' (Ohm)\tTime (s)\n" + "\n".join(_reference_rows("\t"))
    _assert_reference(_write(tmp_path, text))


def test_tab_delimiter_with_decimal_comma(tmp_path: Path) -> None:
    text = "f\tzreal\tzimag\tt\n" + "\n".join(_reference_rows("\t", ","))
    _assert_reference(_write(tmp_path, text))


def test_minus_im_convention(tmp_path: Path) -> None:
    rows = [_cells(freq, z.real, -z.imag) for freq, z in zip(FREQ, Z, strict=True)]
    for header in ("freq/Hz,Re(Z)/Ohm,-Im(Z)/Ohm", "f,z',-z''", "FREQ,RE,-IM"):
        _assert_reference(_write(tmp_path, header + "\n" + "\n".join(rows)), with_time=False)


def test_kilo_ohm_units(tmp_path: Path) -> None:
    rows = [_cells(freq, z.real / 1e3, z.imag / 1e3) for freq, z in zip(FREQ, Z, strict=True)]
    for header in ("freq/Hz,Re(Z)/kOhm,Im(Z)/kOhm", "freq,re (kOhm),im [kΩ]"):
        _assert_reference(_write(tmp_path, header + "\n" + "\n".join(rows)), with_time=False)


def test_milli_and_mega_ohm_units(tmp_path: Path) -> None:
    rows = [_cells(freq, z.real * 1e3, z.imag / 1e6) for freq, z in zip(FREQ, Z, strict=True)]
    text = "freq/Hz,Re(Z)/mOhm,Im(Z)/MOhm\n" + "\n".join(rows)
    _assert_reference(_write(tmp_path, text), with_time=False)


def test_kilo_hertz_and_minutes(tmp_path: Path) -> None:
    rows = [
        _cells(freq / 1e3, z.real, z.imag, time / 60)
        for freq, z, time in zip(FREQ, Z, TIME, strict=True)
    ]
    _assert_reference(_write(tmp_path, "freq/kHz,zre,zim,time/min\n" + "\n".join(rows)))


@pytest.mark.parametrize(("unit", "scale"), [("MHz", 1e6), ("mHz", 1e-3), ("khz", 1e3)])
def test_frequency_prefix_case(tmp_path: Path, unit: str, scale: float) -> None:
    text = f"freq/{unit},re,im\n2,1,-1\n1,1,-1\n"
    np.testing.assert_allclose(read_csv(_write(tmp_path, text)).spectra[0].freq, [2 * scale, scale])


def test_bom_comments_blank_lines_and_extra_columns(tmp_path: Path) -> None:
    rows = _reference_rows()
    text = (
        "# exported by hand\n\n  # another comment\n"
        "freq/Hz,|Z|/Ohm,Re(Z)/Ohm,Im(Z)/Ohm,time/s,phase/deg\n"
        + "\n".join(
            f"{row.split(',')[0]},99,{','.join(row.split(',')[1:])},-1.0" for row in rows[:2]
        )
        + "\n# pause\n\n"
        + "\n".join(
            f"{row.split(',')[0]},99,{','.join(row.split(',')[1:])},-1.0" for row in rows[2:]
        )
        + "\n"
    )
    _assert_reference(_write(tmp_path, text, encoding="utf-8-sig"))


def test_without_time_column(tmp_path: Path) -> None:
    text = "freq,re,im\n" + "\n".join(row.rsplit(",", 1)[0] for row in _reference_rows())
    spectrum = read_csv(_write(tmp_path, text)).spectra[0]
    assert spectrum.time_s == 0.0
    assert np.all(np.isnan(spectrum.point_time_s))


def test_metadata_is_absent(tmp_path: Path) -> None:
    text = "freq/Hz,Re(Z)/Ohm,Im(Z)/Ohm,time/s\n" + "\n".join(_reference_rows())
    instrument_file = read_csv(_write(tmp_path, text))
    assert instrument_file.format == "csv"
    assert instrument_file.start_time is None
    assert instrument_file.area_cm2 is None
    assert instrument_file.technique is None
    assert len(instrument_file.dc_record) == 0
    spectrum = instrument_file.spectra[0]
    assert math.isnan(spectrum.current_mA)
    assert math.isnan(spectrum.potential_V)
    assert math.isnan(spectrum.charge_mAh)


def test_sweep_column_splits_where_it_changes(tmp_path: Path) -> None:
    # Frequencies keep falling across the boundary: only the sweep id splits them.
    text = "sweep,freq,re,im\n0,1000,1,-1\n0,100,2,-2\n1,10,3,-3\n1,1,4,-4\n1,0.1,5,-5\n"
    spectra = read_csv(_write(tmp_path, text)).spectra
    assert [list(spectrum.freq) for spectrum in spectra] == [[1000, 100], [10, 1, 0.1]]
    assert [spectrum.incomplete for spectrum in spectra] == [True, False]
    assert [spectrum.sweep_index for spectrum in spectra] == [0, 1]


def test_frequency_jump_splits_without_sweep_column(tmp_path: Path) -> None:
    text = "freq,re,im,time\n1000,1,-1,0\n100,2,-2,1\n10,3,-3,2\n1000,1,-1,3\n100,2,-2,4\n"
    spectra = read_csv(_write(tmp_path, text)).spectra
    assert [spectrum.n_points for spectrum in spectra] == [3, 2]
    assert [spectrum.time_s for spectrum in spectra] == [0.0, 3.0]
    assert [spectrum.incomplete for spectrum in spectra] == [False, True]


def test_dispatch_through_read_spectra(tmp_path: Path) -> None:
    path = _write(tmp_path, "freq,re,im\n10,1,-1\n1,2,-2\n")
    assert gp.read_spectra(path)[0].n_points == 2


# --- bad input: IngestError naming line and column -------------------------------


def _error(tmp_path: Path, text: str) -> gp.IngestError:
    path = _write(tmp_path, text)
    with pytest.raises(gp.IngestError) as caught:
        read_csv(path)
    assert caught.value.file == str(path)
    return caught.value


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("100,abc,-2", "Re(Z)/Ohm"),  # non-numeric
        ("100,,-2", "Re(Z)/Ohm"),  # empty cell
        ("inf,2,-2", "freq/Hz"),  # inf
        ("0,2,-2", "freq/Hz"),  # frequency 0
        ("-100,2,-2", "freq/Hz"),  # negative frequency
        ("100,2", "Im(Z)/Ohm"),  # short row
    ],
)
def test_bad_cell(tmp_path: Path, row: str, column: str) -> None:
    error = _error(tmp_path, f"# comment\nfreq/Hz,Re(Z)/Ohm,Im(Z)/Ohm\n1000,1,-1\n{row}\n10,3,-3\n")
    assert (error.line, error.column) == (4, column)


@pytest.mark.parametrize("cell", ["nan", "inf", "-inf"])
def test_non_finite_impedance_spoils_its_sweep_only(tmp_path: Path, cell: str) -> None:
    text = f"sweep,freq/Hz,Re(Z)/Ohm,Im(Z)/Ohm\n0,100,1,-1\n0,10,2,{cell}\n1,100,1,-1\n1,10,2,-2\n"
    path = _write(tmp_path, text)
    spectra = read_csv(path).spectra
    assert [bool(spectrum.defect) for spectrum in spectra] == [True, False]
    assert f"{path}:3" in spectra[0].defect
    assert "Im(Z)/Ohm" in spectra[0].defect
    np.testing.assert_array_equal(spectra[1].z, [1 - 1j, 2 - 2j])


def test_overflow_after_unit_conversion(tmp_path: Path) -> None:
    error = _error(tmp_path, "freq,re/MOhm,im\n10,1e305,-1\n")
    assert (error.line, error.column) == (2, "re/MOhm")


def test_non_integer_sweep_id(tmp_path: Path) -> None:
    error = _error(tmp_path, "sweep,freq,re,im\n0,10,1,-1\n0.5,1,2,-2\n")
    assert (error.line, error.column) == (3, "sweep")


def test_non_finite_time(tmp_path: Path) -> None:
    error = _error(tmp_path, "freq,re,im,time/s\n10,1,-1,0\n1,2,-2,nan\n")
    assert (error.line, error.column) == (3, "time/s")


@pytest.mark.parametrize(
    ("header", "column", "accepted"),
    [
        ("frequency,re,phase", "im", "zimag"),
        ("freq/Hz,real,Im(Z)/Ohm", "re", "zreal"),
        ("omega,re,im", "freq", "frequency"),
    ],
)
def test_missing_required_column(tmp_path: Path, header: str, column: str, accepted: str) -> None:
    error = _error(tmp_path, f"{header}\n10,1,-1\n")
    assert (error.line, error.column) == (1, column)
    assert accepted in error.message  # the message lists the accepted names


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("freq/Hz,Re(Z)/furlong,Im(Z)/Ohm", "Re(Z)/furlong"),
        ("freq/rad,re,im", "freq/rad"),
        ("freq/mhz,re,im", "freq/mhz"),  # ambiguous: mHz or MHz?
        ("freq,re (mohm),im", "re (mohm)"),  # ambiguous: mOhm or MOhm?
        ("freq,re,-im/V", "-im/V"),
        ("freq,re,im,time/days", "time/days"),
    ],
)
def test_unknown_unit(tmp_path: Path, header: str, column: str) -> None:
    error = _error(tmp_path, f"{header}\n10,1,-1,0\n")
    assert (error.line, error.column) == (1, column)
    assert "unit" in error.message


def test_two_columns_for_one_quantity(tmp_path: Path) -> None:
    error = _error(tmp_path, "freq,im,re,-Im(Z)/Ohm\n10,1,-1,1\n")
    assert (error.line, error.column) == (1, "-Im(Z)/Ohm")


def test_minus_only_on_imaginary_part(tmp_path: Path) -> None:
    error = _error(tmp_path, "freq,-re,im\n10,1,-1\n")
    assert (error.line, error.column) == (1, "-re")


def test_header_missing(tmp_path: Path) -> None:
    error = _error(tmp_path, "# no header below\n1000,1,-1\n100,2,-2\n")
    assert (error.line, error.column) == (2, None)
    assert "header" in error.message


@pytest.mark.parametrize("text", ["", "# only a comment\n\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    error = _error(tmp_path, text)
    assert (error.line, error.column) == (None, None)


def test_no_data_rows(tmp_path: Path) -> None:
    error = _error(tmp_path, "# comment\nfreq,re,im\n# nothing measured\n\n")
    assert (error.line, error.column) == (2, None)
    assert "no data rows" in error.message


def test_no_delimiter_in_header(tmp_path: Path) -> None:
    error = _error(tmp_path, "frequency\n10\n")
    assert (error.line, error.column) == (1, None)
