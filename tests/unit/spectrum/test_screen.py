"""Screening sweeps: each defect found, named, and the good sweeps untouched."""

from __future__ import annotations

import numpy as np
import pytest

import geis_pipeline as gp
from geis_pipeline.spectrum import MIN_POINTS, DCRecord, ExperimentMetadata


def _spectrum(freq: np.ndarray, z: np.ndarray, index: int = 0) -> gp.Spectrum:
    return gp.Spectrum(
        freq=freq,
        z=z,
        time_s=float(index),
        point_time_s=np.zeros(freq.size),
        source="cell.mpt",
        sweep_index=index,
    )


FREQ = np.logspace(6, -1, 30)
Z = 100 + 50 / (1 + 1j * FREQ / 1e3)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda f, z: (f[: MIN_POINTS - 1], z[: MIN_POINTS - 1]), "fewer than"),
        (lambda f, z: (np.r_[f[:5], f[4], f[6:]], z), "repeated frequency"),
        (lambda f, z: (f, np.r_[z[:3], 0, z[4:]]), "zero impedance"),
        (lambda f, z: (np.r_[1e300, f[1:]], z), "implausible frequency"),
        (lambda f, z: (np.r_[f[:-1], 1e-300], z), "implausible frequency"),
        (lambda f, z: (f, np.r_[z[:-1], 1e300]), "implausible |Z|"),
        (lambda f, z: (f, np.r_[z[:-1], 1e-12]), "implausible |Z|"),
    ],
)
def test_each_defect_is_named(change, reason: str) -> None:
    freq, z = change(FREQ.copy(), Z.copy())
    assert reason in gp.sweep_defect(_spectrum(freq, z))
    assert gp.sweep_defect(_spectrum(FREQ, Z)) is None


def test_screen_keeps_good_sweeps_and_records_the_bad() -> None:
    spectra = [_spectrum(FREQ, Z, index) for index in range(5)]
    spectra[2] = _spectrum(FREQ, np.r_[Z[:-1], 0], 2)
    experiment = gp.Experiment(
        tuple(spectra), DCRecord.empty(), ExperimentMetadata(None, None, (), None, ())
    )
    screened = gp.screen_sweeps(experiment)
    assert [s.sweep_index for s in screened.spectra] == [0, 1, 3, 4]
    ((skipped),) = screened.skipped_sweeps
    assert (skipped.source, skipped.sweep_index, skipped.reason) == (
        "cell.mpt",
        2,
        "zero impedance",
    )
    assert gp.screen_sweeps(screened) is screened  # idempotent
