"""Gamry Framework data files (.DTA): the ``ZCURVE`` impedance table.

Layout (latin-1, tab-separated): line 1 ``EXPLAIN``, then header lines
``KEY<TAB>TYPE<TAB>VALUE<TAB>description`` (``TAG<TAB>GALVEIS`` has no type),
for example ``DATE LABEL 10/25/2024``, ``TIME LABEL 21:09:58.727375``,
``AREA QUANT 1 Sample Area (cm^2)``, ``IDC QUANT 0.5 DC Current (A)``. Tables
start at a line ``NAME<TAB>TABLE[<TAB>...]``, followed by a column-name line
and a units line (both starting with a tab); their data rows start with a tab,
and a table ends at the first line that does not (another section such as
``OCVCURVE<TAB>TABLE`` or ``EXPERIMENTABORTED``) or at the end of the file.

Conventions: ``Zimag`` is the signed imaginary part (not negated, positive
for inductive points); ``Idc`` is in A, ``Vdc`` in V, ``Time`` in s since the
``DATE``/``TIME`` stamp. Columns are found by name. German-locale files write
decimal commas. A file holds one sweep; ``EXPERIMENTABORTED`` marks it
incomplete.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from pathlib import Path

import numpy as np

from geis_pipeline._arrays import complex_from_parts
from geis_pipeline.errors import IngestError
from geis_pipeline.ingest._header_area import implausible_area
from geis_pipeline.ingest._table import (
    ColumnSpec,
    Table,
    find_column,
    nonfinite_rows,
    parse_table,
    read_text,
    require_finite,
)
from geis_pipeline.ingest.sweeps import spectra_from_rows
from geis_pipeline.spectrum import DCRecord, InstrumentFile

log = logging.getLogger(__name__)

__all__ = ["TECHNIQUES", "read_dta"]

#: Gamry ``TAG`` values -> short technique names (other tags are kept as written).
TECHNIQUES: dict[str, str] = {
    "GALVEIS": "GEIS",
    "EISGALV": "GEIS",
    "EISPOT": "PEIS",
}

_TABLE_NAME = "ZCURVE"
_ABORTED = "EXPERIMENTABORTED"
_FREQ, _ZREAL, _ZIMAG = "Freq", "Zreal", "Zimag"
_TIME, _IDC, _VDC = "Time", "Idc", "Vdc"
# Gamry writes the date in the Windows locale: US month/day first in most files.
_DATE_FORMATS = ("%m/%d/%Y", "%d.%m.%Y", "%Y-%m-%d")
_TIME_FORMATS = ("%H:%M:%S.%f", "%H:%M:%S")
# Idc unit (from the units line) -> factor to mA; Gamry writes A.
_CURRENT_TO_MA = {"A": 1e3, "mA": 1.0, "uA": 1e-3, "µA": 1e-3}


def read_dta(path: Path) -> InstrumentFile:
    """Read the impedance table of a Gamry .DTA file.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    InstrumentFile
        One sweep (freq in Hz, complex Z in ohm, times in s since the
        ``DATE``/``TIME`` stamp, mean ``Idc`` in mA, mean ``Vdc`` in V, charge
        NaN), the ``ZCURVE`` rows as DC record (empty without a ``Time``
        column), start time, area (cm2), DC current setpoint (``IDC``, mA),
        technique and the raw header settings.

    Raises
    ------
    IngestError
        No ``ZCURVE`` table, a missing Freq/Zreal/Zimag column, an empty
        table, a non-numeric or non-finite cell, or a frequency <= 0; the
        message names the line and column.
    """
    lines = read_text(path)
    table_line = _find_table(lines, path)  # 0-based index of the "ZCURVE<TAB>TABLE" line
    settings = _settings(lines[:table_line])
    setting_map = dict(settings)
    table, idc_to_mA = _parse_zcurve(lines, table_line, path)
    columns = table.columns
    n_rows = len(table)
    if n_rows == 0:
        raise IngestError(
            f"the {_TABLE_NAME} table has no data rows", file=path, line=table_line + 1
        )
    require_finite(table, [_FREQ], path)
    # A non-finite Z spoils its sweep only: flagged and skipped downstream.
    defects = nonfinite_rows(table, [_ZREAL, _ZIMAG], path)
    freq = columns[_FREQ]
    not_positive = np.flatnonzero(freq <= 0)
    if not_positive.size:
        row = int(not_positive[0])
        raise table.error(f"frequency must be > 0 Hz, got {freq[row]!r}", path, row, _FREQ)
    # Gamry's Zimag is already the signed imaginary part: no negation.
    z = complex_from_parts(columns[_ZREAL], columns[_ZIMAG])
    nan_column = np.full(n_rows, np.nan)
    if _TIME in columns:
        require_finite(table, [_TIME], path)
        time = columns[_TIME]
    else:
        time = nan_column
    potential = columns.get(_VDC, nan_column)
    with np.errstate(over="ignore"):  # absurd currents become inf, not a warning
        current = columns[_IDC] * idc_to_mA if _IDC in columns else nan_column

    aborted = any(line.split("\t", 1)[0].strip() == _ABORTED for line in lines)
    spectra = spectra_from_rows(
        freq,
        z,
        source=str(path),
        point_time_s=time if _TIME in columns else None,
        current_mA=current,
        potential_V=potential,
        last_incomplete=aborted,
        defects=defects,
    )
    if _TIME in columns:
        dc_record = DCRecord(time, potential, current, nan_column)
    else:
        dc_record = DCRecord.empty()  # DC rows without times cannot be placed in the record
    return InstrumentFile(
        path=str(path),
        format="gamry-dta",
        spectra=spectra,
        dc_record=dc_record,
        start_time=_start_time(setting_map),
        area_cm2=_plausible_area(_positive_number(setting_map.get("AREA")), path),
        current_setpoint_mA=_setpoint_mA(setting_map.get("IDC")),
        technique=_technique(setting_map.get("TAG")),
        settings=settings,
    )


def _find_table(lines: list[str], path: Path) -> int:
    """0-based index of the ``ZCURVE<TAB>TABLE`` line."""
    for index, line in enumerate(lines):
        fields = line.split("\t")
        if fields[0].strip() == _TABLE_NAME and len(fields) > 1 and fields[1].strip() == "TABLE":
            return index
    raise IngestError(
        f"no impedance table (no '{_TABLE_NAME}<TAB>TABLE' line): not an EIS file?", file=path
    )


def _parse_zcurve(lines: list[str], table_line: int, path: Path) -> tuple[Table, float]:
    """Parse the ZCURVE rows; return the table and the Idc -> mA factor."""
    names_index = table_line + 1
    if names_index >= len(lines) or not lines[names_index].startswith("\t"):
        raise IngestError(
            f"the {_TABLE_NAME} table has no column-name line (truncated file?)",
            file=path,
            line=names_index + 1,
        )
    names = lines[names_index].split("\t")
    specs = []
    for name in (_FREQ, _ZREAL, _ZIMAG):
        index = find_column(names, [name])
        if index is None:
            raise IngestError(
                f"the {_TABLE_NAME} table has no {name!r} column",
                file=path,
                line=names_index + 1,
                column=name,
            )
        specs.append(ColumnSpec(index, name))
    for name in (_TIME, _IDC, _VDC):
        index = find_column(names, [name])
        if index is not None:
            specs.append(ColumnSpec(index, name))

    # The data rows: every following line that starts with a tab.
    first_row = names_index + 1
    end = first_row
    while end < len(lines) and lines[end].startswith("\t"):
        end += 1
    units: list[str] = []
    if first_row < end and not _is_number(_cell(lines[first_row], specs[0].index)):
        units = lines[first_row].split("\t")  # the units line (#, s, Hz, ohm, ...)
        first_row += 1
    rows = lines[first_row:end]
    first_data = next((row for row in rows if row.strip()), "")
    table = parse_table(
        rows,
        first_row + 1,
        specs,
        path,
        delimiter="\t",
        decimal_comma="," in first_data,
    )
    idc_to_mA = 1e3
    idc_index = find_column(names, [_IDC])
    if idc_index is not None and idc_index < len(units) and units[idc_index].strip():
        unit = units[idc_index].strip()
        if unit not in _CURRENT_TO_MA:
            raise IngestError(
                f"unknown current unit {unit!r} (expected A)",
                file=path,
                line=names_index + 2,
                column=_IDC,
            )
        idc_to_mA = _CURRENT_TO_MA[unit]
    return table, idc_to_mA


def _cell(line: str, index: int) -> str:
    cells = line.split("\t")
    return cells[index].strip() if index < len(cells) else ""


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "."))
    except ValueError:
        return False
    return True


def _settings(header: list[str]) -> tuple[tuple[str, str], ...]:
    """Header ``KEY -> VALUE`` pairs (``TAG<TAB>VALUE`` has no type field)."""
    settings: list[tuple[str, str]] = []
    for line in header:
        if line.startswith("\t"):
            continue  # rows of an earlier table, or continuation of NOTES
        fields = line.split("\t")
        key = fields[0].strip()
        if not key or len(fields) < 2:
            continue
        if len(fields) == 2:
            settings.append((key, fields[1].strip()))
        elif fields[1].strip() != "TABLE":
            settings.append((key, fields[2].strip()))
    return tuple(settings)


def _header_number(text: str | None) -> float | None:
    """A finite float from a header value (decimal comma allowed), else None."""
    if not text:
        return None
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _plausible_area(area: float | None, path: Path) -> float | None:
    """The AREA (cm²) if it is a cell's; else None, with a warning naming the file."""
    problem = None if area is None else implausible_area(area)
    if problem is not None:
        log.warning(
            "%s: electrode area %s: not used (give the area with --area-cm2)", path, problem
        )
        return None
    return area


def _positive_number(text: str | None) -> float | None:
    value = _header_number(text)
    return value if value is not None and value > 0 else None


def _setpoint_mA(text: str | None) -> float | None:
    """``IDC`` header (A) -> mA."""
    value = _header_number(text)
    return None if value is None else value * 1e3


def _technique(tag: str | None) -> str | None:
    if not tag:
        return None
    return TECHNIQUES.get(tag.upper(), tag)


def _start_time(settings: dict[str, str]) -> datetime | None:
    """Acquisition start from the ``DATE`` and ``TIME`` header labels."""
    date_text = (settings.get("DATE") or "").strip()
    time_text = (settings.get("TIME") or "").strip()
    if not date_text or not time_text:
        return None
    whole, dot, fraction = time_text.partition(".")
    if dot:
        time_text = f"{whole}.{fraction[:6]}"  # %f takes at most 6 digits
    for date_format in _DATE_FORMATS:
        for time_format in _TIME_FORMATS:
            try:
                return datetime.strptime(f"{date_text} {time_text}", f"{date_format} {time_format}")
            except ValueError:
                continue
    return None
