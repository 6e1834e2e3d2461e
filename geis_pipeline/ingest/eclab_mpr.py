"""EC-Lab binary (.mpr) files, decoded by datalab-org-galvani (optional, GPL-3.0).

galvani decodes the data module into a numpy structured array whose field
names are the same column names as the text export, so the spectra come from
the same code path as .mpt files (:func:`._eclab.build_eclab_file`). Modulo Bat
files that store only ``|Z|/Ohm`` and ``Phase(Z)/deg`` are handled there, and
BT-Lab files whose ``cycle number`` is always 0 need nothing special because
sweeps are never split on ``cycle number``.

galvani does not decode the settings module. Two values are read from it, each
only where its layout was checked against a real file and its .mpt export:

* the electrode area (version-0 "VMP Set" modules: a float32 at byte 529,
  followed by a length-prefixed text field; geis.mpr gives 1.130 cm², as its
  .mpt export says). EC-Lab's untouched default, 0.001 cm², is kept here as
  the file states it; :func:`~geis_pipeline.read_experiment` treats it as no area.
* the DC current setpoint ``Is`` of a GEIS technique (technique id 0x1E): the
  technique parameters start with the count of sequences (uint16) and of
  parameters per sequence (uint16) at byte 0x1845, then the first sequence:
  ``Mode`` (uint8), ``Is`` (float32), ``unit Is`` (uint8: 1 = mA, 2 = µA). geis.mpr
  (EC-Lab v11.33) has 1 sequence of 55 parameters and Is = 0.380 mA, as its
  .mpt export says. Any other count, offset or unit code gives no setpoint.

When a layout is not found the value is unknown: give the area to
:func:`~geis_pipeline.read_experiment` (or ``--area-cm2``). The technique is
named from the settings module's first byte; ids other than 0x1D (PEIS) and
0x1E (GEIS), which the real files confirm, follow the table of the yadg
project's EC-Lab reader (e.g. 0x7F Modulo Bat).
"""

from __future__ import annotations

import warnings
from datetime import datetime
from pathlib import Path

import numpy as np

from geis_pipeline.errors import IngestError
from geis_pipeline.ingest._eclab import (
    build_eclab_file,
    current_in_mA,
    role_columns,
    technique_from_filename,
)
from geis_pipeline.ingest._table import Table
from geis_pipeline.spectrum import InstrumentFile

__all__ = ["MAGIC", "read_mpr", "spectra_from_records"]

MAGIC = b"BIO-LOGIC MODULAR FILE"

# Electrode surface area (cm², float32) in a version-0 "VMP Set" module, and the
# length-prefixed text field that follows it (checked so that another layout is
# never read as an area).
_AREA_OFFSET = 529
_AREA_FOLLOWER = _AREA_OFFSET + 4
_MAX_FIELD_LENGTH = 64

# First byte of the "VMP Set" module: technique id (0x1d PEIS_SSB.mpr and 0x1e
# geis.mpr checked on the real files in shared/realdata; the others as yadg's
# EC-Lab reader names them).
_TECHNIQUE_IDS = {
    0x04: "GCPL",
    0x06: "CV",
    0x0B: "OCV",
    0x18: "CA",
    0x19: "CP",
    0x1C: "WAIT",
    0x1D: "PEIS",
    0x1E: "GEIS",
    0x30: "CV",
    0x32: "ZIR",
    0x33: "CVA",
    0x6C: "LSV",
    0x77: "GCPL",
    0x7F: "MB",
}
_GEIS_ID = 0x1E
# GEIS technique parameters (checked on geis.mpr, EC-Lab v11.33): at 0x1845 the
# number of sequences and of parameters per sequence (uint16 each), then
# Mode (uint8), Is (float32), unit Is (uint8).
_GEIS_PARAMETERS_OFFSET = 0x1845
_GEIS_PARAMETER_COUNT = 55
_CURRENT_UNIT_CODES = {1: "mA", 2: "µA"}


