"""What an experiment is: galvanostatic under current, open circuit, or potentiostatic at a bias.

:func:`step_labels` labels every time step from the technique of its file, the
file's DC current setpoint and the DC current recorded during the sweep, with
a tolerance: never from the sign of noise. :func:`segments` groups consecutive
steps with one label and :func:`experiment_kind` names the experiment from
them. Only a galvanostatic stripping segment has a depletion time and a Sand
diffusivity (see :func:`geis_pipeline.track.summarize_tracking`).

Labels
------
``strip``
    Galvanostatic, anodic DC current (the working electrode is stripped).
``plate``
    Galvanostatic, cathodic DC current (lithium is plated).
``ocv``
    No DC current: an OCV rest, a PEIS at open circuit, a GEIS with a zero
    setpoint, or a current too small to polarise the cell (see below).
``bias``
    Potentiostatic (PEIS) at a DC bias that drives a current.
``unknown``
    The DC current is not recorded and the technique does not say.

A DC current counts as none when the DC polarisation it causes,
``|I| max|Z|`` (the sweep's largest impedance modulus stands for the DC
resistance), is at most ``ocv_polarisation_V`` (5 mV: half the usual 10 mV AC
amplitude), or, with a known electrode area, when ``|I| / A`` is at most
``ocv_current_density_mA_cm2``. A galvanostatic step whose measured current is
at least ``setpoint_fraction`` of its file's setpoint takes the setpoint's
direction without a test: the setpoint is what the instrument imposed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from geis_pipeline.spectrum import ExperimentMetadata, Spectrum

__all__ = [
    "BIAS",
    "GALVANOSTATIC",
    "KINDS",
    "LABELS",
    "OCV",
    "OPEN_CIRCUIT_TECHNIQUES",
    "PLATE",
    "POTENTIOSTATIC",
    "STRIP",
    "UNKNOWN",
    "ExperimentKind",
    "Segment",
    "experiment_kind",
    "segment_index",
    "segments",
    "spectra_labels",
    "step_labels",
]

STRIP, PLATE, OCV, BIAS, UNKNOWN = "strip", "plate", "ocv", "bias", "unknown"
#: Every step label.
LABELS = (STRIP, PLATE, OCV, BIAS, UNKNOWN)
#: Techniques that impose a DC current (EC-Lab, Gamry and ZPlot short names).
GALVANOSTATIC = frozenset({"GEIS", "SGEIS", "CP", "GCPL"})
#: Techniques that impose a DC potential.
POTENTIOSTATIC = frozenset({"PEIS", "SPEIS", "CA", "ZIR"})
#: Techniques with no current at all.
OPEN_CIRCUIT_TECHNIQUES = frozenset({"OCV", "WAIT"})

#: Experiment kinds (:attr:`ExperimentKind.kind`).
KINDS = {
    "galvanostatic strip": "galvanostatic stripping (anodic DC current)",
    "galvanostatic plate": "galvanostatic plating (cathodic DC current)",
    "galvanostatic strip/plate": "galvanostatic stripping and plating",
    "open circuit": "open circuit (no DC current)",
    "potentiostatic at a DC bias": "potentiostatic at a DC bias driving a current",
    "unknown": "DC current not recorded",
}
_LOADED_KIND = {
    frozenset({STRIP}): "galvanostatic strip",
    frozenset({PLATE}): "galvanostatic plate",
    frozenset({STRIP, PLATE}): "galvanostatic strip/plate",
}


def _per_step(values, n: int, dtype) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan if dtype is float else None, dtype=dtype)
    array = np.asarray(values, dtype=dtype)
    return np.full(n, array, dtype=dtype) if array.ndim == 0 else array


def step_labels(
    current_mA: np.ndarray,
    *,
    technique: Sequence[str | None] | str | None = None,
    setpoint_mA: np.ndarray | float | None = None,
    impedance_ohm: np.ndarray | float | None = None,
    area_cm2: float | None = None,
    ocv_polarisation_V: float = 5e-3,
    ocv_current_density_mA_cm2: float = 1e-3,
    setpoint_fraction: float = 0.5,
) -> np.ndarray:
    """Label every time step ``strip``, ``plate``, ``ocv``, ``bias`` or ``unknown``.

    Parameters
    ----------
    current_mA
        Mean DC current during each sweep, mA (positive = anodic = stripping;
        NaN where not recorded).
    technique
        Technique of each step's file (``GEIS``, ``PEIS``, ``OCV``, ...), or one
        for all; None or ``unknown`` where not known.
    setpoint_mA
        DC current setpoint of each step's file, mA (NaN where not stated).
    impedance_ohm
        A DC-resistance scale per step, ohm: the sweep's largest ``|Z|``.
    area_cm2
        Electrode area, cm2, when known (never EC-Lab's placeholder).
    ocv_polarisation_V, ocv_current_density_mA_cm2
        A current polarising the cell by at most this (``|I| max|Z|``), or
        (with an area) at most this density, is no current.
    setpoint_fraction
        A galvanostatic step carrying at least this share of its setpoint is
        under that setpoint's current.

    Returns
    -------
    numpy.ndarray
        Object array of labels, one per step.
    """
    current = np.asarray(current_mA, dtype=np.float64)
    n = current.size
    techniques = (
        np.full(n, technique, dtype=object)
        if technique is None or isinstance(technique, str)
        else np.asarray(list(technique), dtype=object)
    )
    setpoint = _per_step(setpoint_mA, n, float)
    scale = _per_step(impedance_ohm, n, float)
    magnitude = np.abs(current)
    finite = np.isfinite(current)
    with np.errstate(invalid="ignore"):
        # Polarisation in V: mA x ohm = mV.
        polarisation_V = np.nan_to_num(magnitude * scale * 1e-3, nan=np.inf)
        no_current = finite & (polarisation_V <= ocv_polarisation_V)
        if area_cm2:
            no_current |= finite & (magnitude / area_cm2 <= ocv_current_density_mA_cm2)
        setpoint_polarisation_V = np.nan_to_num(np.abs(setpoint) * scale * 1e-3, nan=np.inf)
        zero_setpoint = np.isfinite(setpoint) & (
            (np.abs(setpoint) <= 1e-12) | (setpoint_polarisation_V <= ocv_polarisation_V)
        )
        follows_setpoint = (
            np.isfinite(setpoint)
            & ~zero_setpoint
            & (~finite | (current * np.sign(setpoint) >= setpoint_fraction * np.abs(setpoint)))
        )
    direction = np.where(finite, np.sign(current), np.sign(np.nan_to_num(setpoint)))
    signed = np.where(direction > 0, STRIP, PLATE).astype(object)
    galvanostatic = np.array([item in GALVANOSTATIC for item in techniques], dtype=bool)
    potentiostatic = np.array([item in POTENTIOSTATIC for item in techniques], dtype=bool)
    rest = np.array([item in OPEN_CIRCUIT_TECHNIQUES for item in techniques], dtype=bool)

    labels = np.full(n, UNKNOWN, dtype=object)
    # Current recorded, no setpoint to follow: a tolerance on the polarisation.
    measured = finite & ~no_current
    labels[measured] = np.where(potentiostatic[measured], BIAS, signed[measured])
    labels[no_current] = OCV
    # A galvanostatic file's own setpoint decides where it applies.
    labels[galvanostatic & follows_setpoint] = signed[galvanostatic & follows_setpoint]
    labels[galvanostatic & zero_setpoint] = OCV
    labels[rest] = OCV
    return labels


def spectra_labels(
    spectra: Sequence[Spectrum],
    metadata: ExperimentMetadata,
    *,
    ocv_polarisation_V: float = 5e-3,
    ocv_current_density_mA_cm2: float = 1e-3,
) -> np.ndarray:
    """:func:`step_labels` of sweeps, each with the technique and setpoint of its own file.

    The technique and setpoint of a sweep are those of its source file
    (``metadata.sources`` / ``techniques`` / ``setpoints_mA``); the DC
    resistance scale is the sweep's largest ``|Z|``.
    """
    techniques = dict(zip(metadata.sources, metadata.techniques, strict=False))
    setpoints = dict(zip(metadata.sources, metadata.setpoints_mA, strict=False))
    if not metadata.setpoints_mA and metadata.current_setpoint_mA is not None:
        # Results written before per-file setpoints: the experiment's one setpoint.
        setpoints = {
            source: metadata.current_setpoint_mA
            for source, technique in techniques.items()
            if technique in GALVANOSTATIC
        }
    return step_labels(
        np.array([spectrum.current_mA for spectrum in spectra], dtype=np.float64),
        technique=[techniques.get(spectrum.source) for spectrum in spectra],
        setpoint_mA=np.array(
            [setpoints.get(spectrum.source, math.nan) for spectrum in spectra], dtype=np.float64
        ),
        impedance_ohm=_largest_modulus(spectra),
        area_cm2=metadata.area_cm2,
        ocv_polarisation_V=ocv_polarisation_V,
        ocv_current_density_mA_cm2=ocv_current_density_mA_cm2,
    )


def _largest_modulus(spectra: Sequence[Spectrum]) -> np.ndarray:
    """Each sweep's largest ``|Z|``, ohm (NaN where its Z holds NaN), all sweeps at once."""
    if not len(spectra):
        return np.empty(0)
    sizes = np.array([spectrum.z.size for spectrum in spectra], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    modulus = np.abs(np.concatenate([spectrum.z for spectrum in spectra]))
    return np.maximum.reduceat(modulus, starts)


def segment_index(labels: np.ndarray) -> np.ndarray:
    """Segment number per step: a new segment starts wherever the label changes (from 0)."""
    labels = np.asarray(labels, dtype=object)
    changes = np.zeros(labels.size, dtype=np.int64)
    if labels.size:
        changes[1:] = labels[1:] != labels[:-1]
    return np.cumsum(changes)


@dataclass(frozen=True)
class Segment:
    """Consecutive steps with one label.

    Attributes
    ----------
    label
        See :data:`LABELS`.
    first_step, last_step
        Step numbers, inclusive.
    start_s, stop_s
        Start of the first and of the last sweep, s.
    current_mA
        Median DC current over the segment, mA (NaN if not recorded).
    """

    label: str
    first_step: int
    last_step: int
    start_s: float
    stop_s: float
    current_mA: float

    @property
    def n_steps(self) -> int:
        return self.last_step - self.first_step + 1

    def as_dict(self) -> dict[str, object]:
        """Plain values (for the result file)."""
        return {
            "label": self.label,
            "first_step": self.first_step,
            "last_step": self.last_step,
            "start_s": self.start_s,
            "stop_s": self.stop_s,
            "current_mA": None if math.isnan(self.current_mA) else self.current_mA,
        }


def segments(
    labels: np.ndarray, time_s: np.ndarray, current_mA: np.ndarray | None = None
) -> tuple[Segment, ...]:
    """The runs of equal labels, in time order."""
    labels = np.asarray(labels, dtype=object)
    time_s = np.asarray(time_s, dtype=np.float64)
    current = (
        np.full(labels.size, np.nan)
        if current_mA is None
        else np.asarray(current_mA, dtype=np.float64)
    )
    index = segment_index(labels)
    found = []
    for number in range(int(index[-1]) + 1 if index.size else 0):
        steps = np.flatnonzero(index == number)
        values = current[steps]
        values = values[np.isfinite(values)]
        found.append(
            Segment(
                str(labels[steps[0]]),
                int(steps[0]),
                int(steps[-1]),
                float(time_s[steps[0]]),
                float(time_s[steps[-1]]),
                float(np.median(values)) if values.size else math.nan,
            )
        )
    return tuple(found)


@dataclass(frozen=True)
class ExperimentKind:
    """What the experiment is, from its segments.

    Attributes
    ----------
    kind
        A key of :data:`KINDS`: the loaded (galvanostatic) kind when any step
        is under a galvanostatic current, else ``potentiostatic at a DC bias``,
        ``open circuit`` or ``unknown``.
    description
        One line for people: the kind with its segments, e.g.
        ``galvanostatic strip (40 steps at 0.236 mA), then open circuit (12 steps)``.
    segments
        The segments, in time order.
    """

    kind: str
    description: str
    segments: tuple[Segment, ...]

    @property
    def stripping(self) -> bool:
        """Whether any segment strips under a galvanostatic current."""
        return any(segment.label == STRIP for segment in self.segments)


_SEGMENT_WORDS = {
    STRIP: "galvanostatic strip",
    PLATE: "galvanostatic plate",
    OCV: "open circuit",
    BIAS: "potentiostatic at a DC bias",
    UNKNOWN: "DC current not recorded",
}


def _describe(segment: Segment) -> str:
    text = f"{_SEGMENT_WORDS[segment.label]} ({segment.n_steps} step"
    text += "s" if segment.n_steps != 1 else ""
    if segment.label in (STRIP, PLATE, BIAS) and math.isfinite(segment.current_mA):
        text += f" at {segment.current_mA:.3g} mA"
    return text + ")"


def experiment_kind(
    labels: np.ndarray,
    time_s: np.ndarray,
    current_mA: np.ndarray | None = None,
    *,
    max_listed: int = 4,
) -> ExperimentKind:
    """Name the experiment from its step labels (see :func:`step_labels`)."""
    found = segments(labels, time_s, current_mA)
    present = {segment.label for segment in found}
    loaded = frozenset(present & {STRIP, PLATE})
    if loaded:
        kind = _LOADED_KIND[loaded]
    elif BIAS in present:
        kind = "potentiostatic at a DC bias"
    elif OCV in present:
        kind = "open circuit"
    else:
        kind = "unknown"
    parts = [_describe(segment) for segment in found[:max_listed]]
    if len(found) > max_listed:
        parts.append(f"{len(found) - max_listed} more segments")
    return ExperimentKind(kind, ", then ".join(parts) or "no steps", found)
