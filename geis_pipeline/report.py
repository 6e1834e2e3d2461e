"""A run's figures as PNG files and one self-contained HTML page: :func:`write_report`.

``geis-pipeline report OUT.h5 -o DIR`` writes ``DIR/<experiment>_<figure>.png`` for every
figure of :mod:`geis_pipeline.plot` and ``DIR/index.html`` with the images embedded (base64),
the run's summary per experiment and its config. What is drawn is decimated
(:data:`geis_pipeline.plot.MAX_CURVES`, :func:`geis_pipeline.plot.decimate_series`), and a file
of :data:`PARALLEL_SWEEPS` sweeps or more has its figures drawn by two forked processes: a
30,000-sweep file costs ~14 s of CPU, most of it matplotlib's layout and rendering.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from geis_pipeline import plot
from geis_pipeline.errors import StoreError
from geis_pipeline.results import ExperimentResults, Results, open_results
from geis_pipeline.track import sand_fit_note

__all__ = ["EXPERIMENT_FIGURES", "PARALLEL_SWEEPS", "Figure", "sand_note", "write_report"]

log = logging.getLogger(__name__)

#: Figures drawn for every experiment: (file stem, caption, function, stage it needs).
EXPERIMENT_FIGURES: tuple[tuple[str, str, Callable, str | None], ...] = (
    ("nyquist", "Nyquist plot of selected sweeps with their fits", plot.nyquist, None),
    ("bode_phase", "Bode phase angle of every sweep, coloured by time", plot.bode_phase, None),
    ("evolution", "Voltage profile and resistances versus time", plot.evolution, None),
    (
        "evolution_charge",
        "Resistances versus passed charge",
        lambda experiment: plot.evolution(experiment, x="charge"),
        None,
    ),
    (
        "capacitance",
        "Interface capacitance normalised to its initial value",
        plot.capacitance,
        None,
    ),
    ("contact_loss", "Contact loss from capacitance and from resistance", plot.contact_loss, None),
    ("drt_map", "DRT map with the tracked peaks", plot.drt_map, "drt"),
    (
        "drt_crosscheck",
        "Resistances from the circuit fit (lines) and the DRT (dots; hollow: not a measurement)",
        plot.drt_crosscheck,
        "drt",
    ),
    ("drt_curves", "DRT of selected steps", plot.drt_curves, "drt"),
    ("kk_residuals", "Kramers-Kronig residuals (quality control)", plot.kk_residuals, "kk"),
    (
        "fit_residuals",
        "Circuit-fit residuals and chi2 (quality control)",
        plot.fit_residuals,
        "fit",
    ),
)

_DPI = 100


class Figure:
    """One written figure: where it is and what it shows (listed in the HTML page)."""

    def __init__(self, path: Path, caption: str, experiment: str | None) -> None:
        self.path = path
        self.caption = caption
        self.experiment = experiment


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    # Tight: notes drawn under an axes (what is cut, what is not ok) stay in the picture.
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


#: A file of this many sweeps or more has its figures drawn by several processes (each figure
#: costs ~1 s of matplotlib layout and rendering, whatever the decimated data).
PARALLEL_SWEEPS = 5000

Job = tuple[str, str, str | None, Callable[[], object]]
# The jobs of the report being drawn, for the forked drawing processes (they inherit it).
_JOBS: list[Job] = []


def _draw(index: int) -> tuple[bytes | None, str]:
    """Figure ``index`` of :data:`_JOBS` as PNG bytes, or None and why the data cannot make it."""
    try:
        fig = _JOBS[index][3]()
    except (ValueError, KeyError) as exc:  # a figure the data cannot support
        return None, str(exc)
    return _png(fig), ""


def _workers(workers: int | None, results: Results) -> int:
    if workers is not None:
        return max(1, int(workers))
    n_sweeps = sum(len(experiment.spectra) for experiment in results)
    if n_sweeps < PARALLEL_SWEEPS or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return min(2, os.cpu_count() or 1)


def _draw_all(
    jobs: list[Job], workers: int, progress: Callable[[int, int, str], None] | None
) -> list[tuple[bytes | None, str]]:
    """Every job's PNG (or why not), in order; ``workers`` > 1: by forked processes."""
    _JOBS[:] = jobs
    try:
        if workers <= 1 or len(jobs) < 2:
            drawn = []
            for done, job in enumerate(jobs):
                if progress is not None:
                    progress(done, len(jobs), job[0])
                drawn.append(_draw(done))
            return drawn
        # Forked: the children share the results already read (nothing is pickled but the
        # figure's number and its PNG bytes).
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
            futures = [pool.submit(_draw, index) for index in range(len(jobs))]
            for done, future in enumerate(futures):
                if progress is not None:
                    progress(done, len(jobs), jobs[done][0])
                future.result()
            return [future.result() for future in futures]
    finally:
        _JOBS.clear()