def read_mpr(path: Path) -> InstrumentFile:
    """Read an EC-Lab .mpr file.

    Raises
    ------
    IngestError
        galvani is not installed, or the file cannot be decoded (truncated,
        corrupt, unknown column ids), or its values are invalid.
    """
    try:
        from galvani import BioLogic
    except ImportError as exc:
        raise IngestError(
            "reading EC-Lab .mpr files needs the optional extra: "
            "pip install 'geis-pipeline[mpr]' (or export the file as .mpt in EC-Lab)",
            file=path,
        ) from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mpr = BioLogic.MPRfile(str(path))
            records = np.asarray(mpr.data)
            timestamp = getattr(mpr, "timestamp", None)
            modules = list(getattr(mpr, "modules", []))
    # galvani reports a bad file with whatever its decoding hit (struct.error,
    # ValueError, KeyError, NotImplementedError, ...): all mean "cannot decode".
    except Exception as exc:
        raise IngestError(
            f"cannot decode EC-Lab .mpr file: {type(exc).__name__}: {exc}", file=path
        ) from exc
    technique = technique_from_filename(path) or _technique_from_settings(modules)
    start_time = timestamp if isinstance(timestamp, datetime) else None
    return spectra_from_records(
        records,
        path,
        start_time=start_time,
        technique=technique,
        area_cm2=_area_from_settings(modules),
        current_setpoint_mA=_setpoint_from_settings(modules),
    )


def spectra_from_records(
    records: np.ndarray,
    path: Path,
    *,
    start_time: datetime | None = None,
    technique: str | None = None,
    area_cm2: float | None = None,
    current_setpoint_mA: float | None = None,
) -> InstrumentFile:
    """Spectra from an EC-Lab structured array (field names = column names).

    Parameters
    ----------
    records
        Structured array as galvani returns it.
    path
        The file, for provenance and errors.
    area_cm2
        Electrode surface area, cm², if known.
    current_setpoint_mA
        DC current setpoint of a galvanostatic technique, mA, if known.
    """
    names = list(records.dtype.names or ())
    if not names:
        raise IngestError("no data columns in the file", file=path)
    roles = role_columns(names, path)
    # Corrupt bytes can decode to values that overflow the cast; require_finite
    # reports them with the row, so numpy's warning would only add noise.
    with np.errstate(invalid="ignore", over="ignore"):
        table = Table(
            {
                role: np.asarray(records[name], dtype=np.float64)
                for role, (_, name) in roles.items()
            },
            None,
        )
    return build_eclab_file(
        table,
        path,
        file_format="eclab-mpr",
        start_time=start_time,
        area_cm2=area_cm2,
        current_setpoint_mA=current_setpoint_mA,
        technique=technique,
        column_names={role: name for role, (_, name) in roles.items()},
    )


def _settings_module(modules: list[dict]) -> dict | None:
    for module in modules:
        if bytes(module.get("shortname", b"")).strip() == b"VMP Set":
            return module
    return None


def _technique_from_settings(modules: list[dict]) -> str | None:
    module = _settings_module(modules)
    data = module.get("data", b"") if module else b""
    return _TECHNIQUE_IDS.get(data[0]) if data else None


def _area_from_settings(modules: list[dict]) -> float | None:
    """Electrode area (cm²) from the settings module, or None if the layout is not known."""
    module = _settings_module(modules)
    if module is None or module.get("version") != 0:
        return None
    data = bytes(module.get("data", b""))
    if len(data) <= _AREA_FOLLOWER:
        return None
    length = data[_AREA_FOLLOWER]
    follower = data[_AREA_FOLLOWER + 1 : _AREA_FOLLOWER + 1 + length]
    if not (0 < length <= _MAX_FIELD_LENGTH and len(follower) == length):
        return None
    if not all(32 <= byte < 127 for byte in follower):
        return None
    area = _float32(data, _AREA_OFFSET)
    return area if np.isfinite(area) and 0.0 < area < 1e4 else None


def _setpoint_from_settings(modules: list[dict]) -> float | None:
    """DC current setpoint (mA) of a GEIS settings module, or None if the layout is not known."""
    module = _settings_module(modules)
    if module is None or module.get("version") != 0:
        return None
    data = bytes(module.get("data", b""))
    start = _GEIS_PARAMETERS_OFFSET
    if len(data) < start + 10 or data[0] != _GEIS_ID:
        return None
    n_sequences = int.from_bytes(data[start : start + 2], "little")
    n_parameters = int.from_bytes(data[start + 2 : start + 4], "little")
    if n_sequences < 1 or n_parameters != _GEIS_PARAMETER_COUNT:
        return None
    current = _float32(data, start + 5)
    unit = _CURRENT_UNIT_CODES.get(data[start + 9])
    if unit is None or not np.isfinite(current):
        return None
    return current_in_mA(current, unit)


def _float32(data: bytes, offset: int) -> float:
    """A float32 setting as EC-Lab shows it (7 significant digits: 0.38, not 0.37999999523)."""
    value = float(np.frombuffer(data, dtype="<f4", count=1, offset=offset)[0])
    return float(f"{value:.7g}") if np.isfinite(value) else value
