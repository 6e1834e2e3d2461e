"""Saved chunks beside the output (``OUT.h5.parts/``), for resuming a killed run.

A saved chunk is one ``.npz`` archive of plain arrays, read back with
``allow_pickle=False``: text columns are stored as fixed-width unicode arrays,
so nothing in ``.parts/`` can make a resuming run execute code. It is written
under a temporary name, fsynced and renamed, so a kill leaves either the whole
archive or none. An archive that cannot be read, or whose shapes do not match
its chunk (a 0-byte or truncated file, something planted), is logged, deleted
and recomputed.

Experiment names never become paths as they are: each experiment's folder is
named by a digest of its name, so a stored name such as ``..`` cannot place a
file outside ``.parts/``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from geis_pipeline.errors import StoreError

__all__ = ["KINDS", "ChunkKey", "ChunkStore", "chunk_digest"]

log = logging.getLogger(__name__)

#: The parts of a stage's chunk output: per-sweep rows, per-point values, shared axes.
KINDS = ("sweeps", "points", "grid")

ChunkKey = tuple[int, int, str]  # start, stop, digest of the chunk's raw data


def chunk_digest(freq: Sequence[np.ndarray], z: Sequence[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for frequencies, impedance in zip(freq, z, strict=True):
        digest.update(np.ascontiguousarray(frequencies).tobytes())
        digest.update(np.ascontiguousarray(impedance).tobytes())
    return digest.hexdigest()[:16]


def _plain(values: np.ndarray) -> np.ndarray:
    """The array as numpy can save without pickle (text: fixed-width unicode)."""
    values = np.asarray(values)
    if values.dtype.kind == "O":
        return np.array([str(item) for item in values.ravel()], dtype=np.str_).reshape(values.shape)
    return values


def _restored(values: np.ndarray) -> np.ndarray:
    """Text back as the object arrays of str the stages produce."""
    return values.astype(object) if values.dtype.kind == "U" else values


class ChunkStore:
    """Finished chunks saved beside the output (atomic, fsynced writes), for resuming.

    A chunk is named by ``(start, stop, digest of its raw data)``.
    """

    def __init__(self, output: Path) -> None:
        self.root = output.with_name(output.name + ".parts")

    def folder(self, experiment: str) -> Path:
        """The experiment's folder: a digest of its name, never the name itself."""
        encoded = experiment.encode("utf-8", "surrogateescape")
        return self.root / f"experiment-{hashlib.sha256(encoded).hexdigest()[:24]}"

    def _path(self, experiment: str, stage: str, stage_hash: str, chunk: ChunkKey) -> Path:
        start, stop, key = chunk
        return self.folder(experiment) / f"{stage}-{stage_hash[:16]}-{start}-{stop}-{key}.npz"

    def load(
        self,
        experiment: str,
        stage: str,
        stage_hash: str,
        chunk: ChunkKey,
        n_points: int | None = None,
    ) -> dict | None:
        """A saved chunk's output, or None (not saved, or unreadable: then deleted).

        Parameters
        ----------
        n_points
            The chunk's number of points: per-point columns of another length
            mean the archive is not this chunk's.
        """
        path = self._path(experiment, stage, stage_hash, chunk)
        if not path.is_file():
            return None
        start, stop, _ = chunk
        try:
            output: dict[str, dict[str, np.ndarray]] = {kind: {} for kind in KINDS}
            with np.load(path, allow_pickle=False) as archive:
                for key in archive.files:
                    kind, name = key.split("/", 1)
                    output[kind][name] = _restored(archive[key])
            if not output["sweeps"]:
                raise ValueError("no per-sweep columns")
            for name, values in output["sweeps"].items():
                if values.ndim == 0 or values.shape[0] != stop - start:
                    raise ValueError(f"column {name} has the wrong number of sweeps")
            for name, values in output["points"].items():
                if n_points is not None and (values.ndim != 1 or values.size != n_points):
                    raise ValueError(f"column {name} has the wrong number of points")
            return output
        # np.load raises many kinds on a damaged archive (EOFError on a 0-byte file,
        # BadZipFile on a truncated one, ValueError on a pickled array): all mean "recompute".
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            log.warning("discarding unreadable saved chunk %s (recomputed): %s", path, exc)
            path.unlink(missing_ok=True)
            return None

    def save(
        self,
        experiment: str,
        stage: str,
        stage_hash: str,
        chunk: ChunkKey,
        output: Mapping[str, Mapping[str, np.ndarray]],
    ) -> None:
        """Save a chunk's output: temporary name, fsync, rename."""
        path = self._path(experiment, stage, stage_hash, chunk)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        arrays = {
            f"{kind}/{name}": _plain(values)
            for kind in KINDS
            for name, values in output.get(kind, {}).items()
        }
        try:
            with open(temporary, "wb") as handle:
                np.savez(handle, **arrays)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except OSError as exc:  # disk full, folder gone: the run stops, nothing half-written
            temporary.unlink(missing_ok=True)
            raise StoreError(f"cannot save a finished chunk: {exc}", file=path) from exc
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def remove_stale_temporaries(self) -> None:
        """Delete half-written archives of runs that were killed (call under the lock)."""
        if self.root.is_dir():
            for temporary in self.root.glob("*/.*.tmp"):
                temporary.unlink(missing_ok=True)

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
