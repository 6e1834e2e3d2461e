"""check_kk_batch against check_kk, spectrum by spectrum, on a mixed set; invariants and truth.

The batch solves the spectra of one grid together (blocks of candidate M for
a few rows, batched normal equations for many), check_kk one at a time: the
verdicts must be the same and the numbers equal to the solvers' rounding. The
set mixes what an operando experiment holds: two grids interleaved, strongly
drifting tails, outliers, incomplete sweeps, and analytic spectra whose
answer is known (a KK-consistent RC network passes, a drifted one fails).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from geis_pipeline.elements import zarc
from geis_pipeline.kk import KKResult, check_kk, check_kk_batch
from geis_pipeline.simulate import SimulationSettings, simulate_experiment

# The tail test's p-value is a tail probability of small χ² differences: equal to
# ~1e-6 between solver paths (the verdicts it feeds compare it with 1e-3).
P_VALUE_ATOL = 1e-5


def rc_network(freq: np.ndarray) -> np.ndarray:
    """Exactly KK-consistent: R_0 and two RC elements (ideal semicircles), ohm."""
    omega = 2.0 * np.pi * freq
    return 30.0 + 100.0 / (1.0 + 1j * omega * 1e-5) + 300.0 / (1.0 + 1j * omega * 1e-2)


def drifted(freq: np.ndarray, z: np.ndarray) -> np.ndarray:
    """z with a real drift on the points below 10 Hz, growing to 20 % of |Z| at the end."""
    elapsed = np.cumsum(2.0 / freq)
    elapsed = elapsed / elapsed[-1]
    return z + 0.2 * np.abs(z[-1]) * np.where(freq < 10.0, 0.4 + 0.6 * elapsed, 0.0)


def noisy(z: np.ndarray, seed: int, noise: float = 0.003) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return z * (1.0 + noise * (rng.standard_normal(z.size) + 1j * rng.standard_normal(z.size)))


def mixed_spectra() -> tuple[list[tuple[np.ndarray, np.ndarray]], list[str]]:
    """Spectra of two simulated experiments (two grids) and analytic ones, interleaved."""
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    kinds: list[str] = []
    for seed, points_per_decade in ((21, 10), (22, 7)):
        settings = SimulationSettings(
            seed=seed,
            n_sweeps=14,
            n_relaxation=0,
            points_per_decade=points_per_decade,
            nonstationary_drift=0.3,
            nonstationary_fraction=0.3,
            outlier_fraction=0.3,
        )
        simulated = simulate_experiment(settings)
        pairs += list(zip(simulated.freq, simulated.z, strict=True))
        kinds += ["simulated"] * len(simulated.freq)
    freq = np.geomspace(1e6, 0.1, 71)
    for seed in range(3):
        pairs.append((freq, noisy(rc_network(freq), seed)))
        kinds.append("consistent")
        pairs.append((freq, noisy(drifted(freq, rc_network(freq)), seed)))
        kinds.append("drifted")
    interleaved = np.random.default_rng(0).permutation(len(pairs))
    return [pairs[i] for i in interleaved], [kinds[i] for i in interleaved]


SPECTRA, KINDS = mixed_spectra()


@pytest.fixture(scope="module", params=[True, False], ids=["truncate", "no-truncate"])
def checked(request: pytest.FixtureRequest) -> tuple[bool, list[KKResult], list[KKResult]]:
    truncate = request.param
    batch = check_kk_batch(SPECTRA, truncate=truncate)
    alone = [check_kk(freq, z, truncate=truncate) for freq, z in SPECTRA]
    return truncate, batch, alone


def test_the_set_exercises_grids_truncation_and_outliers(checked) -> None:
    truncate, batch, _ = checked
    assert len({freq.size for freq, _ in SPECTRA}) >= 3  # two grids and incomplete sweeps
    assert any(result.outliers.size for result in batch)
    if truncate:
        assert any(result.truncated for result in batch)


def test_batch_equals_check_kk_spectrum_by_spectrum(checked) -> None:
    _, batch, alone = checked
    assert len(batch) == len(SPECTRA)
    for position, (together, single) in enumerate(zip(batch, alone, strict=True)):
        where = f"spectrum {position} ({KINDS[position]})"
        assert together.ok == single.ok, where
        assert together.n_elements == single.n_elements, where
        np.testing.assert_array_equal(together.mask, single.mask, err_msg=where)
        np.testing.assert_array_equal(together.outliers, single.outliers, err_msg=where)
        assert together.truncated_below_hz == single.truncated_below_hz or (
            math.isnan(together.truncated_below_hz) and math.isnan(single.truncated_below_hz)
        ), where
        assert together.mu == pytest.approx(single.mu, rel=1e-6, abs=1e-9), where
        assert together.rms == pytest.approx(single.rms, rel=1e-8), where
        assert together.tail_p_value == pytest.approx(single.tail_p_value, abs=P_VALUE_ATOL)
        np.testing.assert_allclose(together.z_fit, single.z_fit, rtol=1e-8, err_msg=where)
        np.testing.assert_allclose(
            together.residuals_real, single.residuals_real, atol=1e-10, err_msg=where
        )
        np.testing.assert_allclose(
            together.residuals_imag, single.residuals_imag, atol=1e-10, err_msg=where
        )


def test_results_are_consistent_in_themselves(checked) -> None:
    _, batch, _ = checked
    for (freq, z), result in zip(SPECTRA, batch, strict=True):
        used = result.points_used
        # The residuals are those of z_fit, and rms is theirs over the points used.
        np.testing.assert_allclose(result.residuals_real, (z.real - result.z_fit.real) / abs(z))
        np.testing.assert_allclose(result.residuals_imag, (z.imag - result.z_fit.imag) / abs(z))
        squares = np.concatenate([result.residuals_real[used], result.residuals_imag[used]]) ** 2
        assert result.rms == pytest.approx(math.sqrt(squares.mean()), rel=1e-9)
        # Truncation drops a low-frequency tail: the kept points are the top of the grid.
        if result.truncated:
            np.testing.assert_array_equal(result.mask, freq >= result.truncated_below_hz)
        else:
            assert result.mask.all()
        outliers = result.outliers
        assert np.all(np.diff(outliers) > 0) and np.all((outliers >= 0) & (outliers < freq.size))
        assert not used[outliers].any()
        assert 1 <= result.n_elements <= freq.size
        assert 0.0 <= result.tail_p_value <= 1.0
        assert result.ok == (result.reason == "")
        assert result.ok == (result.rms <= 0.01 and result.reason == "")


def test_known_answers(checked) -> None:
    truncate, batch, _ = checked
    for kind, result in zip(KINDS, batch, strict=True):
        if kind == "consistent":  # exactly KK-consistent at 0.3 % noise
            assert result.ok and not result.truncated, result.reason
            assert result.rms < 0.006
        elif kind == "drifted" and truncate:  # cut at the drift, then consistent
            assert result.truncated and result.ok, result.reason
            assert 3.0 <= result.truncated_below_hz <= 30.0
        elif kind == "drifted":  # the drift is a KK violation
            assert not result.ok
            assert "tail violates KK" in result.reason


def test_zarc_spectra_pass_in_a_batch_of_one_and_of_many() -> None:
    """A CPE arc is KK-consistent too: the same verdict alone, in a batch of 1, of 40."""
    freq = np.geomspace(7e6, 1.0, 69)
    z = 60.0 + zarc(freq, 140.0, 2e-6, 0.85)
    spectra = [(freq, noisy(z, seed)) for seed in range(40)]
    many = check_kk_batch(spectra)
    assert all(result.ok for result in many)
    for (f, values), together in zip(spectra[:3], many[:3], strict=True):
        (one,) = check_kk_batch([(f, values)])
        assert one.n_elements == together.n_elements == check_kk(f, values).n_elements
