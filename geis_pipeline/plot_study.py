"""Figures of a study: several experiments on one axis, Sand's plot per composition.

Each function takes opened results (:func:`geis_pipeline.open_results`) and an
optional axis, and returns the figure: :func:`overlay` draws R_int and
C_int/C_int(0) of every experiment against passed charge, stripped thickness or
time, coloured by composition (or current); :func:`sand_by_composition` draws
t0^(-1/2) against i with one fitted line per composition (krauskopf2020, Fig. 5).
Only steps whose fit is ok are drawn.
"""

from __future__ import annotations

import json
import math

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from geis_pipeline.physics import FARADAY_C_MOL

__all__ = ["overlay", "sand_by_composition"]

_X_AXES = {
    "charge": ("charge_mAh_cm2", "passed charge (mAh cm$^{-2}$)"),
    "thickness": ("stripped_Li_um", "stripped Li (µm)"),
    "time": ("time_s", "time (h)"),
}


def _label(summary) -> str:
    composition = summary.get("composition")
    current = summary.get("current_density_mA_cm2")
    parts = [str(composition)] if composition else []
    if current is not None and math.isfinite(float(current)):
        parts.append(f"{1000 * float(current):.0f} µA cm$^{{-2}}$")
    return ", ".join(parts)


def overlay(results, *, x: str = "charge", fig: Figure | None = None) -> Figure:
    """R_int (log axis) and C_int/C_int(0) of every experiment against ``x``.

    Parameters
    ----------
    results
        Opened results holding one or more experiments.
    x
        ``charge`` (mAh/cm2), ``thickness`` (um of Li) or ``time`` (h).
    """
    column, xlabel = _X_AXES[x]
    fig = fig or Figure(figsize=(10, 4.2), layout="constrained")
    resistance_ax, capacitance_ax = fig.subplots(1, 2)
    compositions = sorted(
        {str(results[name].summary.get("composition", "")) for name in results.experiments}
    )
    colours = {composition: f"C{index}" for index, composition in enumerate(compositions)}
    styles = ["-", "--", ":", "-."]
    unit = "ohm_cm2"
    seen: dict[str, int] = {}
    for name in results.experiments:
        run = results[name]
        table = run.tracking()
        ok = table["fit_ok"].to_numpy(bool)
        if not ok.any():
            continue
        values = table[column].to_numpy(float)
        if x == "time":
            values = values / 3600.0
        composition = str(run.summary.get("composition", ""))
        style = styles[seen.get(composition, 0) % len(styles)]
        seen[composition] = seen.get(composition, 0) + 1
        unit = "ohm_cm2" if np.isfinite(table["R_int_ohm_cm2"].to_numpy(float)[ok]).any() else "ohm"
        r_int = table[f"R_int_{unit}"].to_numpy(float)
        c_int = table["C_int_F"].to_numpy(float)
        reference = np.flatnonzero(ok & np.isfinite(c_int))
        label = _label(run.summary) or name
        resistance_ax.plot(values[ok], r_int[ok], style, color=colours[composition], label=label)
        if reference.size:
            capacitance_ax.plot(
                values[ok],
                c_int[ok] / c_int[reference[0]],
                style,
                color=colours[composition],
                label=label,
            )
    resistance_ax.set_yscale("log")
    resistance_ax.set_xlabel(xlabel)
    resistance_ax.set_ylabel("R$_{int}$ (Ω cm$^2$)" if unit == "ohm_cm2" else "R$_{int}$ (Ω)")
    capacitance_ax.set_xlabel(xlabel)
    capacitance_ax.set_ylabel("C$_{int}$ / C$_{int}$(0)")
    capacitance_ax.set_ylim(0, 1.1)
    for ax in (resistance_ax, capacitance_ax):
        ax.grid(alpha=0.3)
    resistance_ax.legend(fontsize="small")
    return fig


def sand_by_composition(results, *, ax: Axes | None = None) -> Figure:
    """t0^(-1/2) against i, one colour and one fitted line per composition."""
    if ax is None:
        fig = Figure(figsize=(6.4, 4.8), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.get_figure()
    sand = results.study.get("sand", {})
    entries = {key: value for key, value in sand.items() if isinstance(value, dict)}
    for index, (composition, entry) in enumerate(sorted(entries.items())):
        currents = np.asarray(_list(entry.get("current_density_mA_cm2")), dtype=float)
        t0 = np.asarray(_list(entry.get("t0_s")), dtype=float)
        if not currents.size:
            continue
        colour = f"C{index}"
        ax.plot(currents, t0**-0.5, "o", color=colour)
        diffusivity = float(entry.get("D_eff_cm2_s", math.nan))
        if math.isfinite(diffusivity):
            c0 = float(entry["c0_mol_cm3"])
            slope = 2 / (math.sqrt(math.pi * diffusivity) * c0 * FARADAY_C_MOL)  # per A/cm2
            line = np.linspace(0, currents.max() * 1.1, 50)
            ax.plot(
                line,
                slope * line * 1e-3,
                "-",
                color=colour,
                label=f"{composition}: D$_{{eff}}$ = {diffusivity:.2g} cm$^2$ s$^{{-1}}$",
            )
        else:
            ax.plot([], [], "o", color=colour, label=f"{composition}: {entry.get('reason', '')}")
    ax.set_xlabel("i (mA cm$^{-2}$)")
    ax.set_ylabel("t$_0^{-1/2}$ (s$^{-1/2}$)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def _list(value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return list(json.loads(value))
    return list(np.atleast_1d(value))
