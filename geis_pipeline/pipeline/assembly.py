"""Assembling results: chunks into :class:`StageData`, tracking and the study."""

from __future__ import annotations

import logging
import math

import numpy as np

from geis_pipeline.config import Config
from geis_pipeline.drt import window_events
from geis_pipeline.fit import REASONS, ROLE_QUANTITIES
from geis_pipeline.kind import spectra_labels
from geis_pipeline.pipeline.chunks import _fit_options
from geis_pipeline.segments import cycle_table, segment_table
from geis_pipeline.spectrum import Experiment
from geis_pipeline.store import ExperimentRecord, StageData
from geis_pipeline.study import (
    constriction_column,
    critical_current_density,
    cutoff_end_point,
    diffusivity_arrhenius,
    pressure_series,
    sand_by_composition,
    value_at_time,
)
from geis_pipeline.track import (
    GIVE_AREA,
    arrhenius_fit,
    sand_fit,
    summarize_tracking,
    track,
)

__all__ = ["StageColumns", "assemble_record", "dc_only_summary", "slice_stage", "study"]

log = logging.getLogger(__name__)


def slice_stage(stage: StageData, start: int, stop: int, offsets: np.ndarray) -> dict:
    return {
        "sweeps": {name: values[start:stop] for name, values in stage.sweeps.items()},
        "points": {
            name: values[offsets[start] : offsets[stop]] for name, values in stage.points.items()
        },
        "grid": dict(stage.grid),
    }


class StageColumns:
    """One stage's results for a whole experiment, filled in place as its chunks arrive.

    Each chunk's columns are copied into arrays of the experiment's full size (allocated when
    the first chunk arrives) and the chunk's own output can go: no list of every chunk's
    arrays to concatenate at the end, and no second copy of them. :meth:`stage_data` gives
    the contiguous run of finished chunks from the first sweep, as views (a chunk's rows are
    written once, so what a published record holds never changes under it).

    Parameters
    ----------
    offsets
        (n_sweeps + 1,) point offsets of the experiment's sweeps.
    """

    def __init__(self, offsets: np.ndarray) -> None:
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.n_sweeps = self.offsets.size - 1
        self.sweeps: dict[str, np.ndarray] = {}
        self.points: dict[str, np.ndarray] = {}
        self.grid: dict[str, np.ndarray] = {}
        self._stops: dict[int, int] = {}  # chunk start -> stop

    def __contains__(self, start: int) -> bool:
        return start in self._stops

    def add(self, start: int, stop: int, output: dict) -> None:
        """Copy one chunk's output (``sweeps``, ``points``, ``grid``) into place."""
        first = not self._stops
        if first:
            self.grid = dict(output.get("grid", {}))
        rows = slice(start, stop)
        points = slice(int(self.offsets[start]), int(self.offsets[stop]))
        for columns, values_of, window, size in (
            (self.sweeps, output["sweeps"], rows, self.n_sweeps),
            (self.points, output.get("points", {}), points, int(self.offsets[-1])),
        ):
            names = values_of if first else columns
            for name in names:
                values = np.asarray(values_of[name])
                column = columns.get(name)
                if column is None or not np.can_cast(values.dtype, column.dtype, "same_kind"):
                    column = self._allocate(columns, name, values, size, column)
                column[window] = values
        self._stops[start] = stop

    @staticmethod
    def _allocate(columns: dict, name: str, values: np.ndarray, size: int, old) -> np.ndarray:
        """A column of ``size`` rows for ``values`` (text: objects, as the stages make it),
        keeping what an ``old`` column of a narrower type held."""
        dtype = object if values.dtype.kind in "OUS" else values.dtype
        if old is not None:
            dtype = object if object in (dtype, old.dtype) else np.result_type(dtype, old.dtype)
        column = np.empty((size, *values.shape[1:]), dtype=dtype)
        if old is not None:
            column[...] = old
        columns[name] = column
        return column

    def done(self) -> int:
        """Sweeps finished from the first one on, without a gap."""
        position = 0
        while position in self._stops and self._stops[position] > position:
            position = self._stops[position]
        return position

    def chunk(self, start: int, stop: int) -> dict:
        """One chunk's columns (views), as :meth:`add` took them."""
        points = slice(int(self.offsets[start]), int(self.offsets[stop]))
        return {
            "sweeps": {name: values[start:stop] for name, values in self.sweeps.items()},
            "points": {name: values[points] for name, values in self.points.items()},
            "grid": dict(self.grid),
        }

    def stage_data(self, stage: str, config: Config, stage_hash: str) -> StageData:
        """The finished run of sweeps from the first as :class:`StageData` (views)."""
        n_done = self.done()
        end = int(self.offsets[n_done])
        sweeps = {name: values[:n_done] for name, values in self.sweeps.items()}
        points = {name: values[:end] for name, values in self.points.items()}
        attrs: dict[str, object] = {"n_done": n_done, "complete": n_done == self.n_sweeps}
        if not n_done:
            sweeps, points, attrs["n_done"] = {}, {}, 0
        if stage == "fit":
            circuit = _fit_options(config, None).circuit
            attrs |= {
                "circuit": circuit.text,
                "parameter_names": list(circuit.parameter_names),
                "zarcs": [list(pair) for pair in circuit.zarcs],
            }
        if stage == "drt":
            attrs["windows"] = {name: list(bounds) for name, bounds in config.drt.windows.items()}
        return StageData(stage_hash, sweeps, points, dict(self.grid) if n_done else {}, attrs)