def _safe(name: str) -> str:
    return "".join(char if char.isalnum() or char in "-_." else "_" for char in name)


def _format(value: object) -> str:
    if isinstance(value, np.ndarray):
        if value.size > 12:
            return f"array of {value.size} ({value.dtype})"
        value = value.tolist()
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    if isinstance(value, (np.integer, np.bool_)):
        return str(value.item())
    return str(value)


def _table(rows: list[tuple[str, object]]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(_format(value))}</td></tr>"
        for key, value in rows
    )
    return f'<table class="kv">{body}</table>'


#: Figures drawn for a 3-electrode cell's counter electrode (the evolution, capacitance and
#: contact-loss figures draw it beside the working electrode already).
COUNTER_FIGURES: tuple[tuple[str, str, Callable, str | None], ...] = (
    ("nyquist_ce", "Counter electrode: Nyquist plot with its fits", plot.nyquist, None),
    ("drt_map_ce", "Counter electrode: DRT map", plot.drt_map, "drt"),
)

#: Columns of the segment and cycle tables shown in the report (all are exported).
_SEGMENT_COLUMNS = (
    "label", "first_step", "last_step", "onset_s", "end_s", "charge_mAh_cm2",
    "R_int_start_ohm_cm2", "R_int_end_ohm_cm2", "C_int_start_F_cm2", "C_int_end_F_cm2",
    "contact_loss_C_end", "relaxation_tau_s", "relaxation_recovered_fraction", "ocv_tau_s",
)  # fmt: skip
_CYCLE_COLUMNS = (
    "cycle", "complete", "start_s", "stop_s", "charge_strip_mAh_cm2", "charge_plate_mAh_cm2",
    "charge_ratio", "overpotential_strip_max_V", "overpotential_plate_max_V",
    "R_int_start_ohm_cm2", "R_int_end_ohm_cm2",
)  # fmt: skip


#: At most this many rows of a table are shown in the page (all are in the file and exports).
MAX_TABLE_ROWS = 200


def _grid(columns: dict | None, names: tuple[str, ...]) -> str:
    """A table with a header row: one row per entry of ``columns`` (a stored table), the
    first :data:`MAX_TABLE_ROWS` of them and a line counting the others."""
    if not columns:
        return ""
    names = tuple(name for name in names if name in columns)
    head = "".join(f"<th>{html.escape(name)}</th>" for name in names)
    n_rows = len(columns[names[0]])
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(_format(columns[name][row]))}</td>" for name in names)
        + "</tr>"
        for row in range(min(n_rows, MAX_TABLE_ROWS))
    )
    more = (
        f"<p>{n_rows - MAX_TABLE_ROWS} more rows are in the result file "
        "(<code>geis-pipeline export</code>).</p>"
        if n_rows > MAX_TABLE_ROWS
        else ""
    )
    return f'<table class="kv"><tr>{head}</tr>{rows}</table>{more}'


def _tables_html(experiment: ExperimentResults) -> list[str]:
    """The segment, cycle and DRT-event tables of an experiment, and its counter electrode."""
    parts = []
    for title, name, names in (
        ("Segment table", "segments", _SEGMENT_COLUMNS),
        ("Cycles (DC record)", "cycles", _CYCLE_COLUMNS),
        ("DRT peak events", "drt_events", ("step", "time_s", "process", "kind")),
    ):
        table = experiment.record.tables.get(name)
        if table and len(next(iter(table.values()))):
            parts += [f"<h3>{title}</h3>", _grid(table, names)]
    if "ce" in experiment.electrodes:
        counter = experiment.electrode("ce")
        parts.append("<h3>Counter electrode (3-electrode cell)</h3>")
        rows = counter.quality().rows()
        first_last = counter.first_last("R_int")
        if first_last is not None:
            rows.append(("R_int first -> last (ok fits)", f"{first_last[0]:.4g} -> "
                         f"{first_last[1]:.4g} {first_last[2]}"))  # fmt: skip
        rows.append(("kind", counter.summary.get("experiment_kind_description", "")))
        parts.append(_table(rows))
        segments = counter.record.tables.get("segments")
        if segments:
            parts.append(_grid(segments, _SEGMENT_COLUMNS))
    return parts


