"""The assembly's per-sweep columns computed for all sweeps at once equal them sweep by sweep."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from geis_pipeline.fit import REASONS
from geis_pipeline.kind import _largest_modulus
from geis_pipeline.pipeline.assembly import _fit_band, _reason_counts
from geis_pipeline.spectrum import Spectrum
from geis_pipeline.store import StageData

_sweeps = st.lists(st.tuples(st.integers(1, 9), st.integers(0, 2**31 - 1)), min_size=1, max_size=12)


def _spectra(layout: list[tuple[int, int]]) -> tuple[list[Spectrum], list[np.ndarray]]:
    """Random spectra, and a random 'used' mask per sweep (some all False, some all True)."""
    spectra, masks = [], []
    for size, seed in layout:
        rng = np.random.default_rng(seed)
        z = rng.normal(size=size) + 1j * rng.normal(size=size)
        spectra.append(Spectrum(rng.uniform(0.1, 1e6, size), z, 0.0, np.zeros(size)))
        masks.append(rng.random(size) < [0.0, 0.5, 1.0][seed % 3])
    return spectra, masks


@settings(max_examples=100, deadline=None)
@given(_sweeps)
def test_fit_band_is_each_sweeps_used_band(layout) -> None:
    spectra, masks = _spectra(layout)
    fit = StageData("x", points={"used": np.concatenate(masks)})
    band = _fit_band(spectra, fit, len(spectra))
    for step, (spectrum, mask) in enumerate(zip(spectra, masks, strict=True)):
        freq = spectrum.freq[mask] if mask.any() else spectrum.freq
        assert tuple(band[step]) == (freq.min(), freq.max())


@settings(max_examples=100, deadline=None)
@given(_sweeps)
def test_largest_modulus_is_each_sweeps(layout) -> None:
    spectra, _ = _spectra(layout)
    expected = [float(np.abs(spectrum.z).max()) for spectrum in spectra]
    assert _largest_modulus(spectra).tolist() == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from([*REASONS, "other"]), max_size=3), max_size=30))
def test_reason_counts_count_each_code_per_step(steps) -> None:
    reasons = np.array([",".join(codes) for codes in steps], dtype=str)
    counts = _reason_counts(reasons)
    for code in REASONS:
        assert counts[f"n_fit_{code}"] == sum(code in value.split(",") for value in reasons)
    assert _reason_counts(None) == {}
