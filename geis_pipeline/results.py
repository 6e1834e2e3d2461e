"""Reading a result file without knowing its layout: :func:`open_results`.

results = geis_pipeline.open_results("run.h5")
results.experiments                      # names
run = results["Li_LLZO_stripping"]
run.tracking()                           # per-step table (pandas DataFrame)
run.spectra[120].freq, run.spectra[120].z
run.fit_parameters()                     # per-step circuit parameters (R1_ohm, CPE1_0_F_s^(a-1)...)
run.drt_map()                            # tau grid, gamma per step (ohm)
run.to_xarray()                          # the same as labelled arrays (needs xarray)
run.quantity("R_int")                    # R_int in ohm cm2, or in ohm when the area is unknown
run.tracking(electrode="ce")             # a 3-electrode cell's counter electrode (default "we")
run.segments(), run.cycles()             # one row per segment / DC cycle (DataFrames)

Every table names its unit in its column names: ``tracking()`` is area-specific
(``_ohm_cm2``, ``_F_cm2``; NaN without an electrode area) and carries absolute
twins (``_ohm``, ``_F``) where the pipeline wrote them; ``fit_parameters()`` is
absolute (ohm, F, H), as the circuit was fitted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geis_pipeline.errors import GeisPipelineError
from geis_pipeline.spectrum import ELECTRODES, Spectrum, counter_electrode
from geis_pipeline.store import ExperimentRecord, StageData, read_store

__all__ = [
    "ExperimentResults",
    "Quality",
    "Quantity",
    "Results",
    "open_results",
    "parameter_unit",
    "pick_quantity",
    "quality",
]


def _table(columns: Mapping[str, np.ndarray], as_frame: bool):
    if not as_frame:
        return dict(columns)
    import pandas

    return pandas.DataFrame(dict(columns))


# Units of circuit parameters by element type and parameter index (impedance.py order).
_PARAMETER_UNITS: dict[str, tuple[str, ...]] = {
    "CPE": ("F_s^(a-1)", ""),  # Q, alpha
    "Zarc": ("ohm", "s", ""),  # R, tau, gamma
    "R": ("ohm",),
    "C": ("F",),
    "L": ("H",),
    "W": ("ohm_s^-0.5",),
}
_ELEMENT = re.compile(r"^([A-Za-z]+?)(\d*)(?:_(\d+))?$")


def parameter_unit(name: str) -> str:
    """Unit of a circuit parameter (``R1`` ohm, ``CPE1_0`` F s^(a-1), ``CPE1_1`` none: "")."""
    match = _ELEMENT.match(name)
    if match is None:
        return ""
    for kind in sorted(_PARAMETER_UNITS, key=len, reverse=True):
        if name.startswith(kind) and (len(name) == len(kind) or not name[len(kind)].isalpha()):
            units = _PARAMETER_UNITS[kind]
            index = int(match.group(3)) if match.group(3) is not None else 0
            return units[index] if index < len(units) else ""
    return ""


def _with_unit(name: str, unit: str) -> str:
    return f"{name}_{unit}" if unit else name


@dataclass(frozen=True)
class Quantity:
    """One tracked quantity in the unit the data support.

    Attributes
    ----------
    column
        The tracking column it comes from, e.g. ``R_int_ohm_cm2`` or ``R_int_ohm``.
    values
        One value per step.
    unit
        For axis labels: ``Ω cm²``, ``Ω``, ``F/cm²`` or ``F``.
    area_specific
        Whether the values are per electrode area.
    """

    column: str
    values: np.ndarray
    unit: str
    area_specific: bool

    def __repr__(self) -> str:
        return f"Quantity({self.column!r}, {self.values.size} steps, unit {self.unit!r})"


#: Tracking-column suffixes: (area-specific, absolute) with their axis units.
_SUFFIXES = (
    (("_ohm_cm2", "Ω cm²"), ("_ohm", "Ω")),
    (("_F_cm2", "F/cm²"), ("_F", "F")),
)


def pick_quantity(table: Mapping[str, np.ndarray], stem: str) -> Quantity | None:
    """The area-specific column of ``stem`` (e.g. ``R_int``) if it holds values, else its
    absolute twin; None when neither is in the table."""
    for (specific, specific_unit), (absolute, absolute_unit) in _SUFFIXES:
        for suffix, unit, per_area in (
            (specific, specific_unit, True),
            (absolute, absolute_unit, False),
        ):
            values = table.get(stem + suffix)
            if values is None:
                continue
            values = np.asarray(values, dtype=np.float64)
            if per_area and not np.isfinite(values).any() and (stem + absolute) in table:
                continue  # no area: NaN here, the absolute twin has the values
            return Quantity(stem + suffix, values, unit, per_area)
    return None


_DECIMAL = re.compile(r"\d+\.\d+")


def _reasons(
    reasons, failed: np.ndarray, limit: int = 3, separator: str = ";", codes=None
) -> tuple[tuple[str, int], ...]:
    """The most common reasons among the failed steps, most common first.

    A step's reason may list several ("a; b", or codes "kk,residual" with
    ``separator=","``): each counts; ``codes`` maps a code to its meaning.
    Decimal values are replaced by "…" so that "residual 2.66 %" and
    "residual 3.25 %" count as one. Equally common reasons are in alphabetical
    order (a run's summary reads the same every time).
    """
    counter: Counter[str] = Counter()
    for reason in np.asarray(reasons, dtype=object)[failed]:
        parts = [part.strip() for part in str(reason).split(separator) if part.strip()]
        if codes:
            parts = [f"{part}: {codes[part]}" if part in codes else part for part in parts]
        counter.update({_DECIMAL.sub("…", part) for part in parts} or {"no reason recorded"})
    return tuple(sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:limit])


@dataclass(frozen=True)
class Quality:
    """What failed in one experiment, stage by stage (read back from the stored results).

    Attributes
    ----------
    n_spectra, n_incomplete
        Sweeps, and sweeps that stopped early.
    n_kk_failed, n_kk_truncated
        Sweeps failing Kramers-Kronig, and sweeps whose low-frequency tail was cut
        (None: no KK stage).
    n_fit_failed
        Steps whose circuit fit is not ok (None: no fit stage).
    n_drt_failed
        Steps whose DRT failed (None: no DRT stage).
    kk_reasons, fit_reasons, drt_reasons
        (reason, count) of the failed steps, most common first (at most 3).
    drt_unresolved
        (process, steps with a DRT resistance, of which not resolved) per DRT
        window with any value: the value is there, but it is not a measurement
        (``R_<process>_drt_resolved``; empty for files without the flag).
    """

    n_spectra: int
    n_incomplete: int
    n_kk_failed: int | None
    n_kk_truncated: int | None
    n_fit_failed: int | None
    n_drt_failed: int | None
    kk_reasons: tuple[tuple[str, int], ...] = ()
    fit_reasons: tuple[tuple[str, int], ...] = ()
    drt_reasons: tuple[tuple[str, int], ...] = ()
    drt_unresolved: tuple[tuple[str, int, int], ...] = ()

    def rows(self) -> list[tuple[str, str]]:
        """(label, text) lines: counts with their most common reasons."""

        def text(count: int | None, reasons, what: str = "failed") -> str:
            if count is None:
                return "not run"
            listed = "; ".join(f"{reason} ({number})" for reason, number in reasons)
            return f"{count} of {self.n_spectra} {what}" + (f": {listed}" if listed else "")

        rows = [("spectra", f"{self.n_spectra} ({self.n_incomplete} incomplete)")]
        rows.append(("Kramers-Kronig", text(self.n_kk_failed, self.kk_reasons)))
        if self.n_kk_truncated is not None:
            rows.append(("KK truncated", f"{self.n_kk_truncated} low-frequency tails cut"))
        rows.append(("circuit fits", text(self.n_fit_failed, self.fit_reasons, "not ok")))
        rows.append(("DRT", text(self.n_drt_failed, self.drt_reasons)))
        if any(unresolved for _, _, unresolved in self.drt_unresolved):
            listed = "; ".join(
                f"{process} {unresolved} of {n_values}"
                for process, n_values, unresolved in self.drt_unresolved
            )
            rows.append(
                (
                    "DRT unresolved",
                    f"{listed} (gamma's own area, an apex outside the measured frequencies, "
                    "its own or a neighbour's, a second refined peak in the window, or a "
                    "spectrum failing KK: not a measurement)",
                )
            )
        return rows


def quality(record: ExperimentRecord) -> Quality:
    """The :class:`Quality` of one stored experiment."""
    spectra = record.experiment.spectra
    counts: dict[str, object] = {}
    kk = record.stages.get("kk")
    if kk is not None and "ok" in kk.sweeps:
        failed = ~np.asarray(kk.sweeps["ok"], dtype=bool)
        counts["n_kk_failed"] = int(failed.sum())
        truncated = np.asarray(kk.sweeps.get("truncated_below_hz", []), dtype=float)
        counts["n_kk_truncated"] = int(np.isfinite(truncated).sum())
        counts["kk_reasons"] = _reasons(kk.sweeps.get("reason", [""] * failed.size), failed)
    fit = record.stages.get("fit")
    if fit is not None and "ok" in fit.sweeps:
        table = record.tracking
        ok = np.asarray(table.get("fit_ok", fit.sweeps["ok"]), dtype=bool)
        failed = ~ok
        # The tracking table's reason codes (why a step is not ok) where stored, else the
        # fit's status text (result files of earlier versions).
        reasons = table.get("fit_reason")
        counts["n_fit_failed"] = int(failed.sum())
        if reasons is not None and len(reasons) == failed.size:
            from geis_pipeline.fit import REASONS

            counts["fit_reasons"] = _reasons(reasons, failed, separator=",", codes=REASONS)
        else:
            status = fit.sweeps.get("status", [""] * failed.size)
            counts["fit_reasons"] = _reasons(status, failed)
    drt = record.stages.get("drt")
    if drt is not None and "ok" in drt.sweeps:
        failed = ~np.asarray(drt.sweeps["ok"], dtype=bool)
        counts["n_drt_failed"] = int(failed.sum())
        counts["drt_reasons"] = _reasons(drt.sweeps.get("status", [""] * failed.size), failed)
        unresolved = []
        for column, resolved in drt.sweeps.items():
            process = column.removesuffix("_resolved")
            if process != column and f"{process}_R_ohm" in drt.sweeps:
                # The tracking's flag (which also asks for KK) where stored.
                resolved = record.tracking.get(f"R_{process}_drt_resolved", resolved)
                has_value = np.isfinite(np.asarray(drt.sweeps[f"{process}_R_ohm"], dtype=float))
                if has_value.size != np.size(resolved) or not has_value.any():
                    continue
                n_unresolved = int((has_value & ~np.asarray(resolved, dtype=bool)).sum())
                unresolved.append((process, int(has_value.sum()), n_unresolved))
        counts["drt_unresolved"] = tuple(unresolved)
    return Quality(
        n_spectra=len(spectra),
        n_incomplete=sum(bool(spectrum.incomplete) for spectrum in spectra),
        n_kk_failed=counts.pop("n_kk_failed", None),
        n_kk_truncated=counts.pop("n_kk_truncated", None),
        n_fit_failed=counts.pop("n_fit_failed", None),
        n_drt_failed=counts.pop("n_drt_failed", None),
        **counts,
    )


@dataclass(frozen=True)
class ExperimentResults:
    """One experiment's stored results.

    Everything is the working electrode's; every method returning a table, a
    quantity or a stage takes ``electrode="ce"`` for the counter electrode of a
    3-electrode cell (see :attr:`electrodes`, :meth:`electrode`).
    """

    record: ExperimentRecord

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def electrodes(self) -> tuple[str, ...]:
        """The electrodes with results: ``("we",)``, or ``("we", "ce")`` for a 3-electrode cell."""
        return ("we", *(name for name in ELECTRODES[1:] if name in self.record.electrodes))

    def electrode(self, electrode: str = "we") -> ExperimentResults:
        """One electrode's results as an experiment of their own (``we``: this one).

        The counter electrode's spectra are its own (Z = Zce, E = Ece, the current
        negated: its ``strip`` segments are where it is stripped).

        Raises
        ------
        GeisPipelineError
            ``electrode`` is not one of :attr:`electrodes`.
        """
        if electrode == "we":
            return self
        if electrode not in self.electrodes:
            raise GeisPipelineError(
                f"experiment {self.name!r} has no results for electrode {electrode!r}; "
                f"it has: {', '.join(self.electrodes)}",
                key="electrode",
            )
        results = self.record.electrodes[electrode]
        return ExperimentResults(
            ExperimentRecord(
                self.record.name,
                counter_electrode(self.record.experiment),
                self.record.inputs,
                results.stages,
                results.tracking,
                results.summary,
                results.tables,
            )
        )

    def segments(self, as_frame: bool = True, electrode: str = "we"):
        """One row per strip / plate / ocv segment (None: not stored, e.g. layout 1)."""
        return self._stored_table("segments", as_frame, electrode)

    def cycles(self, as_frame: bool = True, electrode: str = "we"):
        """One row per strip + plate cycle of the DC record (None: no cycles)."""
        return self._stored_table("cycles", as_frame, electrode)

    def drt_events(self, as_frame: bool = True, electrode: str = "we"):
        """DRT peak events (step, process, kind: split / appear / vanish); None: not stored."""
        return self._stored_table("drt_events", as_frame, electrode)

    def _stored_table(self, name: str, as_frame: bool, electrode: str):
        table = self.electrode(electrode).record.tables.get(name)
        return None if table is None else _table(table, as_frame)

    @property
    def spectra(self) -> tuple[Spectrum, ...]:
        """The raw sweeps, in time order."""
        return self.record.experiment.spectra

    @property
    def metadata(self):
        return self.record.experiment.metadata

    @property
    def dc_record(self):
        return self.record.experiment.dc_record

    @property
    def summary(self) -> dict[str, object]:
        """Experiment-level results (depletion time, relaxation...)."""
        return dict(self.record.summary)

    def stage(self, name: str, electrode: str = "we") -> StageData | None:
        """Raw access to a stage's stored arrays (``kk``, ``fit``, ``drt``)."""
        return self.electrode(electrode).record.stages.get(name)

    def quality(self, electrode: str = "we") -> Quality:
        """What failed, stage by stage, with the most common reasons."""
        return quality(self.electrode(electrode).record)

    def ok_steps(self, electrode: str = "we") -> np.ndarray:
        """Per step: the circuit fit is ok (``fit_ok``); all False without a fit."""
        if electrode != "we":
            return self.electrode(electrode).ok_steps()
        table = self.record.tracking
        if "fit_ok" in table:
            return np.asarray(table["fit_ok"], dtype=bool)
        stage = self.stage("fit")
        if stage is not None and "ok" in stage.sweeps:
            return np.asarray(stage.sweeps["ok"], dtype=bool)
        return np.zeros(len(self.spectra), dtype=bool)

    def first_last(self, stem: str, electrode: str = "we") -> tuple[float, float, str] | None:
        """First and last value of a tracked quantity over the ok steps, and its unit."""
        if electrode != "we":
            return self.electrode(electrode).first_last(stem)
        quantity = self.quantity(stem)
        if quantity is None:
            return None
        ok = self.ok_steps()
        values = quantity.values
        if ok.size != values.size:
            return None
        good = values[ok & np.isfinite(values)]
        if good.size == 0:
            return None
        return float(good[0]), float(good[-1]), quantity.unit

    @property
    def area_specific(self) -> bool:
        """Whether the electrode area is known (area-specific columns hold values)."""
        return bool(self.metadata.area_cm2)

    def tracking(self, as_frame: bool = True, electrode: str = "we"):
        """The per-step table: a pandas DataFrame (or a dict of numpy arrays).

        Units are in the column names: area-specific ``_ohm_cm2`` / ``_F_cm2``
        (NaN without an electrode area) and, where stored, the absolute twins
        ``_ohm`` / ``_F``. :meth:`quantity` picks the one that holds values.
        ``electrode="ce"``: the counter electrode's table.
        """
        return _table(self.electrode(electrode).record.tracking, as_frame)

    def quantity(self, stem: str, electrode: str = "we") -> Quantity | None:
        """A tracked quantity (``R_int``, ``R_b``, ``C_int``...) in ohm cm2 / F/cm2, or in
        ohm / F when the area is unknown; None if the table has neither."""
        return pick_quantity(self.electrode(electrode).record.tracking, stem)

    def fit_parameters(self, as_frame: bool = True, electrode: str = "we"):
        """Circuit parameters per step as fitted (absolute: ohm, F, H), with standard errors.

        Columns: ``time_s``, then per parameter ``<name>_<unit>`` and
        ``<name>_stderr_<unit>`` (``R1_ohm``, ``CPE1_0_F_s^(a-1)``, ``L0_H``; a
        dimensionless exponent has no unit: ``CPE1_1``, ``CPE1_1_stderr``), ``chi2``
        and ``fit_ok``.
        """
        if electrode != "we":
            return self.electrode(electrode).fit_parameters(as_frame)
        stage = self.stage("fit")
        if stage is None:
            return None
        names = [str(name) for name in np.atleast_1d(stage.attrs["parameter_names"])]
        columns: dict[str, np.ndarray] = {"time_s": self.record.tracking.get("time_s")}
        for index, name in enumerate(names):
            unit = parameter_unit(name)
            columns[_with_unit(name, unit)] = stage.sweeps["parameters"][:, index]
            columns[_with_unit(f"{name}_stderr", unit)] = stage.sweeps["stderr"][:, index]
        columns["chi2"] = stage.sweeps["chi2"]
        columns["fit_ok"] = stage.sweeps["ok"]
        return _table({key: value for key, value in columns.items() if value is not None}, as_frame)

    def __repr__(self) -> str:
        metadata = self.metadata
        area = f"{metadata.area_cm2:.4g} cm2" if metadata.area_cm2 else "unknown area"
        stages = ", ".join(
            f"{name} {int(stage.attrs.get('n_done', 0))}"
            for name, stage in self.record.stages.items()
        )
        kind = self.record.summary.get("experiment_kind")
        return (
            f"<ExperimentResults {self.name!r}: {len(self.spectra)} sweeps, {area}"
            + (f", {kind}" if kind else "")
            + f"; stages {stages or 'none'}; tracking {len(self.record.tracking)} columns>"
        )

    def drt_map(self, electrode: str = "we") -> tuple[np.ndarray, np.ndarray] | None:
        """(tau in s, gamma in ohm per unit ln tau with one row per step)."""
        stage = self.stage("drt", electrode)
        if stage is None:
            return None
        return stage.grid["tau_s"], stage.sweeps["gamma_ohm"]

    def points(self, stage: str, column: str, step: int, electrode: str = "we") -> np.ndarray:
        """A per-point result (e.g. ``fit``/``z_fit_real_ohm``) of one step."""
        offsets = np.concatenate([[0], np.cumsum([spectrum.n_points for spectrum in self.spectra])])
        values = self.electrode(electrode).record.stages[stage].points[column]
        return values[offsets[step] : offsets[step + 1]]

    def to_xarray(self):
        """The experiment as an :class:`xarray.Dataset` (step, frequency and tau dimensions).

        See :func:`geis_pipeline.export.experiment_dataset`; needs xarray.
        """
        from geis_pipeline.export import experiment_dataset

        return experiment_dataset(self)


