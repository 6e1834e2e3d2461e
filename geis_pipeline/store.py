"""The HDF5 result store: the only module that imports h5py.

Layout (``layout_version`` 2; every name carries its unit)::

    /                               attrs: format, layout_version, package_version,
                                           created, config_toml
    /experiments/<name>/            attrs: area_cm2, current_setpoint_mA, start_time,
                                           techniques, sources, setpoints_mA (JSON, per
                                           source, null: none stated), warnings (JSON: no
                                           or placeholder area...), inputs (JSON: name, size,
                                           sha256), skipped (JSON: [file, reason] of the
                                           files not read), skipped_sweeps (JSON: [file,
                                           sweep index in the file, time_s, reason] of the
                                           defective sweeps left out of raw/)
        raw/offsets                 (n_sweeps + 1,) int64: sweep i is points offsets[i]:offsets[i+1]
        raw/freq_hz, z_real_ohm, z_imag_ohm, point_time_s      (n_points,)
        raw/time_s, current_mA, potential_V, charge_mAh, sweep_index, source_index,
            incomplete                                          (n_sweeps,)
        raw/sources                 (n_sources,) file names
        raw/dc/time_s, potential_V, current_mA, charge_mAh     (n_dc,)
        <stage>/                    kk, fit, drt; attrs: config_hash, and stage attrs
            <column>                (n_sweeps, ...) per-sweep results
            points/<column>         (n_points,) per-point results (raw/offsets applies)
            grid/<column>           shared axes (e.g. drt/grid/tau_s)
        tracking/<column>           (n_sweeps,) one value per time step
        summary                     attrs: experiment-level results
        <table>/<column>            segments, cycles, drt_events: one row per segment,
                                    DC cycle, DRT peak event (layout 2)
        ce/                         a 3-electrode cell's counter electrode (layout 2):
                                    kk/, fit/, drt/, tracking/, summary, <table>/ as above,
                                    computed from raw/z_ce_*; the working electrode's
                                    results stay where they are

    Layout 2 adds, beside ce/ and the tables: raw/z_ce_real_ohm, raw/z_ce_imag_ohm
    (n_points; NaN where a sweep has no counter spectrum), raw/potential_ce_V
    (n_sweeps) and raw/dc/potential_ce_V, each only when the files recorded them.
    Files of layout 1 (none of these) read as experiments without a counter electrode.

Text is UTF-8; file names that are not (undecodable bytes, kept by Python as
surrogate escapes) are stored as their raw bytes and read back the same.

Reading validates the structure: a missing or malformed part (dataset,
attribute, inconsistent lengths, an experiment named ``.`` or ``..``) is a
:class:`~geis_pipeline.errors.StoreError` naming what is wrong and where.

Writing is atomic: :func:`write_store` builds the whole file under a temporary
name and renames it over the target, so a run killed at any moment leaves the
previous complete file (or none), never a half-written one.

Arrays are stored gzip-compressed (level 1, byte shuffle), except in the files a
run publishes while it is still going (``compress=False``): compressing is ~90 %
of the write time, and the final file replaces them.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import zlib
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import h5py
import numpy as np

from geis_pipeline._cores import spare_core
from geis_pipeline.errors import StoreError
from geis_pipeline.spectrum import (
    DCRecord,
    Experiment,
    ExperimentMetadata,
    SkippedFile,
    SkippedSweep,
    Spectrum,
    spectra_from_arrays,
)

__all__ = [
    "FORMAT",
    "LAYOUT_VERSION",
    "ElectrodeResults",
    "ExperimentRecord",
    "InputFile",
    "StageData",
    "read_store",
    "write_store",
]

FORMAT = "geis-pipeline results"
LAYOUT_VERSION = 2
STAGES = ("kk", "fit", "drt")
#: Per-experiment tables beside tracking/ (layout 2): name -> column -> one value per row.
TABLES = ("segments", "cycles", "drt_events")
#: The group of the counter electrode's results (layout 2).
COUNTER = "ce"
_STRING = h5py.string_dtype()


@dataclass(frozen=True)
class InputFile:
    """Provenance of one instrument file."""

    name: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class StageData:
    """One stage's results for one experiment.

    Attributes
    ----------
    config_hash
        Hash of the config sections the stage depends on.
    sweeps
        Column -> array with one row per sweep.
    points
        Column -> array with one entry per raw point (raw offsets apply).
    grid
        Shared axes (e.g. the DRT tau grid).
    attrs
        Scalars and strings describing the stage.
    """

    config_hash: str
    sweeps: Mapping[str, np.ndarray] = field(default_factory=dict)
    points: Mapping[str, np.ndarray] = field(default_factory=dict)
    grid: Mapping[str, np.ndarray] = field(default_factory=dict)
    attrs: Mapping[str, object] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"StageData({int(self.attrs.get('n_done', 0))} done; sweeps: "
            f"{', '.join(self.sweeps) or 'none'}; points: {', '.join(self.points) or 'none'})"
        )


@dataclass(frozen=True)
class ElectrodeResults:
    """The results of one more electrode of an experiment (the counter, ``ce/``).

    Same meaning as the fields of :class:`ExperimentRecord`; the raw data are the
    experiment's (``raw/z_ce_*``).
    """

    stages: Mapping[str, StageData] = field(default_factory=dict)
    tracking: Mapping[str, np.ndarray] = field(default_factory=dict)
    summary: Mapping[str, object] = field(default_factory=dict)
    tables: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentRecord:
    """Everything stored for one experiment.

    ``stages``, ``tracking``, ``summary`` and ``tables`` (see :data:`TABLES`) are
    the working electrode's; ``electrodes`` holds the others' (``ce``).
    """

    name: str
    experiment: Experiment
    inputs: tuple[InputFile, ...] = ()
    stages: Mapping[str, StageData] = field(default_factory=dict)
    tracking: Mapping[str, np.ndarray] = field(default_factory=dict)
    summary: Mapping[str, object] = field(default_factory=dict)
    tables: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)
    electrodes: Mapping[str, ElectrodeResults] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"ExperimentRecord({self.name!r}, {self.experiment!r}, "
            f"stages: {', '.join(self.stages) or 'none'}, "
            f"tracking: {len(self.tracking)} columns, summary: {len(self.summary)} values)"
        )


_LIBRARY_DAMAGED = False


def hdf5_damaged() -> bool:
    """Whether a failed write left HDF5 objects half-open in this process (see write_store)."""
    return _LIBRARY_DAMAGED


def write_store(
    path: str | Path,
    records: Mapping[str, ExperimentRecord] | list[ExperimentRecord],
    *,
    config_toml: str,
    package_version: str,
    study: Mapping[str, Mapping[str, object]] | None = None,
    compress: bool = True,
) -> None:
    """Write a complete result file atomically (temporary file, then rename).

    Parameters
    ----------
    compress
        gzip the arrays (False: ~5x faster to write, ~1.5x larger; same content).

    Raises
    ------
    StoreError
        The file cannot be written (the previous file, if any, is untouched).
    """
    path = Path(path)
    records = list(records.values()) if isinstance(records, Mapping) else list(records)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(temporary, "w") as handle, _compressor(compress) as compressor:
            handle.attrs["format"] = FORMAT
            handle.attrs["layout_version"] = LAYOUT_VERSION
            handle.attrs["package_version"] = package_version
            handle.attrs["created"] = datetime.now().isoformat(timespec="seconds")
            handle.attrs["config_toml"] = config_toml
            experiments = handle.create_group("experiments", track_order=True)
            for record in records:
                _write_record(experiments.create_group(record.name), record, compressor)
            study_group = handle.create_group("study")
            # "sand/Li": a composition's fit in a group of its own under /study/sand.
            for name, attrs in sorted((study or {}).items()):
                _write_attrs(study_group.require_group(name), attrs)
        with open(temporary, "rb+") as raw:  # durable before it becomes visible
            os.fsync(raw.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        global _LIBRARY_DAMAGED
        # HDF5 could not close the file it failed to write (disk full): its objects stay
        # half-open, and the library's own clean-up at interpreter exit then crashes.
        _LIBRARY_DAMAGED = True
        temporary.unlink(missing_ok=True)
        raise StoreError(f"cannot write results: {exc}", file=path) from exc
    except BaseException:  # a bug or an interrupt: never leave the temporary file behind
        temporary.unlink(missing_ok=True)
        raise


def _study_entry(group: h5py.Group) -> dict[str, object]:
    """A study group's attributes, with its sub-groups (``sand/<composition>``) nested."""
    entry: dict[str, object] = _read_attrs(group.attrs)
    for name, item in group.items():
        if isinstance(item, h5py.Group):
            entry[name] = _study_entry(item)
    return entry


