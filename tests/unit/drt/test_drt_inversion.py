"""The cvxpy problem: solvers agree, failures are reported, reuse and masks are exact."""

from __future__ import annotations

import math

import cvxpy as cp
import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components

from geis_pipeline.drt import build_drt_problem, invert_drt, invert_drt_batch
from geis_pipeline.drt._block_qp import BlockDAQP
from geis_pipeline.elements import inductor, zarc
from geis_pipeline.errors import DRTError

FREQ = np.geomspace(1e6, 1e-2, 81)
LAM = 0.5
# Solutions agree to solver precision: 1e-3 of max γ (weakly determined γ beyond
# the data range moves most between solves).
GAMMA_TOLERANCE = 1e-3


def assert_same_gamma(actual: np.ndarray, expected: np.ndarray) -> None:
    assert np.max(np.abs(actual - expected)) < GAMMA_TOLERANCE * expected.max()


def spectrum(seed: int, R_int: float = 150.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = (
        50.0
        + inductor(FREQ, 1e-7)
        + zarc(FREQ, 60.0, 1e-6**0.9 / 60.0, 0.9)
        + zarc(FREQ, R_int, 1e-3**0.85 / R_int, 0.85)
    )
    return z + 0.005 * np.abs(z) * (
        rng.standard_normal(FREQ.size) + 1j * rng.standard_normal(FREQ.size)
    )


@pytest.fixture(scope="module")
def problem():
    return build_drt_problem(FREQ, lam=LAM, batch_size=4)


def test_problem_is_dpp_on_the_qp_path(problem) -> None:
    problem.solve(spectrum(0))
    compiled = problem._compiled_problem(1, problem.options.solver).problem
    assert compiled.is_dpp(quad_form_dpp="qp")
    assert compiled.parameters() and not compiled.constraints


def test_batched_problem_reaches_daqp_as_bounds_only_blocks(problem) -> None:
    problem.solve_many([spectrum(seed) for seed in range(4)])
    compiled = problem._compiled_problem(4, "DAQP").problem
    data, _, _ = compiled.get_problem_data(BlockDAQP())
    # No constraint rows (x >= 0 are bounds) and one Hessian block per spectrum.
    assert data["A"].shape[0] == 0 and data["F"].shape[0] == 0
    assert np.all(data["lower_bounds"] == 0)
    n_blocks, _ = connected_components(data["P"], directed=False)
    assert n_blocks == 4


def test_block_daqp_matches_clarabel_when_blocks_interleave() -> None:
    # Variables 0 and 2 are coupled, 1 and 3 are: blocks that are not slices.
    hessian = np.array(
        [[2.0, 0.0, 0.6, 0.0], [0.0, 1.0, 0.0, 0.3], [0.6, 0.0, 1.5, 0.0], [0.0, 0.3, 0.0, 3.0]]
    )
    x = cp.Variable(4, nonneg=True)
    problem = cp.Problem(
        cp.Minimize(0.5 * cp.quad_form(x, hessian) + np.array([-1.0, 2.0, -3.0, -1.0]) @ x)
    )
    problem.solve(solver=BlockDAQP())
    ours, value = x.value.copy(), problem.value
    assert problem.status == "optimal"
    problem.solve(solver="CLARABEL")
    assert ours == pytest.approx(x.value, abs=1e-7)
    assert value == pytest.approx(problem.value, rel=1e-7)
    assert abs(ours[1]) < 1e-12  # an active bound


def test_block_daqp_refuses_constraint_rows() -> None:
    x = cp.Variable(2)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(x)), [x[0] + x[1] == 1])
    with pytest.raises(cp.error.SolverError, match="bounds only"):
        problem.solve(solver=BlockDAQP())