@dataclass(frozen=True)
class Results:
    """A result file's experiments, config and provenance."""

    path: Path
    records: Mapping[str, ExperimentRecord]
    attrs: Mapping[str, object]

    @property
    def experiments(self) -> list[str]:
        return list(self.records)

    @property
    def config_toml(self) -> str:
        """The full resolved config the run used."""
        return str(self.attrs.get("config_toml", ""))

    @property
    def package_version(self) -> str:
        return str(self.attrs.get("package_version", ""))

    @property
    def study(self) -> dict[str, dict[str, object]]:
        return dict(self.attrs.get("study", {}))  # type: ignore[arg-type]

    def __getitem__(self, name: str) -> ExperimentResults:
        return ExperimentResults(self.records[name])

    def __iter__(self) -> Iterator[ExperimentResults]:
        return (ExperimentResults(record) for record in self.records.values())

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        listed = ", ".join(
            f"{name} ({len(record.experiment.spectra)} sweeps)"
            for name, record in list(self.records.items())[:5]
        )
        more = f", {len(self.records) - 5} more" if len(self.records) > 5 else ""
        study = f"; study: {', '.join(self.study)}" if self.study else ""
        return (
            f"<Results {self.path.name}: {len(self.records)} experiment(s): {listed}{more}"
            f"{study}; geis-pipeline {self.package_version}>"
        )


def open_results(path: str | Path) -> Results:
    """Open a result file written by ``geis-pipeline run``.

    Raises
    ------
    StoreError
        Not a geis-pipeline result file, or a newer layout.
    """
    records, attrs = read_store(path)
    return Results(Path(path), records, attrs)
