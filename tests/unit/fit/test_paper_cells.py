"""Fit trust on every cell type of the papers: arcs by physics, cold and chained, honest verdicts.

Each cell of :mod:`geis_pipeline.cells` (1-4 arcs, a series bulk, CPE and
Warburg diffusion tails, the Li-In alloy's three processes, a symmetric
cell's two interfaces) is simulated with 0.5 % noise and R_int rising
5-fold while C_int falls, then fitted cold (every step from automatic starts)
and as a warm-started chain, with the noise level a KK check gives. The
interface must be right to 1 % median and 5 % p95 (C 2 % / 10 %), and no
step may be marked ok with R_int more than 10 % off (counted: target 0).
"""

from __future__ import annotations

import numpy as np
import pytest

from geis_pipeline.cells import CELL_TYPES, CellType, simulate_cell
from geis_pipeline.fit import fit_circuit, fit_experiment
from geis_pipeline.kk import check_kk_batch

NOISE = 0.005


def _noise_levels(series) -> tuple[list[bool], list[float]]:
    checks = check_kk_batch([(series.freq, z) for z in series.z])
    return [check.ok for check in checks], [check.rms for check in checks]


# Every cell with an interface to track (a blocking electrode has none).
@pytest.fixture(
    scope="module",
    params=sorted(name for name, cell in CELL_TYPES.items() if "int" in cell.required),
)
def cell_series(request):
    return simulate_cell(request.param, n_steps=24, noise_rel=NOISE, seed=3)


def _interface_errors(series, results):
    truth = series.truth["int"]
    r = np.array([result.roles["int"].R_ohm_cm2 for result in results])
    c = np.array([result.roles["int"].C_F_cm2 for result in results])
    return np.abs(r / truth["R_ohm_cm2"] - 1), np.abs(c / truth["C_F_cm2"] - 1)


@pytest.mark.parametrize("chained", [False, True], ids=["cold", "chain"])
def test_interface_right_and_never_wrong_but_ok(cell_series, chained: bool) -> None:
    circuit, options = cell_series.cell.fit_keywords()
    kk_ok, noise = _noise_levels(cell_series)
    if chained:
        results = fit_experiment(
            [(cell_series.freq, z) for z in cell_series.z],
            circuit,
            kk_ok=kk_ok,
            noise_rms=noise,
            **options,
        )
    else:
        results = [
            fit_circuit(cell_series.freq, z, circuit, kk_ok=ok, noise_rms=level, **options)
            for z, ok, level in zip(cell_series.z, kk_ok, noise, strict=True)
        ]
    error_r, error_c = _interface_errors(cell_series, results)
    ok = np.array([result.ok for result in results])
    wrong_but_ok = int(np.sum(ok & ~(error_r <= 0.10)))
    assert wrong_but_ok == 0, f"{wrong_but_ok} steps marked ok with R_int > 10 % off"
    # The verdict keeps nearly every step of clean simulated data ...
    assert ok.mean() >= 0.9, {result.status for result in results if not result.ok}
    # ... and the values it marks ok (those a user publishes) meet the accuracy targets.
    assert np.median(error_r[ok]) <= 0.01
    assert np.percentile(error_r[ok], 95) <= 0.05
    assert np.median(error_c[ok]) <= 0.02
    assert np.percentile(error_c[ok], 95) <= 0.10


@pytest.mark.parametrize("name", ["llzo_3arc", "mann_cpe_tail", "li_in_3proc"])
def test_arcs_written_in_any_order_give_the_same_table(name: str) -> None:
    series = simulate_cell(name, n_steps=6, noise_rel=NOISE, seed=5)
    cell = series.cell
    orders = [None, list(range(cell.n_arcs))[::-1], [*range(1, cell.n_arcs), 0]]
    tables = []
    for order in orders:
        circuit, options = cell.fit_keywords(order)
        results = fit_experiment([(series.freq, z) for z in series.z], circuit, **options)
        tables.append(
            {
                role: (
                    np.array([result.roles[role].R_ohm for result in results]),
                    np.array([result.roles[role].C_F for result in results]),
                )
                for role in results[0].roles
                if results[0].roles[role].arc is not None
            }
        )
    for table in tables[1:]:
        assert table.keys() == tables[0].keys()
        for role, (r, c) in table.items():
            np.testing.assert_allclose(r, tables[0][role][0], rtol=1e-3, err_msg=role)
            np.testing.assert_allclose(c, tables[0][role][1], rtol=1e-3, err_msg=role)


def test_mann_bulk_is_never_the_interface() -> None:
    """Mann 2024's circuit: the bulk arc (C ~ 1e-11 F/cm2) never takes the role int."""
    series = simulate_cell("mann_cpe_tail", n_steps=10, noise_rel=NOISE, seed=1)
    circuit, options = series.cell.fit_keywords()
    for z in series.z:
        result = fit_circuit(series.freq, z, circuit, **options)
        interface = result.roles["int"]
        assert interface.arc is not None
        assert 1e-7 < result.capacitances["int"].C_F_cm2 < 1e-4


def test_series_bulk_is_tracked_as_R_b() -> None:
    series = simulate_cell("llzo_series_bulk", n_steps=3, noise_rel=NOISE, seed=2)
    circuit, options = series.cell.fit_keywords()
    result = fit_circuit(series.freq, series.z[0], circuit, **options)
    assert result.roles["bulk"].elements == ("R0",)
    assert result.roles["bulk"].R_ohm_cm2 == pytest.approx(200.0, rel=0.02)