def _write_attrs(group: h5py.Group, attrs: Mapping[str, object]) -> None:
    for key, value in attrs.items():
        if value is None:
            continue
        group.attrs[key] = (
            value if not isinstance(value, list | tuple | dict) else json.dumps(value)
        )


class _Compressor:
    """gzip (level 1) with byte shuffle, as HDF5's filters apply them, computed by threads.

    HDF5 compresses a chunk at a time in the calling thread (h5py holds one lock for
    every HDF5 call); zlib releases the GIL, so with a core to spare the chunks of a large
    array are shuffled and deflated by a thread pool here and written as they are with
    ``write_direct_chunk``. The dataset is the one ``create_dataset(data=...,
    **_filters(True))`` makes (same chunk shape, filter pipeline and stored bytes); a
    reader decompresses it the same way. Without a pool HDF5's own filters compress.

    ``pool`` None: whether to start one is decided (:func:`~geis_pipeline._cores.spare_core`)
    at the file's first array of :data:`_THREADED_BYTES` or more; small files never ask.
    """

    def __init__(self, pool: ThreadPoolExecutor | None = None) -> None:
        self.pool = pool
        self._decided = pool is not None

    def _threads(self, nbytes: int) -> ThreadPoolExecutor | None:
        """The pool for an array of ``nbytes`` (None: HDF5's filters compress it)."""
        if not self._decided and nbytes >= _THREADED_BYTES:
            self._decided = True
            if spare_core():  # on busy cores threads would only compete for them
                self.pool = ThreadPoolExecutor(min(4, os.cpu_count() or 1), "geis-store-gzip")
        return self.pool

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def dataset(self, group: h5py.Group, name: str, values: np.ndarray) -> None:
        """A compressed dataset of ``values`` (numeric, not empty, at least 1-D)."""
        numeric = values.dtype.kind in "biuf" and values.dtype.isnative
        if not numeric or self._threads(values.nbytes) is None:
            group.create_dataset(name, data=values, **_filters(True))
            return
        dataset = group.create_dataset(
            name, shape=values.shape, dtype=values.dtype, **_filters(True)
        )
        self.write(dataset, values, 0)

    def write(self, dataset: h5py.Dataset, values: np.ndarray, start: int) -> None:
        """Rows ``start:start + len(values)`` of ``dataset``; ``start`` is a multiple of the
        chunk rows, and so is ``len(values)`` unless they end the dataset."""
        if self._threads(dataset.size * dataset.dtype.itemsize) is None:
            dataset[start : start + values.shape[0]] = values
            return
        chunk = dataset.chunks
        corners = list(
            itertools.product(
                range(start, start + values.shape[0], chunk[0]),
                *(
                    range(0, extent, step)
                    for extent, step in zip(values.shape[1:], chunk[1:], strict=True)
                ),
            )
        )
        batches = [
            corners[i : i + _CHUNKS_PER_TASK] for i in range(0, len(corners), _CHUNKS_PER_TASK)
        ]

        def compressed(batch: list[tuple[int, ...]]) -> list[bytes]:
            return [_deflate(values, (corner[0] - start, *corner[1:]), chunk) for corner in batch]

        for batch, blobs in zip(batches, self.pool.map(compressed, batches), strict=True):
            for corner, blob in zip(batch, blobs, strict=True):
                dataset.id.write_direct_chunk(corner, blob)


