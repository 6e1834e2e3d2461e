"""Chunks: the unit of work, and the stage runners that compute one.

A chunk is ``executor.chunk_size`` consecutive sweeps of one experiment and the
stages to run on them (:class:`ChunkTask`). :func:`process_chunk` is pure (same
task, same numbers) and runs in whichever process an executor picks, with one
BLAS thread (:class:`OneBlasThread`). Each stage's results carry the hash of the
config sections they depend on (:func:`stage_hashes`).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from geis_pipeline._blas import OneBlasThread, one_blas_thread
from geis_pipeline.config import Config, section_hash
from geis_pipeline.drt import invert_drt_batch, track_peaks
from geis_pipeline.fit import Circuit, FitOptions, fit_experiment, role_table
from geis_pipeline.kk import check_kk_batch

__all__ = [
    "DRT_LEAD_SWEEPS",
    "STAGES",
    "STAGE_SECTIONS",
    "ChunkTask",
    "OneBlasThread",
    "one_blas_thread",
    "per_sweep",
    "process_chunk",
    "stage_hashes",
]

#: Config sections each stage's results depend on.
STAGE_SECTIONS: dict[str, tuple[str, ...]] = {
    "kk": ("kk",),
    # Per-experiment areas change the capacitances the arcs are identified by.
    "fit": ("experiment", "kk", "fit", "experiments"),
    "drt": ("kk", "drt"),
}
STAGES = tuple(STAGE_SECTIONS)


def stage_hashes(config: Config) -> dict[str, str]:
    """Hash of every stage's config dependencies (disabled stages hash as such)."""
    hashes = {}
    for stage, sections in STAGE_SECTIONS.items():
        digest = hashlib.sha256()
        for section in sections:
            digest.update(section_hash(config, section).encode())
        hashes[stage] = digest.hexdigest()
    return hashes


@dataclass(frozen=True)
class ChunkTask:
    """One unit of work: consecutive sweeps of one experiment and the stages to run."""

    experiment: str
    start: int
    stop: int
    freq: tuple[np.ndarray, ...]
    z: tuple[np.ndarray, ...]
    stages: tuple[str, ...]
    config: Config
    area_cm2: float | None
    drt_lam: float | None
    drt_tau_range: tuple[float, float] | None
    kk_masks: tuple[np.ndarray, ...] | None  # stored KK masks when KK is not re-run
    circuit: Circuit | None = None  # compiled (and checked against impedance.py) in the parent
    # Stored KK verdicts (ok, RMS residual) per sweep when KK is not re-run: the fit's
    # verdict needs the spectrum's noise level and KK outcome.
    kk_verdicts: tuple[np.ndarray, np.ndarray] | None = None
    # The sweeps just before the chunk (see DRT_LEAD_SWEEPS): the DRT's warm-started
    # refinement runs through them first, and their results are dropped.
    lead_freq: tuple[np.ndarray, ...] = ()
    lead_z: tuple[np.ndarray, ...] = ()


#: Sweeps before a chunk that its DRT refinement runs through first. The refinement
#: starts each sweep from the one before; a chunk's first sweep would otherwise start
#: cold, from γ's peaks alone. On the 30,000-sweep run, the first 4 sweeps of every chunk
#: (604 sweeps): tracked R_int >5 % off 6 -> 0 (largest error 14 -> 1 %), R_gb >50 % off
#: 7 -> 1, R_gb found 97.7 -> 100 %; it costs 4 % more DRT work at 200 sweeps a chunk.
DRT_LEAD_SWEEPS = 8


