"""summarize_tracking says why there is no depletion time or Sand D_eff (issue 12)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geis_pipeline.kind import segment_index
from geis_pipeline.track import sand_diffusivity, sand_fit_note, summarize_tracking


def _table(labels, r_int, *, area: bool = True, fit_ok=None) -> dict[str, np.ndarray]:
    n = len(labels)
    r = np.asarray(r_int, dtype=float)
    labels = np.asarray(labels, dtype=object)
    density = np.where(labels == "strip", 0.1, np.where(labels == "plate", -0.1, 0.0))
    table = {
        "time_s": np.arange(n) * 600.0,
        "R_int_ohm_cm2": r if area else np.full(n, np.nan),
        "R_int_ohm": r / 0.5,
        "C_int_F_cm2": np.full(n, 2e-6) if area else np.full(n, np.nan),
        "C_int_F": np.full(n, 1e-6),
        "current_density_mA_cm2": density if area else np.full(n, np.nan),
        "charge_mAh_cm2": np.zeros(n) if area else np.full(n, np.nan),
        "fit_ok": np.ones(n, bool) if fit_ok is None else np.asarray(fit_ok, bool),
        "segment": labels,
        "segment_index": segment_index(labels),
    }
    return table


def test_stripping_that_reaches_the_threshold() -> None:
    table = _table(["strip"] * 4, [100.0, 2000.0, 8000.0, 12000.0])
    summary = summarize_tracking(table, 0, r_int_threshold_ohm_cm2=10000.0, c0_mol_cm3=0.0768)
    assert summary["t0_reached"] and summary["t0_reason"] == "" and summary["D_eff_reason"] == ""
    crossing = 1200.0 + 2000.0 / 4000.0 * 600.0
    assert summary["t0_s"] == pytest.approx(crossing)
    assert summary["D_eff_cm2_s"] == pytest.approx(sand_diffusivity(crossing, 0.1, 0.0768))
    assert summary["experiment_kind"] == "galvanostatic strip"


def test_open_circuit_has_no_depletion_even_above_the_threshold() -> None:
    # a runaway R_int at open circuit (blocking electrodes) is no depletion time
    table = _table(["ocv"] * 3, [5e4, 6e4, 7e4])
    summary = summarize_tracking(table, 0)
    assert not summary["t0_reached"] and math.isnan(summary["t0_s"])
    assert math.isnan(summary["D_eff_cm2_s"])
    assert summary["t0_reason"].startswith("no galvanostatic stripping in this experiment")
    assert "(kind: open circuit)" in summary["t0_reason"]
    assert summary["D_eff_reason"] == summary["t0_reason"]
    plating = summarize_tracking(_table(["plate"] * 3, [5e4, 6e4, 7e4]), 0)
    assert "(kind: galvanostatic plate)" in plating["t0_reason"]


def test_depletion_is_searched_in_the_stripping_steps_only() -> None:
    # above the threshold during the open-circuit rest, not while stripping
    table = _table(["strip", "strip", "ocv", "ocv"], [100.0, 500.0, 20000.0, 20000.0])
    summary = summarize_tracking(table, 0, r_int_threshold_ohm_cm2=10000.0)
    assert not summary["t0_reached"]
    assert summary["t0_reason"] == (
        "R_int stayed below the threshold 10000 ohm cm2 while stripping "
        "(highest with an ok fit: 500 ohm cm2)"
    )


def test_not_ok_fits_and_no_area() -> None:
    failed = _table(["strip"] * 3, [100.0, 2e4, 3e4], fit_ok=[False] * 3)
    assert summarize_tracking(failed, -1)["t0_reason"] == "no stripping step has an ok circuit fit"
    no_area = _table(["strip"] * 3, [100.0, 2e4, 3e4], area=False)
    summary = summarize_tracking(no_area, 0)
    assert summary["t0_reason"].startswith("no electrode area: the R_int threshold is in ohm cm2")
    assert "--area-cm2" in summary["t0_reason"]
    # the relative relaxation and the kind still come from the absolute twins
    assert summary["experiment_kind"] == "galvanostatic strip"


def test_sand_fit_note() -> None:
    reached = {"t0_reached": True, "current_density_mA_cm2": 0.1}
    assert sand_fit_note({"a": reached, "b": reached | {"current_density_mA_cm2": 0.2}}) == ""
    one = sand_fit_note({"a": reached})
    assert one.startswith("a Sand fit needs depletion times at two or more current densities")
    assert "1 experiment(s) reached t0, at 1 current density(ies): a (0.1 mA/cm2)" in one
    same = sand_fit_note({"a": reached, "b": reached})
    assert "2 experiment(s) reached t0, at 1 current density(ies)" in same
    # one experiment without t0 has its own reason; several without t0 get the note
    assert sand_fit_note({"a": {"t0_reached": False}}) == ""
    assert "0 experiment(s) reached t0" in sand_fit_note({"a": {}, "b": {}})


def test_potential_cutoff_gives_t0_when_r_int_stays_below() -> None:
    table = _table(["strip"] * 4, [100.0, 200.0, 300.0, 400.0])
    table["E_V"] = np.array([0.1, 0.5, 2.5, 5.5])
    summary = summarize_tracking(table, 0, potential_cutoff_V=5.0)
    assert summary["t0_reached"] and summary["t0_criterion"] == "potential cutoff"
    assert summary["t0_s"] == pytest.approx(1200.0 + 2.5 / 3.0 * 600.0)
    assert math.isfinite(summary["D_eff_cm2_s"])
    # without the cutoff, or below it: the reasons name both criteria
    assert not summarize_tracking(table, 0)["t0_reached"]
    below = summarize_tracking(table, 0, potential_cutoff_V=10.0)
    assert below["t0_reason"].endswith("; |E| stayed below the 10 V cutoff (highest 5.5 V)")
    # the earlier criterion wins
    table["R_int_ohm_cm2"] = np.array([100.0, 20000.0, 30000.0, 40000.0])
    first = summarize_tracking(table, 0, potential_cutoff_V=5.0)
    assert first["t0_criterion"] == "R_int" and first["t0_s"] < 1200.0
    # a cutoff at open circuit is no depletion either
    rest = _table(["ocv"] * 2, [1.0, 1.0])
    rest["E_V"] = np.array([6.0, 6.0])
    assert not summarize_tracking(rest, 0, potential_cutoff_V=5.0)["t0_reached"]