def _fit_band(spectra, fit: StageData, n_done: int) -> np.ndarray | None:
    """(n_done, 2) lowest and highest frequency each fit used (None if not stored)."""
    used = fit.points.get("used")
    sizes = np.array([spectrum.freq.size for spectrum in spectra], dtype=np.int64)
    if used is None or used.size < sizes.sum():
        return None
    band = np.full((n_done, 2), np.nan)
    if not len(spectra):
        return band
    # All sweeps at once (every spectrum has points): min and max of the used points per
    # sweep, of all its points when the fit used none.
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    freq = np.concatenate([spectrum.freq for spectrum in spectra])
    mask = np.asarray(used[: freq.size], dtype=bool)
    keep = mask | np.repeat(~np.logical_or.reduceat(mask, starts), sizes)
    band[:, 0] = np.minimum.reduceat(np.where(keep, freq, np.inf), starts)
    band[:, 1] = np.maximum.reduceat(np.where(keep, freq, -np.inf), starts)
    return band


def _reference_step(config: Config, n_done: int) -> int | None:
    step = config.track.reference_step
    return step if step is None or step < n_done else -1


def _role_table(sweeps: dict, n_done: int) -> dict[str, dict[str, np.ndarray]]:
    """The fit stage's ``role_<role>_<quantity>`` columns as a role table."""
    table: dict[str, dict[str, np.ndarray]] = {}
    for column, values in sweeps.items():
        if not column.startswith("role_"):
            continue
        for quantity in ROLE_QUANTITIES:
            if column.endswith(f"_{quantity}"):
                role = column[len("role_") : -len(quantity) - 1]
                table.setdefault(role, {})[quantity] = np.asarray(values[:n_done], dtype=float)
                break
    return table


def _reasons(sweeps: dict, n_done: int) -> np.ndarray | None:
    if "reasons" not in sweeps:
        return None
    return np.array([str(value) for value in sweeps["reasons"][:n_done]], dtype=str)


def _reason_counts(reasons: np.ndarray | None) -> dict[str, int]:
    """``n_fit_<code>``: the steps whose reasons (comma-separated) include each code."""
    if reasons is None:
        return {}
    # Few distinct reason strings among many steps: split each distinct one once.
    distinct, counts = np.unique(reasons, return_counts=True)
    parts = [str(value).split(",") for value in distinct]
    return {
        f"n_fit_{code}": int(
            sum(int(count) for count, part in zip(counts, parts, strict=True) if code in part)
        )
        for code in REASONS
    }


def _total_resistance(circuit, parameters: np.ndarray) -> np.ndarray:
    """Every resistance of the circuit per step (series R, arcs, Zarc elements), ohm."""
    names = circuit.parameter_names
    columns = [
        names.index(name if kind == "R" else f"{name}_0")
        for name, kind in circuit.element_kinds.items()
        if kind in ("R", "Zarc")
    ]
    return np.asarray(parameters, dtype=float)[:, columns].sum(axis=1)


