"""The orchestrator: :func:`run` and :func:`reprocess`.

The only place that knows about configs, folders and files; it cuts each
experiment into chunk tasks, reuses stored and saved results, hands the rest to
an executor, and publishes the result file.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from geis_pipeline import __version__
from geis_pipeline.config import Config, config_to_toml
from geis_pipeline.drt import build_drt_problem, experiment_lambda
from geis_pipeline.errors import ConfigError, GeisPipelineError, NoImpedanceDataError
from geis_pipeline.ingest import placeholder_warning, read_experiment
from geis_pipeline.ingest._eclab import is_placeholder_area
from geis_pipeline.pipeline.assembly import (
    StageColumns,
    assemble_record,
    dc_only_summary,
    slice_stage,
    study,
)
from geis_pipeline.pipeline.chunk_store import ChunkKey, ChunkStore, chunk_digest
from geis_pipeline.pipeline.chunks import (
    DRT_LEAD_SWEEPS,
    STAGES,
    ChunkTask,
    _drt_options,
    _fit_options,
    per_sweep,
    stage_hashes,
)
from geis_pipeline.pipeline.executors import Executor
from geis_pipeline.pipeline.lock import OutputLock, remove_stale_temporaries
from geis_pipeline.results import Quality, quality
from geis_pipeline.spectrum import (
    DCRecord,
    Experiment,
    SkippedFile,
    SkippedSweep,
    Spectrum,
    counter_electrode,
    screen_sweeps,
    sort_spectra,
)
from geis_pipeline.store import (
    COUNTER,
    ElectrodeResults,
    ExperimentRecord,
    InputFile,
    StageData,
    read_store,
    write_store,
)
from geis_pipeline.summary import ExperimentSummary, summarize

__all__ = ["PUBLISH_SPACING", "ExperimentReport", "RunReport", "RunState", "reprocess", "run"]

ProgressCallback = Callable[[int, int, str], None]

log = logging.getLogger(__name__)


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
    skipped_sweeps: tuple[SkippedSweep, ...] = ()
    #: What failed, stage by stage, with the reasons (as ``geis-pipeline info`` shows it).
    quality: Quality | None = None
    #: The counter electrode of a 3-electrode cell (its own KK, fit, DRT and tracking).
    counter: ExperimentReport | None = None


@dataclass(frozen=True)
class RunReport:
    """A run's outcome, for the terminal summary."""

    output: Path
    experiments: tuple[ExperimentReport, ...]
    elapsed_s: float
    #: The study-level fits (``sand``, ``arrhenius``) when the run made them.
    study: dict = field(default_factory=dict)

    @property
    def n_spectra(self) -> int:
        return sum(report.n_spectra for report in self.experiments)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _inputs(
    experiment: Experiment, previous: ExperimentRecord | None = None
) -> tuple[InputFile, ...]:
    """Provenance of the files read, and the stored one of files whose sweeps were kept."""
    read = tuple(
        InputFile(Path(source).name, Path(source).stat().st_size, _sha256(Path(source)))
        for source in experiment.metadata.sources
        if Path(source).is_file()
    )
    if previous is None:
        return read
    names = {item.name for item in read}
    kept = {Path(spectrum.source).name for spectrum in experiment.spectra} - names
    return read + tuple(item for item in previous.inputs if item.name in kept)


