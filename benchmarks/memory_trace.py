"""Which process of a run holds the most memory, and when: RSS of the CLI and its workers over time.

Runs ``geis-pipeline run -v`` on an experiment folder (with the code on PYTHONPATH or of
``--checkout``), samples every ``--every`` seconds the resident set (VmRSS) and the
proportional set (Pss: shared pages split between the processes sharing them) of the CLI
process and of each of its children from /proc (Linux), and prints, per process, the peak
and when it was reached, beside the run's log lines (reading, chunks, publishing), so the
peak can be put on a phase of the run. A forked worker starts with the parent's pages
mapped: its RSS counts them, its Pss counts its share.

Usage: python benchmarks/memory_trace.py FOLDER [--workers 2] [--checkout DIR] [--every 0.2]
       [--config FILE]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _configs import run_config

from geis_pipeline.config import config_to_toml


def _status_kb(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _pss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(value) for value in children.read().split()]
    except OSError:
        return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--checkout", type=Path, default=Path("."))
    parser.add_argument("--every", type=float, default=0.2)
    parser.add_argument("--refine", action="store_true", help="keep drt.refine (default off)")
    arguments = parser.parse_args()
    config = run_config(arguments.workers, refine=arguments.refine)
    with tempfile.TemporaryDirectory() as name:
        config_file = Path(name) / "config.toml"
        config_file.write_text(config_to_toml(config))
        output = Path(name) / "out.h5"
        environment = os.environ | {"PYTHONPATH": str(arguments.checkout.resolve())}
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "geis_pipeline", "run", str(arguments.folder), "-c",
             str(config_file), "-o", str(output), "-v"],
            env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        log: list[tuple[float, str]] = []

        def read_log() -> None:
            for line in process.stderr:
                log.append((time.perf_counter() - started, line.rstrip()))

        reader = threading.Thread(target=read_log, daemon=True)
        reader.start()
        peaks: dict[str, tuple[int, int, float]] = {}  # label -> (rss, pss, when)
        samples: list[tuple[float, int, int]] = []  # when, parent rss, total pss
        while process.poll() is None:
            now = time.perf_counter() - started
            total_pss = 0
            parent_rss = 0
            for index, pid in enumerate([process.pid, *_children(process.pid)]):
                label = "cli" if index == 0 else f"worker {pid}"
                rss, pss = _status_kb(pid, "VmRSS:"), _pss_kb(pid)
                if rss is None or pss is None:
                    continue
                total_pss += pss
                parent_rss = rss if index == 0 else parent_rss
                if rss > peaks.get(label, (0, 0, 0.0))[0]:
                    peaks[label] = (rss, pss, now)
            samples.append((now, parent_rss, total_pss))
            time.sleep(arguments.every)
        reader.join(timeout=5)
        elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the CLI and its (joined) workers
    cpu = usage.ru_utime + usage.ru_stime
    print(f"run took {elapsed:.1f} s, {cpu:.1f} s CPU (exit {process.returncode}); "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    for label, (rss, pss, when) in sorted(peaks.items(), key=lambda item: -item[1][0]):
        print(
            f"  {label:<16} peak RSS {rss / 1024:6.0f} MB (Pss {pss / 1024:6.0f} MB)"
            f" at {when:6.1f} s"
        )
    peak_total = max(samples, key=lambda sample: sample[2]) if samples else (0, 0, 0)
    print(f"  all processes: peak Pss {peak_total[2] / 1024:.0f} MB at {peak_total[0]:.1f} s")
    print("CLI RSS over the run (MB), with the log:")
    events = iter(log)
    event = next(events, None)
    step = max(1, len(samples) // 60)
    for index, (when, rss, _) in enumerate(samples):
        while event is not None and event[0] <= when:
            text = event[1]
            if "DEBUG" not in text or "wrote" in text:
                print(f"  {event[0]:6.1f} s  log: {text[:110]}")
            event = next(events, None)
        if index % step == 0:
            print(f"  {when:6.1f} s  CLI {rss / 1024:6.0f} MB")
    for when, text in [event, *events] if event else []:
        if "DEBUG" not in text:
            print(f"  {when:6.1f} s  log: {text[:110]}")


if __name__ == "__main__":
    main()
