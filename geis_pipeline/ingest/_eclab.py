"""What the EC-Lab text (.mpt) and binary (.mpr) readers share: named columns -> spectra.

Both readers end with a mapping of EC-Lab column names to arrays; this module
turns that into an :class:`~geis_pipeline.spectrum.InstrumentFile`, so the two
formats give identical spectra for the same measurement.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import numpy as np

from geis_pipeline._arrays import complex_from_parts
from geis_pipeline.errors import IngestError
from geis_pipeline.ingest._table import RowDefects, Table, nonfinite_rows, require_finite
from geis_pipeline.ingest.sweeps import spectra_from_rows
from geis_pipeline.spectrum import DCRecord, InstrumentFile, Spectrum

# Canonical role -> the EC-Lab column names that carry it (first match wins).
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "freq": ("freq/Hz",),
    "re": ("Re(Z)/Ohm",),
    "minus_im": ("-Im(Z)/Ohm",),
    "modulus": ("|Z|/Ohm",),
    "phase": ("Phase(Z)/deg",),
    "time": ("time/s",),
    "potential": ("<Ewe>/V", "Ewe/V", "<Ewe/V>"),
    "current": ("<I>/mA", "I/mA", "<I/mA>"),
    "charge_mAh": ("(Q-Qo)/mA.h",),
    "charge_C": ("(Q-Qo)/C",),
    "step": ("Ns",),
    # A 3-electrode cell's counter electrode (kept when the file has it).
    "re_ce": ("Re(Zce)/Ohm",),
    "minus_im_ce": ("-Im(Zce)/Ohm",),
    "potential_ce": ("<Ece>/V", "Ece/V", "<Ece/V>"),
}

# Technique titles as EC-Lab writes them on the 4th header line -> short names.
TECHNIQUES: dict[str, str] = {
    "galvano electrochemical impedance spectroscopy": "GEIS",
    "potentio electrochemical impedance spectroscopy": "PEIS",
    "staircase galvano electrochemical impedance spectroscopy": "SGEIS",
    "staircase potentio electrochemical impedance spectroscopy": "SPEIS",
    "open circuit voltage": "OCV",
    "galvanostatic cycling with potential limitation": "GCPL",
    "chronopotentiometry": "CP",
    "chronoamperometry / chronocoulometry": "CA",
    "modulo bat": "MB",
}

_FILENAME_TECHNIQUE = re.compile(r"_\d+_([A-Za-z]+)(?:_C\d+)?$")

#: The electrode area EC-Lab writes when the user typed none (cm2): a placeholder, not an area.
PLACEHOLDER_AREA_CM2 = 0.001


def is_placeholder_area(area_cm2: float | None) -> bool:
    """Whether an EC-Lab area is the 0.001 cm2 placeholder (to float32 precision)."""
    return (
        area_cm2 is not None and abs(area_cm2 - PLACEHOLDER_AREA_CM2) <= 1e-6 * PLACEHOLDER_AREA_CM2
    )


def technique_from_filename(path: Path) -> str | None:
    """EC-Lab names linked-technique files ``<stem>_03_GEIS_C01``: take ``GEIS``."""
    match = _FILENAME_TECHNIQUE.search(path.stem)
    return match.group(1).upper() if match else None


def build_eclab_file(
    table: Table,
    path: Path,
    *,
    file_format: str,
    start_time: datetime | None,
    area_cm2: float | None,
    current_setpoint_mA: float | None,
    technique: str | None,
    settings: tuple[tuple[str, str], ...] = (),
    column_names: Mapping[str, str] | None = None,
) -> InstrumentFile:
    """Turn EC-Lab columns (keyed by role, see :data:`COLUMN_NAMES`) into spectra.

    Parameters
    ----------
    table
        Columns by role name (``line_numbers`` None for binary files).
    path, file_format, start_time, area_cm2, current_setpoint_mA, technique, settings
        Passed through to the :class:`InstrumentFile`.
    column_names
        Role -> the file's own column name, for error messages.

    Raises
    ------
    IngestError
        Required columns are missing, or values are non-finite or negative
        frequencies, naming the line (text) or data row (binary).
    """
    columns = table.columns
    names = dict(column_names or {})
    n_rows = len(table)
    if "time" not in columns:
        raise IngestError("no 'time/s' column", file=path, column="time/s")
    nan_column = np.full(n_rows, np.nan)
    potential = columns.get("potential", nan_column)
    potential_ce = columns.get("potential_ce", nan_column)
    current = columns.get("current", nan_column)
    if "charge_mAh" in columns:
        charge = columns["charge_mAh"]
    elif "charge_C" in columns:
        charge = columns["charge_C"] / 3.6  # 1 mAh = 3.6 C
    else:
        charge = nan_column
    time = columns["time"]
    require_finite(table, ["time"], path, column_names=names)
    spectra: tuple[Spectrum, ...] = ()
    if "freq" not in columns:
        # Impedance values without frequencies: else the file reads as DC rows alone and
        # its sweeps vanish without a word (DC rows carry Re(Z) = 0).
        impedance = [
            role
            for role in ("re", "minus_im", "modulus", "phase")
            if role in columns and np.any(np.nan_to_num(columns[role]) != 0)
        ]
        if impedance:
            found = ", ".join(repr(names.get(role, role)) for role in impedance)
            raise IngestError(
                f"impedance columns ({found}) but no 'freq/Hz' column: a renamed or damaged "
                "column header, or a unit the reader does not know",
                file=path,
                column="freq/Hz",
            )
    if "freq" in columns:
        require_finite(table, ["freq"], path, column_names=names)
        freq = columns["freq"]
        negative = np.flatnonzero(freq < 0)
        if negative.size:
            row = int(negative[0])
            raise table.error(f"negative frequency {freq[row]!r}", path, row, names.get("freq"))
        rows = np.flatnonzero(freq > 0)
        z, defects = _impedance(table, rows, path, names)
        z_ce = None
        if "re_ce" in columns and "minus_im_ce" in columns:
            # Not required finite: a sweep whose counter values are not is kept without them.
            z_ce = columns["re_ce"][rows] - 1j * columns["minus_im_ce"][rows]
        spectra = spectra_from_rows(
            freq[rows],
            z,
            source=str(path),
            point_time_s=time[rows],
            current_mA=current[rows],
            potential_V=potential[rows],
            charge_mAh=charge[rows],
            row_number=rows,
            step=columns["step"][rows] if "step" in columns else None,
            defects=defects,
            z_ce=z_ce,
            potential_ce_V=potential_ce[rows],
        )
    return InstrumentFile(
        path=str(path),
        format=file_format,
        spectra=spectra,
        dc_record=DCRecord(time, potential, current, charge, potential_ce),
        start_time=start_time,
        area_cm2=area_cm2,
        current_setpoint_mA=current_setpoint_mA,
        technique=technique,
        settings=settings,
    )


def _impedance(
    table: Table, rows: np.ndarray, path: Path, names: Mapping[str, str]
) -> tuple[np.ndarray, RowDefects | None]:
    """Complex Z of the impedance rows, from Re/-Im or (Modulo Bat) from |Z| and phase,
    and the rows whose Z is not finite (their sweeps are skipped, not the file)."""
    columns = table.columns
    if "re" in columns and "minus_im" in columns:
        # EC-Lab writes -Im(Z): negate back to the true imaginary part.
        z = complex_from_parts(columns["re"][rows], -columns["minus_im"][rows])
        return z, nonfinite_rows(table, ["re", "minus_im"], path, rows, names)
    if "modulus" in columns and "phase" in columns:
        # Phase(Z)/deg is the phase of Z itself (negative for capacitive arcs).
        with np.errstate(invalid="ignore"):
            z = columns["modulus"][rows] * np.exp(1j * np.deg2rad(columns["phase"][rows]))
        return z, nonfinite_rows(table, ["modulus", "phase"], path, rows, names)
    raise IngestError(
        "impedance rows but neither Re(Z)/-Im(Z) nor |Z|/Phase(Z) columns",
        file=path,
        column="Re(Z)/Ohm",
    )


#: galvani's name for the second column of a name already taken ("|Z|/Ohm 2").
_RENAMED_TWIN = re.compile(r"^(?P<name>.+) (?P<copy>\d+)$")


def role_columns(names: list[str], path: str | Path | None = None) -> dict[str, tuple[int, str]]:
    """Map each role to (index, actual name) of the matching column present.

    Raises
    ------
    IngestError
        A column the reader uses appears twice (a damaged header: a renamed
        Re(Z) column read as the |Z| one gave fits 8 % off, marked ok).
    """
    found: dict[str, tuple[int, str]] = {}
    stripped = [name.strip() for name in names]
    twins = {match.group("name") for name in stripped if (match := _RENAMED_TWIN.match(name))}
    for role, candidates in COLUMN_NAMES.items():
        for candidate in candidates:
            if candidate in stripped:
                if stripped.count(candidate) > 1 or candidate in twins:
                    raise IngestError(
                        f"column {candidate!r} appears twice: a damaged or edited header",
                        file=path,
                        column=candidate,
                    )
                found[role] = (stripped.index(candidate), candidate)
                break
    return found


def parse_number(text: str) -> float | None:
    """A float from header text, accepting a decimal comma; None if it is not one."""
    token = text.strip().split()[0] if text.strip() else ""
    try:
        return float(token.replace(",", "."))
    except ValueError:
        return None


def current_in_mA(value: float | None, unit: str | None) -> float | None:
    """Convert a header current to mA (EC-Lab writes the unit on its own line)."""
    if value is None:
        return None
    scale = {"a": 1e3, "ma": 1.0, "µa": 1e-3, "ua": 1e-3, "na": 1e-6, "pa": 1e-9}
    factor = scale.get((unit or "mA").strip().split()[0].lower() if unit and unit.strip() else "ma")
    return None if factor is None else value * factor


def mapping_get(settings: Mapping[str, str], key: str) -> str | None:
    """Case-insensitive lookup in header settings."""
    wanted = key.lower()
    for name, value in settings.items():
        if name.lower() == wanted:
            return value
    return None