def _keep_stored_sweeps(experiment: Experiment, previous: ExperimentRecord | None) -> Experiment:
    """The experiment plus the stored sweeps of files that cannot be read (in full) now.

    A file still being written by the instrument, gone, or now holding fewer
    sweeps than the store has from it (rewritten, truncated, a column renamed)
    must not make its sweeps vanish from the output: they are kept from the
    store (their DC rows too) and the file is reported among the skipped ones,
    saying so. A file that holds fewer sweeps on purpose needs a new output file.
    """
    if previous is None:
        return experiment
    readable = {Path(source).name for source in experiment.metadata.sources}
    stored: dict[str, list[Spectrum]] = {}
    for spectrum in previous.experiment.spectra:
        stored.setdefault(Path(spectrum.source).name, []).append(spectrum)
    now = Counter(Path(spectrum.source).name for spectrum in experiment.spectra)
    lost = {name: spectra for name, spectra in stored.items() if name not in readable}
    shorter = {
        name: spectra
        for name, spectra in stored.items()
        if name in readable and now[name] < len(spectra)
    }
    if not lost and not shorter:
        return experiment
    if shorter:
        experiment = replace(
            experiment,
            spectra=tuple(s for s in experiment.spectra if Path(s.source).name not in shorter),
            skipped=experiment.skipped
            + tuple(
                SkippedFile(
                    spectra[0].source,
                    f"holds {now[name]} sweeps now, fewer than the {len(spectra)} stored "
                    "(rewritten or truncated?)",
                )
                for name, spectra in shorter.items()
            ),
        )
        lost.update(shorter)
    new_start, old_start = experiment.metadata.start_time, previous.experiment.metadata.start_time
    # Stored times count from the stored experiment's start (the lost file may have set it).
    offset = (old_start - new_start).total_seconds() if new_start and old_start else 0.0
    kept = [spectrum.shifted(offset) for spectra in lost.values() for spectrum in spectra]
    skipped = []
    reported = set()
    for item in experiment.skipped:
        name = Path(item.path).name
        if name in lost:
            reported.add(name)
            item = SkippedFile(
                item.path, f"{item.reason}; its {len(lost[name])} stored sweeps are kept"
            )
        skipped.append(item)
    for name, spectra in lost.items():
        if name not in reported:
            skipped.append(
                SkippedFile(spectra[0].source, f"gone; its {len(spectra)} stored sweeps are kept")
            )
        log.warning("%s cannot be read now: keeping its %d stored sweeps", name, len(spectra))
    old_dc = previous.experiment.dc_record.shifted(offset)
    new_times = np.round(experiment.dc_record.time_s, 6)
    extra = ~np.isin(np.round(old_dc.time_s, 6), new_times)
    dc = DCRecord.concatenate(
        [
            experiment.dc_record,
            DCRecord(*(getattr(old_dc, key)[extra] for key in _DC_KEYS)),
        ]
    )
    skipped_sweeps = experiment.skipped_sweeps + tuple(
        item for item in previous.experiment.skipped_sweeps if Path(item.source).name in lost
    )
    return replace(
        experiment,
        spectra=sort_spectra(experiment.spectra + tuple(kept)),
        dc_record=dc,
        skipped=tuple(skipped),
        skipped_sweeps=skipped_sweeps,
    )


_DC_KEYS = ("time_s", "potential_V", "current_mA", "charge_mAh", "potential_ce_V")


def _screened(name: str, experiment: Experiment, config: Config, where: Path) -> Experiment:
    """The experiment without its defective sweeps; checks the reference step fits it."""
    if not experiment.spectra and len(experiment.dc_record):
        return experiment  # a DC-only folder: its record is all there is
    screened = screen_sweeps(experiment)
    for item in screened.skipped_sweeps[len(experiment.skipped_sweeps) :]:
        log.warning("skipped sweep %d of %s: %s", item.sweep_index, item.source, item.reason)
    if not screened.spectra:
        reasons = "; ".join(
            f"{item.source} sweep {item.sweep_index}: {item.reason}"
            for item in screened.skipped_sweeps[:3]
        )
        raise NoImpedanceDataError(
            f"no usable sweep in experiment {name!r} ({reasons})", file=where
        )
    step = config.track.reference_step
    if step is not None and step >= len(screened.spectra):
        raise ConfigError(
            f"experiment {name!r} has {len(screened.spectra)} sweeps "
            f"(steps 0..{len(screened.spectra) - 1}), got {step}",
            key="track.reference_step",
        )
    return screened