#: Chunks compressed per thread task (a chunk of h5py's guessed shape is ~10-100 kB).
_CHUNKS_PER_TASK = 32
#: An array this large makes a file worth compressing by threads (see _Compressor).
_THREADED_BYTES = 4 << 20


def _deflate(values: np.ndarray, corner: tuple[int, ...], chunk: tuple[int, ...]) -> bytes:
    """One chunk of ``values`` from ``corner``, shuffled and deflated as HDF5 stores it.

    An edge chunk is stored whole, its part beyond the data zero (HDF5's fill value).
    """
    block = values[tuple(slice(low, low + size) for low, size in zip(corner, chunk, strict=True))]
    if block.shape != chunk:
        padded = np.zeros(chunk, dtype=values.dtype)
        padded[tuple(slice(0, size) for size in block.shape)] = block
        block = padded
    # The shuffle filter: the first byte of every element, then every second byte, ...
    elements = np.ascontiguousarray(block).reshape(-1).view(np.uint8)
    shuffled = elements.reshape(-1, values.dtype.itemsize).T.tobytes()
    return zlib.compress(shuffled, _GZIP_LEVEL)


@contextmanager
def _compressor(compress: bool) -> Iterator[_Compressor | None]:
    """A compressor for one file's writes (None: the arrays are stored uncompressed)."""
    if not compress:
        yield None
        return
    compressor = _Compressor()
    try:
        yield compressor
    finally:
        compressor.close()


