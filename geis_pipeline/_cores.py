"""Whether this machine has a core to spare, for work that a second thread or process can share."""

from __future__ import annotations

import os

__all__ = ["idle_core"]


def idle_core() -> bool:
    """Whether the load average (last minute) is at most the cores less one.

    Splitting work over two threads or processes pays only with a core nobody uses: on
    busy cores the second part competes with the first and adds its own overhead
    (measured: +5-25 % CPU and no time saved at load ~2.3 on 2 cores).
    """
    try:
        load = os.getloadavg()[0]
    except OSError:
        return False
    return load <= (os.cpu_count() or 1) - 1
