"""The fit's numpy NNLS reaches scipy's optimum."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import nnls as scipy_nnls

from geis_pipeline._nnls import nnls
from geis_pipeline.fit.initial import arc_decomposition


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 30), st.integers(0, 20), st.floats(-1.0, 1.0))
def test_matches_scipy_on_full_rank_problems(seed, n_columns, extra_rows, shift) -> None:
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((n_columns + extra_rows + 1, n_columns))
    target = rng.standard_normal(matrix.shape[0]) + shift * matrix.sum(axis=1)
    ours, residual = nnls(matrix, target, maxiter=50 * n_columns)
    reference, reference_residual = scipy_nnls(matrix, target, maxiter=50 * n_columns)
    assert np.all(ours >= 0)
    assert residual == pytest.approx(reference_residual, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(ours, reference, atol=1e-8 * max(1.0, np.abs(reference).max()))


def test_iteration_limit_raises() -> None:
    rng = np.random.default_rng(1)
    matrix = rng.standard_normal((40, 20))
    with pytest.raises(RuntimeError, match="iteration limit"):
        nnls(matrix, matrix @ np.abs(rng.standard_normal(20)), maxiter=1)


def test_start_values_as_with_scipy(monkeypatch) -> None:
    """The fit's arc decomposition gives scipy's answer (the NNLS it replaced)."""
    freq = np.geomspace(7e6, 1, 69)
    omega = 2 * np.pi * freq
    z = 8 + 120 / (1 + (1j * omega * 1e-6) ** 0.9) + 400 / (1 + (1j * omega * 2e-3) ** 0.8)
    z = z + 1j * omega * 1e-7 + 1 / (1e-3 * (1j * omega) ** 0.5)
    ours = arc_decomposition(freq, z, tails=[("CPE", 0.5)])
    monkeypatch.setattr("geis_pipeline.fit.initial.nnls", scipy_nnls)
    reference = arc_decomposition(freq, z, tails=[("CPE", 0.5)])
    assert ours[0] == pytest.approx(reference[0], rel=1e-7)
    assert ours[1] == pytest.approx(reference[1], rel=1e-6, abs=1e-15)
    assert len(ours[2]) == len(reference[2])
    for (r, tau), (r_ref, tau_ref) in zip(ours[2], reference[2], strict=True):
        assert r == pytest.approx(r_ref, rel=1e-6)
        assert tau == pytest.approx(tau_ref, rel=1e-6)
    np.testing.assert_allclose(ours[3], reference[3], rtol=1e-6)
