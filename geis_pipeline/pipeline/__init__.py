"""The staged pipeline: ingest -> kk -> fit -> drt -> track -> store.

The orchestrator is the only place that knows about configs, folders and
files; the stages it calls take arrays and options. Work is cut into chunks of
``executor.chunk_size`` consecutive sweeps (the warm-start chain of the fit
runs within a chunk, from a fresh start at its first sweep), so the same
chunks give the same numbers whichever executor runs them: serial, a local
process pool, or a Dask cluster.

Crash safety and resuming: every finished chunk is saved atomically beside
the output (``OUT.h5.parts/``); the result file itself is only ever replaced
whole (:func:`geis_pipeline.store.write_store`): with the raw data once ingest
is done (while the workers start on the first chunks), every
``executor.publish_interval_s`` (less often for a file so large that rewriting
it would take more than ~5 % of the run, see :data:`PUBLISH_SPACING`) and at
the end; only the final file is compressed (the others are replaced, and
compressing is most of the write time). A run killed at any moment leaves a
result file that opens (the last published one) and the saved chunks; running
the same command again reuses both and computes only what is missing.
Each stage's results carry the hash of the config sections they depend on, so
re-processing with a changed config recomputes only the stages it touches.

Chunks are computed with one BLAS thread (threadpoolctl), in whichever process:
the executor's processes are the parallelism (see
:class:`~geis_pipeline._blas.OneBlasThread`).

Modules: :mod:`~geis_pipeline.pipeline.orchestrator` (:func:`run`,
:func:`reprocess`), :mod:`~geis_pipeline.pipeline.chunks` (the unit of work and
the stage runners), :mod:`~geis_pipeline.pipeline.executors`,
:mod:`~geis_pipeline.pipeline.chunk_store` (saved chunks in ``OUT.h5.parts/``)
and :mod:`~geis_pipeline.pipeline.assembly` (chunks into stored results,
tracking, the study).
"""

from geis_pipeline.pipeline.chunks import STAGE_SECTIONS, ChunkTask, process_chunk, stage_hashes
from geis_pipeline.pipeline.orchestrator import ExperimentReport, RunReport, reprocess, run

__all__ = [
    "STAGE_SECTIONS",
    "ChunkTask",
    "ExperimentReport",
    "RunReport",
    "process_chunk",
    "reprocess",
    "run",
    "stage_hashes",
]
