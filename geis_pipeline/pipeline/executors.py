"""Executors: serial, a local process pool, or a Dask cluster run the chunk tasks.

Process-pool workers watch the orchestrator: when it dies (even by SIGKILL) they
exit within a second instead of finishing the queue for nobody.

A Dask cluster runs whatever its clients send, and the client unpickles what
comes back: connect only to a scheduler you trust, over ``tls://`` with the
certificates of ``[executor.tls]`` where the network is not yours alone.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed

from geis_pipeline.config import Config
from geis_pipeline.errors import ConfigError
from geis_pipeline.pipeline.chunks import ChunkTask, process_chunk

__all__ = ["Executor", "dask_security"]

#: How often a pool worker checks that the orchestrator still runs, s.
PARENT_POLL_S = 0.5


def _exit_with_parent(parent_pid: int) -> None:
    """Pool-worker initializer: exit as soon as the orchestrator is gone.

    With ``fork`` the orchestrator is the worker's parent; when it dies the
    worker is re-parented (``getppid`` changes). A daemon thread polls that, so
    a SIGKILLed run leaves no workers computing for nobody.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        os._exit(1)  # no cleanup to do: the orchestrator that wanted the results is gone

    threading.Thread(target=watch, name="geis-parent-watch", daemon=True).start()


def dask_security(config: Config):
    """The ``distributed.Security`` of ``[executor.tls]`` (None when not configured)."""
    tls = config.executor.tls
    if tls.ca_file is None:
        return None
    from distributed.security import Security

    return Security(
        tls_ca_file=tls.ca_file,
        tls_client_cert=tls.cert_file,
        tls_client_key=tls.key_file,
        require_encryption=True,
    )


class Executor:
    """Runs chunk tasks: :meth:`submit` starts them and gives (task, output) as they finish."""

    def __init__(self, config: Config) -> None:
        self.config = config
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
            with ProcessPoolExecutor(
                max_workers=workers, initializer=_exit_with_parent, initargs=(os.getpid(),)
            ) as pool:
                futures: dict[Future, ChunkTask] = {
                    pool.submit(process_chunk, task): task for task in tasks
                }
                try:
                    # A finished future is let go once given out: the caller keeps what it
                    # needs of the output, the rest is freed (not all chunks held to the end).
                    yield (
                        (futures.pop(future), future.result())
                        for future in as_completed(list(futures))
                    )
                finally:
                    for future in list(futures):
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
        security = dask_security(self.config)
        with Client(self.section.scheduler, security=security) as client:
            futures = {client.submit(process_chunk, task, pure=False): task for task in tasks}
            yield ((futures[future], future.result()) for future in dask_completed(futures))
