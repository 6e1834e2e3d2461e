"""The orchestrator's own publishing work: assembling the results and writing the file.

Replays a run's publishes from an existing result file (e.g. one a 30,000-sweep run wrote):
its stages' columns are filled chunk by chunk as the orchestrator fills them, and at 25, 50
and 75 % of the chunks and at the end the results are assembled (``assemble_record``: tracking,
summary, segment and cycle tables, DRT events) and written (``write_store``; uncompressed as a
periodic publish, compressed as the final one). Prints wall and CPU seconds (the process's own,
its threads included) of each; ``--repeat`` writes the final file that many more times.

Runs the code on its own PYTHONPATH, so checkouts compare side by side, e.g.
    PYTHONPATH=/tmp/base python benchmarks/publish_speed.py RUN.h5
    PYTHONPATH=. python benchmarks/publish_speed.py RUN.h5

Usage: python benchmarks/publish_speed.py RESULT_FILE [--chunk-size 200] [--repeat 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _configs import run_config

from geis_pipeline.config import config_to_toml
from geis_pipeline.pipeline.assembly import StageColumns, assemble_record, slice_stage
from geis_pipeline.pipeline.chunks import stage_hashes
from geis_pipeline.store import read_store, write_store


def _timed(function, *args, **kwargs) -> tuple[tuple[float, float], object]:
    """((wall s, CPU s of the process), result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return (time.perf_counter() - wall, time.process_time() - cpu), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result_file", type=Path)
    parser.add_argument("--chunk-size", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=0, help="final writes timed again")
    arguments = parser.parse_args()
    config = run_config(2, chunk_size=arguments.chunk_size)
    records, _ = read_store(arguments.result_file)
    name, stored = next(iter(records.items()))
    experiment = stored.experiment
    n_sweeps = len(experiment.spectra)
    offsets = np.concatenate(
        [[0], np.cumsum([spectrum.n_points for spectrum in experiment.spectra])]
    )
    bounds = [
        (start, min(start + arguments.chunk_size, n_sweeps))
        for start in range(0, n_sweeps, arguments.chunk_size)
    ]
    columns = {stage: StageColumns(offsets) for stage in stored.stages}
    hashes = stage_hashes(config)
    print(f"{name}: {n_sweeps} sweeps, {len(bounds)} chunks")
    done = 0
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "out.h5"
        toml = config_to_toml(config)
        for share in (0.25, 0.5, 0.75, 1.0):
            target = round(share * len(bounds))
            for start, stop in bounds[done:target]:
                for stage, data in stored.stages.items():
                    columns[stage].add(start, stop, slice_stage(data, start, stop, offsets))
            done = target
            assembled, record = _timed(
                assemble_record, name, experiment, stored.inputs, columns, hashes, config, n_sweeps
            )
            final = share == 1.0
            written, _ = _timed(
                write_store, output, {name: record}, config_toml=toml,
                package_version="benchmark", compress=final,
            )  # fmt: skip
            kind = "final, compressed" if final else "periodic, uncompressed"
            print(
                f"{share:4.0%} of the chunks: assemble {assembled[0]:.2f} s "
                f"(CPU {assembled[1]:.2f} s), write ({kind}) {written[0]:.2f} s "
                f"(CPU {written[1]:.2f} s)"
            )
        for _ in range(arguments.repeat):
            (wall, cpu), _ = _timed(
                write_store, output, {name: record}, config_toml=toml,
                package_version="benchmark", compress=True,
            )  # fmt: skip
            print(f"final write again: {wall:.2f} s (CPU {cpu:.2f} s)")


if __name__ == "__main__":
    main()
