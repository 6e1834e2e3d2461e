"""Ingest throughput: our EC-Lab .mpt reader against impedance.py's readBioLogic.

Builds a long GEIS loop file by repeating the sweeps of the real
shared/realdata/geis.mpt (31 columns, as EC-Lab writes them) with shifted
times, then reads it with both readers in one run and prints the times and
the ratio. impedance.py returns one flat array (no sweep splitting, no time,
no DC record); ours returns split, validated spectra.

Usage: python benchmarks/ingest_throughput.py [--sweeps 3000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

import geis_pipeline as gp

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
HEADER_LINES = 76
SWEEP_POINTS = 41


def build_loop_file(folder: Path, n_sweeps: int) -> Path:
    lines = (REALDATA / "geis.mpt").read_text(encoding="latin-1").splitlines()
    header, body = lines[:HEADER_LINES], lines[HEADER_LINES:]
    names = header[-1].split("\t")
    time_column = names.index("time/s")
    sweeps = body[29 : 29 + 60 * SWEEP_POINTS]
    span = float(sweeps[-1].split("\t")[time_column]) - float(sweeps[0].split("\t")[time_column])
    rows = []
    for copy in range(-(-n_sweeps // 60)):
        for row in sweeps:
            cells = row.split("\t")
            cells[time_column] = f"{float(cells[time_column]) + copy * (span + 30):.15E}"
            rows.append("\t".join(cells))
    path = folder / "loop_01_GEIS_C01.mpt"
    path.write_text("\n".join(header + rows[: n_sweeps * SWEEP_POINTS]) + "\n", encoding="latin-1")
    return path


def best_of(function, repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    from impedance.preprocessing import readBioLogic

    with tempfile.TemporaryDirectory() as folder:
        path = build_loop_file(Path(folder), arguments.sweeps)
        size_mb = path.stat().st_size / 1e6
        spectra = gp.read_spectra(path)
        freq, z = readBioLogic(str(path))
        impedance_rows = freq > 0
        ours = np.concatenate([spectrum.z for spectrum in spectra])
        assert np.array_equal(ours, z[impedance_rows]), "readers disagree"
        ours_s = best_of(lambda: gp.read_spectra(path), arguments.repeat)
        peer_s = best_of(lambda: readBioLogic(str(path)), arguments.repeat)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"file: {len(spectra)} sweeps x {SWEEP_POINTS} points, 31 columns, {size_mb:.0f} MB")
    print(f"geis-pipeline read_spectra : {ours_s:.3f} s  ({len(spectra) / ours_s:,.0f} sweeps/s)")
    print(f"impedance.py readBioLogic  : {peer_s:.3f} s  ({len(spectra) / peer_s:,.0f} sweeps/s)")
    print(f"ratio (peer / ours)        : {peer_s / ours_s:.1f}x")
    print(f"peak RSS                   : {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
