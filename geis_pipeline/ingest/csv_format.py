"""Plain CSV impedance files: the convention geis-pipeline reads and writes.

File layout
-----------
* Encoding UTF-8; a byte-order mark is allowed.
* Lines whose first non-blank character is ``#`` are comments and are skipped
  wherever they are; blank lines are skipped too.
* The first line that is not a comment is the header: one name per column
  (names may be enclosed in double quotes; data cells may not).
* The delimiter is detected from the header line: tab, ``;`` or ``,``
  (whichever occurs most often in it).
* Numbers use a decimal point. With ``;`` or tab as delimiter a decimal comma
  is accepted as well (``0,125``). Cells must all be numbers: ``nan`` and
  ``inf`` are rejected in every column the reader uses.

Columns
-------
Matched case-insensitively by name; the order does not matter and other
columns (``|Z|``, phase, ...) are ignored. A name may carry a unit, written
``name/unit``, ``name (unit)`` or ``name [unit]``: ``freq/Hz``,
``Re(Z) (kOhm)``.

========== ================================================ =====================
column     accepted names                                   units (default first)
========== ================================================ =====================
frequency  ``freq``, ``frequency``, ``f``                   Hz, kHz, MHz, mHz
real part  ``re``, ``zreal``, ``z'``, ``re(z)``, ``zre``     Ohm, mOhm, kOhm, MOhm
imaginary  ``im``, ``zimag``, ``z''``, ``z"``, ``im(z)``,     Ohm, mOhm, kOhm, MOhm
           ``zim``
time       ``time``, ``t`` (optional)                       s, ms, min, h
sweep      ``sweep`` (optional)                             none
========== ================================================ =====================

* Frequency, real part and imaginary part are required.
* The imaginary column holds the **signed true imaginary part** Z'' of
  Z = Z' + jZ'' (negative for capacitive arcs). The same names with a leading
  ``-`` (``-im``, ``-z''``, ``-Im(Z)/Ohm``, as EC-Lab writes it) mean the column
  holds -Z''; the reader negates it back.
* ``Ohm`` may also be written ``Ω`` (``kΩ`` ...). Unit prefixes are
  case-sensitive where case matters: ``mHz``/``MHz`` and ``mOhm``/``MOhm``;
  an all-lowercase ``mhz`` or ``mohm`` is refused as ambiguous.
* A unit that is not in the table is an error naming the column, so that a
  file in unexpected units is never read with the wrong scale.
* ``time`` is the time of each point, s since the start of the measurement
  (all finite). Without a time column every sweep has ``time_s = 0.0`` and
  NaN point times.
* ``sweep`` is an integer sweep id; a new sweep starts where it changes.

Sweeps
------
Rows are split into sweeps where the ``sweep`` id changes and, in addition,
by the usual rule (DOMAIN.md): a new sweep starts where the frequency steps
against the sweep direction (e.g. jumps back up in a high-to-low sweep).
Sweeps shorter than the longest one of the file are flagged incomplete.

Not in the file format: start time, electrode area, technique, DC current,
potential and charge (read as None or NaN).

Writing
-------
:func:`write_csv` writes ``sweep,freq/Hz,Re(Z)/Ohm,Im(Z)/Ohm,time/s`` with
floats written exactly (``repr``), so that :func:`read_csv` gives back the
same numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geis_pipeline._arrays import complex_from_parts
from geis_pipeline.errors import IngestError
from geis_pipeline.ingest._table import (
    ColumnSpec,
    Table,
    nonfinite_rows,
    parse_table,
    read_text,
    require_finite,
)
from geis_pipeline.ingest.sweeps import spectra_from_rows
from geis_pipeline.spectrum import InstrumentFile, Spectrum

__all__ = ["COLUMN_NAMES", "WRITE_HEADER", "read_csv", "write_csv"]

#: Role -> accepted column names (lowercase, without unit).
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "freq": ("freq", "frequency", "f"),
    "re": ("re", "zreal", "z'", "re(z)", "zre"),
    "im": ("im", "zimag", "z''", 'z"', "im(z)", "zim"),
    "time": ("time", "t"),
    "sweep": ("sweep",),
}

#: The header :func:`write_csv` writes.
WRITE_HEADER = ("sweep", "freq/Hz", "Re(Z)/Ohm", "Im(Z)/Ohm", "time/s")

_REQUIRED = ("freq", "re", "im")
_DESCRIPTIONS = {
    "freq": "frequency",
    "re": "real-part",
    "im": "imaginary-part",
    "time": "time",
    "sweep": "sweep",
}
_OHM_UNITS = {"Ohm": 1.0, "mOhm": 1e-3, "kOhm": 1e3, "MOhm": 1e6}
_OHM_UNITS |= {unit.replace("Ohm", "Ω"): scale for unit, scale in _OHM_UNITS.items()}
# Unit -> factor to the internal unit (Hz, ohm, s), exact case first.
_UNITS: dict[str, dict[str, float]] = {
    "freq": {"Hz": 1.0, "kHz": 1e3, "MHz": 1e6, "mHz": 1e-3},
    "re": _OHM_UNITS,
    "im": _OHM_UNITS,
    "time": {"s": 1.0, "ms": 1e-3, "min": 60.0, "h": 3600.0},
    "sweep": {},
}
_DELIMITERS = ("\t", ";", ",")
_DELIMITER_NAMES = {"\t": "tab", ";": "';'", ",": "','"}
_ROLE_OF_NAME = {name: role for role, names in COLUMN_NAMES.items() for name in names}
# "name (unit)" or "name [unit]" at the end of a header cell.
_BRACKET_UNIT = re.compile(r"(?P<name>.*?)\s*[(\[](?P<unit>[^()\[\]]*)[)\]]")


@dataclass(frozen=True)
class _Column:
    """A recognised column: where it is, what it is called, how to convert it."""

    index: int
    name: str  # as written in the header, for error messages
    scale: float  # factor to Hz, ohm or s
    negate: bool  # the column holds -Im(Z)


def read_csv(path: Path) -> InstrumentFile:
    """Read a CSV impedance file written in the convention of this module.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    InstrumentFile
        Its sweeps (freq in Hz, complex Z in ohm, times in s, or time_s 0.0
        and NaN point times without a time column). No start time, area,
        technique or DC record.

    Raises
    ------
    IngestError
        No header, undetectable delimiter, a missing required column (the
        message lists the accepted names), an unknown unit, no data rows, a
        short row, a non-numeric or non-finite cell, a frequency <= 0 or a
        non-integer sweep id; the message names the line and column.
    """
    path = Path(path)
    lines = read_text(path, encoding="utf-8-sig")
    header_index = next(
        (index for index, line in enumerate(lines) if line.strip() and not _is_comment(line)),
        None,
    )
    if header_index is None:
        raise IngestError("no header line: the file is empty or holds only comments", file=path)
    header_line_number = header_index + 1
    header = lines[header_index]
    delimiter = _detect_delimiter(header, path, header_line_number)
    columns = _match_columns(header.split(delimiter), path, header_line_number)

    # Comments among the data become blank lines, which parse_table skips:
    # line numbers stay those of the file.
    rows = ["" if _is_comment(line) else line for line in lines[header_index + 1 :]]
    decimal_comma = delimiter != "," and any("," in row for row in rows)
    table = parse_table(
        rows,
        header_line_number + 1,
        [ColumnSpec(column.index, role, column.name) for role, column in columns.items()],
        path,
        delimiter=delimiter,
        decimal_comma=decimal_comma,
    )
    if len(table) == 0:
        raise IngestError("no data rows after the header", file=path, line=header_line_number)
    labels = {role: column.name for role, column in columns.items()}
    impedance = [role for role in ("re", "im") if role in columns]
    require_finite(
        table, [role for role in columns if role not in impedance], path, column_names=labels
    )
    # A non-finite Z spoils its sweep only: flagged and skipped downstream.
    defects = nonfinite_rows(table, impedance, path, column_names=labels)
    values = _convert(table, columns, path)

    freq = values["freq"]
    not_positive = np.flatnonzero(freq <= 0)
    if not_positive.size:
        row = int(not_positive[0])
        raise table.error(
            f"frequency must be > 0 Hz, got {freq[row]!r}", path, row, columns["freq"].name
        )
    z = complex_from_parts(values["re"], values["im"])
    sweep_ids = values.get("sweep")
    if sweep_ids is not None:
        fractional = np.flatnonzero(sweep_ids != np.round(sweep_ids))
        if fractional.size:
            row = int(fractional[0])
            raise table.error(
                f"sweep id must be a whole number, got {sweep_ids[row]!r}",
                path,
                row,
                columns["sweep"].name,
            )
    time = values.get("time")
    spectra = spectra_from_rows(
        freq, z, source=str(path), point_time_s=time, step=sweep_ids, defects=defects
    )
    return InstrumentFile(path=str(path), format="csv", spectra=spectra)


def write_csv(path: Path, spectra: Sequence[Spectrum]) -> None:
    """Write spectra as CSV in the convention of this module.

    Columns ``sweep,freq/Hz,Re(Z)/Ohm,Im(Z)/Ohm,time/s``; ``sweep`` numbers
    the spectra 0, 1, ... in the order given; floats are written with
    ``repr`` so they read back bit-for-bit. The ``time/s`` column is left out
    when any spectrum lacks point times (NaN), since the reader requires
    finite times; reading such a file back gives ``time_s`` 0.0.

    Parameters
    ----------
    path
        The file to write (UTF-8, LF line ends, no byte-order mark).
    spectra
        The sweeps, each with frequencies in Hz and Z in ohm.

    Raises
    ------
    ValueError
        ``spectra`` is empty (the file could not be read back).
    """
    if not spectra:
        raise ValueError("no spectra to write")
    with_time = all(np.all(np.isfinite(spectrum.point_time_s)) for spectrum in spectra)
    header = WRITE_HEADER if with_time else WRITE_HEADER[:-1]
    out_lines = [",".join(header)]
    for sweep_id, spectrum in enumerate(spectra):
        for freq, z, point_time in zip(
            spectrum.freq.tolist(), spectrum.z.tolist(), spectrum.point_time_s.tolist(), strict=True
        ):
            cells = [str(sweep_id), repr(freq), repr(z.real), repr(z.imag)]
            if with_time:
                cells.append(repr(point_time))
            out_lines.append(",".join(cells))
    Path(path).write_bytes(("\n".join(out_lines) + "\n").encode("utf-8"))


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _detect_delimiter(header: str, path: Path, line_number: int) -> str:
    """The most frequent of tab, ``;``, ``,`` in the header line (ties: that order)."""
    counts = {delimiter: header.count(delimiter) for delimiter in _DELIMITERS}
    delimiter = max(_DELIMITERS, key=lambda candidate: counts[candidate])
    if counts[delimiter] == 0:
        raise IngestError(
            "cannot tell the delimiter: the header line has no tab, ';' or ','",
            file=path,
            line=line_number,
        )
    return delimiter


def _header_name(cell: str) -> str:
    """A header cell without surrounding blanks and the double quotes spreadsheets add."""
    text = cell.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    return text


def _split_name(cell: str) -> tuple[bool, str, str | None]:
    """Header cell -> (leading minus, lowercase name, unit or None)."""
    text = _header_name(cell)
    negated = text[:1] in ("-", "\N{MINUS SIGN}")
    if negated:
        text = text[1:].strip()
    # Whole-name match first: "Re(Z)" is a name, not "re" in unit "Z".
    if text.lower() in _ROLE_OF_NAME:
        return negated, text.lower(), None
    if "/" in text:
        name, _, unit = text.rpartition("/")
        return negated, name.strip().lower(), unit.strip()
    match = _BRACKET_UNIT.fullmatch(text)
    if match:
        return negated, match["name"].strip().lower(), match["unit"].strip()
    return negated, text.lower(), None


def _unit_scale(role: str, unit: str) -> float | None:
    """Factor from ``unit`` to Hz/ohm/s; None if unknown or ambiguous."""
    units = _UNITS[role]
    if unit in units:
        return units[unit]
    # Case-insensitive only where that is unambiguous ("khz" yes, "mhz" no).
    matches = {scale for known, scale in units.items() if known.lower() == unit.lower()}
    return matches.pop() if len(matches) == 1 else None


def _match_columns(cells: list[str], path: Path, line_number: int) -> dict[str, _Column]:
    """Find the role columns in the header cells; raise on missing, doubled or bad units."""
    found: dict[str, _Column] = {}
    for index, cell in enumerate(cells):
        negated, name, unit = _split_name(cell)
        role = _ROLE_OF_NAME.get(name)
        if role is None:
            continue  # a column the reader does not use
        column_name = _header_name(cell)
        if negated and role != "im":
            raise IngestError(
                "a leading '-' is only allowed on the imaginary-part column",
                file=path,
                line=line_number,
                column=column_name,
            )
        scale = 1.0
        if unit is not None:
            known = _unit_scale(role, unit)
            if known is None:
                accepted = ", ".join(_UNITS[role]) or "none"
                raise IngestError(
                    f"unknown or ambiguous unit {unit!r} for the {_DESCRIPTIONS[role]} column "
                    f"(accepted: {accepted})",
                    file=path,
                    line=line_number,
                    column=column_name,
                )
            scale = known
        if role in found:
            raise IngestError(
                f"two {_DESCRIPTIONS[role]} columns: {found[role].name!r} and {column_name!r}",
                file=path,
                line=line_number,
                column=column_name,
            )
        found[role] = _Column(index, column_name, scale, negated)
    for role in _REQUIRED:
        if role in found:
            continue
        if all(_is_number(cell) for cell in cells if cell.strip()):
            raise IngestError(
                "no header line: the first non-comment line holds numbers, it must name "
                "the columns (e.g. freq/Hz,Re(Z)/Ohm,Im(Z)/Ohm)",
                file=path,
                line=line_number,
            )
        names = ", ".join(COLUMN_NAMES[role])
        minus = " (or with a leading '-' for -Im)" if role == "im" else ""
        raise IngestError(
            f"no {_DESCRIPTIONS[role]} column; accepted names: {names}{minus}, "
            f"optionally with a unit ({', '.join(_UNITS[role])})",
            file=path,
            line=line_number,
            column=COLUMN_NAMES[role][0],
        )
    return found


def _is_number(text: str) -> bool:
    try:
        float(text.strip().replace(",", "."))
    except ValueError:
        return False
    return True


def _convert(table: Table, columns: Mapping[str, _Column], path: Path) -> dict[str, np.ndarray]:
    """Role -> values in Hz, ohm, s (imaginary part signed); raise if scaling overflows."""
    values: dict[str, np.ndarray] = {}
    for role, column in columns.items():
        converted = table.columns[role]
        if column.scale != 1.0:
            with np.errstate(over="ignore"):  # checked just below
                converted = converted * column.scale
            overflow = np.flatnonzero(~np.isfinite(converted) & np.isfinite(table.columns[role]))
            if overflow.size:
                raise table.error(
                    "value out of float range after unit conversion",
                    path,
                    int(overflow[0]),
                    column.name,
                )
        values[role] = -converted if column.negate else converted
    return values