def _with_area(experiment: Experiment, area_cm2: float | None) -> Experiment:
    """The stored experiment with the area of the config, or without a placeholder area.

    Results written before the EC-Lab placeholder was recognised store 0.001 cm2
    for EC-Lab files: that is no area (and a warning), as reading the files gives now.
    """
    metadata = experiment.metadata
    if area_cm2 is not None:
        # The area is given: the warnings about it no longer apply.
        kept = tuple(message for message in metadata.warnings if "area" not in message)
        return replace(experiment, metadata=replace(metadata, area_cm2=area_cm2, warnings=kept))
    eclab = metadata.sources and all(
        Path(source).suffix.lower() in (".mpt", ".mpr") for source in metadata.sources
    )
    if eclab and is_placeholder_area(metadata.area_cm2):
        message = placeholder_warning(list(metadata.sources))
        log.warning("%s", message)
        return replace(
            experiment,
            metadata=replace(metadata, area_cm2=None, warnings=(*metadata.warnings, message)),
        )
    return experiment


def _tau_range(experiment: Experiment, config: Config) -> tuple[float, float]:
    """One tau grid for the whole experiment (so gamma(tau) maps stack over time)."""
    f_max = max(float(spectrum.freq.max()) for spectrum in experiment.spectra)
    f_min = min(float(spectrum.freq.min()) for spectrum in experiment.spectra)
    if config.kk.max_freq_hz is not None:
        if config.kk.max_freq_hz <= f_min:
            raise ConfigError(
                f"{config.kk.max_freq_hz:g} Hz is at or below the lowest measured frequency "
                f"({f_min:g} Hz): no point would be kept",
                key="kk.max_freq_hz",
            )
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


#: A periodic publish waits at least this many times as long as the last publish took: the
#: whole file is rewritten each time, so a large one is rewritten less often than
#: ``executor.publish_interval_s`` and rewriting never takes more than ~5 % of the run.
PUBLISH_SPACING = 20.0


@dataclass
class RunState:
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
    #: Publish while running (reprocess: no, the old file stays whole until the new one
    #: replaces it).
    periodic: bool = True

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
        log.debug(
            "wrote %s in %.2f s%s", self.output, self.publish_cost_s, " (final)" if final else ""
        )

    def publish_due(self) -> bool:
        """Whether a periodic publish is due (see :data:`PUBLISH_SPACING`)."""
        if not self.periodic:
            return False
        wait = max(self.config.executor.publish_interval_s, PUBLISH_SPACING * self.publish_cost_s)
        return time.monotonic() - self.last_publish > wait


def _put(state: RunState, name: str, electrode: str, record: ExperimentRecord) -> None:
    """Place an electrode's assembled results in the run's records.

    The working electrode's record keeps the other electrodes' results already
    there (a rerun's stored counter results stay until they are recomputed).
    """
    current = state.records.get(name)
    if electrode == "we":
        n_sweeps = len(record.experiment.spectra)
        kept = {
            key: results
            for key, results in (current.electrodes.items() if current is not None else ())
            if all(np.shape(values)[0] <= n_sweeps for values in results.tracking.values())
            and record.experiment.has_counter
        }
        state.records[name] = replace(record, electrodes=kept)
        return
    results = ElectrodeResults(record.stages, record.tracking, record.summary, record.tables)
    state.records[name] = replace(current, electrodes={**current.electrodes, electrode: results})


def _counter_record(previous: ExperimentRecord | None) -> ExperimentRecord | None:
    """The stored counter-electrode results as a record of the counter's own experiment."""
    if previous is None or COUNTER not in previous.electrodes:
        return None
    if not previous.experiment.has_counter:
        return None
    stored = previous.electrodes[COUNTER]
    return ExperimentRecord(
        previous.name,
        counter_electrode(previous.experiment),
        previous.inputs,
        stored.stages,
        stored.tracking,
        stored.summary,
        stored.tables,
    )


def _process_electrodes(
    name: str,
    experiment: Experiment,
    previous: ExperimentRecord | None,
    state: RunState,
    parts: ChunkStore,
    progress: ProgressCallback | None,
) -> ExperimentReport:
    """The working electrode, then (a 3-electrode cell) the counter through every stage."""
    if not experiment.spectra:
        return _process_dc_only(name, experiment, state)
    report = _process_experiment(name, experiment, previous, state, parts, progress)
    if not experiment.has_counter:
        if any(spectrum.has_counter for spectrum in experiment.spectra):
            log.warning(
                "%s: only some sweeps hold a counter-electrode spectrum: the counter "
                "electrode is not processed",
                name,
            )
        return report
    log.info("%s: 3-electrode cell: processing the counter electrode", name)
    counter = _process_experiment(
        name,
        counter_electrode(experiment),
        _counter_record(previous),
        state,
        parts,
        progress,
        electrode=COUNTER,
        config=state.config.for_counter(),
    )
    return replace(report, counter=counter)


