"""One BLAS thread for the many small solves of this package.

A chunk of a run, a single `check_kk` or `invert_drt` call: all are small
dense solves (~90 unknowns), where BLAS threads only add synchronisation. On a
busy machine spinning threads that wait for a core made the KK check ~3x and a
single DRT inversion ~7x slower (an eigendecomposition of 90 x 90: 180 ms with
two threads at load 4, ~2 ms with one). Process pools are this package's
parallelism; each process computes with one thread.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # threadpoolctl is imported by the first use, not by `import geis_pipeline`
    from threadpoolctl import ThreadpoolController

__all__ = ["OneBlasThread", "one_blas_thread"]


class OneBlasThread:
    """Context manager: one BLAS thread inside, the previous counts restored after.

    threadpoolctl finds and sets the BLAS libraries loaded in the process
    (OpenBLAS, MKL, BLIS). Reentrant and thread-safe (counts are per process):
    the first to enter limits them, the last to leave restores them. The
    libraries are looked up again when modules were imported since the last look
    (scipy brings its own OpenBLAS, loaded by its first import, after numpy's).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._controller: ThreadpoolController | None = None
        self._modules_seen = 0  # len(sys.modules) when the controller looked
        self._limiter: Any = None

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0:
                # Looking up the loaded libraries takes ~1 ms: only when imports happened.
                if self._controller is None or len(sys.modules) != self._modules_seen:
                    from threadpoolctl import ThreadpoolController

                    self._controller = ThreadpoolController()
                    self._modules_seen = len(sys.modules)
                self._limiter = self._controller.limit(limits=1, user_api="blas")
            self._users += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._limiter.restore_original_limits()
                self._limiter = None


one_blas_thread = OneBlasThread()
