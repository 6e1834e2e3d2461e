"""Figures of a study: several experiments on one axis, Sand's plot per composition.

Each function takes opened results (:func:`geis_pipeline.open_results`) and an
optional axis, and returns the figure: :func:`overlay` draws R_int and
C_int/C_int(0) of every experiment against passed charge, stripped thickness,
the capacity normalised to its value at t0 (q/q(t0)) or time, coloured by
composition or by current; :func:`sand_by_composition` draws t0^(-1/2) against
i with one fitted line per composition (krauskopf2020, Fig. 5);
:func:`arrhenius` the study's ln(T/R) of R_b, R_gb and R_int and each
composition's D_eff against 1000/T with their fits; :func:`pressure_series`
R_int(0) (with its power law and the constriction resistance), t0 and the
contact loss at t0 against stack pressure (krauskopf2019, Fig. 2). Only steps
whose fit is ok are drawn.
"""

from __future__ import annotations

import json
import math

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from geis_pipeline.physics import BOLTZMANN_EV_K, FARADAY_C_MOL, arrhenius_extrapolate
from geis_pipeline.study import value_at_time

__all__ = ["arrhenius", "overlay", "pressure_series", "sand_by_composition"]

_X_AXES = {
    "charge": ("charge_mAh_cm2", "passed charge (mAh cm$^{-2}$)"),
    "thickness": ("stripped_Li_um", "stripped Li (µm)"),
    "normalised": ("charge_mAh_cm2", "q / q(t$_0$)"),
    "time": ("time_s", "time (h)"),
}


def _label(summary) -> str:
    composition = summary.get("composition")
    current = summary.get("current_density_mA_cm2")
    parts = [str(composition)] if composition else []
    if current is not None and math.isfinite(float(current)):
        parts.append(f"{1000 * float(current):.0f} µA cm$^{{-2}}$")
    temperature = summary.get("temperature_K")
    if temperature is not None and math.isfinite(float(temperature)):
        parts.append(f"{float(temperature) - 273.15:.0f} °C")
    pressure = summary.get("stack_pressure_MPa")
    if pressure is not None:
        parts.append(f"{float(pressure):g} MPa")
    return ", ".join(parts)


def _q_at_t0(run, table) -> float:
    """The charge (mAh/cm2) passed at t0, from the table's charge column."""
    summary = run.summary
    at = float(summary.get("current_onset_s", math.nan)) + float(summary.get("t0_s", math.nan))
    charge = table["charge_mAh_cm2"].to_numpy(float)
    return value_at_time(table["time_s"].to_numpy(float), charge, np.isfinite(charge), at)