def _dataset(
    group: h5py.Group, name: str, values: np.ndarray, compress: _Compressor | None
) -> None:
    values = np.asarray(values)
    if values.dtype.kind in "OU":
        # Raw UTF-8 bytes: a file name with undecodable bytes survives the round trip.
        encoded = np.array([_encode(item) for item in values.ravel()], dtype=object).reshape(
            values.shape
        )
        group.create_dataset(name, data=encoded, dtype=_STRING)
        return
    if compress is not None and values.ndim > 0 and values.shape[0] > 0:
        compress.dataset(group, name, values)
        return
    group.create_dataset(name, data=values, **_filters(False))


_GZIP_LEVEL = 1


def _filters(compress: bool) -> dict[str, object]:
    """create_dataset's chunking and compression: gzip level 1 with shuffle, or none."""
    return {
        "chunks": True if compress else None,
        "compression": "gzip" if compress else None,
        "compression_opts": _GZIP_LEVEL if compress else None,
        "shuffle": compress,
    }


#: Raw per-point columns are written this many points at a time: no whole-column copies
#: (a 30,000-sweep experiment's four columns and their complex parts are ~100 MB).
_BLOCK_POINTS = 1 << 18


def _point_dataset(
    group: h5py.Group,
    name: str,
    spectra,
    part,
    n_points: int,
    compress: _Compressor | None,
) -> None:
    """A float64 per-point column written block by block; ``part(spectrum)`` is one sweep's.

    The same dataset (shape, chunks, filters, values) as :func:`_dataset` of the whole column.
    """
    if n_points == 0:
        _dataset(group, name, np.empty(0, dtype=np.float64), compress)
        return
    dataset = group.create_dataset(
        name, shape=(n_points,), dtype=np.float64, **_filters(compress is not None)
    )
    # Compressed blocks hold whole chunks (the rest waits for the next block).
    step = dataset.chunks[0] if compress is not None else 1

    def write(values: np.ndarray, position: int) -> None:
        if compress is not None:
            compress.write(dataset, values, position)
        else:
            dataset[position : position + values.size] = values

    position, pending, size = 0, [], 0
    for spectrum in spectra:
        values = part(spectrum)
        pending.append(values)
        size += values.size
        if size >= _BLOCK_POINTS:
            block = np.concatenate(pending).astype(np.float64)
            whole = size - size % step
            write(block[:whole], position)
            position, pending, size = position + whole, [block[whole:]], size - whole
    if size:
        write(np.concatenate(pending).astype(np.float64), position)


def _counter(spectrum: Spectrum) -> np.ndarray:
    return (
        spectrum.z_ce
        if spectrum.z_ce is not None
        else np.full(spectrum.n_points, np.nan).astype(np.complex128)
    )