def _process_experiment(
    name: str,
    experiment: Experiment,
    previous: ExperimentRecord | None,
    state: RunState,
    parts: ChunkStore,
    progress: ProgressCallback | None,
    electrode: str = "we",
    config: Config | None = None,
) -> ExperimentReport:
    config = config or state.config
    # Saved chunks of the counter electrode live beside the working electrode's.
    part_name = name if electrode == "we" else f"{name}/{electrode}"
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
        and _has_current_columns(stage, previous.stages[stage], config)
    }
    previous_offsets = (
        np.concatenate([[0], np.cumsum([s.n_points for s in previous.experiment.spectra])])
        if previous is not None
        else None
    )
    offsets = np.concatenate([[0], np.cumsum([s.n_points for s in experiment.spectra])])
    # Each chunk's output is copied into place as it comes and then let go (see StageColumns).
    columns = {stage: StageColumns(offsets) for stage in enabled}
    reused: set[str] = set()
    tasks: list[ChunkTask] = []
    keys: dict[int, ChunkKey] = {}
    drt_lam = None
    # The DRT refinement of a chunk runs through the sweeps before it (DRT_LEAD_SWEEPS,
    # at most a chunk's worth: tiny chunks would multiply the work): its results depend
    # on them, so a chunk's key covers them too.
    n_lead = min(DRT_LEAD_SWEEPS, chunk_size) if "drt" in enabled and config.drt.refine else 0
    for start, stop in bounds:
        freq = tuple(spectrum.freq for spectrum in experiment.spectra[start:stop])
        z = tuple(spectrum.z for spectrum in experiment.spectra[start:stop])
        lead = experiment.spectra[max(start - n_lead, 0) : start]
        lead_freq = tuple(spectrum.freq for spectrum in lead)
        lead_z = tuple(spectrum.z for spectrum in lead)
        keys[start] = (start, stop, chunk_digest(lead_freq + freq, lead_z + z))
        missing = []
        for stage in enabled:
            stage_data = stored.get(stage)
            if (
                stage_data is not None
                and stop <= shared
                and int(stage_data.attrs.get("n_done", 0)) >= stop
            ):
                columns[stage].add(
                    start, stop, slice_stage(stage_data, start, stop, previous_offsets)
                )
                reused.add(stage)
                continue
            n_points = sum(item.size for item in freq)
            saved = parts.load(part_name, stage, hashes[stage], keys[start], n_points)
            if saved is not None:
                columns[stage].add(start, stop, saved)
                reused.add(stage)
                continue
            missing.append(stage)
        if not missing:
            continue
        kk_masks = kk_verdicts = None
        if "kk" not in missing and "kk" in enabled:
            kk_chunk = columns["kk"].chunk(start, stop)
            kk_masks = tuple(per_sweep(kk_chunk["points"]["used"], freq))
            kk_sweeps = kk_chunk["sweeps"]
            kk_verdicts = (
                np.asarray(kk_sweeps["ok"], dtype=bool),
                np.asarray(kk_sweeps["rms"], dtype=np.float64),
            )
        if "drt" in missing and drt_lam is None:
            drt_lam = _experiment_lambda(experiment, config, tau_range)
        tasks.append(
            ChunkTask(
                part_name,
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
                kk_verdicts,
                lead_freq if "drt" in missing else (),
                lead_z if "drt" in missing else (),
            )
        )
    done_sweeps = n_sweeps - sum(task.stop - task.start for task in tasks)
    log.info(
        "%s: %d sweeps; %d chunk(s) of up to %d to compute (stages %s), %d sweeps reused (%s)",
        part_name,
        n_sweeps,
        len(tasks),
        chunk_size,
        ", ".join(sorted({stage for task in tasks for stage in task.stages})) or "none",
        done_sweeps,
        ", ".join(sorted(reused)) or "none",
    )
    if progress is not None:
        progress(done_sweeps, n_sweeps, part_name)
    with Executor(config).submit(tasks) as finished:
        state.start()  # the workers compute meanwhile
        inputs = state.inputs[name]
        for number, (task, output) in enumerate(finished, 1):
            for stage, stage_output in output.items():
                parts.save(part_name, stage, hashes[stage], keys[task.start], stage_output)
                columns[stage].add(task.start, task.stop, stage_output)
            computed = ", ".join(output)
            del output, stage_output  # in place now: the chunk's own arrays can go
            done_sweeps += task.stop - task.start
            log.debug(
                "%s: sweeps %d-%d done (%s); %d of %d",
                part_name,
                task.start,
                task.stop - 1,
                computed,
                done_sweeps,
                n_sweeps,
            )
            if progress is not None:
                progress(done_sweeps, n_sweeps, part_name)
            if number < len(tasks) and state.publish_due():  # the last one is published anyway
                _put(
                    state,
                    name,
                    electrode,
                    assemble_record(
                        name, experiment, inputs, columns, hashes, config, n_sweeps,
                        electrode=electrode,
                    ),
                )  # fmt: skip
                state.publish()
    record = assemble_record(
        name, experiment, inputs, columns, hashes, config, n_sweeps, electrode=electrode
    )
    _put(state, name, electrode, record)
    checked = quality(record)
    for label, text in checked.rows()[1:]:
        log.info("%s: %s %s", part_name, label, text)
    stages = record.stages
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
        summary=dict(record.summary),
        skipped_sweeps=experiment.skipped_sweeps,
        quality=checked,
    )