def _experiment_rows(experiment: ExperimentResults) -> list[tuple[str, object]]:
    metadata = experiment.metadata
    spectra = experiment.spectra
    summary = experiment.summary
    rows: list[tuple[str, object]] = [
        ("spectra", len(spectra)),
        ("incomplete sweeps", sum(bool(spectrum.incomplete) for spectrum in spectra)),
        (
            "electrode area (cm²)",
            metadata.area_cm2 if metadata.area_cm2 else "unknown: values in Ω and F only",
        ),
        ("DC setpoint (mA)", metadata.current_setpoint_mA),
        ("start time", metadata.start_time),
        ("techniques", ", ".join(metadata.techniques or ())),
    ]
    kind = summary.get("experiment_kind_description") or summary.get("experiment_kind")
    if kind:
        rows.append(("experiment kind", kind))
    rows += [("warning", message) for message in metadata.warnings]
    if spectra:
        rows.append(
            (
                "sweep starts (h)",
                f"{spectra[0].time_s / 3600:.4g} .. {spectra[-1].time_s / 3600:.4g}",
            )
        )
    fit = experiment.stage("fit")
    if fit is not None:
        rows.append(("circuit", fit.attrs.get("circuit", "")))
    first_last = experiment.first_last("R_int")
    if first_last is not None:
        first, last, unit = first_last
        left_out = int((~experiment.ok_steps()).sum())
        rows.append(
            (
                f"R_int first -> last ({unit}, ok fits)",
                f"{first:.4g} -> {last:.4g}"
                + (f" ({left_out} not-ok steps left out)" if left_out else ""),
            )
        )
    for label, key, reason in (
        ("depletion time t0 (h)", "t0_s", "t0_reason"),
        ("Sand D_eff (cm²/s)", "D_eff_cm2_s", "D_eff_reason"),
    ):
        value = summary.get(key)
        if isinstance(value, int | float | np.floating) and np.isfinite(value):
            rows.append((label, f"{value / 3600:.4g}" if key == "t0_s" else f"{value:.4g}"))
        elif summary.get(reason) and (key == "t0_s" or summary[reason] != summary.get("t0_reason")):
            rows.append((label, f"none: {summary[reason]}"))
    return rows


def _segment_rows(summary: dict[str, object]) -> list[tuple[str, object]]:
    rows = []
    for segment in summary.get("segments") or ():
        if not isinstance(segment, dict):
            continue
        current = segment.get("current_mA")
        rows.append(
            (
                f"steps {segment.get('first_step')}..{segment.get('last_step')}",
                f"{segment.get('label')}, {float(segment.get('start_s', 0)) / 3600:.4g} .. "
                f"{float(segment.get('stop_s', 0)) / 3600:.4g} h"
                + (f", {current:.4g} mA" if isinstance(current, int | float) else ""),
            )
        )
    return rows


def sand_note(results: Results) -> str:
    """Why the study has no Sand fit ("" when it has one or none is due; see
    :func:`geis_pipeline.track.sand_fit_note`)."""
    if "sand" in results.study:
        return ""
    return sand_fit_note({experiment.name: experiment.summary for experiment in results})


