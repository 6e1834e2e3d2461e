"""Peak detection, process windows and tracking through time steps."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from geis_pipeline.drt import DEFAULT_WINDOWS, DRTPeak, track_peaks
from geis_pipeline.drt.peaks import detect_peaks, validate_windows
from geis_pipeline.errors import DRTError

LOG_TAU = np.linspace(math.log(1e-9), math.log(1e2), 2201)


def gaussian_peak(log10_tau: float, R: float, sigma_decades: float) -> np.ndarray:
    """A Gaussian in log τ with area R over ln τ."""
    sigma = sigma_decades * math.log(10)
    centre = log10_tau * math.log(10)
    return R / (sigma * math.sqrt(2 * math.pi)) * np.exp(-0.5 * ((LOG_TAU - centre) / sigma) ** 2)


def test_detect_peaks_finds_positions_areas_widths_and_processes() -> None:
    gamma = gaussian_peak(-6.3, 50.0, 0.2) + gaussian_peak(-3.5, 200.0, 0.3)
    peaks = detect_peaks(LOG_TAU, gamma, validate_windows(DEFAULT_WINDOWS))
    assert len(peaks) == 2
    gb, interface = peaks
    assert math.log10(gb.tau) == pytest.approx(-6.3, abs=0.005)
    assert math.log10(interface.tau) == pytest.approx(-3.5, abs=0.005)
    assert gb.R == pytest.approx(50.0, rel=1e-3)
    assert interface.R == pytest.approx(200.0, rel=1e-3)
    fwhm = 2 * math.sqrt(2 * math.log(2))
    assert interface.width == pytest.approx(0.3 * fwhm, rel=1e-2)
    assert (gb.process, interface.process) == ("gb", "int")


def test_detect_peaks_ignores_ripples_below_the_prominence_and_keeps_edge_peaks() -> None:
    gamma = gaussian_peak(-3, 100.0, 0.3) + gaussian_peak(-9, 30.0, 0.3)
    ripple = 1e-3 * gamma.max() * np.sin(np.arange(LOG_TAU.size) / 3.0) ** 2
    peaks = detect_peaks(LOG_TAU, gamma + ripple, {})
    assert len(peaks) == 2
    assert peaks[0].process is None
    assert detect_peaks(LOG_TAU, np.zeros_like(LOG_TAU), {}) == ()


@pytest.mark.parametrize(
    "windows",
    [
        {"gb": (1e-5, 1e-7)},
        {"gb": (0.0, 1e-5)},
        {"gb": (1e-7, 1e-5), "int": (1e-6, 1e-1)},
        {"gb": "wide"},
        [(1e-7, 1e-5)],
    ],
)
def test_bad_windows_raise(windows: object) -> None:
    with pytest.raises(DRTError) as caught:
        validate_windows(windows)  # type: ignore[arg-type]
    assert caught.value.key == "windows"


@dataclass(frozen=True)
class FakeResult:
    ok: bool
    peaks: tuple[DRTPeak, ...]


def peak(tau: float, R: float) -> DRTPeak:
    return DRTPeak(tau=tau, R=R, width=0.5, height=R, process=None)


def test_track_peaks_reports_splits_appearances_and_failures_instead_of_guessing() -> None:
    steps = [
        FakeResult(True, (peak(2e-7, 50), peak(2e-4, 100))),
        FakeResult(True, (peak(2e-7, 50), peak(2e-4, 120))),
        # The interface peak splits in two of similar size: no single value.
        FakeResult(True, (peak(2e-7, 50), peak(1e-4, 70), peak(3e-3, 80))),
        FakeResult(False, ()),
        # A ripple of 5 % beside the interface peak is not a split.
        FakeResult(True, (peak(2e-7, 50), peak(2e-4, 160), peak(3e-2, 8))),
        # The grain-boundary peak vanishes; a peak outside every window appears.
        FakeResult(True, (peak(2e-4, 180), peak(10.0, 5))),
    ]
    track = track_peaks(steps)
    interface = track["int"]
    assert np.allclose(interface.R, [100, 120, np.nan, np.nan, 160, 180], equal_nan=True)
    assert np.allclose(interface.R_window, [100, 120, 150, np.nan, 168, 180], equal_nan=True)
    assert list(interface.n_peaks) == [1, 1, 2, 0, 1, 1]
    assert list(track.ok) == [True, True, True, False, True, True]
    kinds = [(event.step, event.kind, event.process) for event in track.events]
    assert kinds == [
        (2, "split", "int"),
        (3, "failed", None),
        (4, "merge", "int"),
        (5, "vanish", "gb"),
        (5, "unassigned", None),
    ]
    assert len(track) == 6
    with pytest.raises(DRTError):
        track_peaks(steps, split_fraction=0.0)


def test_window_events_span_the_whole_experiment_and_skip_failed_steps() -> None:
    from geis_pipeline.drt import window_events

    counts = {"int": np.array([1, 1, 2, 2, 0, 0, 1]), "gb": np.array([1, 1, 1, 1, 1, 0, 1])}
    ok = np.array([True, True, True, True, True, False, True])
    events = window_events(counts, ok)
    found = [(event.step, event.process, event.kind) for event in events]
    # Step 5 failed: step 6 is compared with step 4 (gb stays, int reappears).
    assert found == [(2, "int", "split"), (4, "int", "vanish"), (6, "int", "appear")]
    assert window_events({}) == ()
