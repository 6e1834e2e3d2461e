"""Fuzzing the readers with mutated real files.

Whatever the mutation, a reader either returns valid spectra or raises the
package's own error: never an IndexError, a numpy ValueError, or a hang.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import geis_pipeline as gp
from geis_pipeline.ingest.csv_format import write_csv

# (file, how many leading lines to keep: small inputs keep each example fast)
SAMPLES = {
    "geis.mpt": 76 + 120,
    "EISGALV_EISTest3.DTA": None,
    "exampleDataZPlot.z": None,
    "geis.mpr": None,
    "PEIS_SSB.mpr": None,
    "sample.csv": None,  # written from the first sweeps of geis.mpt by write_csv
}


def _sample_bytes(realdata: Path, name: str) -> bytes:
    if name == "sample.csv":
        target = Path(tempfile.mkdtemp()) / name
        write_csv(target, gp.read_spectra(realdata / "geis.mpt")[:3])
        return target.read_bytes()
    raw = (realdata / name).read_bytes()
    keep = SAMPLES[name]
    if keep is None:
        return raw
    return b"\n".join(raw.split(b"\n")[:keep])


@st.composite
def mutations(draw, size: int):
    """A list of edits: (kind, position, payload)."""
    edits = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "duplicate"]))
        position = draw(st.integers(0, max(size - 1, 0)))
        payload = draw(
            st.one_of(
                st.binary(min_size=1, max_size=8),
                st.sampled_from([b"\t", b"\n", b",", b".", b"-", b"nan", b"inf", b"E+999", b"0"]),
            )
        )
        edits.append((kind, position, payload))
    return edits


def _apply(raw: bytes, edits) -> bytes:
    data = bytearray(raw)
    for kind, position, payload in edits:
        position = min(position, len(data))
        if kind == "flip" and position < len(data):
            data[position] ^= payload[0] or 1
        elif kind == "delete":
            del data[position : position + len(payload) * 8]
        elif kind == "insert":
            data[position:position] = payload
        elif kind == "truncate":
            del data[position:]
        elif kind == "duplicate":
            data[position:position] = data[position : position + 64]
    return bytes(data)


def _check_valid(spectra: list[gp.Spectrum]) -> None:
    for spectrum in spectra:
        assert spectrum.freq.dtype == np.float64
        assert spectrum.z.dtype == np.complex128
        assert np.all(np.isfinite(spectrum.freq))
        assert np.all(spectrum.freq > 0)
        assert np.all(np.isfinite(spectrum.z))
        assert spectrum.freq.shape == spectrum.z.shape


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_mutated_files_give_spectra_or_our_error(realdata: Path, tmp_path: Path, name: str) -> None:
    raw = _sample_bytes(realdata, name)
    target = tmp_path / name

    @settings(
        max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", "60")),
        deadline=2000,  # ms per example: a hang or a quadratic blow-up fails
        suppress_health_check=[HealthCheck.function_scoped_fixture],
        derandomize=True,
    )
    @given(mutations(len(raw)))
    def check(edits) -> None:
        target.write_bytes(_apply(raw, edits))
        try:
            spectra = gp.read_spectra(target)
        except gp.GeisPipelineError as exc:
            assert str(target) in str(exc)
            return
        _check_valid(spectra)

    check()


def test_unmutated_samples_read(realdata: Path, tmp_path: Path) -> None:
    """The fuzz baseline itself is valid (so the mutations are what is tested)."""
    for name in SAMPLES:
        target = tmp_path / name
        target.write_bytes(_sample_bytes(realdata, name))
        _check_valid(gp.read_spectra(target))
