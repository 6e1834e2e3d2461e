"""Experiment kind and step labels from technique, setpoint and DC record (issue 12)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from geis_pipeline.kind import (
    LABELS,
    experiment_kind,
    segment_index,
    segments,
    spectra_labels,
    step_labels,
)
from geis_pipeline.spectrum import ExperimentMetadata, Spectrum

#: A Li | LLZO cell of ~400 ohm: 1 mA polarises it by 0.4 V.
Z_OHM = 400.0


def test_galvanostatic_setpoint_gives_the_direction() -> None:
    current = np.array([0.3, 0.29, -0.3, 0.31])
    labels = step_labels(current, technique="GEIS", setpoint_mA=0.3, impedance_ohm=Z_OHM)
    # the third step carries -0.3 mA against a +0.3 mA setpoint: it is measured as plating
    assert list(labels) == ["strip", "strip", "plate", "strip"]
    plating = step_labels(-current, technique="GEIS", setpoint_mA=-0.3, impedance_ohm=Z_OHM)
    assert list(plating) == ["plate", "plate", "strip", "plate"]


def test_zero_setpoint_is_open_circuit_whatever_the_noise() -> None:
    noise = np.array([0.004, -0.004, 0.002, -0.001])  # +-0.005 mA/cm2 on 0.785 cm2
    labels = step_labels(noise, technique="GEIS", setpoint_mA=0.0, impedance_ohm=1e6)
    assert set(labels) == {"ocv"}


def test_tolerance_is_the_dc_polarisation() -> None:
    # 1 uA through 400 ohm is 0.4 mV: no current; 0.1 mA is 40 mV: under current.
    current = np.array([1e-3, -1e-3, 0.1, -0.1])
    labels = step_labels(current, impedance_ohm=Z_OHM)
    assert list(labels) == ["ocv", "ocv", "strip", "plate"]
    # a potentiostatic technique under a current is at a DC bias, not stripping
    peis = step_labels(current, technique="PEIS", impedance_ohm=Z_OHM)
    assert list(peis) == ["ocv", "ocv", "bias", "bias"]
    # with a known area, a density at or below the configured one is open circuit too
    dense = step_labels(np.array([5e-4]), impedance_ohm=1e6, area_cm2=1.0)
    assert list(dense) == ["ocv"]


def test_rest_techniques_and_unrecorded_currents() -> None:
    labels = step_labels(np.array([0.5, np.nan, np.nan]), technique=["OCV", "PEIS", None])
    assert list(labels) == ["ocv", "unknown", "unknown"]
    # a galvanostatic file with a setpoint but no current record follows the setpoint
    held = step_labels(np.array([np.nan]), technique="GEIS", setpoint_mA=-0.2)
    assert list(held) == ["plate"]


@given(
    st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=30),
    st.floats(10.0, 1e4),
)
def test_labels_flip_with_the_current(currents, impedance) -> None:
    current = np.array(currents)
    labels = step_labels(current, impedance_ohm=impedance)
    flipped = step_labels(-current, impedance_ohm=impedance)
    swap = {"strip": "plate", "plate": "strip", "ocv": "ocv", "unknown": "unknown"}
    assert [swap[label] for label in labels] == list(flipped)
    assert set(labels) <= set(LABELS)
    # no current below 5 mV of polarisation is ever labelled as a current
    small = np.abs(current) * impedance * 1e-3 <= 5e-3
    assert set(labels[small]) <= {"ocv"}


def test_segments_and_kind() -> None:
    labels = np.array(["strip"] * 3 + ["ocv"] * 2 + ["plate"], dtype=object)
    time = np.arange(6) * 60.0
    current = np.array([0.3, 0.3, 0.31, 0.0, 0.0, -0.3])
    assert list(segment_index(labels)) == [0, 0, 0, 1, 1, 2]
    found = segments(labels, time, current)
    assert [(s.label, s.first_step, s.last_step, s.n_steps) for s in found] == [
        ("strip", 0, 2, 3),
        ("ocv", 3, 4, 2),
        ("plate", 5, 5, 1),
    ]
    assert found[0].current_mA == pytest.approx(0.3)
    assert found[1].start_s == 180.0 and found[1].stop_s == 240.0
    kind = experiment_kind(labels, time, current)
    assert kind.kind == "galvanostatic strip/plate" and kind.stripping
    assert kind.description == (
        "galvanostatic strip (3 steps at 0.3 mA), then open circuit (2 steps), "
        "then galvanostatic plate (1 step at -0.3 mA)"
    )
    assert experiment_kind(labels[3:5], time[3:5]).kind == "open circuit"
    assert experiment_kind(np.array(["bias"], dtype=object), time[:1]).kind == (
        "potentiostatic at a DC bias"
    )
    unknown = experiment_kind(np.array(["unknown"], dtype=object), time[:1])
    assert unknown.kind == "unknown" and not unknown.stripping
    assert found[2].as_dict()["current_mA"] == pytest.approx(-0.3)
    assert segments(labels[:0], time[:0]) == ()


def _spectrum(source: str, current_mA: float, r_ohm: float = Z_OHM) -> Spectrum:
    freq = np.logspace(6, 0, 7)
    return Spectrum(
        freq, r_ohm / (1 + 1j * freq * 1e-4), 0.0, np.zeros(7), current_mA=current_mA, source=source
    )


def test_spectra_labels_take_each_files_technique_and_setpoint() -> None:
    spectra = [_spectrum("a.mpt", 0.2), _spectrum("a.mpt", 0.21), _spectrum("b.mpt", 3e-4)]
    metadata = ExperimentMetadata(
        area_cm2=None,
        current_setpoint_mA=0.2,
        techniques=("GEIS", "PEIS"),
        start_time=None,
        sources=("a.mpt", "b.mpt"),
        setpoints_mA=(0.2, math.nan),
    )
    assert list(spectra_labels(spectra, metadata)) == ["strip", "strip", "ocv"]
    # results written before per-file setpoints: the experiment's one setpoint applies
    old = ExperimentMetadata(None, 0.0, ("GEIS",), None, ("a.mpt",))
    assert list(spectra_labels(spectra[:2], old)) == ["ocv", "ocv"]
