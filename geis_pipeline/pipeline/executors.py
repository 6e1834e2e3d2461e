"""Executors: serial, a local process pool, or a Dask cluster run the chunk tasks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed

from geis_pipeline.config import Config
from geis_pipeline.errors import ConfigError
from geis_pipeline.pipeline.chunks import ChunkTask, process_chunk

__all__ = ["Executor"]


class Executor:
    """Runs chunk tasks: :meth:`submit` starts them and gives (task, output) as they finish."""

    def __init__(self, config: Config) -> None:
        self.section = config.executor

    @contextlib.contextmanager
    def submit(self, tasks: list[ChunkTask]) -> Iterator[Iterator[tuple[ChunkTask, dict]]]:
        """Start the tasks and give an iterator over the finished ones.

        A process pool or a cluster starts computing right away, so the caller's own
        work inside the ``with`` block (publishing the raw data) overlaps the
        workers'; serial tasks run as the iterator is consumed. Leaving the block
        early (an error) cancels the tasks not yet started.
        """
        kind = self.section.kind
        if not tasks:
            yield iter(())
        elif kind == "serial" or (
            kind == "process" and (self.section.workers == 1 or len(tasks) == 1)
        ):
            yield ((task, process_chunk(task)) for task in tasks)
        elif kind == "process":
            workers = min(self.section.workers, len(tasks))
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures: dict[Future, ChunkTask] = {
                    pool.submit(process_chunk, task): task for task in tasks
                }
                try:
                    yield ((futures[future], future.result()) for future in as_completed(futures))
                finally:
                    for future in futures:
                        future.cancel()
        else:
            with self._dask(tasks) as finished:
                yield finished

    @contextlib.contextmanager
    def _dask(self, tasks: list[ChunkTask]) -> Iterator[Iterator[tuple[ChunkTask, dict]]]:
        try:
            from distributed import Client
            from distributed import as_completed as dask_completed
        except ImportError as exc:
            raise ConfigError(
                "the dask executor needs: pip install 'geis-pipeline[dask]'", key="executor.kind"
            ) from exc
        with Client(self.section.scheduler) as client:
            futures = {client.submit(process_chunk, task, pure=False): task for task in tasks}
            yield ((futures[future], future.result()) for future in dask_completed(futures))
