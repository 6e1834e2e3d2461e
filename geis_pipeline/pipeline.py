"""The staged pipeline: ingest -> kk -> fit -> drt -> track -> store.

The orchestrator is the only place that knows about configs, folders and
files; the stages it calls take arrays and options. Work is cut into chunks of
``executor.chunk_size`` consecutive sweeps (the warm-start chain of the fit
runs within a chunk, from a fresh start at its first sweep), so the same
chunks give the same numbers whichever executor runs them: serial, a local
process pool, or a Dask cluster.

Crash safety and resuming: every finished chunk is saved atomically beside
the output (``OUT.h5.parts/``); the result file itself is only ever replaced
whole (:func:`geis_pipeline.store.write_store`): with the raw data once ingest
is done (while the workers start on the first chunks), every
``executor.publish_interval_s`` (less often for a file so large that rewriting
it would take more than ~5 % of the run, see :data:`PUBLISH_SPACING`) and at
the end; only the final file is compressed (the others are replaced, and
compressing is most of the write time). A run killed at any moment leaves a
result file that opens (the last published one) and the saved chunks; running
the same command again reuses both and computes only what is missing.
Each stage's results carry the hash of the config sections they depend on, so
re-processing with a changed config recomputes only the stages it touches.

Chunks are computed with one BLAS thread (threadpoolctl), in whichever process:
the executor's processes are the parallelism (see :class:`_OneBlasThread`).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from geis_pipeline import __version__
from geis_pipeline.config import Config, config_to_toml, section_hash
from geis_pipeline.drt import (
    build_drt_problem,
    experiment_lambda,
    invert_drt_batch,
    track_peaks,
)
from geis_pipeline.errors import ConfigError
from geis_pipeline.fit import Circuit, FitOptions, fit_experiment
from geis_pipeline.ingest import read_experiment
from geis_pipeline.kk import check_kk_batch
from geis_pipeline.spectrum import Experiment
from geis_pipeline.store import ExperimentRecord, InputFile, StageData, read_store, write_store
from geis_pipeline.summary import ExperimentSummary, summarize
from geis_pipeline.track import arrhenius_fit, sand_fit, summarize_tracking, track

__all__ = ["STAGE_SECTIONS", "RunReport", "reprocess", "run", "stage_hashes"]

log = logging.getLogger(__name__)

#: Config sections each stage's results depend on.
STAGE_SECTIONS: dict[str, tuple[str, ...]] = {
    "kk": ("kk",),
    "fit": ("experiment", "kk", "fit"),
    "drt": ("kk", "drt"),
}
STAGES = tuple(STAGE_SECTIONS)

ProgressCallback = Callable[[int, int, str], None]


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
class ExperimentReport:
    """What happened to one experiment."""

    name: str
    n_spectra: int
    n_flagged: int
    n_kk_failed: int
    n_truncated: int
    n_fit_failed: int
    n_drt_failed: int
    stages_computed: tuple[str, ...]
    stages_reused: tuple[str, ...]
    n_sweeps_computed: int
    skipped_files: tuple[str, ...]
    ingest: ExperimentSummary
    summary: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class RunReport:
    """A run's outcome, for the terminal summary."""

    output: Path
    experiments: tuple[ExperimentReport, ...]
    elapsed_s: float

    @property
    def n_spectra(self) -> int:
        return sum(report.n_spectra for report in self.experiments)


# ----------------------------------------------------------------------------- chunks


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


_ChunkKey = tuple[int, int, str]  # start, stop, digest of the chunk's raw data