def process_chunk(task: ChunkTask) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Run the requested stages on one chunk (pure: same task, same numbers).

    Computes with one BLAS thread whichever process runs it (see
    :class:`~geis_pipeline._blas.OneBlasThread`).

    Returns
    -------
    dict
        Stage -> {"sweeps": column -> array (one row per sweep),
        "points": column -> array (the chunk's points, concatenated)}.
    """
    with one_blas_thread:
        return _process_chunk(task)


def _process_chunk(task: ChunkTask) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    config = task.config
    pairs = list(zip(task.freq, task.z, strict=True))
    output: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    masks: list[np.ndarray] = [np.ones(freq.size, dtype=bool) for freq in task.freq]
    verdicts: tuple[np.ndarray, np.ndarray] | None = None
    if "kk" in task.stages:
        output["kk"] = _run_kk(pairs, config)
    if config.kk.enabled:
        kk_points = output["kk"]["points"] if "kk" in output else None
        if kk_points is not None:
            masks = per_sweep(kk_points["used"], task.freq)
            verdicts = (output["kk"]["sweeps"]["ok"], output["kk"]["sweeps"]["rms"])
        elif task.kk_masks is not None:
            masks = list(task.kk_masks)
            verdicts = task.kk_verdicts
    if "fit" in task.stages:
        fit_masks = masks if config.fit.use_kk_mask else [None] * len(pairs)
        output["fit"] = _run_fit(pairs, fit_masks, config, task.area_cm2, task.circuit, verdicts)
    if "drt" in task.stages:
        lead = list(zip(task.lead_freq, task.lead_z, strict=True))
        output["drt"] = _run_drt(
            pairs, masks, config, task.drt_lam, task.drt_tau_range, lead, _lead_masks(lead, config)
        )
    return output


def _lead_masks(lead: list, config: Config) -> list[np.ndarray]:
    """The points of the lead-in sweeps the DRT uses: KK's, as their own chunk has them."""
    if not lead or not config.kk.enabled:
        return [np.ones(freq.size, dtype=bool) for freq, _ in lead]
    return per_sweep(_run_kk(lead, config)["points"]["used"], [freq for freq, _ in lead])


def per_sweep(points: np.ndarray, freq: Sequence[np.ndarray]) -> list[np.ndarray]:
    """A chunk's point column (its sweeps' points concatenated) cut into one view per sweep."""
    offsets = np.cumsum([0] + [item.size for item in freq])
    return [points[a:b] for a, b in itertools.pairwise(offsets)]


def _kk_options(config: Config) -> dict[str, object]:
    section = config.kk
    return {
        "threshold": section.threshold,
        "mu_criterion": section.mu_criterion,
        "truncate": section.truncate,
        "include_inductance": section.include_inductance,
        "max_freq_hz": section.max_freq_hz,
    }


def _run_kk(pairs, config: Config) -> dict[str, dict[str, np.ndarray]]:
    results = check_kk_batch(pairs, **_kk_options(config))
    used, outlier_flags = [], []
    for result in results:
        outliers = np.zeros(result.mask.size, dtype=bool)
        outliers[np.asarray(result.outliers, dtype=int)] = True
        outlier_flags.append(outliers)
        used.append(np.asarray(result.mask, dtype=bool) & ~outliers)
    return {
        "sweeps": {
            "ok": np.array([result.ok for result in results]),
            "reason": np.array([result.reason for result in results], dtype=object),
            "mu": np.array([result.mu for result in results]),
            "n_elements": np.array([result.n_elements for result in results]),
            "truncated_below_hz": np.array([result.truncated_below_hz for result in results]),
            "rms": np.array([result.rms for result in results]),
        },
        "points": {
            "used": np.concatenate(used),
            "outlier": np.concatenate(outlier_flags),
            "residual_real": np.concatenate([result.residuals_real for result in results]),
            "residual_imag": np.concatenate([result.residuals_imag for result in results]),
        },
    }


def _fit_options(
    config: Config, area_cm2: float | None, circuit: Circuit | None = None
) -> FitOptions:
    return FitOptions.build(
        circuit or config.fit.circuit, area_cm2=area_cm2, **config.fit.fit_keywords()
    )


def _run_fit(
    pairs, masks, config: Config, area_cm2, circuit, verdicts=None
) -> dict[str, dict[str, np.ndarray]]:
    options = _fit_options(config, area_cm2, circuit)
    n_parameters = len(options.circuit.parameter_names)
    # A sweep whose KK check kept too few points is fitted on all of them: its
    # flags (KK failed) say so, and the run goes on.
    masks = [
        None if mask is not None and 2 * int(np.sum(mask)) <= n_parameters else mask
        for mask in masks
    ]
    kk_ok = noise = None
    if verdicts is not None:
        kk_ok = [bool(value) for value in verdicts[0]]
        noise = [float(value) for value in verdicts[1]]
    results = fit_experiment(pairs, options, masks=masks, kk_ok=kk_ok, noise_rms=noise)
    sweeps = {
        "parameters": np.array([result.vector for result in results]),
        "stderr": np.array([list(result.stderr.values()) for result in results]),
        "chi2": np.array([result.chi2 for result in results]),
        "ok": np.array([result.ok for result in results]),
        "status": np.array([result.status for result in results], dtype=object),
        "reasons": np.array([",".join(result.reasons) for result in results], dtype=object),
        "start": np.array([result.start for result in results], dtype=object),
        "residual_rms": np.array([result.residual_rms for result in results]),
    }
    # The physics' role table (arcs identified by capacitance and time constant).
    for role, quantities in role_table(results).items():
        for quantity, values in quantities.items():
            sweeps[f"role_{role}_{quantity}"] = values
    return {
        "sweeps": sweeps,
        "points": {
            "used": np.concatenate([result.mask for result in results]),
            "z_fit_real_ohm": np.concatenate([result.z_fit.real for result in results]),
            "z_fit_imag_ohm": np.concatenate([result.z_fit.imag for result in results]),
        },
    }


def _drt_options(config: Config, tau_range) -> dict[str, object]:
    section = config.drt
    return {
        "basis": section.basis,
        "points_per_decade": float(section.points_per_decade),
        "derivative": section.derivative,
        "inductance": section.inductance,
        "refine": section.refine,
        "solver": section.solver,
        "windows": dict(section.windows),
        "tau_range": tau_range,
    }


def _run_drt(
    pairs, masks, config: Config, lam, tau_range, lead=(), lead_masks=()
) -> dict[str, dict[str, np.ndarray]]:
    """The DRT of the chunk's sweeps, its refinement run through the ``lead`` sweeps first."""
    results = invert_drt_batch(
        [*lead, *pairs],
        masks=[*lead_masks, *masks],
        lam=lam if lam is not None else config.drt.lam,
        lam_per_spectrum=config.drt.lam_per_spectrum,
        **_drt_options(config, tau_range),
    )[len(lead) :]
    tracks = track_peaks(results, windows=dict(config.drt.windows))
    sweeps: dict[str, np.ndarray] = {
        "gamma_ohm": np.array([result.gamma for result in results]),
        "R_inf_ohm": np.array([result.R_inf for result in results]),
        "L_H": np.array([result.L for result in results]),
        "lam": np.array([result.lam for result in results]),
        "ok": np.array([result.ok for result in results]),
        "status": np.array([result.status for result in results], dtype=object),
    }
    for process in config.drt.windows:
        process_track = tracks[process]
        sweeps[f"{process}_tau_s"] = np.asarray(process_track.tau, dtype=np.float64)
        sweeps[f"{process}_R_ohm"] = np.asarray(process_track.R, dtype=np.float64)
        sweeps[f"{process}_R_stderr_ohm"] = np.asarray(process_track.R_stderr, dtype=np.float64)
        sweeps[f"{process}_R_window_ohm"] = np.asarray(process_track.R_window, dtype=np.float64)
        # Peak counts per window: the experiment's split / appear / vanish events come from them.
        sweeps[f"{process}_n_peaks"] = np.asarray(process_track.n_peaks, dtype=np.int64)
        # Whether that R is a measurement (refined, the apexes beside it measured).
        sweeps[f"{process}_resolved"] = np.asarray(process_track.resolved, dtype=bool)
    return {
        "sweeps": sweeps,
        "points": {
            "z_fit_real_ohm": np.concatenate([np.real(result.z_fit) for result in results]),
            "z_fit_imag_ohm": np.concatenate([np.imag(result.z_fit) for result in results]),
        },
        "grid": {"tau_s": np.asarray(results[0].tau, dtype=np.float64)},
    }