def test_noise_only_and_kk_failed_spectra_are_never_ok() -> None:
    rng = np.random.default_rng(0)
    series = simulate_cell("llzo_3arc", n_steps=8, noise_rel=NOISE, seed=4)
    circuit, options = series.cell.fit_keywords()
    # Pure noise around a constant: no arcs at all.
    for _ in range(8):
        noise = 100 * (1 + 0.5 * rng.standard_normal(series.freq.size))
        z = noise + 1j * 50 * rng.standard_normal(series.freq.size)
        checks = check_kk_batch([(series.freq, z)])[0]
        result = fit_circuit(
            series.freq, z, circuit, kk_ok=checks.ok, noise_rms=checks.rms, **options
        )
        assert not result.ok, result.status
    # 50 % noise on a real spectrum: KK fails, and so does the fit's verdict.
    for z in series.z_true:
        noisy = z * (1 + 0.5 * (rng.standard_normal(z.size) + 1j * rng.standard_normal(z.size)))
        check = check_kk_batch([(series.freq, noisy)])[0]
        result = fit_circuit(
            series.freq, noisy, circuit, kk_ok=check.ok, noise_rms=check.rms, **options
        )
        assert not result.ok
    # A good spectrum whose KK check failed is not ok either, with the reason.
    result = fit_circuit(series.freq, series.z[0], circuit, kk_ok=False, **options)
    assert not result.ok and "kk" in result.reasons


def test_an_arc_the_data_cannot_resolve_is_flagged_not_reported() -> None:
    """A third arc the spectrum does not hold: R -> 0 or an apex outside the band, so NaN."""
    cell = CELL_TYPES["llzo_series_bulk"]
    series = simulate_cell(cell, n_steps=2, noise_rel=NOISE, seed=6)
    circuit = "L0-R0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)"
    roles = {"R0": "bulk", "R1": "gb", "R2": "int", "R3": "sei"}
    result = fit_circuit(
        series.freq,
        series.z[0],
        circuit,
        roles=roles,
        role_classes={"sei": (1e-7, 1e-3)},
        area_cm2=cell.area_cm2,
    )
    extra = [arc for arc in result.capacitances.values() if not arc.resolved]
    assert extra, "the fit claims to resolve an arc the data do not have"
    for role, values in result.roles.items():
        if values.arc is not None and not values.C_resolved:
            assert np.isnan(values.C_F) and np.isnan(values.tau_s), role
    interface = result.roles["int"]
    if result.ok:
        assert interface.R_ohm_cm2 == pytest.approx(series.truth["int"]["R_ohm_cm2"][0], rel=0.1)


def test_an_unresolved_interface_fails_the_step() -> None:
    """An interface arc with R -> 0 (a 0.05 ohm bump on 500 ohm) is not reported as ok."""
    cell = CellType(
        "tiny_int",
        "test",
        (CELL_TYPES["llzo_3arc"].arcs[1],),
        series_R_ohm_cm2=200.0,
    )
    series = simulate_cell(cell, n_steps=2, noise_rel=NOISE, seed=7)
    result = fit_circuit(
        series.freq,
        series.z[0],
        "L0-R0-p(R1,CPE1)-p(R2,CPE2)",
        roles={"R0": "bulk", "R1": "gb", "R2": "int"},
        area_cm2=cell.area_cm2,
    )
    assert not result.ok
    assert {"unmatched", "unresolved"} & set(result.reasons)
    assert np.isnan(result.roles["int"].R_ohm) or np.isnan(result.roles["int"].C_F)


def test_bound_failures_name_parameter_bound_and_value() -> None:
    series = simulate_cell("peo_1arc", n_steps=2, noise_rel=NOISE, seed=8)  # R_int = 128 ohm
    circuit, options = series.cell.fit_keywords()
    result = fit_circuit(
        series.freq, series.z[0], circuit, **options | {"bounds": {"R1": (1.0, 100.0)}}
    )
    assert not result.ok and "bound" in result.reasons
    assert "R1 at its upper bound 100 (value 100" in result.status


@pytest.mark.parametrize("seed", [21, 301])
def test_a_cold_fit_does_not_merge_bulk_and_grain_boundary(seed: int) -> None:
    """Every resolved role of an ok cold fit is right, not only the interface.

    From the automatic starts, the fit of the Mann cell (bulk 240 ohm, gb 120 ohm)
    settled in a minimum with both in one depressed "bulk" arc (alpha 0.62) and the
    spare arc at a bound: R_b 366 +- 1.2 ohm (+53 %, 100 standard errors), ok,
    residuals 1.8x the noise (found by a review of wrong-but-ok results).
    """
    series = simulate_cell("mann_cpe_tail", n_steps=12, noise_rel=NOISE, seed=seed)
    circuit, options = series.cell.fit_keywords()
    kk_ok, noise = _noise_levels(series)
    wrong = []
    for step, (z, ok, level) in enumerate(zip(series.z, kk_ok, noise, strict=True)):
        result = fit_circuit(series.freq, z, circuit, kk_ok=ok, noise_rms=level, **options)
        if not result.ok:
            continue
        for role, truth in series.truth.items():
            values = result.roles.get(role)
            if values is None or not values.R_resolved:
                continue
            expected = np.asarray(truth["R_ohm"])[step]
            error = abs(values.R_ohm / expected - 1)
            if error > 0.05 and abs(values.R_ohm - expected) > 3 * values.R_stderr_ohm:
                wrong.append((step, role, round(values.R_ohm, 1), round(float(expected), 1)))
    assert not wrong, f"resolved, ok and wrong: {wrong}"