def _write_record(
    group: h5py.Group, record: ExperimentRecord, compress: _Compressor | None
) -> None:
    experiment = record.experiment
    metadata = experiment.metadata
    _write_attrs(
        group,
        {
            "area_cm2": metadata.area_cm2,
            "current_setpoint_mA": metadata.current_setpoint_mA,
            "start_time": metadata.start_time.isoformat() if metadata.start_time else None,
            "techniques": list(metadata.techniques),
            "sources": list(metadata.sources),
            "inputs": [vars(item) for item in record.inputs],
            "skipped": [[item.path, item.reason] for item in experiment.skipped],
            # JSON has no NaN: a source without a setpoint is null.
            "setpoints_mA": [
                None if value != value else float(value) for value in metadata.setpoints_mA
            ],
            "warnings": list(metadata.warnings),
            "skipped_sweeps": [
                [item.source, item.sweep_index, item.time_s, item.reason]
                for item in experiment.skipped_sweeps
            ],
        },
    )
    raw = group.create_group("raw")
    spectra = experiment.spectra
    counts = np.array([spectrum.n_points for spectrum in spectra], dtype=np.int64)
    _dataset(raw, "offsets", np.concatenate([[0], np.cumsum(counts)]), compress)
    n_points = int(counts.sum())
    for name, part in (
        ("freq_hz", lambda spectrum: spectrum.freq),
        ("z_real_ohm", lambda spectrum: spectrum.z.real),
        ("z_imag_ohm", lambda spectrum: spectrum.z.imag),
        ("point_time_s", lambda spectrum: spectrum.point_time_s),
    ):
        _point_dataset(raw, name, spectra, part, n_points, compress)
    sources = sorted({spectrum.source for spectrum in spectra})
    source_index = {source: index for index, source in enumerate(sources)}
    per_sweep = {
        "time_s": [spectrum.time_s for spectrum in spectra],
        "current_mA": [spectrum.current_mA for spectrum in spectra],
        "potential_V": [spectrum.potential_V for spectrum in spectra],
        "charge_mAh": [spectrum.charge_mAh for spectrum in spectra],
        "sweep_index": [spectrum.sweep_index for spectrum in spectra],
        "source_index": [source_index[spectrum.source] for spectrum in spectra],
        "incomplete": [spectrum.incomplete for spectrum in spectra],
    }
    for name, values in per_sweep.items():
        _dataset(raw, name, np.asarray(values), compress)
    _dataset(raw, "sources", np.array(sources, dtype=object), compress)
    if any(spectrum.has_counter for spectrum in spectra):
        # A sweep without a counter spectrum: NaN (its imaginary part 0, as complex(NaN) has).
        for name, part in (
            ("z_ce_real_ohm", lambda spectrum: _counter(spectrum).real),
            ("z_ce_imag_ohm", lambda spectrum: _counter(spectrum).imag),
        ):
            _point_dataset(raw, name, spectra, part, n_points, compress)
    potential_ce = np.array([spectrum.potential_ce_V for spectrum in spectra], dtype=np.float64)
    if np.isfinite(potential_ce).any():
        _dataset(raw, "potential_ce_V", potential_ce, compress)
    dc = raw.create_group("dc")
    for name in ("time_s", "potential_V", "current_mA", "charge_mAh"):
        _dataset(dc, name, getattr(experiment.dc_record, name), compress)
    if np.isfinite(experiment.dc_record.potential_ce_V).any():
        _dataset(dc, "potential_ce_V", experiment.dc_record.potential_ce_V, compress)
    _write_results(group, record.stages, record.tracking, record.summary, record.tables, compress)
    for electrode, results in record.electrodes.items():
        _write_results(
            group.create_group(electrode),
            results.stages,
            results.tracking,
            results.summary,
            results.tables,
            compress,
        )


def _write_results(
    group: h5py.Group,
    stages: Mapping[str, StageData],
    tracking_columns: Mapping[str, np.ndarray],
    summary: Mapping[str, object],
    tables: Mapping[str, Mapping[str, np.ndarray]],
    compress: _Compressor | None,
) -> None:
    """One electrode's stages, tracking table, summary and tables into ``group``."""
    for stage_name, stage in stages.items():
        stage_group = group.create_group(stage_name)
        stage_group.attrs["config_hash"] = stage.config_hash
        _write_attrs(stage_group, stage.attrs)
        for name, values in stage.sweeps.items():
            _dataset(stage_group, name, values, compress)
        for subgroup_name, columns in (("points", stage.points), ("grid", stage.grid)):
            if columns:
                subgroup = stage_group.create_group(subgroup_name)
                for name, values in columns.items():
                    _dataset(subgroup, name, values, compress)
    tracking = group.create_group("tracking", track_order=True)  # columns keep their order
    for name, values in tracking_columns.items():
        _dataset(tracking, name, values, compress)
    _write_attrs(group.create_group("summary"), summary)
    for table_name, columns in tables.items():
        table = group.create_group(table_name, track_order=True)
        for name, values in columns.items():
            _dataset(table, name, values, compress)


