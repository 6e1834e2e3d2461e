"""EC-Lab binary (.mpr) files, decoded by datalab-org-galvani (optional, GPL-3.0).

galvani decodes the data module into a numpy structured array whose field
names are the same column names as the text export, so the spectra come from
the same code path as .mpt files (:func:`._eclab.build_eclab_file`). Modulo Bat
files that store only ``|Z|/Ohm`` and ``Phase(Z)/deg`` are handled there, and
BT-Lab files whose ``cycle number`` is always 0 need nothing special because
sweeps are never split on ``cycle number``.

galvani does not decode the settings module. The electrode area is read from
it at the one place checked against real files (version-0 "VMP Set" modules:
a float32 at byte 529, followed by a length-prefixed text field; geis.mpr gives
1.130 cm², as its .mpt export says). When that layout is not found the area is
unknown: give it to :func:`~geis_pipeline.read_experiment` (or ``--area-cm2``).
"""

from __future__ import annotations

import warnings
from datetime import datetime
from pathlib import Path

import numpy as np

from geis_pipeline.errors import IngestError
from geis_pipeline.ingest._eclab import build_eclab_file, role_columns, technique_from_filename
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

# First byte of the "VMP Set" module: technique id (checked on the real files
# in shared/realdata: 0x1d PEIS_SSB.mpr, 0x1e geis.mpr).
_TECHNIQUE_IDS = {0x1D: "PEIS", 0x1E: "GEIS"}


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
    )


def spectra_from_records(
    records: np.ndarray,
    path: Path,
    *,
    start_time: datetime | None = None,
    technique: str | None = None,
    area_cm2: float | None = None,
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
    """
    names = list(records.dtype.names or ())
    if not names:
        raise IngestError("no data columns in the file", file=path)
    roles = role_columns(names)
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
        current_setpoint_mA=None,
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
    area = float(np.frombuffer(data, dtype="<f4", count=1, offset=_AREA_OFFSET)[0])
    return area if np.isfinite(area) and 0.0 < area < 1e4 else None
