"""Figures of a circuit suggestion: the data with each candidate's fit, and the DRT's processes.

Each function takes a :class:`~geis_pipeline.suggest.SuggestResult`, draws one
panel per representative sweep and returns the :class:`matplotlib.figure.Figure`
(object API, no ``pyplot``: any backend, never shown). Points the fits used
are filled, points left out (cropped above ``kk.max_freq_hz``, a truncated
low-frequency tail, outliers) are open; the winner's fit is drawn bold, the
next candidates thin. Impedances are area-specific (ohm cm2) when the area is
known.

>>> result = geis_pipeline.suggest.suggest_circuit(spectra, area_cm2=0.5)
>>> write_suggest_figures(result, "suggest-plots")
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from geis_pipeline.errors import GeisPipelineError
from geis_pipeline.suggest import SuggestResult

__all__ = ["suggest_bode", "suggest_drt", "suggest_nyquist", "write_suggest_figures"]

#: Candidates drawn besides the data (the winner first).
MAX_CANDIDATES = 4
_COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown")


def _scale(result: SuggestResult) -> tuple[float, str]:
    return (result.area_cm2, "Ω cm²") if result.area_cm2 else (1.0, "Ω")


def _panels(result: SuggestResult, rows: int = 1, height: float = 4.2) -> tuple[Figure, np.ndarray]:
    n = len(result.steps)
    fig = Figure(figsize=(4.6 * n + 0.6, height * rows), layout="constrained")
    axes = np.asarray(fig.subplots(rows, n, squeeze=False))
    return fig, axes


def _title(fig: Figure, result: SuggestResult, text: str) -> None:
    """A title wrapped to the figure's width (one panel holds ~45 characters)."""
    fig.suptitle(textwrap.fill(text, width=45 * len(result.steps)), fontsize="medium")


def _label(candidate, rank: int) -> str:
    return f"{rank}. {candidate.circuit} (BIC {candidate.bic:.0f})"


def suggest_nyquist(result: SuggestResult) -> Figure:
    """-Z'' against Z' of each representative sweep, with each candidate's fit."""
    scale, unit = _scale(result)
    fig, axes = _panels(result)
    for column, (step, freq, z, evidence) in enumerate(
        zip(result.steps, result.freq, result.z, result.evidence, strict=True)
    ):
        ax = axes[0, column]
        used = evidence.mask
        ax.plot(z.real[used] * scale, -z.imag[used] * scale, "o", ms=4, color="black", label="data")
        if (~used).any():
            ax.plot(
                z.real[~used] * scale,
                -z.imag[~used] * scale,
                "o",
                ms=4,
                mfc="none",
                color="0.55",
                label="not fitted",
            )
        order = np.argsort(freq)[::-1]
        for rank, candidate in enumerate(result.candidates[:MAX_CANDIDATES], start=1):
            fit = candidate.fits[column]
            z_fit = fit.z_fit[order]
            ax.plot(
                z_fit.real * scale,
                -z_fit.imag * scale,
                "-",
                lw=2.2 if rank == 1 else 0.9,
                color=_COLOURS[(rank - 1) % len(_COLOURS)],
                label=_label(candidate, rank),
                zorder=3 if rank == 1 else 2,
            )
        _robust_limits(ax, z[used] * scale)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel(f"Z' ({unit})")
        ax.set_ylabel(f"-Z'' ({unit})")
        ax.set_title(f"sweep {step}" + ("" if evidence.kk.ok else " (fails Kramers-Kronig)"))
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="best")
    _title(fig, result, f"Suggested circuit: {result.best.circuit}")
    return fig


def _robust_limits(ax, z: np.ndarray) -> None:
    """Axes that hold the fitted points (a runaway fit does not squash the data)."""
    if z.size == 0:
        return
    low_x, high_x = float(np.min(z.real)), float(np.max(z.real))
    low_y, high_y = float(np.min(-z.imag)), float(np.max(-z.imag))
    span = max(high_x - low_x, high_y - low_y, 1e-12)
    ax.set_xlim(low_x - 0.08 * span, high_x + 0.08 * span)
    ax.set_ylim(min(low_y, 0.0) - 0.08 * span, high_y + 0.08 * span)