def _chunk_digest(freq: Sequence[np.ndarray], z: Sequence[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for frequencies, impedance in zip(freq, z, strict=True):
        digest.update(np.ascontiguousarray(frequencies).tobytes())
        digest.update(np.ascontiguousarray(impedance).tobytes())
    return digest.hexdigest()[:16]


def process_chunk(task: ChunkTask) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Run the requested stages on one chunk (pure: same task, same numbers).

    Computes with one BLAS thread whichever process runs it (see :class:`_OneBlasThread`).

    Returns
    -------
    dict
        Stage -> {"sweeps": column -> array (one row per sweep),
        "points": column -> array (the chunk's points, concatenated)}.
    """
    with _one_blas_thread:
        return _process_chunk(task)


def _process_chunk(task: ChunkTask) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    config = task.config
    pairs = list(zip(task.freq, task.z, strict=True))
    output: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    masks: list[np.ndarray] = [np.ones(freq.size, dtype=bool) for freq in task.freq]
    if "kk" in task.stages:
        output["kk"] = _run_kk(pairs, config)
    if config.kk.enabled:
        kk_points = output["kk"]["points"] if "kk" in output else None
        if kk_points is not None:
            used = kk_points["used"]
            offsets = np.cumsum([0] + [freq.size for freq in task.freq])
            masks = [used[a:b] for a, b in itertools.pairwise(offsets)]
        elif task.kk_masks is not None:
            masks = list(task.kk_masks)
    if "fit" in task.stages:
        fit_masks = masks if config.fit.use_kk_mask else [None] * len(pairs)
        output["fit"] = _run_fit(pairs, fit_masks, config, task.area_cm2, task.circuit)
    if "drt" in task.stages:
        output["drt"] = _run_drt(pairs, masks, config, task.drt_lam, task.drt_tau_range)
    return output


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
    section = config.fit
    return FitOptions.build(
        circuit or section.circuit,
        bounds=section.bounds,
        fixed=section.fixed,
        roles=section.roles,
        weighting=section.weighting,
        area_cm2=area_cm2,
    )


def _run_fit(pairs, masks, config: Config, area_cm2, circuit) -> dict[str, dict[str, np.ndarray]]:
    options = _fit_options(config, area_cm2, circuit)
    n_parameters = len(options.circuit.parameter_names)
    # A sweep whose KK check kept too few points is fitted on all of them: its
    # flags (KK failed) say so, and the run goes on.
    masks = [
        None if mask is not None and 2 * int(np.sum(mask)) <= n_parameters else mask
        for mask in masks
    ]
    results = fit_experiment(pairs, options, masks=masks)
    return {
        "sweeps": {
            "parameters": np.array([result.vector for result in results]),
            "stderr": np.array([list(result.stderr.values()) for result in results]),
            "chi2": np.array([result.chi2 for result in results]),
            "ok": np.array([result.ok for result in results]),
            "status": np.array([result.status for result in results], dtype=object),
            "start": np.array([result.start for result in results], dtype=object),
        },
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
        "solver": section.solver,
        "windows": dict(section.windows),
        "tau_range": tau_range,
    }


def _run_drt(pairs, masks, config: Config, lam, tau_range) -> dict[str, dict[str, np.ndarray]]:
    results = invert_drt_batch(
        pairs,
        masks=masks,
        lam=lam if lam is not None else config.drt.lam,
        lam_per_spectrum=config.drt.lam_per_spectrum,
        **_drt_options(config, tau_range),
    )
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
        sweeps[f"{process}_R_window_ohm"] = np.asarray(process_track.R_window, dtype=np.float64)
    return {
        "sweeps": sweeps,
        "points": {
            "z_fit_real_ohm": np.concatenate([np.real(result.z_fit) for result in results]),
            "z_fit_imag_ohm": np.concatenate([np.imag(result.z_fit) for result in results]),
        },
        "grid": {"tau_s": np.asarray(results[0].tau, dtype=np.float64)},
    }


# ------------------------------------------------------------------------ executors


class _Executor:
    """Runs chunk tasks: :meth:`submit` starts them and gives (task, output) as they finish."""

    def __init__(self, config: Config) -> None:
        self.section = config.executor

    @contextlib.contextmanager
    def submit(self, tasks: list[ChunkTask]) -> Iterator[Iterator[tuple[ChunkTask, dict]]]:
        """Start the tasks and give an iterator over the finished ones.

        A process pool or a cluster starts computing right away, so the caller's own
        work inside the ``with`` block (publishing the raw data) overlaps the
        workers'; serial tasks run as the iterator is consumed. Leaving the block
        early (an error) cancels the tasks not yet started.
        """
        kind = self.section.kind
        if not tasks:
            yield iter(())
        elif kind == "serial" or (
            kind == "process" and (self.section.workers == 1 or len(tasks) == 1)
        ):
            yield ((task, process_chunk(task)) for task in tasks)
        elif kind == "process":
            workers = min(self.section.workers, len(tasks))
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures: dict[Future, ChunkTask] = {
                    pool.submit(process_chunk, task): task for task in tasks
                }
                try:
                    yield ((futures[future], future.result()) for future in as_completed(futures))
                finally:
                    for future in futures:
                        future.cancel()
        else:
            with self._dask(tasks) as finished:
                yield finished

    @contextlib.contextmanager
    def _dask(self, tasks: list[ChunkTask]) -> Iterator[Iterator[tuple[ChunkTask, dict]]]:
        try:
            from distributed import Client
            from distributed import as_completed as dask_completed
        except ImportError as exc:
            raise ConfigError(
                "the dask executor needs: pip install 'geis-pipeline[dask]'", key="executor.kind"
            ) from exc
        with Client(self.section.scheduler) as client:
            futures = {client.submit(process_chunk, task, pure=False): task for task in tasks}
            yield ((futures[future], future.result()) for future in dask_completed(futures))


# -------------------------------------------------------------------- BLAS threads


class _OneBlasThread:
    """Context manager: one BLAS thread inside, the previous counts restored after.

    A chunk is thousands of small solves: BLAS threads only add synchronisation,
    and on a busy machine (the other workers, other users) spinning threads that
    wait for a core made the KK check ~3x slower. The executor's processes are
    the parallelism; each computes with one thread. threadpoolctl finds and sets
    the BLAS libraries loaded in the process (OpenBLAS, MKL, BLIS). Reentrant and
    thread-safe (counts are per process): the first to enter limits them, the
    last to leave restores them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._controller: ThreadpoolController | None = None
        self._limiter: Any = None

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0:
                if self._controller is None:  # inspecting the loaded libraries takes ~ms
                    self._controller = ThreadpoolController()
                self._limiter = self._controller.limit(limits=1, user_api="blas")
            self._users += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._limiter.restore_original_limits()
                self._limiter = None


_one_blas_thread = _OneBlasThread()


# --------------------------------------------------------------------- orchestration


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _inputs(experiment: Experiment) -> tuple[InputFile, ...]:
    return tuple(
        InputFile(Path(source).name, Path(source).stat().st_size, _sha256(Path(source)))
        for source in experiment.metadata.sources
        if Path(source).is_file()
    )


class _Parts:
    """Finished chunks saved beside the output (atomic writes), for resuming.

    A chunk is named by ``(start, stop, digest of its raw data)``.
    """

    def __init__(self, output: Path) -> None:
        self.root = output.with_name(output.name + ".parts")

    def _path(self, experiment: str, stage: str, stage_hash: str, chunk: _ChunkKey) -> Path:
        start, stop, key = chunk
        return self.root / experiment / f"{stage}-{stage_hash[:16]}-{start}-{stop}-{key}.npz"

    def load(self, experiment: str, stage: str, stage_hash: str, chunk: _ChunkKey) -> dict | None:
        path = self._path(experiment, stage, stage_hash, chunk)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=True) as archive:
                output: dict[str, dict[str, np.ndarray]] = {"sweeps": {}, "points": {}, "grid": {}}
                for key in archive.files:
                    kind, name = key.split("/", 1)
                    output[kind][name] = archive[key]
                return output
        except (OSError, ValueError, KeyError) as exc:  # a damaged part is recomputed
            log.warning("ignoring unreadable saved chunk %s: %s", path, exc)
            return None

    def save(self, experiment: str, stage: str, stage_hash: str, chunk: _ChunkKey, output) -> None:
        path = self._path(experiment, stage, stage_hash, chunk)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        arrays = {
            f"{kind}/{name}": values
            for kind in ("sweeps", "points", "grid")
            for name, values in output.get(kind, {}).items()
        }
        np.savez(temporary, **arrays)
        os.replace(temporary, path)

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _tau_range(experiment: Experiment, config: Config) -> tuple[float, float]:
    """One tau grid for the whole experiment (so gamma(tau) maps stack over time)."""
    f_max = max(float(spectrum.freq.max()) for spectrum in experiment.spectra)
    f_min = min(float(spectrum.freq.min()) for spectrum in experiment.spectra)
    if config.kk.max_freq_hz is not None:
        f_max = min(f_max, config.kk.max_freq_hz)
    decade = 10.0
    return 1 / (2 * math.pi * f_max) / decade, 1 / (2 * math.pi * f_min) * decade


def _experiment_lambda(experiment: Experiment, config: Config, tau_range) -> float | None:
    """lambda chosen once per experiment on a few representative full sweeps (median of log)."""
    if not config.drt.enabled or not isinstance(config.drt.lam, str) or config.drt.lam_per_spectrum:
        return float(config.drt.lam) if not isinstance(config.drt.lam, str) else None
    longest = max(spectrum.n_points for spectrum in experiment.spectra)
    full = [spectrum for spectrum in experiment.spectra if spectrum.n_points == longest]
    problem = build_drt_problem(full[0].freq, lam=config.drt.lam, **_drt_options(config, tau_range))
    items = [
        (problem, spectrum.z, None)
        for spectrum in full
        if np.array_equal(spectrum.freq, full[0].freq)
    ]
    return experiment_lambda(items, config.drt.lam)


def _sweep_digests(experiment: Experiment) -> list[str]:
    return [
        hashlib.sha1(
            spectrum.freq.tobytes() + spectrum.z.tobytes(), usedforsecurity=False
        ).hexdigest()
        for spectrum in experiment.spectra
    ]


def _reusable_rows(previous: ExperimentRecord | None, experiment: Experiment) -> int:
    """How many leading sweeps the stored experiment shares with the new one."""
    if previous is None:
        return 0
    old = _sweep_digests(previous.experiment)
    new = _sweep_digests(experiment)
    shared = 0
    for old_digest, new_digest in zip(old, new, strict=False):
        if old_digest != new_digest:
            break
        shared += 1
    return shared


def _slice_stage(stage: StageData, start: int, stop: int, offsets: np.ndarray) -> dict:
    return {
        "sweeps": {name: values[start:stop] for name, values in stage.sweeps.items()},
        "points": {
            name: values[offsets[start] : offsets[stop]] for name, values in stage.points.items()
        },
        "grid": dict(stage.grid),
    }


def _assemble(
    chunks: list[dict], n_sweeps: int, stage: str, config: Config, stage_hash: str
) -> StageData:
    sweeps: dict[str, np.ndarray] = {}
    points: dict[str, np.ndarray] = {}
    grid: dict[str, np.ndarray] = {}
    if chunks:
        grid = dict(chunks[0].get("grid", {}))
        for name in chunks[0]["sweeps"]:
            sweeps[name] = np.concatenate([chunk["sweeps"][name] for chunk in chunks])
        for name in chunks[0]["points"]:
            points[name] = np.concatenate([chunk["points"][name] for chunk in chunks])
    n_done = next(iter(sweeps.values())).shape[0] if sweeps else 0
    attrs: dict[str, object] = {"n_done": n_done, "complete": n_done == n_sweeps}
    if stage == "fit":
        circuit = _fit_options(config, None).circuit
        attrs |= {
            "circuit": circuit.text,
            "parameter_names": list(circuit.parameter_names),
            "zarcs": [list(pair) for pair in circuit.zarcs],
        }
    if stage == "drt":
        attrs["windows"] = {name: list(bounds) for name, bounds in config.drt.windows.items()}
    return StageData(stage_hash, sweeps, points, grid, attrs)


def _fit_band(spectra, fit: StageData, n_done: int) -> np.ndarray | None:
    """(n_done, 2) lowest and highest frequency each fit used (None if not stored)."""
    used = fit.points.get("used")
    sizes = [spectrum.freq.size for spectrum in spectra]
    if used is None or used.size < sum(sizes):
        return None
    band = np.full((n_done, 2), np.nan)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    for step, spectrum in enumerate(spectra):
        mask = np.asarray(used[offsets[step] : offsets[step + 1]], dtype=bool)
        freq = spectrum.freq[mask] if mask.any() else spectrum.freq
        band[step] = (freq.min(), freq.max())
    return band


def _tracking(
    experiment: Experiment, stages: dict[str, StageData], config: Config, name: str | None = None
) -> tuple[dict, dict]:
    fit = stages.get("fit")
    n_done = int(fit.attrs["n_done"]) if fit is not None else 0
    spectra = experiment.spectra[:n_done]
    if fit is None or n_done == 0:
        return {}, {}
    options = _fit_options(config, experiment.metadata.area_cm2)
    section = config.track
    temperature = section.experiment_temperatures_K.get(name or "", section.temperature_K)
    kk = stages.get("kk")
    drt = stages.get("drt")
    kk_ok = kk.sweeps["ok"][:n_done] if kk is not None and kk.sweeps["ok"].size >= n_done else None
    drt_ready = (
        drt is not None and "int_R_ohm" in drt.sweeps and drt.sweeps["int_R_ohm"].size >= n_done
    )
    result = track(
        np.array([spectrum.time_s for spectrum in spectra]),
        parameters=fit.sweeps["parameters"],
        stderr=fit.sweeps["stderr"],
        parameter_names=options.circuit.parameter_names,
        zarcs=options.circuit.zarcs,
        roles=options.roles,
        fit_ok=fit.sweeps["ok"],
        kk_ok=kk_ok,
        potential_V=np.array([spectrum.potential_V for spectrum in spectra]),
        charge_mAh=np.array([spectrum.charge_mAh for spectrum in spectra]),
        area_cm2=experiment.metadata.area_cm2,
        interfaces=config.track.interfaces,
        reference_step=config.track.reference_step,
        drt_R_int_ohm=drt.sweeps["int_R_ohm"][:n_done] if drt_ready else None,
        drt_tau_int_s=drt.sweeps["int_tau_s"][:n_done] if drt_ready else None,
        current_mA=np.array([spectrum.current_mA for spectrum in spectra]),
        freq_band_hz=_fit_band(spectra, fit, n_done),
        ocv_current_density_mA_cm2=section.ocv_current_density_mA_cm2,
        c_int_max_rel_stderr=section.c_int_max_rel_stderr,
        temperature_K=temperature,
        reference_temperature_K=section.reference_temperature_K,
        activation_energy_eV=section.activation_energy_eV,
    )
    summary = {
        "n_spectra": len(experiment.spectra),
        "n_processed": n_done,
        "n_fit_failed": int(np.sum(~fit.sweeps["ok"])),
        "reference_step": result.reference_step,
    }
    summary |= summarize_tracking(
        result.columns,
        result.reference_step,
        r_int_threshold_ohm_cm2=section.r_int_threshold_ohm_cm2,
        c0_mol_cm3=section.c0_mol_cm3,
        current_density_mA_cm2=section.experiment_current_densities_mA_cm2.get(
            name or "", section.current_density_mA_cm2
        ),
        relaxation_model=section.relaxation_model,
        temperature_K=temperature,
    )
    return dict(result.columns), summary


def _study(records: dict[str, ExperimentRecord], config: Config) -> dict[str, dict]:
    """Study-level fits across the experiments' summaries (written to ``/study/<name>``).

    ``sand`` (at least two current densities with t0 reached): weighted fit of
    t0^(-1/2) versus i -> ``D_eff_cm2_s``, ``D_eff_stderr_cm2_s``, slope (s^-1/2
    per A/cm2) and intercept with errors, ``n_experiments`` and the points.
    ``arrhenius`` (at least two temperatures): ``E_A_<R_b|R_gb|R_int>_eV`` with
    ``..._stderr_eV`` from the reference-step resistances; ``R_ohm_cm2`` and
    ``E_A_eV`` repeat the interface's.
    """
    summaries = {name: record.summary for name, record in records.items() if record.summary}
    study: dict[str, dict] = {}

    def values(key: str) -> np.ndarray:
        return np.array([float(summary.get(key, math.nan)) for summary in summaries.values()])

    names = list(summaries)
    t0 = values("t0_s")
    current = values("current_density_mA_cm2")
    usable = np.isfinite(t0) & np.isfinite(current)
    if np.unique(np.abs(current[usable])).size >= 2:
        fitted = sand_fit(
            t0[usable],
            current[usable],
            config.track.c0_mol_cm3,
            t0_stderr_s=values("t0_stderr_s")[usable],
            through_origin=config.track.sand_through_origin,
        )
        study["sand"] = {
            "D_eff_cm2_s": fitted.D_eff_cm2_s,
            "D_eff_stderr_cm2_s": fitted.D_eff_stderr_cm2_s,
            "slope_s-0.5_cm2_A": fitted.slope,
            "slope_stderr_s-0.5_cm2_A": fitted.slope_stderr,
            "intercept_s-0.5": fitted.intercept,
            "intercept_stderr_s-0.5": fitted.intercept_stderr,
            "through_origin": config.track.sand_through_origin,
            "c0_mol_cm3": config.track.c0_mol_cm3,
            "n_experiments": fitted.n_experiments,
            "experiments": [name for name, keep in zip(names, usable, strict=True) if keep],
            "current_density_mA_cm2": [float(value) for value in current[usable]],
            "t0_s": [float(value) for value in t0[usable]],
        }
    temperature = values("temperature_K")
    known = np.isfinite(temperature)
    if np.unique(temperature[known]).size >= 2:
        arrhenius: dict[str, object] = {
            "experiments": [name for name, keep in zip(names, known, strict=True) if keep],
            "temperature_K": [float(value) for value in temperature[known]],
            "n_experiments": int(np.sum(known)),
        }
        for label in ("R_b", "R_gb", "R_int"):
            resistance = values(f"{label}_ref_ohm_cm2")[known]
            fitted_arrhenius = arrhenius_fit(temperature[known], resistance)
            arrhenius[f"E_A_{label}_eV"] = fitted_arrhenius.E_A_eV
            arrhenius[f"E_A_{label}_stderr_eV"] = fitted_arrhenius.E_A_stderr_eV
            arrhenius[f"{label}_ref_ohm_cm2"] = [float(value) for value in resistance]
        # The interface, under the generic names plots look for.
        arrhenius["R_ohm_cm2"] = arrhenius["R_int_ref_ohm_cm2"]
        arrhenius["E_A_eV"] = arrhenius["E_A_R_int_eV"]
        study["arrhenius"] = arrhenius
    return study


#: A periodic publish waits at least this many times as long as the last publish took: the
#: whole file is rewritten each time, so a large one is rewritten less often than
#: ``executor.publish_interval_s`` and rewriting never takes more than ~5 % of the run.
PUBLISH_SPACING = 20.0


@dataclass
class _RunState:
    """Everything the orchestrator accumulates while it runs."""

    output: Path
    config: Config
    records: dict[str, ExperimentRecord]
    inputs: dict[str, tuple[InputFile, ...]] = field(default_factory=dict)
    study: dict = field(default_factory=dict)
    last_publish: float = field(default_factory=time.monotonic)
    publish_cost_s: float = 0.0
    #: Run once, as soon as the first chunks are submitted (run: publish the raw data).
    on_start: Callable[[], None] | None = None

    def start(self) -> None:
        if self.on_start is not None:
            on_start, self.on_start = self.on_start, None
            on_start()

    def publish(self, final: bool = False) -> None:
        """Replace the result file (compressed only when final: the others are replaced)."""
        started = time.monotonic()
        write_store(
            self.output,
            self.records,
            config_toml=config_to_toml(self.config),
            package_version=__version__,
            study=self.study,
            compress=final,
        )
        self.last_publish = time.monotonic()
        self.publish_cost_s = self.last_publish - started

    def publish_due(self) -> bool:
        """Whether a periodic publish is due (see :data:`PUBLISH_SPACING`)."""
        wait = max(self.config.executor.publish_interval_s, PUBLISH_SPACING * self.publish_cost_s)
        return time.monotonic() - self.last_publish > wait


def _process_experiment(
    name: str,
    experiment: Experiment,
    previous: ExperimentRecord | None,
    state: _RunState,
    parts: _Parts,
    progress: ProgressCallback | None,
) -> ExperimentReport:
    config = state.config
    hashes = stage_hashes(config)
    n_sweeps = len(experiment.spectra)
    enabled = [stage for stage in STAGES if stage == "fit" or getattr(config, stage).enabled]
    shared = _reusable_rows(previous, experiment)
    chunk_size = config.executor.chunk_size
    bounds = [
        (start, min(start + chunk_size, n_sweeps)) for start in range(0, n_sweeps, chunk_size)
    ]
    tau_range = _tau_range(experiment, config)
    # Checked once here (impedance.py parses the string); workers get the compiled circuit
    # and never import impedance.py (2 s per process).
    circuit = _fit_options(config, experiment.metadata.area_cm2).circuit
    stored = {
        stage: previous.stages[stage]
        for stage in enabled
        if previous is not None
        and stage in previous.stages
        and previous.stages[stage].config_hash == hashes[stage]
    }
    previous_offsets = (
        np.concatenate([[0], np.cumsum([s.n_points for s in previous.experiment.spectra])])
        if previous is not None
        else None
    )
    chunk_outputs: dict[str, dict[int, dict]] = {stage: {} for stage in enabled}
    reused: set[str] = set()
    tasks: list[ChunkTask] = []
    keys: dict[int, _ChunkKey] = {}
    drt_lam = None
    for start, stop in bounds:
        freq = tuple(spectrum.freq for spectrum in experiment.spectra[start:stop])
        z = tuple(spectrum.z for spectrum in experiment.spectra[start:stop])
        keys[start] = (start, stop, _chunk_digest(freq, z))
        missing = []
        for stage in enabled:
            stage_data = stored.get(stage)
            if (
                stage_data is not None
                and stop <= shared
                and int(stage_data.attrs.get("n_done", 0)) >= stop
            ):
                chunk_outputs[stage][start] = _slice_stage(
                    stage_data, start, stop, previous_offsets
                )
                reused.add(stage)
                continue
            saved = parts.load(name, stage, hashes[stage], keys[start])
            if saved is not None:
                chunk_outputs[stage][start] = saved
                reused.add(stage)
                continue
            missing.append(stage)
        if not missing:
            continue
        kk_masks = None
        if "kk" not in missing and "kk" in enabled:
            used = chunk_outputs["kk"][start]["points"]["used"]
            local = np.cumsum([0] + [f.size for f in freq])
            kk_masks = tuple(used[a:b] for a, b in itertools.pairwise(local))
        if "drt" in missing and drt_lam is None:
            drt_lam = _experiment_lambda(experiment, config, tau_range)
        tasks.append(
            ChunkTask(
                name,
                start,
                stop,
                freq,
                z,
                tuple(missing),
                config,
                experiment.metadata.area_cm2,
                drt_lam,
                tau_range,
                kk_masks,
                circuit,
            )
        )
    done_sweeps = n_sweeps - sum(task.stop - task.start for task in tasks)
    if progress is not None:
        progress(done_sweeps, n_sweeps, name)
    with _Executor(config).submit(tasks) as finished:
        state.start()  # the workers compute meanwhile
        inputs = state.inputs[name]
        for number, (task, output) in enumerate(finished, 1):
            for stage, stage_output in output.items():
                parts.save(name, stage, hashes[stage], keys[task.start], stage_output)
                chunk_outputs[stage][task.start] = stage_output
            done_sweeps += task.stop - task.start
            if progress is not None:
                progress(done_sweeps, n_sweeps, name)
            if number < len(tasks) and state.publish_due():  # the last one is published anyway
                state.records[name] = _record(
                    name, experiment, inputs, chunk_outputs, hashes, config, n_sweeps
                )
                state.publish()
    state.records[name] = _record(name, experiment, inputs, chunk_outputs, hashes, config, n_sweeps)
    stages = state.records[name].stages
    kk = stages.get("kk")
    fit = stages["fit"]
    drt = stages.get("drt")
    return ExperimentReport(
        name=name,
        n_spectra=n_sweeps,
        n_flagged=len(experiment.flagged),
        n_kk_failed=int(np.sum(~kk.sweeps["ok"])) if kk else 0,
        n_truncated=int(np.sum(np.isfinite(kk.sweeps["truncated_below_hz"]))) if kk else 0,
        n_fit_failed=int(np.sum(~fit.sweeps["ok"])),
        n_drt_failed=int(np.sum(~drt.sweeps["ok"])) if drt else 0,
        stages_computed=tuple(sorted({stage for task in tasks for stage in task.stages})),
        stages_reused=tuple(sorted(reused)),
        n_sweeps_computed=sum(task.stop - task.start for task in tasks),
        skipped_files=tuple(item.path for item in experiment.skipped),
        ingest=summarize(experiment),
        summary=dict(state.records[name].summary),
    )


def _record(name, experiment, inputs, chunk_outputs, hashes, config, n_sweeps) -> ExperimentRecord:
    stages = {}
    for stage, by_start in chunk_outputs.items():
        # Only the contiguous run of finished chunks from the first sweep is published.
        ordered = []
        position = 0
        while position in by_start:
            chunk = by_start[position]
            ordered.append(chunk)
            position += next(iter(chunk["sweeps"].values())).shape[0] if chunk["sweeps"] else 0
            if not chunk["sweeps"]:
                break
        stages[stage] = _assemble(ordered, n_sweeps, stage, config, hashes[stage])
    tracking, summary = _tracking(experiment, stages, config, name)
    return ExperimentRecord(name, experiment, inputs, stages, tracking, summary)


def _experiment_name(folder: Path, taken: set[str]) -> str:
    name = folder.resolve().name or "experiment"
    candidate, counter = name, 2
    while candidate in taken:
        candidate, counter = f"{name}_{counter}", counter + 1
    return candidate


def run(
    folders: Sequence[str | Path],
    config: Config,
    output: str | Path,
    *,
    progress: ProgressCallback | None = None,
) -> RunReport:
    """Process experiment folders into one result file (resuming where possible).

    Parameters
    ----------
    folders
        Experiment folders; each becomes ``/experiments/<folder name>``.
    config
        The resolved configuration.
    output
        The HDF5 result file. If it exists, its raw data and results are
        reused where the sweeps and the stage's config are unchanged (a
        measurement still running: only the new sweeps are processed).
    progress
        Called as ``progress(done_sweeps, total_sweeps, experiment)``.
    """
    started = time.perf_counter()
    output = Path(output)
    previous_records: dict[str, ExperimentRecord] = {}
    if output.exists():
        previous_records, _ = read_store(output)
    state = _RunState(output, config, dict(previous_records))
    parts = _Parts(output)
    reports = []
    taken: set[str] = set()
    experiments = []
    for folder in folders:
        folder = Path(folder)
        name = _experiment_name(folder, taken)
        taken.add(name)
        experiment = read_experiment(
            folder, area_cm2=config.experiment.area_cm2, strict=config.experiment.strict
        )
        experiments.append((name, experiment))

    def publish_raw_data() -> None:
        # Raw data goes in first: the file opens from now on.
        for name, experiment in experiments:
            state.inputs[name] = _inputs(experiment)
            if name not in state.records:
                state.records[name] = ExperimentRecord(name, experiment, state.inputs[name])
        state.publish()

    state.on_start = publish_raw_data
    for number, (name, experiment) in enumerate(experiments, 1):
        reports.append(
            _process_experiment(
                name, experiment, previous_records.get(name), state, parts, progress
            )
        )
        if number < len(experiments):  # the last one is published with the study
            state.publish()
    state.study = _study(state.records, config)
    state.publish(final=True)
    parts.clear()
    return RunReport(output, tuple(reports), time.perf_counter() - started)


def reprocess(
    result_file: str | Path,
    config: Config,
    *,
    output: str | Path | None = None,
    progress: ProgressCallback | None = None,
) -> RunReport:
    """Re-run, from the stored raw spectra, only the stages whose config changed.

    Parameters
    ----------
    result_file
        A file written by :func:`run`.
    config
        The new configuration.
    output
        Where to write (default: replace ``result_file``, atomically).
    """
    started = time.perf_counter()
    source = Path(result_file)
    output = Path(output) if output is not None else source
    records, _ = read_store(source)
    state = _RunState(output, config, dict(records))
    state.inputs = {name: record.inputs for name, record in records.items()}
    parts = _Parts(output)
    reports = []
    for name, record in records.items():
        experiment = record.experiment
        if config.experiment.area_cm2 is not None:
            experiment = replace(
                experiment,
                metadata=replace(experiment.metadata, area_cm2=config.experiment.area_cm2),
            )
        reports.append(_process_experiment(name, experiment, record, state, parts, progress))
    state.study = _study(state.records, config)
    state.publish(final=True)
    parts.clear()
    return RunReport(output, tuple(reports), time.perf_counter() - started)
