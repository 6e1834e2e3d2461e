"""Scribner ZPlot data files (.z).

Layout (ASCII): line 1 ``ZPLOT2 ASCII``, a ``Key: value`` header (``Date:``
``10-12-2018`` month first, ``Time:`` ``11:04:34``, sweep settings), the
column-name line ``Freq(Hz)<TAB>Ampl<TAB>Bias<TAB>Time(Sec)<TAB>Z'(a)<TAB>Z''(b)...``,
the line ``End Comments``, then one row per point. Files without ``End
Comments`` have their rows right after the ``Freq(Hz)`` line.

Columns are taken by position, as ZPlot writes them (and as impedance.py's
``readZPlot`` does): 0 = frequency (Hz), 3 = time (s since ``Date``/``Time``),
4 = Z' (ohm), 5 = Z'' (ohm, the signed imaginary part: negative for
capacitive arcs). Cells are separated by tabs or spaces; older exports
separate them by ``", "`` (comma and space), which is also read.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from geis_pipeline._arrays import complex_from_parts
from geis_pipeline.errors import IngestError
from geis_pipeline.ingest._table import (
    ColumnSpec,
    nonfinite_rows,
    parse_table,
    read_text,
    require_finite,
)
from geis_pipeline.ingest.sweeps import spectra_from_rows
from geis_pipeline.spectrum import InstrumentFile

__all__ = ["read_z"]

_END_COMMENTS = "End Comments"
_FREQ_HEADER = "Freq(Hz)"
# Column positions and the names ZPlot gives them (used in error messages).
_FREQ = ColumnSpec(0, "Freq(Hz)")
_TIME = ColumnSpec(3, "Time(Sec)")
_ZREAL = ColumnSpec(4, "Z'(a)")
_ZIMAG = ColumnSpec(5, "Z''(b)")
_DATE_FORMATS = ("%m-%d-%Y", "%m/%d/%Y")
_TIME_FORMATS = ("%H:%M:%S", "%H:%M:%S.%f")


def read_z(path: Path) -> InstrumentFile:
    """Read a ZPlot .z file.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    InstrumentFile
        Its sweeps (freq in Hz, complex Z in ohm, times in s since the header
        ``Date``/``Time``; current, potential and charge NaN), an empty DC
        record, the start time if the header states a parsable one, the
        technique (``PEIS`` for ``Experiment Type: Sweep Frequency, Control
        Voltage``, ``GEIS`` for ``Control Current``) and the raw ``Key:
        value`` header settings.

    Raises
    ------
    IngestError
        No ``End Comments`` or ``Freq(Hz)`` line, no data rows, a short row,
        a non-numeric or non-finite cell, or a frequency <= 0; the message
        names the line and column.
    """
    lines = read_text(path)
    header_end = _data_start(lines, path)  # 0-based index of the first line after the header
    rows = lines[header_end:]
    first_data = next((row for row in rows if row.strip()), "")
    decimal_comma = False
    if ", " in first_data:
        # Old exports separate cells by ", ": make them white-space separated.
        rows = [row.replace(",", " ") for row in rows]
    elif "," in first_data:
        decimal_comma = True  # locale with decimal commas, cells separated by tabs
    specs = [_FREQ, _TIME, _ZREAL, _ZIMAG]
    table = parse_table(
        rows, header_end + 1, specs, path, delimiter=None, decimal_comma=decimal_comma
    )
    if len(table) == 0:
        raise IngestError("no data rows after the header", file=path, line=header_end)
    require_finite(table, [_FREQ.name, _TIME.name], path)
    # A non-finite Z spoils its sweep only: flagged and skipped downstream.
    defects = nonfinite_rows(table, [_ZREAL.name, _ZIMAG.name], path)
    freq = table.columns[_FREQ.name]
    not_positive = np.flatnonzero(freq <= 0)
    if not_positive.size:
        row = int(not_positive[0])
        raise table.error(f"frequency must be > 0 Hz, got {freq[row]!r}", path, row, _FREQ.name)
    # Z'' is already the signed imaginary part: no negation.
    z = complex_from_parts(table.columns[_ZREAL.name], table.columns[_ZIMAG.name])
    time = table.columns[_TIME.name]
    spectra = spectra_from_rows(freq, z, source=str(path), point_time_s=time, defects=defects)
    settings = _settings(lines[:header_end])
    return InstrumentFile(
        path=str(path),
        format="zplot-z",
        spectra=spectra,
        start_time=_start_time(dict(settings)),
        technique=_technique(dict(settings)),
        settings=settings,
    )


def _technique(settings: dict[str, str]) -> str | None:
    """PEIS or GEIS from ``Experiment Type: Sweep Frequency, Control Voltage|Current``."""
    kind = settings.get("Experiment Type", "").lower()
    if "sweep frequency" not in kind:
        return None
    if "control voltage" in kind:
        return "PEIS"
    if "control current" in kind:
        return "GEIS"
    return None


def _data_start(lines: list[str], path: Path) -> int:
    """0-based index of the first data line: after ``End Comments``, else after ``Freq(Hz)``."""
    freq_header: int | None = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(_END_COMMENTS):
            return index + 1
        if stripped.startswith(_FREQ_HEADER):
            freq_header = index
    if freq_header is not None:
        return freq_header + 1
    raise IngestError(
        f"no '{_END_COMMENTS}' or '{_FREQ_HEADER}' line before the data: not a ZPlot file?",
        file=path,
    )


def _settings(header: list[str]) -> tuple[tuple[str, str], ...]:
    """``Key: value`` header lines, in order."""
    settings: list[tuple[str, str]] = []
    for line in header:
        key, colon, value = line.partition(":")
        if colon and key.strip():
            settings.append((key.strip(), value.strip()))
    return tuple(settings)


def _start_time(settings: dict[str, str]) -> datetime | None:
    """Start of the acquisition from the ``Date:`` (month first) and ``Time:`` lines."""
    date_text = settings.get("Date", "").strip()
    time_text = settings.get("Time", "").strip()
    if not date_text or not time_text:
        return None
    for date_format in _DATE_FORMATS:
        for time_format in _TIME_FORMATS:
            try:
                return datetime.strptime(f"{date_text} {time_text}", f"{date_format} {time_format}")
            except ValueError:
                continue
    return None
