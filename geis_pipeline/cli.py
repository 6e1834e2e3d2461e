"""The ``geis-pipeline`` command.

Commands
--------
``geis-pipeline demo``
    Write the bundled example experiment (a simulated operando Li | LLZO
    stripping run, as real EC-Lab .mpt files with its ground truth) and run
    the pipeline on it.
``geis-pipeline run FOLDER``
    Read an experiment folder and print its summary.
``geis-pipeline simulate FOLDER``
    Only write the example experiment.

Exit codes: 0 success (files that could not be read are listed, not fatal),
2 wrong command-line usage, 3 bad input (nothing readable, or any unreadable
file with ``--strict``), 4 an unexpected internal error (please report it).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from geis_pipeline import __version__
from geis_pipeline.errors import GeisPipelineError
from geis_pipeline.ingest import read_experiment
from geis_pipeline.summary import format_summary, summarize

__all__ = ["main"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_INTERNAL = 4

log = logging.getLogger("geis_pipeline")


class _ProgressBar:
    """A tqdm bar driven by the ``progress(done, total, label)`` callbacks of the stages.

    Quiet when stderr is not a terminal (CI logs, pipes) or with ``--quiet``.
    """

    def __init__(self, description: str, enabled: bool) -> None:
        self._description = description
        self._enabled = enabled
        self._bar: tqdm | None = None

    def __call__(self, done: int, total: int, label: str = "") -> None:
        if not self._enabled:
            return
        if self._bar is None:
            self._bar = tqdm(total=total, desc=self._description, unit="file", leave=False)
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
        "run", parents=[common], help="read an experiment folder and summarise it"
    )
    run.add_argument(
        "folder", type=Path, help="folder of instrument files (.mpt .mpr .DTA .z .csv)"
    )
    _add_read_options(run)

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="write the example Li|LLZO experiment and run the pipeline on it",
    )
    demo.add_argument(
        "--folder",
        type=Path,
        default=Path("geis-demo"),
        help="where to write the example experiment (default: ./geis-demo)",
    )
    _add_simulation_options(demo)

    simulate = commands.add_parser(
        "simulate", parents=[common], help="only write the example experiment"
    )
    simulate.add_argument("folder", type=Path, help="folder to write the .mpt files and truth to")
    _add_simulation_options(simulate)
    return parser


def _add_read_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--area-cm2",
        type=float,
        default=None,
        help="electrode area in cm2 (overrides the file headers; needed for .mpr files)",
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
    level = logging.WARNING
    if arguments.verbose:
        level = logging.DEBUG
    elif arguments.quiet:
        level = logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)


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


def _run(arguments: argparse.Namespace, folder: Path) -> int:
    started = time.perf_counter()
    progress = _ProgressBar("reading", _show_progress(arguments))
    try:
        experiment = read_experiment(
            folder,
            area_cm2=getattr(arguments, "area_cm2", None),
            strict=getattr(arguments, "strict", False),
            progress=progress,
        )
    finally:
        progress.close()
    elapsed = time.perf_counter() - started
    print(format_summary(summarize(experiment), title=f"Experiment {folder}"))
    for skipped in experiment.skipped:
        print(f"  skipped: {skipped.reason}")
    print(f"  time taken       {elapsed:.2f} s")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``geis-pipeline`` command; returns the exit code."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    _configure_logging(arguments)
    try:
        if arguments.command == "run":
            return _run(arguments, arguments.folder)
        if arguments.command == "simulate":
            _write_example(arguments, arguments.folder)
            return EXIT_OK
        if arguments.command == "demo":
            _write_example(arguments, arguments.folder)
            return _run(arguments, arguments.folder)
    except GeisPipelineError as exc:
        print(f"geis-pipeline: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception:
        log.exception("internal error")
        print(
            "geis-pipeline: internal error (a bug: please report it with the traceback above)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    parser.error(f"unknown command {arguments.command!r}")
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
