"""Ingest: instrument files -> spectra; experiment folders -> one time-ordered experiment.

One reader module per vendor format (``eclab_mpt``, ``eclab_mpr``,
``gamry_dta``, ``zplot``, ``csv_format``); this module picks the reader from the
file's first bytes (falling back to its extension) and merges a folder's files
by absolute time.
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from geis_pipeline.errors import (
    GeisPipelineError,
    IngestError,
    NoImpedanceDataError,
    UnknownFormatError,
)
from geis_pipeline.ingest._eclab import PLACEHOLDER_AREA_CM2, is_placeholder_area
from geis_pipeline.spectrum import (
    DCRecord,
    Experiment,
    ExperimentMetadata,
    InstrumentFile,
    SkippedFile,
    Spectrum,
    sort_spectra,
)

__all__ = [
    "FORMATS",
    "placeholder_warning",
    "read_experiment",
    "read_file",
    "read_file_experiment",
    "read_spectra",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Format:
    name: str
    extensions: tuple[str, ...]
    magic: bytes | None  # what the file starts with, if the format has a signature
    reader: str  # "module:function", imported on first use


_FORMAT_LIST = (
    _Format("eclab-mpt", (".mpt",), b"EC-Lab ASCII FILE", "eclab_mpt:read_mpt"),
    _Format("eclab-mpr", (".mpr",), b"BIO-LOGIC MODULAR FILE", "eclab_mpr:read_mpr"),
    _Format("gamry-dta", (".dta",), b"EXPLAIN", "gamry_dta:read_dta"),
    _Format("zplot-z", (".z",), b"ZPLOT", "zplot:read_z"),
    _Format("csv", (".csv",), None, "csv_format:read_csv"),
)

#: Format names accepted by the ``format`` option.
FORMATS: tuple[str, ...] = tuple(entry.name for entry in _FORMAT_LIST)

ProgressCallback = Callable[[int, int, str], None]


def _detect_format(path: Path) -> _Format:
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
    except OSError as exc:
        raise UnknownFormatError(f"cannot open file: {exc.strerror or exc}", file=path) from exc
    for entry in _FORMAT_LIST:
        if entry.magic is not None and head.startswith(entry.magic):
            return entry
    suffix = path.suffix.lower()
    for entry in _FORMAT_LIST:
        if suffix in entry.extensions:
            return entry
    raise UnknownFormatError(
        f"unknown file format (extension {suffix or 'none'!r}); readable: "
        + ", ".join(f"{entry.name} ({'/'.join(entry.extensions)})" for entry in _FORMAT_LIST),
        file=path,
    )


def read_file(path: str | Path, *, format: str | None = None) -> InstrumentFile:
    """Read one instrument file: its spectra, DC rows and header metadata.

    Parameters
    ----------
    path
        The file.
    format
        One of :data:`FORMATS`; by default detected from the file's first
        bytes, then its extension.

    Raises
    ------
    UnknownFormatError
        Not a format geis-pipeline reads.
    IngestError
        The file is corrupt, truncated or holds invalid values (the message
        names the file, line and column).
    """
    path = Path(path)
    if format is None:
        entry = _detect_format(path)
    else:
        matches = [entry for entry in _FORMAT_LIST if entry.name == format]
        if not matches:
            raise UnknownFormatError(
                f"unknown format {format!r}; choose one of {', '.join(FORMATS)}", file=path
            )
        entry = matches[0]
    module_name, function_name = entry.reader.split(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    reader: Callable[[Path], InstrumentFile] = getattr(module, function_name)
    return reader(path)


def read_spectra(path: str | Path, *, format: str | None = None) -> list[Spectrum]:
    """Read the impedance spectra of one instrument file.

    Parameters
    ----------
    path
        An EC-Lab .mpt/.mpr, Gamry .DTA, ZPlot .z or CSV file.
    format
        Force a reader (see :data:`FORMATS`) instead of detecting it.

    Returns
    -------
    list of Spectrum
        One per sweep, in file order. ``time_s`` counts from the file's
        acquisition start.

    Raises
    ------
    NoImpedanceDataError
        The file holds no impedance rows (e.g. an OCV or GCPL file).
    IngestError
        See :func:`read_file`.
    """
    instrument_file = read_file(path, format=format)
    if not instrument_file.spectra:
        raise NoImpedanceDataError("no impedance rows (freq > 0) in the file", file=path)
    return list(instrument_file.spectra)


def read_experiment(
    folder: str | Path,
    *,
    area_cm2: float | None = None,
    strict: bool = False,
    progress: ProgressCallback | None = None,
    allow_dc_only: bool = False,
) -> Experiment:
    """Read every supported file of a folder into one time-ordered experiment.

    Linked-technique files (``..._01_GEIS_C01.mpt``, ``..._02_OCV_C01.mpt``,
    ``..._03_PEIS_C01.mpt``) are merged by absolute time: each file's times
    are shifted by its acquisition start minus the earliest start. Files
    without a stated start time keep their own times and are ordered by name
    after the dated ones. Non-impedance files (OCV, GCPL) contribute to the DC
    record only.

    Parameters
    ----------
    folder
        Experiment folder (not searched recursively).
    area_cm2
        Electrode area, cm2; overrides the file headers. Without it the
        area the files state is used; EC-Lab's placeholder (0.001 cm2,
        written when no area was typed in) is no area. A missing or
        placeholder area is logged as a warning naming the files and kept
        in ``metadata.warnings``.
    strict
        Raise on the first unreadable file instead of skipping it.
    progress
        Called as ``progress(done, total, filename)`` after each file.
    allow_dc_only
        A folder of DC files only (GCPL, CP, OCV: no impedance rows) gives an
        experiment without spectra instead of an error.

    Returns
    -------
    Experiment
        Sweeps sorted by start time (``time_s`` in s since the experiment's
        start), the merged DC record, metadata, and the skipped files with
        the reason.

    Raises
    ------
    IngestError
        The folder does not exist or holds no readable impedance data; or,
        with ``strict``, any file fails to read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise GeisPipelineError("not a folder", file=folder)
    if area_cm2 is not None and not area_cm2 > 0:
        raise GeisPipelineError(f"electrode area must be > 0 cm2, got {area_cm2!r}", key="area_cm2")
    extensions = {extension for entry in _FORMAT_LIST for extension in entry.extensions}
    paths: list[Path] = []
    others: list[Path] = []  # named like one, not read: a folder, a FIFO, a broken link
    for path in sorted(path for path in folder.iterdir() if path.suffix.lower() in extensions):
        (paths if path.is_file() else others).append(path)
    files: list[InstrumentFile] = []
    skipped: list[SkippedFile] = []
    for path in others:
        what = f"{_not_a_file(path)}, not an instrument file"
        if strict:
            raise IngestError(what, file=path)
        log.warning("skipped %s: %s", path, what)
        skipped.append(SkippedFile(str(path), f"{path}: {what}"))
    for done, path in enumerate(paths, start=1):
        try:
            files.append(read_file(path))
            log.debug(
                "read %s: %s, %d sweeps, %d DC rows",
                path.name,
                files[-1].technique or "technique unknown",
                len(files[-1].spectra),
                len(files[-1].dc_record),
            )
        except GeisPipelineError as exc:
            if strict:
                raise
            log.warning("skipped %s", exc)
            skipped.append(SkippedFile(str(path), str(exc)))
        if progress is not None:
            progress(done, len(paths), path.name)
    dc_only = allow_dc_only and any(len(item.dc_record) for item in files)
    if not any(instrument_file.spectra for instrument_file in files) and not dc_only:
        raise NoImpedanceDataError(
            f"no readable impedance data among {len(paths)} instrument file(s)"
            + (f"; skipped: {'; '.join(item.reason for item in skipped)}" if skipped else ""),
            file=folder,
        )
    return _merge(files, skipped, area_cm2)