def _interfaces(experiment: Experiment, config: Config, electrode: str) -> int:
    """Interfaces in one spectrum: ``track.interfaces`` for a 2-electrode cell, 1 for each
    electrode of a 3-electrode cell (measured against the reference, each spectrum holds
    one interface)."""
    if electrode != "we" or experiment.has_counter:
        if config.track.interfaces != 1:
            log.info(
                "3-electrode cell: each electrode's spectrum holds one interface "
                "(track.interfaces = %d applies to 2-electrode cells only)",
                config.track.interfaces,
            )
        return 1
    return config.track.interfaces


def _tracking(
    experiment: Experiment,
    stages: dict[str, StageData],
    config: Config,
    name: str | None = None,
    electrode: str = "we",
) -> tuple[dict, dict]:
    fit = stages.get("fit")
    n_done = int(fit.attrs["n_done"]) if fit is not None else 0
    spectra = experiment.spectra[:n_done]
    if fit is None or n_done == 0:
        return {}, {}
    options = _fit_options(config, experiment.metadata.area_cm2)
    section = config.track
    settings = config.settings_of(name or "")
    temperature = _first(settings.temperature_K, section.temperature_K)
    c0 = _first(settings.c0_mol_cm3, section.c0_mol_cm3)
    area = experiment.metadata.area_cm2
    threshold_cm2 = section.r_int_threshold_ohm_cm2
    if section.r_int_threshold_ohm is not None:
        # An absolute threshold (krauskopf2020: 10 kOhm) on the per-cm2 column.
        threshold_cm2 = section.r_int_threshold_ohm * area if area else math.nan
    kk = stages.get("kk")
    drt = stages.get("drt")
    kk_ok = kk.sweeps["ok"][:n_done] if kk is not None and kk.sweeps["ok"].size >= n_done else None
    drt_ready = (
        drt is not None and "int_R_ohm" in drt.sweeps and drt.sweeps["int_R_ohm"].size >= n_done
    )
    # Segments from each file's technique, setpoint and DC record (with a tolerance),
    # not from the sign of the current density (which needs the area).
    labels = spectra_labels(
        spectra,
        experiment.metadata,
        ocv_current_density_mA_cm2=section.ocv_current_density_mA_cm2,
    )
    reasons = _reasons(fit.sweeps, n_done)
    result = track(
        np.array([spectrum.time_s for spectrum in spectra]),
        roles=_role_table(fit.sweeps, n_done),
        fit_ok=fit.sweeps["ok"],
        fit_reason=reasons,
        total_resistance_ohm=_total_resistance(options.circuit, fit.sweeps["parameters"]),
        kk_ok=kk_ok,
        potential_V=np.array([spectrum.potential_V for spectrum in spectra]),
        charge_mAh=np.array([spectrum.charge_mAh for spectrum in spectra]),
        area_cm2=experiment.metadata.area_cm2,
        interfaces=(interfaces := _interfaces(experiment, config, electrode)),
        # A reference step not processed yet (a publish while running): no contact loss yet.
        reference_step=_reference_step(config, n_done),
        drt_R_int_ohm=drt.sweeps["int_R_ohm"][:n_done] if drt_ready else None,
        drt_tau_int_s=drt.sweeps["int_tau_s"][:n_done] if drt_ready else None,
        drt_processes=_drt_processes(drt, n_done),
        drt_resolved=_drt_columns(drt, n_done, "_resolved"),
        drt_R_stderr_ohm=_drt_columns(drt, n_done, "_R_stderr_ohm"),
        current_mA=np.array([spectrum.current_mA for spectrum in spectra]),
        freq_band_hz=_fit_band(spectra, fit, n_done),
        ocv_current_density_mA_cm2=section.ocv_current_density_mA_cm2,
        c_int_max_rel_stderr=section.c_int_max_rel_stderr,
        temperature_K=temperature,
        reference_temperature_K=section.reference_temperature_K,
        activation_energy_eV=section.activation_energy_eV,
        ocv_V=_first(settings.ocv_V, section.ocv_V),
        segment=labels,
    )
    columns = dict(result.columns)
    summary = {
        "n_spectra": len(experiment.spectra),
        "n_processed": n_done,
        "n_fit_failed": int(np.sum(~np.asarray(columns.get("fit_ok", fit.sweeps["ok"])))),
        # Steps per reason a fit is not ok (a step may have several).
        **_reason_counts(reasons),
        "reference_step": result.reference_step,
        "electrode": electrode,
        "interfaces": interfaces,
    }
    summary |= summarize_tracking(
        columns,
        result.reference_step,
        r_int_threshold_ohm_cm2=threshold_cm2,
        c0_mol_cm3=c0,
        current_density_mA_cm2=_first(
            settings.current_density_mA_cm2, section.current_density_mA_cm2
        ),
        relaxation_model=section.relaxation_model,
        temperature_K=temperature,
        current_mA=np.array([spectrum.current_mA for spectrum in spectra]),
        charge_mAh=np.array([spectrum.charge_mAh for spectrum in spectra]),
        # One cutoff key: the sweeps' |E| reaching it also ends t0 (before R_int's threshold).
        potential_cutoff_V=None if section.cutoff_V is None else abs(section.cutoff_V),
    )
    summary |= _study_metadata(settings, c0, result.E_ocv_V)
    summary |= _contact_loss_at_t0(columns, summary)
    summary |= _constriction(area, settings, section)
    shorted = np.flatnonzero(np.asarray(columns["short_circuit"], dtype=bool))
    summary["short_circuit"] = bool(shorted.size)
    if shorted.size:
        summary["short_circuit_step"] = int(shorted[0])
        summary["short_circuit_time_s"] = float(columns["time_s"][shorted[0]])
    if section.cutoff_V is not None:
        summary |= _cutoff(experiment, columns, section, c0)
    summary |= _staircase(experiment, section, result.E_ocv_V)
    log.debug(
        "%s: tracked %d steps (%s); t0 %s",
        name,
        n_done,
        summary["experiment_kind_description"],
        f"{summary['t0_s'] / 3600:.3g} h" if summary["t0_reached"] else summary["t0_reason"],
    )
    return columns, summary