def suggest_bode(result: SuggestResult) -> Figure:
    """|Z| and phase against frequency of each representative sweep, with each candidate's fit."""
    scale, unit = _scale(result)
    fig, axes = _panels(result, rows=2, height=3.0)
    for column, (step, freq, z, evidence) in enumerate(
        zip(result.steps, result.freq, result.z, result.evidence, strict=True)
    ):
        modulus_ax, phase_ax = axes[0, column], axes[1, column]
        used = evidence.mask
        for mask, style in ((used, {"color": "black"}), (~used, {"color": "0.55", "mfc": "none"})):
            if mask.any():
                modulus_ax.loglog(freq[mask], np.abs(z[mask]) * scale, "o", ms=3.5, **style)
                phase_ax.semilogx(freq[mask], -np.degrees(np.angle(z[mask])), "o", ms=3.5, **style)
        order = np.argsort(freq)
        for rank, candidate in enumerate(result.candidates[:MAX_CANDIDATES], start=1):
            z_fit = candidate.fits[column].z_fit[order]
            style = {
                "lw": 2.2 if rank == 1 else 0.9,
                "color": _COLOURS[(rank - 1) % len(_COLOURS)],
                "label": _label(candidate, rank),
            }
            modulus_ax.loglog(freq[order], np.abs(z_fit) * scale, "-", **style)
            phase_ax.semilogx(freq[order], -np.degrees(np.angle(z_fit)), "-", **style)
        modulus_ax.set_ylabel(f"|Z| ({unit})")
        modulus_ax.set_title(f"sweep {step}")
        phase_ax.set_ylabel("-phase (°)")
        phase_ax.set_xlabel("frequency (Hz)")
        if result.max_freq_hz is not None:
            for ax in (modulus_ax, phase_ax):
                ax.axvline(result.max_freq_hz, color="0.5", ls=":", lw=1)
        for ax in (modulus_ax, phase_ax):
            ax.grid(alpha=0.3, which="both")
    axes[0, 0].legend(fontsize=7, loc="best")
    _title(fig, result, f"Suggested circuit: {result.best.circuit}")
    return fig


def suggest_drt(result: SuggestResult) -> Figure:
    """The DRT of each representative sweep, with the winner's arcs and their roles marked."""
    scale, unit = _scale(result)
    fig, axes = _panels(result, height=3.6)
    for column, step in enumerate(result.steps):
        ax = axes[0, column]
        ax.set_title(f"sweep {step}")
        ax.set_xscale("log")
        ax.set_xlabel("τ (s)")
        ax.set_ylabel(f"γ ({unit})")
        ax.grid(alpha=0.3, which="both")
        drt = result.drt[column] if result.drt is not None else None
        if drt is not None and drt.ok:
            ax.plot(drt.tau, drt.gamma * scale, "-", color="black", lw=1.4, label="DRT")
            for peak in drt.peaks:
                ax.plot(peak.tau, peak.height * scale, "v", color="0.3", ms=5)
        else:
            ax.text(0.5, 0.5, "DRT not available", transform=ax.transAxes, ha="center")
        fit = result.best.fits[column]
        for number, arc in enumerate(sorted(fit.capacitances.values(), key=lambda a: a.tau_s)):
            colour = _COLOURS[number % len(_COLOURS)]
            ax.axvline(arc.tau_s, color=colour, ls="--", lw=1.2)
            resistance = arc.R_ohm * scale
            ax.text(
                arc.tau_s,
                0.97,
                f" {arc.role or arc.resistor}\n R {resistance:.3g}",
                transform=ax.get_xaxis_transform(),
                color=colour,
                fontsize=8,
                va="top",
            )
    _title(fig, result, f"DRT and the processes of {result.best.circuit} (dashed: fitted τ)")
    return fig


def write_suggest_figures(result: SuggestResult, folder: str | Path) -> list[Path]:
    """Write the three figures as PNG into ``folder``; returns their paths.

    Raises
    ------
    GeisPipelineError
        The folder cannot be created or written.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, draw in (
            ("suggest_nyquist.png", suggest_nyquist),
            ("suggest_bode.png", suggest_bode),
            ("suggest_drt.png", suggest_drt),
        ):
            path = folder / name
            draw(result).savefig(path, dpi=110)
            paths.append(path)
    except OSError as exc:
        raise GeisPipelineError(
            f"cannot write the figures: {exc.strerror or exc}", file=folder
        ) from exc
    return paths