def _has_current_columns(stage: str, stored: StageData, config: Config) -> bool:
    """Whether a stored stage has the columns this version writes (else it is recomputed).

    The DRT's ``<process>_resolved`` and ``<process>_R_stderr_ohm`` came after
    files already written: reusing such a stage would leave its R values without
    them (or chunks with and without them side by side).
    """
    if stage != "drt":
        return True
    return all(
        f"{process}{suffix}" in stored.sweeps
        for process in config.drt.windows
        for suffix in ("_resolved", "_R_stderr_ohm")
    )


def _process_dc_only(name: str, experiment: Experiment, state: RunState) -> ExperimentReport:
    """An experiment without spectra: no stages, its summary from the DC record."""
    summary = dc_only_summary(experiment, state.config, name)
    state.start()  # publishes the raw data (and the inputs) as for any experiment
    state.records[name] = ExperimentRecord(name, experiment, state.inputs[name], {}, {}, summary)
    log.info(
        "%s: DC record only (%d rows); cutoff %s",
        name,
        len(experiment.dc_record),
        "reached" if summary.get("cutoff_reached") else "not reached or not set",
    )
    return ExperimentReport(
        name=name,
        n_spectra=0,
        n_flagged=0,
        n_kk_failed=0,
        n_truncated=0,
        n_fit_failed=0,
        n_drt_failed=0,
        stages_computed=(),
        stages_reused=(),
        n_sweeps_computed=0,
        skipped_files=tuple(item.path for item in experiment.skipped),
        ingest=summarize(experiment),
        summary=dict(summary),
        quality=quality(state.records[name]),
    )


def _experiment_name(folder: Path, taken: set[str]) -> str:
    # The name becomes an HDF5 group: valid UTF-8 (undecodable bytes become U+FFFD).
    name = folder.resolve().name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    name = name or "experiment"
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
    for folder in folders:  # before the lock: a typo'd folder is the error to show
        if not Path(folder).is_dir():
            raise GeisPipelineError("not a folder", file=folder)
    with OutputLock(output):
        _remove_leftovers(output)
        return _run(folders, config, output, progress, started)


def _remove_leftovers(output: Path) -> None:
    """Temporary files of killed runs (we hold the lock: nobody else writes them)."""
    remove_stale_temporaries(output)
    ChunkStore(output).remove_stale_temporaries()


def _check_experiment_tables(config: Config, names: set[str]) -> None:
    """Every ``[experiments.<name>]`` table must name an experiment of the run."""
    for name in config.experiments:
        if name not in names:
            raise ConfigError(
                f"no experiment folder of this run is called {name!r}; "
                f"the run's experiments: {', '.join(sorted(names)) or 'none'}",
                key=f"experiments.{name}",
            )