def _not_a_file(path: Path) -> str:
    """What a directory entry named like an instrument file is instead."""
    try:
        if path.is_dir():
            return "a folder"
        if path.is_symlink() and not path.exists():
            return "a broken or looping link"
        return "not a regular file (a FIFO or a device?)"
    except OSError as exc:  # a link loop on some systems
        return f"unreadable entry ({exc.strerror or exc})"


def _merge(
    files: list[InstrumentFile], skipped: list[SkippedFile], area_cm2: float | None
) -> Experiment:
    dated = [item for item in files if item.start_time is not None]
    undated = [item for item in files if item.start_time is None]
    start: datetime | None = min((item.start_time for item in dated), default=None)
    # Order files by the absolute time of their first row: linked techniques
    # share one acquisition start, so the start alone does not order them.
    ordered = sorted(
        dated,
        key=lambda item: (
            (item.start_time - start).total_seconds() + _first_time(item),
            item.path,
        ),
    )
    ordered += sorted(undated, key=lambda item: item.path)
    spectra: list[Spectrum] = []
    records: list[DCRecord] = []
    for item in ordered:
        offset = (item.start_time - start).total_seconds() if item.start_time and start else 0.0
        spectra.extend(spectrum.shifted(offset) for spectrum in item.spectra)
        records.append(item.dc_record.shifted(offset))
    warnings: list[str] = []
    if area_cm2 is None:
        area_cm2, warnings = _area(ordered)
        for message in warnings:
            log.warning("%s", message)
    setpoint = next(
        (item.current_setpoint_mA for item in ordered if item.current_setpoint_mA is not None), None
    )
    metadata = ExperimentMetadata(
        area_cm2=area_cm2,
        current_setpoint_mA=setpoint,
        techniques=tuple(item.technique or "unknown" for item in ordered),
        start_time=start,
        sources=tuple(item.path for item in ordered),
        setpoints_mA=tuple(
            math.nan if item.current_setpoint_mA is None else float(item.current_setpoint_mA)
            for item in ordered
        ),
        warnings=tuple(warnings),
    )
    return Experiment(
        spectra=sort_spectra(spectra),
        dc_record=DCRecord.concatenate(records),
        metadata=metadata,
        skipped=tuple(skipped),
    )