def _constriction(area: float | None, settings, section) -> dict[str, float]:
    """krauskopf2019 eq. 1 for the experiment's force (or stack pressure) and area."""
    return constriction_column(
        area_cm2=area,
        force_N=settings.force_N,
        stack_pressure_MPa=settings.stack_pressure_MPa,
        conductivity_S_cm=section.electrolyte_conductivity_S_cm,
        hardness_MPa=section.metal_hardness_MPa,
    )


def _contact_loss_at_t0(columns: dict, summary: dict) -> dict[str, float]:
    """The contact loss from C_int (reliable steps) and from R_int (ok fits) at t0."""
    at = float(summary.get("current_onset_s", math.nan)) + float(summary.get("t0_s", math.nan))
    time_s = np.asarray(columns["time_s"], dtype=float)
    ok = np.asarray(columns.get("fit_ok", np.ones(time_s.size, bool)), dtype=bool)
    reliable = ok & np.asarray(columns.get("C_int_reliable", ok), dtype=bool)
    nan = np.full(time_s.size, np.nan)
    return {
        "contact_loss_C_t0": value_at_time(
            time_s, columns.get("contact_loss_C", nan), reliable, at
        ),
        "contact_loss_R_t0": value_at_time(time_s, columns.get("contact_loss_R", nan), ok, at),
    }


def dc_only_summary(experiment: Experiment, config: Config, name: str) -> dict[str, object]:
    """The summary of an experiment with no impedance spectra (only GCPL/CP/OCV files).

    What its DC record gives: the stripping current density, the voltage cutoff's
    t_cutoff, q_cutoff and Sand's D_eff from the capacity (``track.cutoff_V``), a
    staircase's critical current density, the study metadata and the
    constriction resistance; t0 from R_int needs spectra (``t0_reason`` says so).
    """
    section = config.track
    settings = config.settings_of(name)
    c0 = _first(settings.c0_mol_cm3, section.c0_mol_cm3)
    area = experiment.metadata.area_cm2
    dc = experiment.dc_record
    density = dc.current_mA / area if area else np.full(dc.time_s.size, np.nan)
    loaded = np.isfinite(density) & (np.abs(density) > section.ocv_current_density_mA_cm2)
    current = _first(settings.current_density_mA_cm2, section.current_density_mA_cm2)
    if current is None:
        current = float(np.median(np.abs(density[loaded]))) if loaded.any() else math.nan
    # E_ocv: as configured, else the median E of the rest before the current.
    e_ocv = _first(settings.ocv_V, section.ocv_V)
    if e_ocv is None:
        before = ~loaded & (dc.time_s < (dc.time_s[loaded][0] if loaded.any() else -np.inf))
        e_ocv = float(np.nanmedian(dc.potential_V[before])) if before.any() else 0.0
    reason = "no impedance spectra (a DC-only folder): t0 from R_int needs them"
    if not area:
        reason += "; no electrode area: " + GIVE_AREA
    temperature = _first(settings.temperature_K, section.temperature_K)
    summary: dict[str, object] = {
        "n_spectra": 0,
        "n_processed": 0,
        "experiment_kind": "dc_only",
        "experiment_kind_description": (
            f"DC record only ({', '.join(experiment.metadata.techniques) or 'technique unknown'}"
            f", {dc.time_s.size} rows)"
        ),
        "t0_s": math.nan,
        "t0_stderr_s": math.nan,
        "t0_reached": False,
        "t0_reason": reason,
        "t0_criterion": "",
        "current_density_mA_cm2": float(abs(current)),
        "D_eff_cm2_s": math.nan,
        "D_eff_reason": reason,
        "short_circuit": False,
    }
    if temperature is not None:
        summary["temperature_K"] = float(temperature)
    summary |= _study_metadata(settings, c0, e_ocv)
    summary |= _constriction(area, settings, section)
    if section.cutoff_V is not None and area:
        summary |= _cutoff(experiment, {}, section, c0)
    summary |= _staircase(experiment, section, e_ocv)
    return summary