@pytest.mark.parametrize("inductance", [False, True])
def test_daqp_straight_from_cvxpys_canonical_data_equals_the_cvxpy_solve(inductance: bool) -> None:
    # The default path hands each spectrum's P and q to DAQP directly once cvxpy's
    # canonical data of a block was found to be exactly those; cvxpy's own solve of
    # the batched problem (the path for other solvers) gives the same optimum.
    spectra = [spectrum(seed, R_int=100.0 * (seed + 1)) for seed in range(4)]
    direct = build_drt_problem(FREQ, lam=1e-3, inductance=inductance, refine=False)
    through_cvxpy = build_drt_problem(FREQ, lam=1e-3, inductance=inductance, refine=False)
    through_cvxpy._direct = False  # as if the probe had found another canonical form
    ours = direct.solve_many(spectra)
    assert direct._direct is True
    theirs = through_cvxpy.solve_many(spectra)
    for one, other in zip(ours, theirs, strict=True):
        assert one.ok and other.ok and one.status == other.status == "optimal"
        assert np.max(np.abs(one.gamma - other.gamma)) < 1e-8 * other.gamma.max()
        assert one.R_inf == pytest.approx(other.R_inf, rel=1e-9, abs=1e-9)
        assert one.L == pytest.approx(other.L, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("lam", [1e-7, 1e-3, 10.0])
def test_daqp_and_nnls_reach_the_same_optimum(lam: float) -> None:
    # Both are exact methods (active set): they agree far below solver tolerances,
    # down to the smallest λ the search allows (the worst-conditioned problem).
    spectra = [(FREQ, spectrum(seed, R_int=100.0 * (seed + 1))) for seed in range(5)]
    daqp = invert_drt_batch(spectra, lam=lam, solver="DAQP", batch_size=3)
    nnls = invert_drt_batch(spectra, lam=lam, solver="NNLS")
    for ours, exact in zip(daqp, nnls, strict=True):
        assert ours.ok and exact.ok
        assert np.max(np.abs(ours.gamma - exact.gamma)) < 1e-5 * exact.gamma.max()
        assert ours.R_inf == pytest.approx(exact.R_inf, rel=1e-6)


@pytest.mark.parametrize("solver", ["CLARABEL", "OSQP", "SCS", "NNLS"])
def test_solvers_agree_with_the_default(solver: str) -> None:
    z = spectrum(1)
    reference = invert_drt(FREQ, z, lam=LAM)
    assert reference.solver == "DAQP"
    other = invert_drt(FREQ, z, lam=LAM, solver=solver)
    assert reference.ok and other.ok and other.solver == solver
    # Stated tolerance: 0.1 % of the largest γ, 0.1 % of R_inf.
    assert_same_gamma(other.gamma, reference.gamma)
    assert other.R_inf == pytest.approx(reference.R_inf, rel=1e-3)
    assert [p.tau for p in other.peaks] == pytest.approx([p.tau for p in reference.peaks], rel=1e-2)


def test_forced_solver_failure_is_reported_not_zeros() -> None:
    result = invert_drt(FREQ, spectrum(2), lam=LAM, solver="SCS", solver_options={"max_iters": 1})
    assert not result.ok
    assert result.status != "optimal"
    assert np.all(np.isnan(result.gamma)) and math.isnan(result.R_inf)
    assert np.all(np.isnan(result.z_fit)) and result.peaks == ()


@pytest.mark.parametrize(
    ("solver", "limit"), [("OSQP", {"max_iter": 1}), ("DAQP", {"iter_limit": 1})]
)
def test_failure_in_a_batch_is_isolated_to_its_spectrum(solver: str, limit: dict) -> None:
    spectra = [(FREQ, spectrum(seed)) for seed in range(3)]
    results = invert_drt_batch(spectra, lam=LAM, batch_size=3, solver=solver)
    assert all(result.ok for result in results)
    failing = invert_drt_batch(spectra, lam=LAM, batch_size=3, solver=solver, solver_options=limit)
    assert [result.ok for result in failing] == [False, False, False]
    assert {result.status for result in failing} == {"user_limit"}
    assert all(np.all(np.isnan(result.gamma)) for result in failing)


def test_reused_problem_equals_a_fresh_one(problem) -> None:
    problem.solve(spectrum(3, R_int=900.0))
    reused = problem.solve(spectrum(4))
    fresh = build_drt_problem(FREQ, lam=LAM).solve(spectrum(4))
    assert_same_gamma(reused.gamma, fresh.gamma)
    assert reused.R_inf == pytest.approx(fresh.R_inf, rel=1e-4)


def test_repeated_invert_drt_reuses_a_bounded_cache_with_the_same_result() -> None:
    """invert_drt keeps the compiled problems of the last few grids and options."""
    from geis_pipeline.drt import inversion

    inversion._PROBLEMS.clear()
    spectra = [spectrum(seed, R_int=100.0 * (seed + 1)) for seed in range(3)]
    cached = [invert_drt(FREQ, z, lam=LAM) for z in spectra]
    assert len(inversion._PROBLEMS) == 1
    for z, result in zip(spectra, cached, strict=True):
        fresh = build_drt_problem(FREQ, lam=LAM).solve(z)
        assert_same_gamma(result.gamma, fresh.gamma)
        assert result.R_inf == pytest.approx(fresh.R_inf, rel=1e-4)
        for peak, fresh_peak in zip(result.peaks, fresh.peaks, strict=True):
            assert peak.R == pytest.approx(fresh_peak.R, rel=1e-4)
    invert_drt(FREQ, spectra[0], lam=LAM, derivative=2)  # other options: another problem
    for top in np.geomspace(1.0, 2.0, inversion._PROBLEMS.size):  # more grids than it holds
        invert_drt(FREQ * top, spectra[0], lam=LAM)
    assert len(inversion._PROBLEMS) == inversion._PROBLEMS.size


def test_batched_solve_equals_single_solves(problem) -> None:
    spectra = [spectrum(seed, R_int=100.0 * (seed + 1)) for seed in range(6)]
    batched = problem.solve_many(spectra)
    for z, result in zip(spectra, batched, strict=True):
        single = problem.solve(z)
        assert_same_gamma(result.gamma, single.gamma)


def test_masked_points_are_ignored(problem) -> None:
    z = spectrum(5)
    keep = FREQ > 0.3  # drop the low-frequency tail
    corrupted = z.copy()
    corrupted[~keep] *= 3.0  # what the masked points hold must not matter
    masked = problem.solve(corrupted, mask=keep)
    kept_only = build_drt_problem(
        FREQ[keep], lam=LAM, tau_range=(problem.tau[0], problem.tau[-1])
    ).solve(z[keep])
    assert np.allclose(masked.tau, kept_only.tau)
    assert_same_gamma(masked.gamma, kept_only.gamma)
    assert masked.R_inf == pytest.approx(kept_only.R_inf, rel=1e-4)
    assert np.array_equal(masked.mask, keep)


def test_incomplete_sweep_shares_the_full_grid_in_a_batch() -> None:
    full, partial = spectrum(6), spectrum(7)
    cut = 50
    progress: list[tuple[int, int]] = []
    results = invert_drt_batch(
        [(FREQ, full), (FREQ[:cut], partial[:cut])],
        lam=LAM,
        progress=lambda done, total: progress.append((done, total)),
    )
    assert results[1].freq.size == cut and results[1].z_fit.size == cut
    assert np.array_equal(results[0].tau, results[1].tau)
    alone = build_drt_problem(FREQ, lam=LAM).solve(
        np.concatenate([partial[:cut], np.ones(FREQ.size - cut)]),
        mask=np.arange(FREQ.size) < cut,
    )
    assert_same_gamma(results[1].gamma, alone.gamma)
    assert progress[-1] == (2, 2)


def test_result_is_frozen_with_read_only_arrays() -> None:
    result = invert_drt(FREQ, spectrum(8), lam=LAM)
    with pytest.raises(AttributeError):
        result.lam = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        result.gamma[0] = 0.0
    assert np.max(np.abs(result.residuals)) < 0.03


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"basis": "spline"}, "basis"),
        ({"derivative": 3}, "derivative"),
        ({"lam": -1.0}, "lam"),
        ({"lam": "aic"}, "lam"),
        ({"solver": "ECOS"}, "solver"),
        ({"points_per_decade": 0}, "points_per_decade"),
        ({"tau_range": (1.0, 1e-3)}, "tau_range"),
        ({"weights": "sigma"}, "weights"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"windows": {"int": (1e-1, 1e-5)}}, "windows"),
        ({"no_such_option": 1}, "no_such_option"),
    ],
)
def test_impossible_options_raise_with_their_key(options: dict, key: str) -> None:
    with pytest.raises(DRTError) as caught:
        invert_drt(FREQ, spectrum(0), **options)
    assert caught.value.key == key


def test_bad_input_raises() -> None:
    z = spectrum(0)
    with pytest.raises(DRTError, match="non-finite"):
        invert_drt(FREQ, np.where(FREQ > 100, z, np.nan), lam=LAM)
    with pytest.raises(DRTError, match="shape"):
        invert_drt(FREQ, z[:-1], lam=LAM)
    with pytest.raises(DRTError, match="finite and > 0"):
        invert_drt(-FREQ, z, lam=LAM)
    with pytest.raises(DRTError, match="at least"):
        invert_drt(FREQ, z, mask=FREQ > 7e5, lam=LAM)
    with pytest.raises(DRTError, match="Spectrum or a"):
        invert_drt_batch([z], lam=LAM)