#: How to give the area, for the warnings.
_GIVE_AREA = "give the area with --area-cm2 or experiment.area_cm2 in the config"


def _names(paths: list[str], limit: int = 3) -> str:
    names = ", ".join(Path(path).name for path in paths[:limit])
    return names + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


_AREA_CONSEQUENCE = (
    "area-specific values (ohm cm2, F/cm2, mA/cm2) are NaN, absolute ones (ohm, F, mA) are kept"
)


def placeholder_warning(paths: list[str]) -> str:
    """The warning for files stating EC-Lab's placeholder area."""
    return (
        f"{_names(paths)}: electrode area {PLACEHOLDER_AREA_CM2} cm2 is EC-Lab's placeholder "
        f"(no area was typed in), not used: {_AREA_CONSEQUENCE}; {_GIVE_AREA}"
    )


def _area(files: list[InstrumentFile]) -> tuple[float | None, list[str]]:
    """The electrode area the files state (EC-Lab's 0.001 cm2 placeholder is none) and warnings."""
    warnings: list[str] = []
    placeholders = [
        item.path
        for item in files
        if item.format.startswith("eclab") and is_placeholder_area(item.area_cm2)
    ]
    if placeholders:
        warnings.append(placeholder_warning(placeholders))
    stated = [
        item
        for item in files
        if item.area_cm2 is not None and item.path not in placeholders and item.area_cm2 > 0
    ]
    areas = sorted({item.area_cm2 for item in stated})
    if len(areas) > 1:
        warnings.append(
            f"files state different electrode areas {areas} cm2: using {stated[0].area_cm2} cm2 "
            f"of {Path(stated[0].path).name}; {_GIVE_AREA} to choose"
        )
    if stated:
        return stated[0].area_cm2, warnings
    if not placeholders:
        missing = [item.path for item in files if item.spectra] or [item.path for item in files]
        warnings.append(
            f"{_names(missing)}: no electrode area stated: {_AREA_CONSEQUENCE}; {_GIVE_AREA}"
        )
    return None, warnings


def _first_time(item: InstrumentFile) -> float:
    if len(item.dc_record):
        return float(item.dc_record.time_s[0])
    return item.spectra[0].time_s if item.spectra else 0.0


def read_file_experiment(path: str | Path, *, area_cm2: float | None = None) -> Experiment:
    """One instrument file as an experiment, with the metadata rules of a folder.

    Parameters
    ----------
    path
        The file.
    area_cm2
        Electrode area, cm2; overrides the file header.

    Raises
    ------
    NoImpedanceDataError, IngestError
        As :func:`read_spectra`.
    """
    if area_cm2 is not None and not area_cm2 > 0:
        raise GeisPipelineError(f"electrode area must be > 0 cm2, got {area_cm2!r}", key="area_cm2")
    instrument_file = read_file(path)
    if not instrument_file.spectra:
        raise NoImpedanceDataError("no impedance rows (freq > 0) in the file", file=path)
    return _merge([instrument_file], [], area_cm2)