def read_store(path: str | Path) -> tuple[dict[str, ExperimentRecord], dict[str, object]]:
    """Read a whole result file back (for re-processing).

    Returns
    -------
    records, attrs
        Experiment name -> record, and the file's root attributes.

    Raises
    ------
    StoreError
        Not a geis-pipeline result file, a newer layout, unreadable, or a
        missing or malformed part (the message names it).
    """
    path = Path(path)
    where = "the file"
    try:
        with h5py.File(path, "r") as handle:
            attrs = _check_file(handle, path)
            records = {}
            for name, group in handle["experiments"].items():
                where = f"experiment {name!r}"
                _check_experiment(name, group, path)
                records[name] = _read_record(name, group, path)
            where = "/study"
            study = {name: _study_entry(group) for name, group in handle.get("study", {}).items()}
    except OSError as exc:
        raise StoreError(f"cannot read results: {_why_unreadable(path, exc)}", file=path) from exc
    except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
        # The checks above name the common defects; anything else malformed ends here.
        raise StoreError(f"malformed result file ({where}): {exc}", file=path) from exc
    attrs["study"] = study
    return records, attrs


#: Per-sweep and per-point datasets every experiment's raw/ group holds.
_RAW_SWEEP_COLUMNS = (
    "time_s",
    "current_mA",
    "potential_V",
    "charge_mAh",
    "sweep_index",
    "source_index",
    "incomplete",
)
_RAW_POINT_COLUMNS = ("freq_hz", "z_real_ohm", "z_imag_ohm", "point_time_s")
_DC_COLUMNS = ("time_s", "potential_V", "current_mA", "charge_mAh")


def _check_experiment(name: str, group: object, path: Path) -> None:
    """Raise :class:`StoreError` naming the first missing or inconsistent part."""

    def fail(message: str) -> None:
        raise StoreError(f"experiment {name!r}: {message}", file=path)

    def dataset(parent: h5py.Group, key: str, where: str) -> h5py.Dataset:
        item = parent.get(key)
        if not isinstance(item, h5py.Dataset):
            fail(f"missing dataset {where}/{key}")
        return item

    if name in ("", ".", "..") or "\x00" in name:
        fail("not a valid experiment name")
    if not isinstance(group, h5py.Group):
        fail("is not a group")
    for key in ("raw", "tracking", "summary"):
        if not isinstance(group.get(key), h5py.Group):
            fail(f"missing group {key}/")
    raw = group["raw"]
    offsets = dataset(raw, "offsets", "raw")
    if offsets.ndim != 1 or offsets.shape[0] < 1 or offsets.dtype.kind not in "iu":
        fail("raw/offsets must be a 1-D integer array of n_sweeps + 1 entries")
    offset_values = offsets[()]
    n_sweeps, n_points = offset_values.size - 1, int(offset_values[-1])
    if offset_values[0] != 0 or np.any(np.diff(offset_values) < 1):
        fail("raw/offsets must start at 0 and increase (every sweep has points)")
    for key in _RAW_POINT_COLUMNS:
        if dataset(raw, key, "raw").shape != (n_points,):
            fail(f"raw/{key} must hold {n_points} points (raw/offsets)")
    for key in _RAW_SWEEP_COLUMNS:
        if dataset(raw, key, "raw").shape != (n_sweeps,):
            fail(f"raw/{key} must hold {n_sweeps} sweeps (raw/offsets)")
    sources = dataset(raw, "sources", "raw")
    source_index = raw["source_index"][()]
    if n_sweeps and (source_index.min() < 0 or source_index.max() >= sources.shape[0]):
        fail("raw/source_index points past raw/sources")
    if not isinstance(raw.get("dc"), h5py.Group):
        fail("missing group raw/dc/")
    dc_keys = _DC_COLUMNS + (("potential_ce_V",) if "potential_ce_V" in raw["dc"] else ())
    dc_sizes = {dataset(raw["dc"], key, "raw/dc").shape for key in dc_keys}
    if len(dc_sizes) != 1:
        fail("raw/dc columns differ in length")
    for key in ("z_ce_real_ohm", "z_ce_imag_ohm"):
        if key in raw and dataset(raw, key, "raw").shape != (n_points,):
            fail(f"raw/{key} must hold {n_points} points (raw/offsets)")
    if "potential_ce_V" in raw and dataset(raw, "potential_ce_V", "raw").shape != (n_sweeps,):
        fail(f"raw/potential_ce_V must hold {n_sweeps} sweeps (raw/offsets)")
    _check_results(group, "", n_sweeps, fail)
    counter = group.get(COUNTER)
    if counter is not None:
        if not isinstance(counter, h5py.Group):
            fail(f"{COUNTER}/ is not a group")
        for key in ("tracking", "summary"):
            if not isinstance(counter.get(key), h5py.Group):
                fail(f"missing group {COUNTER}/{key}/")
        if "z_ce_real_ohm" not in raw:
            fail(f"{COUNTER}/ holds results but raw/ has no z_ce_real_ohm")
        _check_results(counter, f"{COUNTER}/", n_sweeps, fail)