def overlay(
    results, *, x: str = "charge", colour_by: str = "composition", fig: Figure | None = None
) -> Figure:
    """R_int (log axis) and C_int/C_int(0) of every experiment against ``x``.

    Parameters
    ----------
    results
        Opened results holding one or more experiments.
    x
        ``charge`` (mAh/cm2), ``thickness`` (um of Li), ``normalised`` (q/q(t0):
        experiments without t0 are left out) or ``time`` (h).
    colour_by
        ``composition`` (line styles tell the experiments of one apart) or
        ``current`` (a colour per current density).
    """
    if x not in _X_AXES:
        raise ValueError(f"x must be one of {', '.join(_X_AXES)}, got {x!r}")
    if colour_by not in ("composition", "current"):
        raise ValueError(f"colour_by must be composition or current, got {colour_by!r}")
    column, xlabel = _X_AXES[x]
    fig = fig or Figure(figsize=(10, 4.2), layout="constrained")
    resistance_ax, capacitance_ax = fig.subplots(1, 2)

    def group(run) -> str:
        if colour_by == "current":
            current = float(run.summary.get("current_density_mA_cm2", math.nan))
            return f"{1000 * current:.0f} µA cm$^{{-2}}$" if math.isfinite(current) else "?"
        return str(run.summary.get("composition", ""))

    def order(run) -> tuple[float, str]:  # currents by value, compositions by name
        current = float(run.summary.get("current_density_mA_cm2", math.nan))
        return (current if colour_by == "current" else 0.0, group(run))

    runs = sorted((results[name] for name in results.experiments), key=order)
    compositions = list(dict.fromkeys(group(run) for run in runs))
    colours = {composition: f"C{index}" for index, composition in enumerate(compositions)}
    styles = ["-", "--", ":", "-."]
    unit = "ohm_cm2"
    seen: dict[str, int] = {}
    for name in results.experiments:
        run = results[name]
        table = run.tracking()
        if "fit_ok" not in table:  # a DC-only experiment: nothing tracked
            continue
        ok = table["fit_ok"].to_numpy(bool)
        if not ok.any():
            continue
        values = table[column].to_numpy(float)
        if x == "time":
            values = values / 3600.0
        if x == "normalised":
            q_t0 = _q_at_t0(run, table)
            if not (math.isfinite(q_t0) and q_t0 > 0):
                continue
            values = values / q_t0
        composition = group(run)
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
    if resistance_ax.lines:
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
        colour = f"C{index}"
        if not currents.size:  # no depletion time: say why in the legend
            ax.plot([], [], "o", color=colour, label=f"{composition}: {entry.get('reason', '')}")
            continue
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
    top = max((float(np.max(line.get_ydata())) for line in ax.lines if len(line.get_ydata())),
              default=1.0)  # fmt: skip
    ax.set_ylim(0, 1.3 * top)  # room for the legend above the points
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def _list(value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return list(json.loads(value))
    return list(np.atleast_1d(value))


def arrhenius(results, *, fig: Figure | None = None) -> Figure:
    """ln(T/R) of R_b, R_gb and R_int against 1000/T, and each composition's D_eff(T).

    From ``results.study["arrhenius"]``: the points are the experiments'
    reference-step resistances, the lines the fitted activation energies; the
    right panel (when a composition spans temperatures) D_eff on a log axis
    with its fit D_ref exp[-E_A/k_B (1/T - 1/T_ref)], extended to 0-100 C.
    """
    entry = dict(results.study.get("arrhenius", {}))
    if "temperature_K" not in entry:
        raise ValueError("the study has no Arrhenius fit (it needs two or more temperatures)")
    diffusivity = {k: v for k, v in dict(entry.get("D_eff", {})).items() if isinstance(v, dict)}
    fig = fig or Figure(figsize=(10 if diffusivity else 5.6, 4.2), layout="constrained")
    axes = fig.subplots(1, 2 if diffusivity else 1, squeeze=False)[0]
    temperature = np.asarray(_list(entry["temperature_K"]), dtype=float)
    line_t = np.linspace(temperature.min(), temperature.max(), 50)
    for index, label in enumerate(("R_b", "R_gb", "R_int")):
        resistance = np.asarray(_list(entry.get(f"{label}_ref_ohm_cm2")), dtype=float)
        keep = np.isfinite(resistance) & (resistance > 0)
        if not keep.any():
            continue
        y = np.log(temperature[keep] / resistance[keep])
        colour = f"C{index}"
        axes[0].plot(1000 / temperature[keep], y, "o", color=colour)
        e_a = float(entry.get(f"E_A_{label}_eV", math.nan))
        if math.isfinite(e_a):
            slope = -e_a / BOLTZMANN_EV_K
            intercept = float(np.mean(y - slope / temperature[keep]))
            stderr = float(entry.get(f"E_A_{label}_stderr_eV", math.nan))
            error = f" ± {stderr:.2g}" if math.isfinite(stderr) else ""
            axes[0].plot(
                1000 / line_t,
                slope / line_t + intercept,
                "-",
                color=colour,
                label=f"{label}: E$_A$ = {e_a:.3g}{error} eV",
            )
    axes[0].set_xlabel("1000 / T (K$^{-1}$)")
    axes[0].set_ylabel("ln(T / R) (ln(K / (Ω cm$^2$)))")
    axes[0].set_title("resistances")
    axes[0].legend(fontsize="small")
    axes[0].grid(alpha=0.3)
    for index, (composition, fit) in enumerate(sorted(diffusivity.items())):
        ax = axes[1]
        t = np.asarray(_list(fit.get("temperature_K")), dtype=float)
        d = np.asarray(_list(fit.get("D_eff_cm2_s")), dtype=float)
        colour = f"C{index}"
        ax.plot(1000 / t, d, "o", color=colour)
        e_a, d_ref = float(fit.get("E_A_eV", math.nan)), float(fit.get("D_ref_cm2_s", math.nan))
        if math.isfinite(e_a) and math.isfinite(d_ref):
            span = np.linspace(273.15, 373.15, 50)
            reference = float(fit.get("reference_temperature_K", 298.15))
            values = [arrhenius_extrapolate(d_ref, reference, e_a, value) for value in span]
            stderr = float(fit.get("E_A_stderr_eV", math.nan))
            error = f" ± {stderr:.2g}" if math.isfinite(stderr) else ""
            ax.plot(
                1000 / span,
                values,
                "-",
                color=colour,
                label=f"{composition}: E$_A$ = {e_a:.3g}{error} eV, "
                f"D(25 °C) = {arrhenius_extrapolate(d_ref, reference, e_a, 298.15):.2g}",
            )
    if diffusivity:
        axes[1].set_yscale("log")
        axes[1].set_xlabel("1000 / T (K$^{-1}$)")
        axes[1].set_ylabel("D$_{eff}$ (cm$^2$ s$^{-1}$)")
        axes[1].set_title("Sand D$_{eff}$ (line: 0-100 °C)")
        axes[1].legend(fontsize="small")
        axes[1].grid(alpha=0.3, which="both")
    return fig


def pressure_series(results, *, fig: Figure | None = None) -> Figure:
    """R_int(0), t0 and the contact loss at t0 against stack pressure (``/study/pressure``).

    R_int(0) is drawn log-log with its fitted power law and, where the study has
    it, the constriction resistance of krauskopf2019's eq. 1 for each force.
    """
    series = dict(results.study.get("pressure", {}))
    if "stack_pressure_MPa" not in series:
        raise ValueError("the study has no pressure series (it needs two or more pressures)")
    pressure = np.asarray(_list(series["stack_pressure_MPa"]), dtype=float)
    fig = fig or Figure(figsize=(13, 4.0), layout="constrained")
    resistance_ax, time_ax, loss_ax = fig.subplots(1, 3)
    resistance = np.asarray(_list(series.get("R_int_ref_ohm_cm2")), dtype=float)
    resistance_ax.plot(pressure, resistance, "o", label="R$_{int}$(0)")
    exponent = float(series.get("R_int_pressure_exponent", math.nan))
    keep = np.isfinite(resistance) & (resistance > 0)
    if math.isfinite(exponent) and keep.any():
        prefactor = float(
            np.exp(np.mean(np.log(resistance[keep]) - exponent * np.log(pressure[keep])))
        )
        line = np.geomspace(pressure.min(), pressure.max(), 50)
        stderr = float(series.get("R_int_pressure_exponent_stderr", math.nan))
        error = f" ± {stderr:.2g}" if math.isfinite(stderr) else ""
        resistance_ax.plot(
            line, prefactor * line**exponent, "-", label=f"∝ p$^{{{exponent:.2f}}}${error}"
        )
    constriction = np.asarray(_list(series.get("R_constriction_ohm_cm2")), dtype=float)
    if np.isfinite(constriction).any():
        resistance_ax.plot(pressure, constriction, "s--", mfc="none", label="constriction (eq. 1)")
    resistance_ax.set_xscale("log")
    resistance_ax.set_yscale("log")
    resistance_ax.set_ylabel("R (Ω cm$^2$)")
    if resistance_ax.lines:
        resistance_ax.legend(fontsize="small")
    t0 = np.asarray(_list(series.get("t0_s")), dtype=float)
    time_ax.plot(pressure, t0 / 3600, "o-")
    time_ax.set_xscale("log")
    time_ax.set_ylabel("t$_0$ (h)")
    for key, label in (
        ("contact_loss_C_t0", "from C$_{int}$"),
        ("contact_loss_R_t0", "from R$_{int}$"),
    ):
        loss_ax.plot(pressure, np.asarray(_list(series.get(key)), dtype=float), "o-", label=label)
    loss_ax.set_xscale("log")
    loss_ax.set_ylim(0, 1.05)
    loss_ax.set_ylabel("contact loss at t$_0$")
    loss_ax.legend(fontsize="small")
    for ax in (resistance_ax, time_ax, loss_ax):
        ax.set_xlabel("stack pressure (MPa)")
        ax.grid(alpha=0.3, which="both")
        # The measured pressures as the ticks: log minor labels overlap on a short span.
        ax.set_xticks(pressure, [f"{value:g}" for value in pressure])
        ax.xaxis.set_minor_formatter(NullFormatter())
    return fig
