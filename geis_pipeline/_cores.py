"""Whether this machine has a core to spare, for work that a second thread or process can share."""

from __future__ import annotations

import os
import time

__all__ = ["spare_core"]

#: How long the cores' idle time is sampled, s (a few of the kernel's 10 ms ticks per core).
SAMPLE_S = 0.1


def _cpu_times() -> tuple[int, int]:
    """(idle + iowait, total) ticks of all cores since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as handle:
        ticks = [int(value) for value in handle.readline().split()[1:9]]
    return ticks[3] + ticks[4], sum(ticks)


def spare_core() -> bool:
    """Whether a core besides the one this process uses is idle now (sampled for
    :data:`SAMPLE_S`; False where /proc/stat cannot tell, e.g. not Linux).

    Splitting work over two threads or processes pays only with a core nobody uses: on
    busy cores the second part competes with the first and adds its own overhead
    (measured: 5-25 % more CPU and no time saved at load ~2.3 on 2 cores). This process
    sleeps while sampling, so its own core counts as idle: a spare core is more than one
    idle (a load average would lag: after a run's workers finish it stays high a minute).
    """
    try:
        idle_before, total_before = _cpu_times()
        time.sleep(SAMPLE_S)
        idle_after, total_after = _cpu_times()
    except (OSError, ValueError, IndexError):
        return False
    if total_after <= total_before:
        return False
    idle_cores = (idle_after - idle_before) / (total_after - total_before) * (os.cpu_count() or 1)
    return idle_cores >= 1.5