def _drt_processes(drt, n_done: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every DRT window's tracked peak (``<process>_R_ohm``, ``<process>_tau_s``)."""
    resistances = _drt_columns(drt, n_done, "_R_ohm")
    taus = _drt_columns(drt, n_done, "_tau_s")
    return {process: (r, taus[process]) for process, r in resistances.items() if process in taus}


def _drt_columns(drt, n_done: int, suffix: str) -> dict[str, np.ndarray]:
    """Every DRT window's ``<process><suffix>`` column (files written before have none)."""
    if drt is None:
        return {}
    return {
        column.removesuffix(suffix): values[:n_done]
        for column, values in drt.sweeps.items()
        if column.endswith(suffix) and values.size >= n_done
    }


def _staircase(experiment: Experiment, section, e_ocv_V: float) -> dict[str, object]:
    """The critical current density when the DC record is a rising current staircase."""
    area = experiment.metadata.area_cm2
    dc = experiment.dc_record
    if not (dc.time_s.size and area):
        return {}
    found = critical_current_density(
        dc.time_s,
        dc.potential_V,
        dc.current_mA / area,
        ocv_V=e_ocv_V,
        ocv_current_density_mA_cm2=section.ocv_current_density_mA_cm2,
    )
    if len(found.step_currents_mA_cm2) < 3 or "staircase" in found.reason:
        return {}
    return {
        "ccd_found": found.found,
        "ccd_mA_cm2": found.ccd_mA_cm2,
        "ccd_reason": found.reason,
        "staircase_currents_mA_cm2": list(found.step_currents_mA_cm2),
    }


def _first(*values):
    """The first value that is set (None: unset)."""
    return next((value for value in values if value is not None), None)


def _study_metadata(settings, c0: float, e_ocv_V: float) -> dict[str, object]:
    """What the study groups and plots experiments by, stored in each summary."""
    metadata: dict[str, object] = {"c0_mol_cm3": float(c0), "E_ocv_V": float(e_ocv_V)}
    for key in ("composition", "stack_pressure_MPa", "force_N"):
        value = getattr(settings, key)
        if value is not None:
            metadata[key] = value
    return {key: value for key, value in metadata.items() if value is not None}


def _cutoff(experiment: Experiment, columns: dict, section, c0: float) -> dict[str, object]:
    """t_cutoff, q_cutoff and Sand's D_eff from the capacity, from the DC record."""
    area = experiment.metadata.area_cm2
    dc = experiment.dc_record
    if dc.time_s.size and area:
        time_s, potential, density = dc.time_s, dc.potential_V, dc.current_mA / area
    else:  # no DC record: the sweeps' own DC values
        time_s = columns["time_s"]
        potential = columns["E_V"]
        density = columns["current_density_mA_cm2"]
    end = cutoff_end_point(
        time_s,
        potential,
        density,
        section.cutoff_V,
        c0_mol_cm3=c0,
        ocv_current_density_mA_cm2=section.ocv_current_density_mA_cm2,
    )
    return {
        "cutoff_V": section.cutoff_V,
        "cutoff_reached": end.reached,
        "t_cutoff_s": end.t_cutoff_s,
        "q_cutoff_mAh_cm2": end.q_cutoff_mAh_cm2,
        "stripped_cutoff_um": end.stripped_um,
        "D_eff_cutoff_cm2_s": end.D_eff_cm2_s,
        "t_cutoff_stderr_s": end.t_cutoff_stderr_s,
        "q_cutoff_stderr_mAh_cm2": end.q_cutoff_stderr_mAh_cm2,
        "stripped_cutoff_stderr_um": end.stripped_stderr_um,
        "D_eff_cutoff_stderr_cm2_s": end.D_eff_stderr_cm2_s,
    }


def study(records: dict[str, ExperimentRecord], config: Config) -> dict[str, dict]:
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
    # Experiments with a composition are fitted per composition (each with its own c0):
    # one line through several compositions would mean nothing.
    unlabelled = np.array([not summary.get("composition") for summary in summaries.values()])
    usable = np.isfinite(t0) & np.isfinite(current) & unlabelled.astype(bool)
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
    compositions = _sand_groups(summaries)
    if compositions:
        c0_by_composition = {
            compositions[name]: float(summaries[name].get("c0_mol_cm3", config.track.c0_mol_cm3))
            for name in compositions
        }
        for composition, entry in sand_by_composition(
            summaries,
            compositions=compositions,
            c0_mol_cm3=c0_by_composition,
            through_origin=config.track.sand_through_origin,
        ).items():
            study[f"sand/{composition}"] = entry
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
        for composition, entry in _diffusivity_arrhenius(summaries, config).items():
            study[f"arrhenius/D_eff/{composition}"] = entry
    series = pressure_series(summaries)
    if series:
        study["pressure"] = series
    if "sand" in study:
        log.info(
            "study: Sand D_eff %.3g cm2/s from %d experiments",
            study["sand"]["D_eff_cm2_s"],
            study["sand"]["n_experiments"],
        )
    elif len(summaries) > 1:
        log.info(
            "study: no Sand fit (t0 at %d current density(ies); it needs two or more)",
            np.unique(np.abs(current[usable])).size,
        )
    return study


def _sand_groups(summaries: dict) -> dict[str, str]:
    """Experiment -> its Sand group: the composition, or ``<composition>@<T>K`` when
    that composition was measured at several temperatures (D_eff depends on T)."""
    temperatures: dict[str, set[float | None]] = {}
    for summary in summaries.values():
        if summary.get("composition"):
            temperature = float(summary.get("temperature_K", math.nan))
            temperatures.setdefault(str(summary["composition"]), set()).add(
                round(temperature, 2) if math.isfinite(temperature) else None
            )
    groups = {}
    for name, summary in summaries.items():
        if not summary.get("composition"):
            continue
        composition = str(summary["composition"])
        groups[name] = composition
        if len(temperatures[composition]) > 1:
            groups[name] = f"{composition}@{float(summary.get('temperature_K', math.nan)):g}K"
    return groups


def _diffusivity_arrhenius(summaries: dict, config: Config) -> dict[str, dict[str, object]]:
    """E_A and D_eff(T_ref) of each composition whose experiments span two or more temperatures.

    Each experiment's D_eff is Sand's from t0, else the one from the capacity to
    the voltage cutoff; experiments without a composition form the group ``all``.
    """
    groups: dict[str, list[str]] = {}
    for name, summary in summaries.items():
        groups.setdefault(str(summary.get("composition") or "all"), []).append(name)
    entries = {}
    for composition, names in groups.items():
        temperature, diffusivity, stderr, source, used = [], [], [], [], []
        for name in names:
            summary = summaries[name]
            t = float(summary.get("temperature_K", math.nan))
            for key, error, label in (
                ("D_eff_cm2_s", None, "t0"),
                ("D_eff_cutoff_cm2_s", "D_eff_cutoff_stderr_cm2_s", "cutoff"),
            ):
                d = float(summary.get(key, math.nan))
                if math.isfinite(d) and d > 0 and math.isfinite(t):
                    if error is None:  # D ~ t0: its relative error is t0's
                        t0 = float(summary.get("t0_s", math.nan))
                        e = d * float(summary.get("t0_stderr_s", math.nan)) / t0
                    else:
                        e = float(summary.get(error, math.nan))
                    temperature.append(t)
                    diffusivity.append(d)
                    stderr.append(e)
                    source.append(label)
                    used.append(name)
                    break
        if len(set(temperature)) < 2:
            continue
        fitted = diffusivity_arrhenius(
            np.array(temperature),
            np.array(diffusivity),
            D_eff_stderr_cm2_s=np.array(stderr),
            reference_temperature_K=config.track.reference_temperature_K,
        )
        entries[composition] = {
            "E_A_eV": fitted.E_A_eV,
            "E_A_stderr_eV": fitted.E_A_stderr_eV,
            "D_ref_cm2_s": fitted.D_ref_cm2_s,
            "D_ref_stderr_cm2_s": fitted.D_ref_stderr_cm2_s,
            "reference_temperature_K": fitted.reference_temperature_K,
            "n_experiments": fitted.n_points,
            "experiments": used,
            "temperature_K": temperature,
            "D_eff_cm2_s": diffusivity,
            "D_eff_stderr_cm2_s": stderr,
            "D_eff_from": source,
        }
    return entries


def assemble_record(
    name, experiment, inputs, columns, hashes, config, n_sweeps, *, electrode: str = "we"
) -> ExperimentRecord:
    """One electrode's stored results from its stages' :class:`StageColumns` (``electrode``:
    ``we`` or ``ce``, whose ``experiment`` is
    :func:`~geis_pipeline.spectrum.counter_electrode`'s view)."""
    # Only the contiguous run of finished chunks from the first sweep is published.
    stages = {
        stage: stage_columns.stage_data(stage, config, hashes[stage])
        for stage, stage_columns in columns.items()
    }
    tracking, summary = _tracking(experiment, stages, config, name, electrode)
    tables = _tables(experiment, tracking, summary, config) if tracking else {}
    events = _drt_events(stages.get("drt"), tracking, config)
    if events is not None:
        tables["drt_events"] = events
    return ExperimentRecord(name, experiment, inputs, stages, tracking, summary, tables)


def _drt_events(drt: StageData | None, tracking: dict, config: Config) -> dict | None:
    """The DRT peak events table (None: the DRT stage stored no peak counts)."""
    if drt is None or not tracking:
        return None
    n_done = len(tracking["time_s"])
    counts = {process: drt.sweeps.get(f"{process}_n_peaks") for process in config.drt.windows}
    if not counts or any(
        values is None or np.shape(values)[0] < n_done for values in counts.values()
    ):
        return None
    events = window_events(
        {process: values[:n_done] for process, values in counts.items()},
        np.asarray(drt.sweeps["ok"][:n_done], dtype=bool),
    )
    steps = np.array([event.step for event in events], dtype=np.int64)
    return {
        "step": steps,
        "time_s": np.asarray(tracking["time_s"], dtype=np.float64)[steps],
        "process": np.array([event.process for event in events], dtype=object),
        "kind": np.array([event.kind for event in events], dtype=object),
        "n_peaks_before": np.array(
            [counts[e.process][_previous_ok(drt, e.step)] for e in events], dtype=np.int64
        ),
        "n_peaks": np.array([counts[e.process][e.step] for e in events], dtype=np.int64),
    }


def _previous_ok(drt: StageData, step: int) -> int:
    ok = np.flatnonzero(np.asarray(drt.sweeps["ok"][:step], dtype=bool))
    return int(ok[-1]) if ok.size else step


def _tables(experiment: Experiment, tracking: dict, summary: dict, config: Config) -> dict:
    """The segment table, and the cycle table when the DC record has cycles."""
    area = experiment.metadata.area_cm2
    dc = experiment.dc_record
    # Charges are per cm2: without an area the DC record cannot give them (NaN).
    density = dc.current_mA / area if area and len(dc) else None
    section = config.track
    tables = {
        "segments": segment_table(
            tracking,
            int(summary.get("reference_step", -1)),
            dc_time_s=dc.time_s if density is not None else None,
            dc_current_density_mA_cm2=density,
            ocv_current_density_mA_cm2=section.ocv_current_density_mA_cm2,
            relaxation_model=section.relaxation_model,
        ).columns
    }
    if density is not None:
        cycles = cycle_table(
            dc.time_s,
            density,
            dc.potential_V,
            ocv_current_density_mA_cm2=section.ocv_current_density_mA_cm2,
            ocv_V=float(summary.get("E_ocv_V", 0.0)),
            tracking=tracking,
        )
        if len(cycles):
            tables["cycles"] = cycles.columns
    return tables