def _read_folder(
    folder: Path, name: str, config: Config, previous: ExperimentRecord | None
) -> Experiment:
    """The folder's experiment, keeping stored sweeps of files unreadable now."""
    area = config.settings_of(name).area_cm2 or config.experiment.area_cm2
    try:
        experiment = read_experiment(
            folder, area_cm2=area, strict=config.experiment.strict, allow_dc_only=True
        )
    except GeisPipelineError as exc:
        if previous is None or config.experiment.strict:
            raise
        # Nothing readable now (the only file is being rewritten?): keep what is stored.
        log.warning("%s; keeping the %d stored sweeps", exc, len(previous.experiment.spectra))
        return replace(
            previous.experiment,
            skipped=(SkippedFile(str(folder), f"{exc.message}; the stored sweeps are kept"),),
        )
    return _keep_stored_sweeps(experiment, previous)


def _return_freed_memory() -> None:
    """Give the memory freed so far (reading the files) back to the system.

    glibc keeps freed heap memory for reuse: after parsing a 30,000-sweep folder that is
    ~200 MB the run would go on holding, and its forked workers would start with. No-op
    without glibc.
    """
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _run(
    folders: Sequence[str | Path],
    config: Config,
    output: Path,
    progress: ProgressCallback | None,
    started: float,
) -> RunReport:
    previous_records: dict[str, ExperimentRecord] = {}
    if output.exists():
        previous_records, _ = read_store(output)
    state = RunState(output, config, dict(previous_records))
    parts = ChunkStore(output)
    reports = []
    taken: set[str] = set()
    experiments = []
    names = []
    for folder in folders:
        name = _experiment_name(Path(folder), taken)
        taken.add(name)
        names.append(name)
    _check_experiment_tables(config, set(names) | set(previous_records))
    for folder, name in zip(folders, names, strict=True):
        folder = Path(folder)
        previous = previous_records.get(name)
        reading = time.perf_counter()
        experiment = _read_folder(folder, name, config, previous)
        log.info(
            "%s: read %d sweeps from %d file(s) (%d skipped) in %.1f s",
            name,
            len(experiment.spectra),
            len(experiment.metadata.sources),
            len(experiment.skipped),
            time.perf_counter() - reading,
        )
        experiments.append((name, _screened(name, experiment, config, folder)))
    _return_freed_memory()

    def publish_raw_data() -> None:
        # Raw data goes in first: the file opens from now on.
        for name, experiment in experiments:
            state.inputs[name] = _inputs(experiment, previous_records.get(name))
            if name not in state.records:
                state.records[name] = ExperimentRecord(name, experiment, state.inputs[name])
        state.publish()

    state.on_start = publish_raw_data
    for number, (name, experiment) in enumerate(experiments, 1):
        reports.append(
            _process_electrodes(
                name, experiment, previous_records.get(name), state, parts, progress
            )
        )
        if number < len(experiments):  # the last one is published with the study
            state.publish()
    state.study = study(state.records, config)
    state.publish(final=True)
    parts.clear()
    log.info("published %s", output)
    return RunReport(output, tuple(reports), time.perf_counter() - started, state.study)


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
    with OutputLock(output):
        _remove_leftovers(output)
        records, _ = read_store(source)
        _check_experiment_tables(config, set(records))
        # Nothing is published until the end: the old file stays whole until the new one,
        # written under a temporary name, replaces it (a kill leaves one or the other).
        state = RunState(output, config, dict(records), periodic=False)
        state.inputs = {name: record.inputs for name, record in records.items()}
        parts = ChunkStore(output)
        reports = []
        for name, record in records.items():
            experiment = _with_area(
                record.experiment,
                config.settings_of(name).area_cm2 or config.experiment.area_cm2,
            )
            experiment = _screened(name, experiment, config, source)
            reports.append(_process_electrodes(name, experiment, record, state, parts, progress))
        state.study = study(state.records, config)
        state.publish(final=True)
        parts.clear()
        log.info("published %s", output)
    return RunReport(output, tuple(reports), time.perf_counter() - started, state.study)
