"""A one-screen summary of an ingested experiment (numbers first, text second)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from geis_pipeline.kind import experiment_kind, spectra_labels
from geis_pipeline.physics import stripped_thickness_um
from geis_pipeline.spectrum import Experiment

__all__ = ["ExperimentSummary", "format_rows", "format_summary", "summarize"]


@dataclass(frozen=True)
class ExperimentSummary:
    """What a user checks first after reading an experiment.

    Attributes
    ----------
    n_files, n_skipped
        Files read and files skipped.
    techniques
        Count of files per technique.
    start_time
        Absolute start, if known.
    area_cm2
        Electrode area, cm2 (None if unknown).
    current_setpoint_mA, current_density_mA_cm2
        DC setpoint and its density (None if not galvanostatic or no area).
    n_spectra
        Sweeps read.
    flag_counts
        Number of sweeps per quality flag.
    points_median, points_min
        Points per sweep.
    freq_max_hz, freq_min_hz
        Frequency range over all sweeps, Hz.
    time_span_s
        First and last sweep start, s.
    n_dc_rows
        Rows in the DC record.
    potential_range_V
        Min and max DC potential (NaN if none recorded).
    charge_max_mAh
        Largest |charge| passed at a sweep start, mAh (NaN if not recorded).
    kind, kind_description
        What the experiment is (:func:`geis_pipeline.kind.experiment_kind`):
        e.g. ``galvanostatic strip`` and its segments in words.
    warnings
        What the files leave unknown (no area, EC-Lab's placeholder area).
    """

    n_files: int
    n_skipped: int
    techniques: dict[str, int]
    start_time: datetime | None
    area_cm2: float | None
    current_setpoint_mA: float | None
    current_density_mA_cm2: float | None
    n_spectra: int
    flag_counts: dict[str, int]
    points_median: int
    points_min: int
    freq_max_hz: float
    freq_min_hz: float
    time_span_s: tuple[float, float]
    n_dc_rows: int
    potential_range_V: tuple[float, float]
    charge_max_mAh: float
    kind: str = "unknown"
    kind_description: str = ""
    warnings: tuple[str, ...] = ()


def _finite_range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if finite.size else (math.nan, math.nan)


def summarize(experiment: Experiment) -> ExperimentSummary:
    """Summarise an experiment read by :func:`~geis_pipeline.read_experiment`."""
    spectra = experiment.spectra
    points = np.array([spectrum.n_points for spectrum in spectra])
    charges = np.abs([spectrum.charge_mAh for spectrum in spectra])
    finite_charges = charges[np.isfinite(charges)]
    metadata = experiment.metadata
    kind = experiment_kind(
        spectra_labels(spectra, metadata),
        experiment.time_s,
        np.array([spectrum.current_mA for spectrum in spectra]),
    )
    return ExperimentSummary(
        n_files=len(metadata.sources),
        n_skipped=len(experiment.skipped),
        techniques=dict(Counter(metadata.techniques)),
        start_time=metadata.start_time,
        area_cm2=metadata.area_cm2,
        current_setpoint_mA=metadata.current_setpoint_mA,
        current_density_mA_cm2=metadata.current_density_mA_cm2,
        n_spectra=len(spectra),
        flag_counts=dict(Counter(flag for spectrum in spectra for flag in spectrum.flags)),
        # A DC-only folder has no spectra: no points, no band.
        points_median=int(np.median(points)) if spectra else 0,
        points_min=int(points.min()) if spectra else 0,
        freq_max_hz=max((float(spectrum.freq.max()) for spectrum in spectra), default=math.nan),
        freq_min_hz=min((float(spectrum.freq.min()) for spectrum in spectra), default=math.nan),
        time_span_s=(spectra[0].time_s, spectra[-1].time_s) if spectra else (math.nan, math.nan),
        n_dc_rows=len(experiment.dc_record),
        potential_range_V=_finite_range(
            np.concatenate(
                [experiment.dc_record.potential_V, [spectrum.potential_V for spectrum in spectra]]
            )
        ),
        charge_max_mAh=float(finite_charges.max()) if finite_charges.size else math.nan,
        # No spectra but DC rows: a DC-only folder (GCPL/CP/OCV), as its run summary says.
        kind=kind.kind if spectra or not len(experiment.dc_record) else "dc_only",
        kind_description=kind.description
        if spectra or not len(experiment.dc_record)
        else "DC record only: no impedance spectra",
        warnings=tuple(metadata.warnings),
    )


def _si(value: float, unit: str) -> str:
    for factor, prefix in ((1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def format_summary(summary: ExperimentSummary, title: str = "") -> str:
    """The summary as aligned text lines for the terminal."""
    techniques = ", ".join(f"{count} {name}" for name, count in summary.techniques.items())
    flags = ", ".join(f"{count} {flag}" for flag, count in sorted(summary.flag_counts.items()))
    rows = [
        ("files read", f"{summary.n_files} ({techniques}); skipped {summary.n_skipped}"),
        ("start", str(summary.start_time) if summary.start_time else "not stated in the files"),
        (
            "electrode area",
            f"{summary.area_cm2:.4g} cm2"
            if summary.area_cm2
            else "unknown: results in ohm and F only (see the warning)",
        ),
        ("experiment kind", summary.kind_description or summary.kind),
    ]
    if summary.current_setpoint_mA is not None:
        density = (
            f" = {summary.current_density_mA_cm2 * 1e3:.4g} uA/cm2"
            if summary.current_density_mA_cm2 is not None
            else ""
        )
        rows.append(("DC setpoint", f"{summary.current_setpoint_mA:.4g} mA{density}"))
    rows.append(("spectra", f"{summary.n_spectra} (flagged: {flags or 'none'})"))
    if summary.n_spectra:  # a DC-only folder has no points, band or sweeps
        rows += [
            ("points/spectrum", f"{summary.points_median} (min {summary.points_min})"),
            (
                "frequency range",
                f"{_si(summary.freq_max_hz, 'Hz')} .. {_si(summary.freq_min_hz, 'Hz')}",
            ),
            (
                "sweep starts",
                f"{summary.time_span_s[0] / 3600:.3f} .. {summary.time_span_s[1] / 3600:.3f} h",
            ),
        ]
    rows.append(("DC record", f"{summary.n_dc_rows} rows"))
    low, high = summary.potential_range_V
    if math.isfinite(low):
        rows.append(("DC potential", f"{low:.4g} .. {high:.4g} V"))
    if math.isfinite(summary.charge_max_mAh):
        charge = f"{summary.charge_max_mAh:.4g} mAh"
        if summary.area_cm2:
            per_area = summary.charge_max_mAh / summary.area_cm2
            charge += f" = {per_area:.4g} mAh/cm2 (~{stripped_thickness_um(per_area):.3g} um of Li)"
        rows.append(("charge passed", charge))
    rows += [("warning", message) for message in summary.warnings]
    return format_rows(rows, title)


def format_rows(rows: list[tuple[str, str]], title: str = "") -> str:
    """Aligned ``label  value`` lines under an optional title (the terminal summaries)."""
    width = max((len(label) for label, _ in rows), default=0)
    lines = [title] if title else []
    lines += [f"  {label:<{width}}  {value}" for label, value in rows]
    return "\n".join(lines)
