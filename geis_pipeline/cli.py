"""The ``geis-pipeline`` command.

Commands
--------
``geis-pipeline run FOLDER [FOLDER...] -c CONFIG -o OUT.h5``
    Process experiment folders (ingest, KK, fit, DRT, tracking) into one HDF5
    file; re-running resumes and processes only what is new or changed.
``geis-pipeline reprocess OUT.h5 -c NEW.toml``
    Re-run from the stored raw spectra only the stages whose config changed.
``geis-pipeline info OUT.h5``
    What a result file holds.
``geis-pipeline report OUT.h5 -o DIR``
    Write the figures as PNG and a self-contained ``DIR/index.html`` with the
    run's summary and config.
``geis-pipeline suggest PATH [-o my.toml] [--plots DIR]``
    From a file or folder of a new cell: candidate circuits fitted to its
    first, middle and last sweeps, ranked; the winner written as a config.
``geis-pipeline export OUT.h5 -o DIR [--format csv|xlsx|parquet]``
    Every table of a result file (tracking, fit parameters with standard
    errors, summary, study) as files, with a README.txt naming the columns.
``geis-pipeline demo``
    Write the bundled example experiment (a simulated operando Li | LLZO
    stripping run, as real EC-Lab .mpt files with its ground truth), run
    the pipeline on it and write its report to ``FOLDER/report/``.
``geis-pipeline simulate FOLDER``
    Only write the example experiment.

Exit codes: 0 success (files that could not be read are listed, not fatal),
2 wrong command-line usage, 3 bad input (nothing readable, or any unreadable
file with ``--strict``), 4 an unexpected internal error (please report it).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from geis_pipeline import __version__, store
from geis_pipeline.config import Config, load_config
from geis_pipeline.errors import GeisPipelineError
from geis_pipeline.summary import format_summary, summarize

__all__ = ["entry", "main"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C

log = logging.getLogger("geis_pipeline")


class _ProgressBar:
    """A tqdm bar driven by the ``progress(done, total, label)`` callbacks of the stages.

    Quiet when stderr is not a terminal (CI logs, pipes) or with ``--quiet``.
    """

    def __init__(self, description: str, enabled: bool, unit: str = "file") -> None:
        self._description = description
        self._enabled = enabled
        self._unit = unit
        self._bar: tqdm | None = None

    def __call__(self, done: int, total: int, label: str = "") -> None:
        if not self._enabled:
            return
        if self._bar is None:
            self._bar = tqdm(total=total, desc=self._description, unit=self._unit, leave=False)
        elif self._bar.total != total:
            self._bar.reset(total=total)
        self._bar.n = done
        if label:
            self._bar.set_postfix_str(label, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geis-pipeline",
        description="Operando galvanostatic impedance (GEIS): instrument files -> tracked results.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    verbosity = common.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="log every step")
    verbosity.add_argument(
        "-q", "--quiet", action="store_true", help="errors only, no progress bars"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", parents=[common], help="process experiment folders into an HDF5 result file"
    )
    run.add_argument(
        "folders", type=Path, nargs="+", help="experiment folders (.mpt .mpr .DTA .z .csv)"
    )
    _add_processing_options(run, output_required=False)
    _add_read_options(run)

    reprocess = commands.add_parser(
        "reprocess",
        parents=[common],
        help="re-run, from the stored raw spectra, the stages whose config changed",
    )
    reprocess.add_argument("results", type=Path, help="result file written by 'run'")
    reprocess.add_argument("-c", "--config", type=Path, required=True, help="the new config")
    reprocess.add_argument(
        "-o", "--output", type=Path, default=None, help="write here instead of replacing RESULTS"
    )
    _add_executor_options(reprocess)

    info = commands.add_parser("info", parents=[common], help="what a result file holds")
    info.add_argument("results", type=Path)

    report = commands.add_parser(
        "report", parents=[common], help="figures (PNG) and an HTML page of a result file"
    )
    report.add_argument("results", type=Path, help="result file written by 'run'")
    report.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="folder for the PNGs and index.html (default: <RESULTS stem>-report beside it)",
    )

    suggest = commands.add_parser(
        "suggest",
        parents=[common],
        help="propose, fit and rank circuits for a new cell; write the winner as a config",
    )
    suggest.add_argument("path", type=Path, help="an instrument file or an experiment folder")
    suggest.add_argument(
        "-o", "--output", type=Path, default=None, help="write the winner's config here (TOML)"
    )
    suggest.add_argument(
        "--plots", type=Path, default=None, help="folder for the figures (Nyquist, Bode, DRT)"
    )
    suggest.add_argument(
        "--area-cm2",
        type=float,
        default=None,
        help="electrode area in cm2 (overrides the file headers; written into the config)",
    )
    crop = suggest.add_mutually_exclusive_group()
    crop.add_argument(
        "--max-freq-hz",
        type=float,
        default=None,
        help="crop the points above this frequency (default: found from Kramers-Kronig)",
    )
    crop.add_argument("--no-crop", action="store_true", help="keep every frequency")
    suggest.add_argument(
        "--max-arcs", type=int, default=4, help="most R||CPE arcs of a candidate (1-5, default 4)"
    )

    export = commands.add_parser(
        "export", parents=[common], help="a result file's tables as CSV, xlsx or parquet files"
    )
    export.add_argument("results", type=Path, help="result file written by 'run'")
    export.add_argument("-o", "--output", type=Path, required=True, help="folder for the tables")
    export.add_argument(
        "--format",
        choices=("csv", "xlsx", "parquet"),
        default="csv",
        help="csv (default, no extra package), xlsx (openpyxl) or parquet (pyarrow)",
    )

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="write the example Li|LLZO experiment and run the pipeline on it",
    )
    demo.add_argument(
        "--folder",
        type=Path,
        default=Path("geis-demo"),
        help="where to write the example experiment and demo.h5 (default: ./geis-demo)",
    )
    _add_simulation_options(demo)
    _add_executor_options(demo)

    simulate = commands.add_parser(
        "simulate", parents=[common], help="only write the example experiment"
    )
    simulate.add_argument("folder", type=Path, help="folder to write the .mpt files and truth to")
    _add_simulation_options(simulate)
    return parser


def _add_processing_options(parser: argparse.ArgumentParser, output_required: bool) -> None:
    parser.add_argument(
        "-c", "--config", type=Path, default=None, help="TOML config (default: built-in defaults)"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None if not output_required else argparse.SUPPRESS,
        help="HDF5 result file (default: results.h5 in the first folder)",
    )
    _add_executor_options(parser)


def _add_executor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--executor",
        choices=("serial", "process", "dask"),
        default=None,
        help="where the work runs (overrides executor.kind)",
    )
    parser.add_argument("--workers", type=int, default=None, help="processes (executor.workers)")
    parser.add_argument(
        "--scheduler", default=None, help="Dask scheduler address, e.g. tcp://host:8786"
    )


def _add_read_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--area-cm2",
        type=float,
        default=None,
        help="electrode area in cm2 (overrides the file headers; needed when a file has none)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first unreadable file instead of skipping",
    )


def _add_simulation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--sweeps",
        type=int,
        default=None,
        help="number of stripping sweeps (default: enough to pass the depletion time)",
    )


def _configure_logging(arguments: argparse.Namespace) -> None:
    """Warnings (and errors) of every library on stderr; ``-v``: the package's own steps too.

    ``-v`` sets only the ``geis_pipeline`` loggers to DEBUG: other libraries stay at
    WARNING, so matplotlib's or h5py's DEBUG lines never drown ours.
    """
    global _verbose_handler
    level = logging.ERROR if arguments.quiet else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)
    if _verbose_handler is not None:  # main() called again (tests, notebooks)
        log.removeHandler(_verbose_handler)
        _verbose_handler = None
    log.setLevel(logging.DEBUG if arguments.verbose else logging.NOTSET)
    log.propagate = not arguments.verbose
    if arguments.verbose:
        # Our own handler: the package's records show whatever the root level is.
        _verbose_handler = logging.StreamHandler(sys.stderr)
        _verbose_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        log.addHandler(_verbose_handler)


_verbose_handler: logging.Handler | None = None


def _show_progress(arguments: argparse.Namespace) -> bool:
    return not arguments.quiet and sys.stderr.isatty()


def _write_example(arguments: argparse.Namespace, folder: Path) -> None:
    from geis_pipeline.simulate import SimulationSettings, write_experiment

    settings = SimulationSettings(seed=arguments.seed, n_sweeps=arguments.sweeps)
    started = time.perf_counter()
    simulated = write_experiment(folder, settings)
    log.info("wrote the example experiment in %.1f s", time.perf_counter() - started)
    print(
        f"Example experiment: {len(simulated.time_s)} simulated spectra written to {folder}/ "
        "(ground truth in truth.npz, truth.json)"
    )


def _config(arguments: argparse.Namespace) -> Config:
    """The config file with the command-line overrides applied."""
    from dataclasses import replace

    config = load_config(getattr(arguments, "config", None))
    executor = config.executor
    if getattr(arguments, "executor", None):
        executor = replace(executor, kind=arguments.executor)
    if getattr(arguments, "workers", None) is not None:  # 0 is refused, not ignored
        executor = replace(executor, workers=arguments.workers)
    if getattr(arguments, "scheduler", None):
        executor = replace(executor, scheduler=arguments.scheduler)
    experiment = config.experiment
    if getattr(arguments, "area_cm2", None) is not None:
        experiment = replace(experiment, area_cm2=arguments.area_cm2)
    if getattr(arguments, "strict", False):
        experiment = replace(experiment, strict=True)
    config = replace(config, executor=executor, experiment=experiment)
    from geis_pipeline.config import config_to_toml, parse_config

    return parse_config(config_to_toml(config), source="command line")  # re-validate


#: Width of the labels of the terminal summaries (as :func:`format_summary` aligns them).
_LABEL = 16


def _line(label: str, text: str) -> str:
    return f"  {label:<{_LABEL}} {text}"


def _print_report(report) -> None:
    from geis_pipeline.track import sand_fit_note

    for experiment in report.experiments:
        print(format_summary(experiment.ingest, title=f"Experiment {experiment.name}"))
        quality = getattr(experiment, "quality", None)
        if quality is not None:
            for label, text in quality.rows()[1:]:  # the spectra are in the summary above
                print(_line(label, text))
        else:
            print(
                _line(
                    "Kramers-Kronig",
                    f"{experiment.n_kk_failed} failed, "
                    f"{experiment.n_truncated} low-frequency tails truncated",
                )
            )
            print(_line("circuit fits", f"{experiment.n_fit_failed} failed"))
            print(_line("DRT", f"{experiment.n_drt_failed} failed"))
        print(
            _line(
                "stages",
                f"computed: {', '.join(experiment.stages_computed) or 'none'} "
                f"({experiment.n_sweeps_computed} sweeps); "
                f"reused: {', '.join(experiment.stages_reused) or 'none'}",
            )
        )
        for path in experiment.skipped_files:
            print(_line("skipped file", str(path)))
        for sweep in experiment.skipped_sweeps:
            print(
                _line("skipped sweep", f"{sweep.source} sweep {sweep.sweep_index}: {sweep.reason}")
            )
        for line in _physics_lines(experiment.summary):
            print(line)
        counter = getattr(experiment, "counter", None)
        if counter is not None and counter.quality is not None:
            fits = dict(counter.quality.rows()).get("circuit fits", "not run")
            print(_line("counter (ce)", f"its own KK, fit, DRT and tracking; circuit fits {fits}"))
    note = (
        ""
        if report.study.get("sand")
        else sand_fit_note({item.name: item.summary for item in report.experiments})
    )
    if note:
        print(_line("Sand study", f"none: {note}"))
    rate = report.n_spectra / report.elapsed_s if report.elapsed_s else float("nan")
    print(f"Results in {report.output}  ({report.elapsed_s:.1f} s, {rate:.0f} spectra/s)")


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _physics_lines(summary: dict[str, object]) -> list[str]:
    """The experiment-level results a researcher reads first, or why there are none."""
    lines = []
    threshold = summary.get("r_int_threshold_ohm_cm2")
    t0 = summary.get("t0_s")
    if _finite(t0):
        if summary.get("t0_criterion") == "potential cutoff":
            how = " (|E| reached the potential cutoff)"
        else:
            how = f" (R_int > {threshold:g} ohm cm2)" if _finite(threshold) else ""
        lines.append(_line("depletion t0", f"{t0 / 3600:.3g} h{how}"))
        if _finite(summary.get("D_eff_cm2_s")):
            lines.append(_line("Sand D_eff", f"{summary['D_eff_cm2_s']:.3g} cm2/s"))
        elif summary.get("D_eff_reason"):
            lines.append(_line("Sand D_eff", f"none: {summary['D_eff_reason']}"))
    elif summary.get("t0_reason"):
        lines.append(_line("depletion t0", f"none: {summary['t0_reason']}"))
    elif threshold is not None:
        lines.append(_line("depletion t0", f"not reached (R_int threshold {threshold:g} ohm cm2)"))
    if summary.get("cutoff_reached"):
        q_stderr = summary.get("q_cutoff_stderr_mAh_cm2", math.nan)
        lines.append(
            _line(
                "voltage cutoff",
                f"{summary['cutoff_V']:g} V after {summary['t_cutoff_s'] / 3600:.4g} h: "
                f"{summary['q_cutoff_mAh_cm2']:.4g} +- {q_stderr:.2g}"
                f" mAh/cm2 ({summary['stripped_cutoff_um']:.4g} um of Li), "
                f"D_eff {summary['D_eff_cutoff_cm2_s']:.3g} cm2/s",
            )
        )
    elif summary.get("cutoff_V") is not None:
        lines.append(_line("voltage cutoff", f"{summary['cutoff_V']:g} V not reached"))
    if _finite(summary.get("relaxation_tau_s")):
        recovered = summary.get("relaxation_recovered_fraction")
        text = f"tau {summary['relaxation_tau_s']:.3g} s"
        if _finite(recovered):
            text += f", {100 * recovered:.0f} % of the lost contact recovered"
        lines.append(_line("relaxation", text))
    return lines


def _process(arguments: argparse.Namespace, folders: list[Path], output: Path) -> int:
    from geis_pipeline.pipeline import run

    config = _config(arguments)
    progress = _ProgressBar("processing", _show_progress(arguments), unit="sweep")
    try:
        report = run(folders, config, output, progress=progress)
    finally:
        progress.close()
    _print_report(report)
    return EXIT_OK


def _reprocess(arguments: argparse.Namespace) -> int:
    from geis_pipeline.pipeline import reprocess

    config = _config(arguments)
    progress = _ProgressBar("reprocessing", _show_progress(arguments), unit="sweep")
    try:
        report = reprocess(arguments.results, config, output=arguments.output, progress=progress)
    finally:
        progress.close()
    _print_report(report)
    return EXIT_OK


def _info(arguments: argparse.Namespace) -> int:
    from geis_pipeline.report import sand_note
    from geis_pipeline.results import open_results

    results = open_results(arguments.results)
    print(f"{arguments.results}: geis-pipeline {results.package_version}")
    for experiment in results:
        stages = ", ".join(
            f"{name} ({int(stage.attrs.get('n_done', 0))} done)"
            for name, stage in experiment.record.stages.items()
        )
        print(
            format_summary(
                summarize(experiment.record.experiment), title=f"Experiment {experiment.name}"
            )
        )
        print(_line("stages", stages or "none"))
        for label, text in experiment.quality().rows()[1:]:
            print(_line(label, text))
        for skipped in experiment.record.experiment.skipped:
            print(_line("skipped file", f"{skipped.path}: {skipped.reason}"))
        for sweep in experiment.record.experiment.skipped_sweeps:
            print(
                _line("skipped sweep", f"{sweep.source} sweep {sweep.sweep_index}: {sweep.reason}")
            )
        first_last = experiment.first_last("R_int")
        if first_last is not None:
            first, last, unit = first_last
            left_out = int((~experiment.ok_steps()).sum())
            print(
                _line(
                    "R_int",
                    f"{first:.4g} -> {last:.4g} {unit.replace('Ω', 'ohm').replace('²', '2')}"
                    + (f" (ok fits; {left_out} not-ok steps left out)" if left_out else ""),
                )
            )
        for line in _physics_lines(experiment.summary):
            print(line)
        if "ce" in experiment.electrodes:
            counter = experiment.electrode("ce")
            ok = counter.ok_steps()
            counter_r = counter.first_last("R_int")
            print(
                _line(
                    "counter (ce)",
                    f"{int(ok.sum())} of {ok.size} fits ok"
                    + (
                        f"; R_int {counter_r[0]:.4g} -> {counter_r[1]:.4g} "
                        f"{counter_r[2].replace('Ω', 'ohm').replace('²', '2')}"
                        if counter_r is not None
                        else ""
                    ),
                )
            )
    note = sand_note(results)
    if note:
        print(_line("Sand study", f"none: {note}"))
    for name, attrs in results.study.items():
        if name == "sand" and _finite(attrs.get("D_eff_cm2_s")):
            print(
                _line(
                    "Sand study",
                    f"D_eff {attrs['D_eff_cm2_s']:.3g} cm2/s from "
                    f"{attrs.get('n_experiments')} experiments",
                )
            )
    for line in _study_lines(results.study):
        print(line)
    return EXIT_OK


def _study_lines(study: dict) -> list[str]:
    """Sand per composition, the Arrhenius fits and the pressure series, one line each."""

    def error(value: object) -> str:
        return f" +- {value:.2g}" if _finite(value) else ""

    def sand(entry: dict) -> str:
        return (
            f"D_eff {entry['D_eff_cm2_s']:.3g}{error(entry.get('D_eff_stderr_cm2_s'))} cm2/s "
            f"from {entry.get('n_experiments')} experiments"
        )

    def diffusivity(entry: dict) -> str:
        return (
            f"E_A {entry['E_A_eV']:.3g}{error(entry.get('E_A_stderr_eV'))} eV, D_eff "
            f"{entry['D_ref_cm2_s']:.3g} cm2/s at {entry['reference_temperature_K']:g} K"
        )

    arrhenius = dict(study.get("arrhenius", {}))
    groups = (
        ("Sand", dict(study.get("sand", {})), "D_eff_cm2_s", sand),
        ("Arrhenius D", dict(arrhenius.get("D_eff", {})), "E_A_eV", diffusivity),
    )
    lines = [
        _line(f"{label} {composition}", text(entry))
        for label, entries, key, text in groups
        for composition, entry in sorted(entries.items())
        if isinstance(entry, dict) and _finite(entry.get(key))
    ]
    if _finite(arrhenius.get("E_A_R_int_eV")):
        lines.append(
            _line(
                "Arrhenius R_int",
                f"E_A {arrhenius['E_A_R_int_eV']:.3g}"
                f"{error(arrhenius.get('E_A_R_int_stderr_eV'))} eV",
            )
        )
    pressure = dict(study.get("pressure", {}))
    if _finite(pressure.get("R_int_pressure_exponent")):
        lines.append(
            _line(
                "pressure series",
                f"R_int(0) ~ p^{pressure['R_int_pressure_exponent']:.3g}"
                f"{error(pressure.get('R_int_pressure_exponent_stderr'))} over "
                f"{pressure.get('n_experiments')} experiments",
            )
        )
    return lines


def _report(arguments: argparse.Namespace, results: Path, out_dir: Path) -> int:
    from geis_pipeline.report import write_report

    progress = _ProgressBar("report", _show_progress(arguments), unit="figure")
    started = time.perf_counter()
    try:
        index = write_report(results, out_dir, progress=progress)
    finally:
        progress.close()
    print(f"Report in {index}  ({time.perf_counter() - started:.1f} s)")
    return EXIT_OK


def _suggest(arguments: argparse.Namespace) -> int:
    from geis_pipeline.config import parse_config
    from geis_pipeline.ingest import read_experiment, read_file_experiment
    from geis_pipeline.spectrum import screen_sweeps
    from geis_pipeline.suggest import format_ranking, suggest_circuit, suggestion_toml

    path: Path = arguments.path
    if arguments.area_cm2 is not None and not arguments.area_cm2 > 0:
        raise GeisPipelineError(
            f"electrode area must be > 0 cm2, got {arguments.area_cm2}", key="--area-cm2"
        )
    if not path.exists():
        raise GeisPipelineError("no such file or folder", file=path)
    reader = read_experiment if path.is_dir() else read_file_experiment
    experiment = screen_sweeps(reader(path, area_cm2=arguments.area_cm2))
    if not experiment.spectra:
        raise GeisPipelineError("no sweep without defects to suggest a circuit for", file=path)
    crop: float | str | None = "auto"
    if arguments.no_crop:
        crop = None
    elif arguments.max_freq_hz is not None:
        crop = arguments.max_freq_hz
    started = time.perf_counter()
    result = suggest_circuit(
        experiment.spectra,
        area_cm2=experiment.metadata.area_cm2,
        max_freq_hz=crop,
        max_arcs=arguments.max_arcs,
    )
    log.info(
        "suggest: %d candidates in %.1f s", len(result.candidates), time.perf_counter() - started
    )
    print(f"{path}: {len(experiment.spectra)} sweeps")
    print(format_ranking(result))
    if arguments.output is not None:
        text = suggestion_toml(result, area_cm2=arguments.area_cm2, source=path.name)
        parse_config(text, source="the suggested config")  # a bug if it does not load
        try:
            arguments.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise GeisPipelineError(
                f"cannot write the config: {exc.strerror or exc}", file=arguments.output
            ) from exc
        target = path if path.is_dir() else "FOLDER (the experiment folder of this file)"
        print(f"Config written to {arguments.output}")
        print(f"  geis-pipeline run {target} -c {arguments.output}")
    if arguments.plots is not None:
        from geis_pipeline.plot_suggest import write_suggest_figures

        for figure in write_suggest_figures(result, arguments.plots):
            print(f"Figure {figure}")
    return EXIT_OK


def _export(arguments: argparse.Namespace) -> int:
    from geis_pipeline.export import export_results

    written = export_results(arguments.results, arguments.output, format=arguments.format)
    print(
        f"{len(written.tables)} tables in {len(written.files) - 1} files written to "
        f"{arguments.output} (columns and units in README.txt)"
    )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``geis-pipeline`` command; returns the exit code."""
    for stream in (sys.stdout, sys.stderr):  # file names need not be valid UTF-8
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = _parser()
    arguments = parser.parse_args(argv)
    _configure_logging(arguments)
    try:
        if arguments.command == "run":
            output = arguments.output or arguments.folders[0] / "results.h5"
            return _process(arguments, arguments.folders, output)
        if arguments.command == "reprocess":
            return _reprocess(arguments)
        if arguments.command == "info":
            return _info(arguments)
        if arguments.command == "report":
            out_dir = arguments.output or arguments.results.with_name(
                f"{arguments.results.stem}-report"
            )
            return _report(arguments, arguments.results, out_dir)
        if arguments.command == "suggest":
            return _suggest(arguments)
        if arguments.command == "export":
            return _export(arguments)
        if arguments.command == "simulate":
            _write_example(arguments, arguments.folder)
            return EXIT_OK
        if arguments.command == "demo":
            experiment_folder = arguments.folder / "experiment"
            _write_example(arguments, experiment_folder)
            output = arguments.folder / "demo.h5"
            output.unlink(missing_ok=True)  # the demo always starts fresh
            status = _process(arguments, [experiment_folder], output)
            if status != EXIT_OK:
                return status
            return _report(arguments, output, arguments.folder / "report")
    except GeisPipelineError as exc:
        print(f"geis-pipeline: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        # The store is written to a temporary file and renamed: an interrupted run
        # leaves the previous output whole, and its saved chunks let the next run resume.
        print("geis-pipeline: interrupted; the output file is unchanged", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:
        log.exception("internal error")
        print(
            "geis-pipeline: internal error (a bug: please report it with the traceback above)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    parser.error(f"unknown command {arguments.command!r}")
    return EXIT_USAGE


def entry() -> None:
    """The console script: :func:`main`, then exit with its code.

    After a failed HDF5 write (a full disk) the library's clean-up at interpreter
    exit crashes on the half-open file; the error is reported by then, so the
    process leaves without it (streams flushed) and keeps its exit code.
    """
    code = main()
    if store.hdf5_damaged():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
