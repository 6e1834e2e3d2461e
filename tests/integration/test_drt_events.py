"""DRT peak events (split / appear / vanish) stored per experiment and drawn on the DRT map."""

from __future__ import annotations

import numpy as np
from conftest import serial_config

import geis_pipeline as gp
from geis_pipeline import plot
from geis_pipeline.elements import zarc
from geis_pipeline.pipeline import run

SPLIT_STEP = 10


def _spectra(n_steps: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """A series R, a gb arc and an interface arc that splits into two at SPLIT_STEP."""
    freq = np.logspace(6, -1, 71)
    rng = np.random.default_rng(4)
    sweeps = []
    for step in range(n_steps):
        z = 50 + zarc(freq, 40.0, 2e-6 / 40.0, 1.0)  # gb: tau = 2e-6 s
        if step < SPLIT_STEP:
            z = z + zarc(freq, 100.0, 1e-3**0.95 / 100.0, 0.95)
        else:  # two processes a decade and a half apart (Lu 2021: charge transfer splits)
            for tau in (10**-3.75, 10**-2.25):
                z = z + zarc(freq, 50.0, tau**0.95 / 50.0, 0.95)
        sweeps.append(z * (1 + 0.001 * rng.standard_normal(freq.size)))
    return freq, np.array(sweeps)


def test_a_peak_split_is_stored_as_an_event(tmp_path, mpt_writer) -> None:
    freq, z = _spectra()
    mpt_writer(
        tmp_path / "split" / "cell_01_GEIS_C01.mpt",
        "GEIS",
        freq,
        z,
        current_mA=np.full(len(z), 0.1),
        potential_V=np.full(len(z), 0.05),
    )
    run([tmp_path / "split"], serial_config(), tmp_path / "run.h5")
    results = gp.open_results(tmp_path / "run.h5")["split"]
    events = results.drt_events()
    splits = events[(events.kind == "split") & (events.process == "int")]
    assert list(splits.step) == [SPLIT_STEP], events
    assert splits.iloc[0].n_peaks_before == 1 and splits.iloc[0].n_peaks == 2
    assert splits.iloc[0].time_s == results.tracking().time_s[SPLIT_STEP]
    # No event where nothing happens.
    assert not ((events.step != SPLIT_STEP) & (events.process == "int")).any()
    figure = plot.drt_map(results)
    labels = [text.get_text() for axis in figure.axes for text in axis.texts]
    assert any("split" in label for label in labels)
