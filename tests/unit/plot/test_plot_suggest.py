"""Figures of a suggestion: one panel per sweep, the data and each leading candidate's fit."""

from __future__ import annotations

import numpy as np
import pytest

from geis_pipeline.cells import simulate_cell
from geis_pipeline.plot_suggest import (
    MAX_CANDIDATES,
    suggest_bode,
    suggest_drt,
    suggest_nyquist,
    write_suggest_figures,
)
from geis_pipeline.suggest import suggest_circuit


@pytest.fixture(scope="module")
def result():
    series = simulate_cell("llzo_series_bulk", n_steps=2, noise_rel=0.005, seed=4)
    return suggest_circuit([(series.freq, z) for z in series.z], area_cm2=series.cell.area_cm2)


def test_nyquist_draws_the_data_and_each_leading_fit(result) -> None:
    fig = suggest_nyquist(result)
    axes = fig.axes
    assert len(axes) == len(result.steps)
    drawn = min(MAX_CANDIDATES, len(result.candidates))
    for ax, z, fit in zip(axes, result.z, result.best.fits, strict=True):
        lines = ax.get_lines()
        data = lines[0]
        np.testing.assert_allclose(data.get_xdata(), z.real * result.area_cm2)
        fitted = [line for line in lines if line.get_linestyle() == "-"]
        assert len(fitted) == drawn
        winner = max(fitted, key=lambda line: line.get_linewidth())
        order = np.argsort(result.freq[0])[::-1]
        np.testing.assert_allclose(winner.get_ydata(), -fit.z_fit.imag[order] * result.area_cm2)


def test_bode_and_drt_panels_and_roles(result) -> None:
    assert len(suggest_bode(result).axes) == 2 * len(result.steps)
    fig = suggest_drt(result)
    texts = [text.get_text() for ax in fig.axes for text in ax.texts]
    for role in result.best.arc_roles:
        assert any(text.strip().startswith(role) for text in texts), (role, texts)


def test_write_suggest_figures(result, tmp_path) -> None:
    paths = write_suggest_figures(result, tmp_path / "plots")
    assert [path.name for path in paths] == [
        "suggest_nyquist.png",
        "suggest_bode.png",
        "suggest_drt.png",
    ]
    assert all(path.stat().st_size > 10_000 for path in paths)
