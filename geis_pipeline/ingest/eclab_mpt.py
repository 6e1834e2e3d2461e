"""EC-Lab text export (.mpt): our own parser.

Layout: line 1 ``EC-Lab ASCII FILE``, line 2 ``Nb header lines : N``, a
settings block, the tab-separated column header on line N, then data rows.
latin-1, CRLF or LF, decimal point or (German locale) decimal comma. Columns
are found by name, never by position. Exports made without the header start
directly with the column header line.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path

from geis_pipeline.errors import IngestError
from geis_pipeline.ingest._eclab import (
    TECHNIQUES,
    build_eclab_file,
    current_in_mA,
    mapping_get,
    parse_number,
    role_columns,
    technique_from_filename,
)
from geis_pipeline.ingest._header_area import area_in_cm2
from geis_pipeline.ingest._table import ColumnSpec, check_no_nul, parse_file_table, read_head
from geis_pipeline.spectrum import InstrumentFile

log = logging.getLogger(__name__)

__all__ = ["MAGIC", "read_mpt"]

MAGIC = "EC-Lab ASCII FILE"
_NB_HEADER = re.compile(r"^\s*Nb header lines\s*:\s*(\S+)")
# EC-Lab writes the acquisition start in the Windows locale; these are the
# forms seen in files (US month/day first, as in shared/realdata/geis.mpt).
_DATE_FORMATS = (
    "%m/%d/%Y %H:%M:%S.%f",
    "%m/%d/%Y %H:%M:%S",
    "%d.%m.%Y %H:%M:%S.%f",
    "%d.%m.%Y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S",
)
# Settings-block lines are a key padded to 20 characters, then the value(s).
_SETTING_WIDTH = 20


def read_mpt(path: Path) -> InstrumentFile:
    """Read an EC-Lab .mpt file.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    InstrumentFile
        Its sweeps (split by DOMAIN.md's rule), DC rows, start time, area,
        current setpoint, technique and raw header settings.

    Raises
    ------
    IngestError
        Bad header, missing columns, unparsable or non-finite numbers,
        truncated rows; the message names the line and column.
    """
    check_no_nul(path)
    # The header is short; the data (hundreds of MB in a long loop) is streamed.
    head = read_head(path, 2)
    if not head or not head[0].startswith(MAGIC):
        raise IngestError(f"not an EC-Lab text file (line 1 is not {MAGIC!r})", file=path, line=1)
    header_count = _header_line_count(head, path)
    lines = read_head(path, header_count + 1)
    if len(lines) < header_count:
        raise IngestError(
            f"'Nb header lines : {header_count}' but the file has {len(lines)} lines (truncated?)",
            file=path,
            line=2,
        )
    header = lines[: header_count - 1]
    column_line = lines[header_count - 1]
    names = column_line.split("\t")
    roles = role_columns(names, path)
    if "re" in roles and "minus_im" in roles:
        # |Z| and phase are only needed for files without Re/-Im: skip parsing them.
        roles.pop("modulus", None)
        roles.pop("phase", None)
    if "time" not in roles and "freq" not in roles:
        raise IngestError(
            f"'Nb header lines : {header_count}' but line {header_count} is not the column "
            "header (no 'time/s' or 'freq/Hz' column)",
            file=path,
            line=header_count,
        )
    first_data = lines[header_count] if len(lines) > header_count else ""
    table = parse_file_table(
        path,
        header_count + 1,
        [ColumnSpec(index, role, name) for role, (index, name) in roles.items()],
        delimiter="\t",
        decimal_comma="," in first_data,
    )
    settings = _settings(header)
    setting_map = dict(settings)
    technique = _technique(header) or technique_from_filename(path)
    return build_eclab_file(
        table,
        path,
        file_format="eclab-mpt",
        start_time=_start_time(setting_map),
        area_cm2=_area(setting_map, path),
        current_setpoint_mA=_setpoint(setting_map, technique),
        technique=technique,
        settings=settings,
        column_names={role: name for role, (_, name) in roles.items()},
    )


def _header_line_count(lines: list[str], path: Path) -> int:
    """The number of header lines, column header included (1 for header-less exports)."""
    if len(lines) > 1:
        match = _NB_HEADER.match(lines[1])
        if match:
            try:
                count = int(match.group(1))
            except ValueError:
                raise IngestError(
                    f"'Nb header lines' is not a whole number: {match.group(1)!r}",
                    file=path,
                    line=2,
                ) from None
            if count < 3:
                raise IngestError(
                    f"'Nb header lines : {count}' is too small (a header has at least 3 lines)",
                    file=path,
                    line=2,
                )
            return count
    if len(lines) > 1 and ("time/s" in lines[1] or "freq/Hz" in lines[1]):
        return 2  # "EC-Lab ASCII FILE" then the column header
    raise IngestError("no 'Nb header lines : N' line", file=path, line=2)


def _settings(header: list[str]) -> tuple[tuple[str, str], ...]:
    """Header ``key : value`` lines and fixed-width settings lines, in order."""
    settings: list[tuple[str, str]] = []
    for line in header[2:]:
        if " : " in line:
            key, _, value = line.partition(" : ")
            settings.append((key.strip(), value.strip()))
        elif len(line) > _SETTING_WIDTH and line[:_SETTING_WIDTH].strip():
            settings.append((line[:_SETTING_WIDTH].strip(), line[_SETTING_WIDTH:].strip()))
    return tuple(settings)


def _technique(header: list[str]) -> str | None:
    """Short technique name from the title on header line 4."""
    if len(header) < 4:
        return None
    title = header[3].strip()
    return TECHNIQUES.get(title.lower(), title or None)


def _start_time(settings: dict[str, str]) -> datetime | None:
    text = mapping_get(settings, "Acquisition started on")
    if not text:
        return None
    for date_format in _DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), date_format)
        except ValueError:
            continue
    return None


def _area(settings: dict[str, str], path: Path) -> float | None:
    area, problem = area_in_cm2(mapping_get(settings, "Electrode surface area"))
    if problem is not None:
        log.warning("%s: %s: not used (give the area with --area-cm2)", path, problem)
    return area


def _setpoint(settings: dict[str, str], technique: str | None) -> float | None:
    """DC current setpoint (``Is`` with ``unit Is``) of galvanostatic techniques, mA."""
    if technique not in {"GEIS", "SGEIS", "CP", "GCPL"}:
        return None
    value = mapping_get(settings, "Is")
    if value is None:
        return None
    return current_in_mA(parse_number(value), mapping_get(settings, "unit Is"))