def _study_jobs(results: Results) -> list[tuple[str, str, None, Callable[[], object]]]:
    """The study page's figures (a file with two or more experiments): overlays of the
    experiments, Sand's plot per composition, the Arrhenius plot, the pressure series."""
    from geis_pipeline import plot_study

    summaries = [experiment.summary for experiment in results]
    colour_by = "composition" if any(s.get("composition") for s in summaries) else "current"
    jobs: list[tuple[str, str, None, Callable[[], object]]] = []
    overlays = [("charge", "passed charge"), ("thickness", "stripped thickness")]
    if any(s.get("t0_reached") for s in summaries):
        overlays.append(("normalised", "capacity normalised to its value at t0, q/q(t0)"))
    if any(experiment.spectra for experiment in results):
        for x, label in overlays:
            jobs.append(
                (
                    f"study_overlay_{x}.png",
                    f"R_int and C_int/C_int(0) of every experiment versus {label}, "
                    f"coloured by {colour_by}",
                    None,
                    lambda x=x: plot_study.overlay(results, x=x, colour_by=colour_by),
                )
            )
    sand = results.study.get("sand", {})
    if any(isinstance(entry, dict) for entry in dict(sand).values()):
        jobs.append(
            (
                "study_sand_by_composition.png",
                "Sand plot: t0^(-1/2) versus current density, one line per composition",
                None,
                lambda: plot_study.sand_by_composition(results),
            )
        )
    if "temperature_K" in dict(results.study.get("arrhenius", {})):
        jobs.append(
            (
                "study_arrhenius.png",
                "Arrhenius plot: ln(T/R) of the resistances and D_eff of each composition "
                "versus 1000/T",
                None,
                lambda: plot_study.arrhenius(results),
            )
        )
    if "pressure" in results.study:
        jobs.append(
            (
                "study_pressure.png",
                "Pressure series: R_int(0) (with the constriction resistance), t0 and the "
                "contact loss at t0 versus stack pressure",
                None,
                lambda: plot_study.pressure_series(results),
            )
        )
    return jobs


def _flat_study(study: dict, prefix: str = "") -> list[tuple[str, dict]]:
    """Each study group with its own values, nested groups (``sand/Li``) after it."""
    flat: list[tuple[str, dict]] = []
    nested: list[tuple[str, dict]] = []
    for name, attrs in study.items():
        values = {k: v for k, v in dict(attrs).items() if not isinstance(v, dict)}
        path = f"{prefix}{name}"
        if values:
            flat.append((path, values))
        inner = {k: v for k, v in dict(attrs).items() if isinstance(v, dict)}
        if inner:
            nested += _flat_study(inner, f"{path}/")
    return flat + nested


def _figure_html(figure: Figure, png: bytes) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    caption = html.escape(figure.caption)
    name = html.escape(figure.path.name)
    return (
        f'<figure id="{name}"><img src="data:image/png;base64,{encoded}" alt="{caption}">'
        f"<figcaption>{caption} (<code>{name}</code>)</figcaption></figure>"
    )


_STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 1100px; }
table.kv { border-collapse: collapse; margin: 0.5em 0 1em; }
table.kv th, table.kv td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
table.kv th { background: #f4f4f4; font-weight: normal; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 520px; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; max-width: 520px; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; }
"""


def write_report(
    results_path: str | Path,
    out_dir: str | Path,
    *,
    progress: Callable[[int, int, str], None] | None = None,
    workers: int | None = None,
) -> Path:
    """Write every figure of a result file as PNG and a self-contained ``index.html``.

    Parameters
    ----------
    results_path
        A file written by :func:`geis_pipeline.pipeline.run`.
    out_dir
        Created if needed; existing figures of the same names are replaced.
    progress
        Called as ``progress(done_figures, total_figures, name)``.
    workers
        Processes drawing the figures (forked from this one, so they share the loaded file).
        None: up to 2 (the CPU count) for a file of :data:`PARALLEL_SWEEPS` sweeps or more,
        else 1, in this process.

    Returns
    -------
    Path
        The HTML page.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise StoreError("the report folder is a file: give another -o", file=out)
    results: Results = open_results(results_path)
    out.mkdir(parents=True, exist_ok=True)

    jobs: list[tuple[str, str, str | None, Callable[[], object]]] = []
    for experiment in results:
        for stem, caption, function, needs in EXPERIMENT_FIGURES:
            if needs is not None and experiment.stage(needs) is None:
                continue
            if not experiment.spectra:
                continue
            jobs.append(
                (
                    f"{_safe(experiment.name)}_{stem}.png",
                    caption,
                    experiment.name,
                    lambda function=function, experiment=experiment: function(experiment),
                )
            )
        if "ce" in experiment.electrodes:
            counter = experiment.electrode("ce")
            for stem, caption, function, needs in COUNTER_FIGURES:
                if needs is None or counter.stage(needs) is not None:
                    jobs.append(
                        (
                            f"{_safe(experiment.name)}_{stem}.png",
                            caption,
                            experiment.name,
                            lambda function=function, counter=counter: function(counter),
                        )
                    )
    study_jobs = _study_jobs(results) if len(results.experiments) > 1 else []
    jobs += study_jobs
    drawn = {job[0] for job in study_jobs}
    sand = None if "study_sand_by_composition.png" in drawn else plot.sand_data(results)
    if sand is not None:
        options = {
            k: sand[k] for k in ("D_eff_cm2_s", "c0_mol_cm3", "slope", "intercept") if k in sand
        }
        jobs.append(
            (
                "study_sand.png",
                "Sand plot: t0^(-1/2) versus current density",
                None,
                lambda: plot.sand(sand["current_density_mA_cm2"], sand["t0_s"], **options),
            )
        )
    arrhenius = None if "study_arrhenius.png" in drawn else plot.arrhenius_data(results)
    if arrhenius is not None:
        jobs.append(
            (
                "study_arrhenius.png",
                "Arrhenius plot of the interface resistance",
                None,
                lambda: plot.arrhenius(
                    arrhenius["temperature_K"],
                    arrhenius["R_ohm_cm2"],
                    E_A_eV=arrhenius.get("E_A_eV"),
                ),
            )
        )

    written: dict[str | None, list[str]] = {}
    problems: list[str] = []
    drawn = _draw_all(jobs, _workers(workers, results), progress)
    for (name, caption, experiment_name, _), (png, problem) in zip(jobs, drawn, strict=True):
        if png is None:
            log.warning("figure %s skipped: %s", name, problem)
            problems.append(f"{name}: {problem}")
            continue
        figure = Figure(out / name, caption, experiment_name)
        figure.path.write_bytes(png)
        log.debug("drew %s (%d kB)", name, len(png) // 1024)
        written.setdefault(experiment_name, []).append(_figure_html(figure, png))
    if progress is not None:
        progress(len(jobs), len(jobs), "index.html")

    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>geis-pipeline report: {html.escape(results.path.name)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>geis-pipeline report: {html.escape(results.path.name)}</h1>",
        _table(
            [
                ("result file", results.path.resolve()),
                ("package version", results.package_version),
                ("created", results.attrs.get("created", "")),
                ("report written", datetime.now(UTC).isoformat(timespec="seconds")),
                ("experiments", ", ".join(results.experiments)),
            ]
        ),
    ]
    for experiment in results:
        parts.append(
            f"<h2 id='{html.escape(_safe(experiment.name))}'>Experiment "
            f"{html.escape(experiment.name)}</h2>"
        )
        parts.append(_table(_experiment_rows(experiment)))
        parts.append("<h3>Quality</h3>")
        parts.append(_table(experiment.quality().rows()))
        summary = experiment.summary
        segments = _segment_rows(summary)
        if segments:
            parts.append("<h3>Segments</h3>")
            parts.append(_table(segments))
        if summary:
            parts.append("<h3>Experiment summary</h3>")
            parts.append(_table(sorted((k, v) for k, v in summary.items() if k != "segments")))
        parts.extend(_tables_html(experiment))
        parts.append("<h3>Figures</h3>")
        parts.extend(written.get(experiment.name, []))
    note = sand_note(results)
    if None in written or results.study or note:
        parts.append("<h2>Study</h2>")
        if note:
            parts.append(f"<p>No Sand plot: {html.escape(note)}.</p>")
        for name, attrs in _flat_study(results.study):
            parts.append(f"<h3>{html.escape(str(name))}</h3>")
            parts.append(_table(sorted(attrs.items())))
        parts.extend(written.get(None, []))
    if problems:
        parts.append("<h2>Figures not drawn</h2><ul>")
        parts.extend(f"<li>{html.escape(problem)}</li>" for problem in problems)
        parts.append("</ul>")
    parts.append("<h2>Config</h2>")
    parts.append(f"<pre class='config'>{html.escape(results.config_toml)}</pre>")
    parts.append("</body></html>")
    index = out / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index