def _check_results(group: h5py.Group, where: str, n_sweeps: int, fail) -> None:
    """The stages (and the fit's parameter table) of one electrode's group."""
    for stage_name in STAGES:
        stage = group.get(stage_name)
        if stage is None:
            continue
        if not isinstance(stage, h5py.Group) or "config_hash" not in stage.attrs:
            fail(f"{where}{stage_name}/ lacks its config_hash attribute")
        rows = {item.shape[:1] for item in stage.values() if isinstance(item, h5py.Dataset)}
        if len(rows) > 1 or (rows and rows.pop()[0] > n_sweeps):
            fail(f"{where}{stage_name}/ columns must have one row per processed sweep")
    for name in TABLES:
        table = group.get(name)
        if table is None:
            continue
        if not isinstance(table, h5py.Group):
            fail(f"{where}{name}/ is not a group")
        rows = {item.shape[:1] for item in table.values() if isinstance(item, h5py.Dataset)}
        if len(rows) > 1:
            fail(f"{where}{name}/ columns differ in length")
    fit = group.get("fit")
    if isinstance(fit, h5py.Group) and "parameters" in fit:
        if "parameter_names" not in fit.attrs:
            fail(f"{where}fit/ lacks its parameter_names attribute")
        parameters = fit["parameters"]
        if parameters.ndim != 2:
            fail(f"{where}fit/parameters must be 2-D (sweep, parameter)")
        if "stderr" not in fit or fit["stderr"].shape != parameters.shape:
            fail(f"{where}fit/stderr must match fit/parameters")


def _check_file(handle: h5py.File, path: Path) -> dict[str, object]:
    attrs = dict(handle.attrs)
    if attrs.get("format") != FORMAT:
        raise StoreError("not a geis-pipeline result file", file=path)
    version = int(attrs.get("layout_version", 0))
    if version > LAYOUT_VERSION:
        raise StoreError(
            f"written with layout version {version}; this geis-pipeline reads up to "
            f"{LAYOUT_VERSION}: upgrade geis-pipeline",
            file=path,
        )
    return attrs


def _encode(value: object) -> bytes:
    return str(value).encode("utf-8", "surrogateescape")


def _text(value: object) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


def _values(dataset: h5py.Dataset) -> np.ndarray:
    """A dataset's values; text comes back as str (object array), not bytes."""
    if h5py.check_string_dtype(dataset.dtype) is not None:
        return dataset.asstr(errors="surrogateescape")[()]
    return dataset[()]


def _read_attrs(attrs) -> dict[str, object]:
    """Attributes with the JSON-encoded lists and tables decoded back."""
    decoded: dict[str, object] = {}
    for key, value in attrs.items():
        if isinstance(value, str | bytes) and _text(value)[:1] in "[{":
            try:
                decoded[key] = json.loads(_text(value))
                continue
            except json.JSONDecodeError:
                pass
        decoded[key] = value
    return decoded


def _why_unreadable(path: Path, exc: OSError) -> str:
    """HDF5's reason for not opening ``path``, in words a user can act on."""
    text = str(exc)
    if Path(path).is_dir():
        return "it is a folder, not a result file"
    if "truncated file" in text:
        sizes = re.search(r"eof = (\d+).*stored_eof = (\d+)", text)
        held = f": it holds {int(sizes[1]):,} of {int(sizes[2]):,} bytes" if sizes else ""
        return f"the file is truncated (an interrupted copy, or a full disk?){held}"
    if "file signature not found" in text:
        return "not an HDF5 file (no HDF5 signature)"
    return text


