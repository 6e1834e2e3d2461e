"""One writer per output: the lock file ``OUT.h5.lock`` and the removal of stale temporaries.

The lock is an exclusive ``flock`` on ``OUT.h5.lock``, which holds the PID (and
host) of the run holding it. The kernel releases it when that process dies
however it dies, so a lock file left by a killed run is stale by construction:
the next run takes it over (and says so). Where the file system has no
``flock``, the PID decides: a lock naming a process that still runs on this host
is respected, any other is stale.

Under the lock, nothing else writes this output, so every temporary file a
killed run left (``.OUT.h5.<PID>.tmp``, half-written chunks in ``.parts/``) is
removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import logging
import os
import re
import socket
from pathlib import Path

from geis_pipeline.errors import StoreError

__all__ = ["OutputLock", "remove_stale_temporaries"]

log = logging.getLogger(__name__)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _holder(text: str) -> tuple[int | None, str]:
    """(PID, host) written in a lock file (None when unreadable)."""
    fields = text.split()
    pid = int(fields[0]) if fields and fields[0].isdigit() else None
    return pid, fields[1] if len(fields) > 1 else ""


class OutputLock:
    """Context manager: hold ``OUT.h5.lock`` or raise :class:`StoreError` naming the holder."""

    def __init__(self, output: Path) -> None:
        self.output = Path(output)
        self.path = self.output.with_name(self.output.name + ".lock")
        self._descriptor: int | None = None

    def _refuse(self, text: str) -> StoreError:
        pid, host = _holder(text)
        holder = f"PID {pid}" + (f" on {host}" if host else "") if pid else "another process"
        return StoreError(
            f"another geis-pipeline run ({holder}) is writing this output; wait for it to "
            f"finish or stop it (its lock: {self.path})",
            file=self.output,
        )

    def __enter__(self) -> OutputLock:
        if not self.output.parent.is_dir():
            raise StoreError("cannot write results: its folder does not exist", file=self.output)
        while True:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                previous = os.read(descriptor, 256).decode("ascii", "replace")
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise self._refuse(previous) from None
                except OSError:  # no flock here (some network file systems): trust the PID
                    pid, host = _holder(previous)
                    mine = host in ("", socket.gethostname())
                    if pid is not None and pid != os.getpid() and mine and _running(pid):
                        raise self._refuse(previous) from None
                # The holder may have removed the file between our open and our lock:
                # then we hold a lock on a file nobody else will see; start again.
                try:
                    same = os.stat(self.path).st_ino == os.fstat(descriptor).st_ino
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(descriptor)
                    continue
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(descriptor)
                raise
            break
        pid, _ = _holder(previous)
        if pid is not None:
            log.warning("taking over the stale lock of PID %d (no longer running)", pid)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        os.fsync(descriptor)
        self._descriptor = descriptor
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._descriptor is None:
            return
        # Remove while still holding the lock: a waiting run then finds a new file.
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._descriptor)
        self._descriptor = None


_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")


def remove_stale_temporaries(output: Path) -> None:
    """Delete ``.OUT.h5.<PID>.tmp`` files of killed runs (call while holding the lock)."""
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir():
        return
    for candidate in folder.glob(glob.escape(f".{output.name}.") + "*.tmp"):
        match = _TEMPORARY.match(candidate.name)
        if match and match["name"] == output.name and int(match["pid"]) != os.getpid():
            log.info("removing %s, left by a killed run", candidate)
            candidate.unlink(missing_ok=True)
