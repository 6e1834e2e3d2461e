"""Saved chunks beside the output (``OUT.h5.parts/``), for resuming a killed run."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["ChunkKey", "ChunkStore", "chunk_digest"]

log = logging.getLogger(__name__)

ChunkKey = tuple[int, int, str]  # start, stop, digest of the chunk's raw data


def chunk_digest(freq: Sequence[np.ndarray], z: Sequence[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for frequencies, impedance in zip(freq, z, strict=True):
        digest.update(np.ascontiguousarray(frequencies).tobytes())
        digest.update(np.ascontiguousarray(impedance).tobytes())
    return digest.hexdigest()[:16]


class ChunkStore:
    """Finished chunks saved beside the output (atomic writes), for resuming.

    A chunk is named by ``(start, stop, digest of its raw data)``.
    """

    def __init__(self, output: Path) -> None:
        self.root = output.with_name(output.name + ".parts")

    def _path(self, experiment: str, stage: str, stage_hash: str, chunk: ChunkKey) -> Path:
        start, stop, key = chunk
        return self.root / experiment / f"{stage}-{stage_hash[:16]}-{start}-{stop}-{key}.npz"

    def load(self, experiment: str, stage: str, stage_hash: str, chunk: ChunkKey) -> dict | None:
        path = self._path(experiment, stage, stage_hash, chunk)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=True) as archive:
                output: dict[str, dict[str, np.ndarray]] = {"sweeps": {}, "points": {}, "grid": {}}
                for key in archive.files:
                    kind, name = key.split("/", 1)
                    output[kind][name] = archive[key]
                return output
        except (OSError, ValueError, KeyError) as exc:  # a damaged part is recomputed
            log.warning("ignoring unreadable saved chunk %s: %s", path, exc)
            return None

    def save(self, experiment: str, stage: str, stage_hash: str, chunk: ChunkKey, output) -> None:
        path = self._path(experiment, stage, stage_hash, chunk)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        arrays = {
            f"{kind}/{name}": values
            for kind in ("sweeps", "points", "grid")
            for name, values in output.get(kind, {}).items()
        }
        np.savez(temporary, **arrays)
        os.replace(temporary, path)

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