def _read_record(name: str, group: h5py.Group, path: Path) -> ExperimentRecord:
    attrs = _read_attrs(group.attrs)
    raw = group["raw"]
    offsets = raw["offsets"][()]
    freq = raw["freq_hz"][()]
    z = raw["z_real_ohm"][()] + 1j * raw["z_imag_ohm"][()]
    point_time = raw["point_time_s"][()]
    sources = [_text(value) for value in raw["sources"][()]]
    columns = {key: raw[key][()] for key in _RAW_SWEEP_COLUMNS}
    # Layout 2: a 3-electrode cell's counter electrode (absent: none recorded).
    z_ce = (
        raw["z_ce_real_ohm"][()] + 1j * raw["z_ce_imag_ohm"][()] if "z_ce_real_ohm" in raw else None
    )
    potential_ce = (
        raw["potential_ce_V"][()] if "potential_ce_V" in raw else np.full(offsets.size - 1, np.nan)
    )
    spectra = spectra_from_arrays(
        freq,
        z,
        point_time,
        offsets,
        time_s=columns["time_s"],
        current_mA=columns["current_mA"],
        potential_V=columns["potential_V"],
        charge_mAh=columns["charge_mAh"],
        source=[sources[int(index)] for index in columns["source_index"]],
        sweep_index=columns["sweep_index"],
        incomplete=columns["incomplete"],
        z_ce=z_ce,
        potential_ce_V=potential_ce,
    )
    dc = raw["dc"]
    start_time = attrs.get("start_time")
    metadata = ExperimentMetadata(
        area_cm2=float(attrs["area_cm2"]) if "area_cm2" in attrs else None,
        current_setpoint_mA=(
            float(attrs["current_setpoint_mA"]) if "current_setpoint_mA" in attrs else None
        ),
        techniques=tuple(attrs.get("techniques", ())),
        start_time=datetime.fromisoformat(_text(start_time)) if start_time else None,
        sources=tuple(attrs.get("sources", ())),
        setpoints_mA=tuple(
            math.nan if value is None else float(value) for value in attrs.get("setpoints_mA", ())
        ),
        warnings=tuple(str(value) for value in attrs.get("warnings", ())),
    )
    experiment = Experiment(
        spectra=spectra,
        dc_record=DCRecord(
            *(dc[key][()] for key in _DC_COLUMNS),
            dc["potential_ce_V"][()] if "potential_ce_V" in dc else None,
        ),
        metadata=metadata,
    )
    stages, tracking, summary, tables = _read_results(group)
    electrodes = {}
    if isinstance(group.get(COUNTER), h5py.Group):
        electrodes[COUNTER] = ElectrodeResults(*_read_results(group[COUNTER]))
    inputs = tuple(InputFile(**item) for item in attrs.get("inputs", ()))
    skipped = tuple(
        SkippedFile(str(file), str(reason)) for file, reason in attrs.get("skipped", ())
    )
    # Files of layout version 1 before skipped_sweeps existed simply have none.
    skipped_sweeps = tuple(
        SkippedSweep(str(file), int(index), float(time_s), str(reason))
        for file, index, time_s, reason in attrs.get("skipped_sweeps", ())
    )
    if skipped or skipped_sweeps:
        experiment = replace(experiment, skipped=skipped, skipped_sweeps=skipped_sweeps)
    return ExperimentRecord(
        name=name,
        experiment=experiment,
        inputs=inputs,
        stages=stages,
        tracking=tracking,
        summary=summary,
        tables=tables,
        electrodes=electrodes,
    )


def _read_results(group: h5py.Group) -> tuple[dict, dict, dict, dict]:
    """An electrode's (stages, tracking, summary, tables) from its group."""
    stages = {}
    for stage_name in STAGES:
        if stage_name not in group:
            continue
        stage_group = group[stage_name]
        stage_attrs = {
            key: value
            for key, value in _read_attrs(stage_group.attrs).items()
            if key != "config_hash"
        }
        stages[stage_name] = StageData(
            config_hash=_text(stage_group.attrs["config_hash"]),
            sweeps={
                key: _values(value)
                for key, value in stage_group.items()
                if isinstance(value, h5py.Dataset)
            },
            points={key: _values(value) for key, value in stage_group.get("points", {}).items()},
            grid={key: _values(value) for key, value in stage_group.get("grid", {}).items()},
            attrs=stage_attrs,
        )
    tables = {
        name: {key: _values(value) for key, value in group[name].items()}
        for name in TABLES
        if isinstance(group.get(name), h5py.Group)
    }
    return (
        stages,
        {key: _values(value) for key, value in group["tracking"].items()},
        _read_attrs(group["summary"].attrs),
        tables,
    )
