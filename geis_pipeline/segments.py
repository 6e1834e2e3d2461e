"""Segment and cycle tables: one row per strip / plate / ocv segment, one per DC cycle.

Pure functions of the tracking table and the DC record (arrays in, frozen
dataclasses out). What the papers tabulate beyond the per-step table:
stripping versus plating asymmetry (krauskopf2019 Figs. 6-7: R_int 110 -> 230
ohm cm2 on stripping, back on plating), rest and re-strip (siniscalchi2022),
EIS every N cycles (Mann 2024).

Conventions
-----------
* A segment's span runs from its current onset to the next segment's: the
  first DC-record time after the previous segment's last sweep at which the
  current is in the segment's state (strip: anodic, plate: cathodic, ocv: |i|
  at most the open-circuit density), else its first sweep; the first segment
  starts with the record. Its passed charge is the current density integrated
  over the span (each DC row's current held until the next row).
* Relaxation: every open-circuit segment after a current gets the fits of
  :func:`geis_pipeline.track.fit_relaxation` on the relative contact from
  resistance (R_ref / R_int, ok fits), from capacitance (C_int / C_ref,
  reliable steps) and on the open-circuit potential itself (its time constant
  and the value it tends to), the time origin at the segment's first sweep.
* Cycles come from the DC record: each run of one current sign is a half
  cycle; a cycle is a half cycle and the next one of the opposite sign (rests
  between them allowed). The table exists when the record holds one complete
  cycle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from geis_pipeline.kind import OCV, PLATE, STRIP

__all__ = ["CycleTable", "SegmentTable", "cycle_table", "segment_table"]

_STATE = {STRIP: 1, PLATE: -1, OCV: 0}


@dataclass(frozen=True)
class SegmentTable:
    """One row per segment: column name (with unit) -> one value per segment."""

    columns: Mapping[str, np.ndarray]

    def __len__(self) -> int:
        return int(next(iter(self.columns.values())).size) if self.columns else 0


@dataclass(frozen=True)
class CycleTable:
    """One row per strip + plate cycle of the DC record (empty: no complete cycle)."""

    columns: Mapping[str, np.ndarray]

    def __len__(self) -> int:
        return int(next(iter(self.columns.values())).size) if self.columns else 0


def _states(density: np.ndarray, ocv_density: float) -> np.ndarray:
    """+1 anodic, -1 cathodic, 0 open circuit, per DC row (NaN current: 2, no state)."""
    finite = np.isfinite(density)
    values = np.where(finite, density, 0.0)
    state = np.where(np.abs(values) <= ocv_density, 0, np.sign(values)).astype(np.int64)
    state[~finite] = 2
    return state


def _held_integral(time_s: np.ndarray, values: np.ndarray, start: float, stop: float) -> float:
    """Integral of a piecewise-constant record (each row held until the next) over a span."""
    if time_s.size == 0 or stop <= start:
        return 0.0
    edges = np.append(time_s[1:], np.inf)
    low = np.maximum(time_s, start)
    high = np.minimum(edges, stop)
    overlapping = (high > low) | ((time_s >= start) & (time_s < stop))
    if not np.isfinite(values[overlapping]).any():
        return math.nan  # the current was not recorded over the span
    # Before the first row the first row's value holds.
    before = max(0.0, min(float(time_s[0]), stop) - start) * float(np.nan_to_num(values[0]))
    return before + float(np.sum(np.nan_to_num(values) * np.clip(high - low, 0.0, None)))


def _at(values: np.ndarray, steps: np.ndarray, position: int) -> float:
    return float(values[steps[position]]) if steps.size else math.nan


def segment_table(
    tracking: Mapping[str, np.ndarray],
    reference_step: int,
    *,
    dc_time_s: np.ndarray | None = None,
    dc_current_density_mA_cm2: np.ndarray | None = None,
    ocv_current_density_mA_cm2: float = 1e-3,
    relaxation_model: str = "exponential",
) -> SegmentTable:
    """The segment table of a :func:`geis_pipeline.track.track` table (labels applied).

    Parameters
    ----------
    tracking
        The per-step table: ``time_s``, ``segment``, ``segment_index``,
        ``current_density_mA_cm2``, ``E_V``, ``fit_ok``, ``R_int_ohm_cm2`` /
        ``R_int_ohm``, ``C_int_F_cm2`` / ``C_int_F``, ``C_int_reliable``,
        ``contact_loss_C``, ``contact_loss_R``.
    reference_step
        The step the contact loss and the relative relaxation are relative to.
    dc_time_s, dc_current_density_mA_cm2
        The DC record (s, mA/cm2); None or empty: the sweeps' own currents.
    ocv_current_density_mA_cm2
        ``|i|`` at or below this is open circuit, mA/cm2.
    relaxation_model
        ``exponential`` or ``stretched`` (:func:`~geis_pipeline.track.fit_relaxation`).

    Returns
    -------
    SegmentTable
        Columns: ``segment_index``, ``label``, ``first_step``, ``last_step``,
        ``n_steps``, ``start_s``, ``stop_s`` (first and last sweep), ``onset_s``
        and ``end_s`` (the span), ``duration_s``, ``current_density_mA_cm2``
        (median), ``charge_mAh_cm2`` (signed: anodic positive), ``E_start_V``,
        ``E_end_V``, ``R_int_start_ohm_cm2``, ``R_int_end_ohm_cm2`` (and
        ``_ohm`` twins), ``C_int_start_F_cm2``, ``C_int_end_F_cm2`` (and
        ``_F``), ``contact_loss_C_end``, ``contact_loss_R_end`` (ok fits: first
        and last of the segment); for open-circuit segments after a current
        ``relaxation_tau_s``, ``relaxation_tau_stderr_s``,
        ``relaxation_recovered_fraction``, ``relaxation_C_tau_s``,
        ``relaxation_C_recovered_fraction``, ``ocv_tau_s``, ``ocv_E_inf_V``,
        ``relaxation_n_steps`` (NaN / 0 elsewhere).
    """
    from geis_pipeline.track import fit_relaxation  # track imports kind; keep this module light

    time_s = np.asarray(tracking["time_s"], dtype=np.float64)
    n = time_s.size
    nan = np.full(n, np.nan)
    labels = np.asarray(tracking.get("segment", np.full(n, "unknown")), dtype=object)
    numbers = np.asarray(tracking.get("segment_index", np.zeros(n, np.int64)), dtype=np.int64)
    density = np.asarray(tracking.get("current_density_mA_cm2", nan), dtype=np.float64)
    potential = np.asarray(tracking.get("E_V", nan), dtype=np.float64)
    ok = np.asarray(tracking.get("fit_ok", np.ones(n, bool)), dtype=bool)
    reliable = np.asarray(tracking.get("C_int_reliable", ok), dtype=bool) & ok

    def column(name: str) -> np.ndarray:
        return np.asarray(tracking.get(name, nan), dtype=np.float64)

    if dc_time_s is None or dc_current_density_mA_cm2 is None or not np.size(dc_time_s):
        record_time, record_density = time_s, density
    else:
        record_time = np.asarray(dc_time_s, dtype=np.float64)
        record_density = np.asarray(dc_current_density_mA_cm2, dtype=np.float64)
    record_state = _states(record_density, ocv_current_density_mA_cm2)
    segment_numbers = [int(number) for number in np.unique(numbers)]
    first_steps = [int(np.flatnonzero(numbers == number)[0]) for number in segment_numbers]
    last_steps = [int(np.flatnonzero(numbers == number)[-1]) for number in segment_numbers]
    onsets = []
    for position, first in enumerate(first_steps):
        if position == 0:
            onsets.append(min(float(record_time[0]), float(time_s[first])))
            continue
        state = _STATE.get(str(labels[first]))
        after = record_time > time_s[last_steps[position - 1]]
        candidates = np.flatnonzero(
            after & (record_time <= time_s[first]) & (record_state == state)
        )
        onsets.append(
            float(record_time[candidates[0]]) if candidates.size else float(time_s[first])
        )
    ends = [*onsets[1:], max(float(record_time[-1]), float(time_s[-1]))]

    r_cm2, r_ohm = column("R_int_ohm_cm2"), column("R_int_ohm")
    c_cm2, c_farad = column("C_int_F_cm2"), column("C_int_F")
    # Relative relaxation needs one consistent unit: per cm2, else absolute.
    r_rel = r_cm2 if np.isfinite(r_cm2).any() else r_ohm
    c_rel = c_cm2 if np.isfinite(c_cm2).any() else c_farad
    has_reference = 0 <= reference_step < n
    r_ref = r_rel[reference_step] if has_reference else math.nan
    c_ref = c_rel[reference_step] if has_reference else math.nan
    rows: dict[str, list] = {}
    loaded_before = False
    for position, number in enumerate(segment_numbers):
        steps = np.flatnonzero(numbers == number)
        good = steps[ok[steps] & np.isfinite(r_rel[steps])]
        good_c = steps[reliable[steps]]
        label = str(labels[steps[0]])
        values = np.abs(density[steps])
        values = density[steps][np.isfinite(values)]
        row: dict[str, object] = {
            "segment_index": number,
            "label": label,
            "first_step": int(steps[0]),
            "last_step": int(steps[-1]),
            "n_steps": int(steps.size),
            "start_s": float(time_s[steps[0]]),
            "stop_s": float(time_s[steps[-1]]),
            "onset_s": onsets[position],
            "end_s": ends[position],
            "duration_s": ends[position] - onsets[position],
            "current_density_mA_cm2": float(np.median(values)) if values.size else math.nan,
            "charge_mAh_cm2": _held_integral(
                record_time, record_density, onsets[position], ends[position]
            )
            / 3600.0,
            "E_start_V": float(potential[steps[0]]),
            "E_end_V": float(potential[steps[-1]]),
            "R_int_start_ohm_cm2": _at(r_cm2, good, 0),
            "R_int_end_ohm_cm2": _at(r_cm2, good, -1),
            "R_int_start_ohm": _at(r_ohm, good, 0),
            "R_int_end_ohm": _at(r_ohm, good, -1),
            "C_int_start_F_cm2": _at(c_cm2, good_c, 0),
            "C_int_end_F_cm2": _at(c_cm2, good_c, -1),
            "C_int_start_F": _at(c_farad, good_c, 0),
            "C_int_end_F": _at(c_farad, good_c, -1),
            "contact_loss_C_end": _at(column("contact_loss_C"), good_c, -1),
            "contact_loss_R_end": _at(column("contact_loss_R"), good, -1),
            "relaxation_tau_s": math.nan,
            "relaxation_tau_stderr_s": math.nan,
            "relaxation_recovered_fraction": math.nan,
            "relaxation_C_tau_s": math.nan,
            "relaxation_C_recovered_fraction": math.nan,
            "ocv_tau_s": math.nan,
            "ocv_E_inf_V": math.nan,
            "relaxation_n_steps": 0,
        }
        if label == OCV and loaded_before and good.size:
            origin = float(time_s[steps[0]])
            with np.errstate(all="ignore"):
                from_r = fit_relaxation(
                    time_s[good], r_ref / r_rel[good], start_s=origin, model=relaxation_model
                )
                from_c = fit_relaxation(
                    time_s[good_c], c_rel[good_c] / c_ref, start_s=origin, model=relaxation_model
                )
            finite_e = steps[np.isfinite(potential[steps])]
            from_e = fit_relaxation(
                time_s[finite_e], potential[finite_e], start_s=origin, model=relaxation_model
            )
            row |= {
                "relaxation_tau_s": from_r.tau_s,
                "relaxation_tau_stderr_s": from_r.tau_stderr_s,
                "relaxation_recovered_fraction": from_r.recovered_fraction,
                "relaxation_C_tau_s": from_c.tau_s,
                "relaxation_C_recovered_fraction": from_c.recovered_fraction,
                "ocv_tau_s": from_e.tau_s,
                "ocv_E_inf_V": from_e.y_inf,
                "relaxation_n_steps": int(good.size),
            }
        loaded_before = loaded_before or label in (STRIP, PLATE)
        for key, value in row.items():
            rows.setdefault(key, []).append(value)
    return SegmentTable(_arrays(rows))


def _arrays(rows: dict[str, list]) -> dict[str, np.ndarray]:
    return {
        key: np.array(values, dtype=object if isinstance(values[0], str) else None)
        for key, values in rows.items()
    }


def _half_cycles(state: np.ndarray) -> list[tuple[int, int, int]]:
    """Half cycles: (sign, first row, row after the last) of each maximal run of one current
    sign (+1 or -1) in a :func:`_states` column; rests and unknown rows end them."""
    if not state.size:
        return []
    # A run starts at row 0 and wherever the state changes; it ends where the next starts.
    starts = np.flatnonzero(np.concatenate(([True], state[1:] != state[:-1])))
    stops = np.append(starts[1:], state.size)
    signs = state[starts]
    signed = (signs == 1) | (signs == -1)
    return [
        (int(sign), int(start), int(stop))
        for sign, start, stop in zip(signs[signed], starts[signed], stops[signed], strict=True)
    ]


def cycle_table(
    dc_time_s: np.ndarray,
    dc_current_density_mA_cm2: np.ndarray,
    dc_potential_V: np.ndarray,
    *,
    ocv_current_density_mA_cm2: float = 1e-3,
    ocv_V: float = 0.0,
    tracking: Mapping[str, np.ndarray] | None = None,
) -> CycleTable:
    """The cycles of a DC record (see the module docstring).

    Parameters
    ----------
    dc_time_s, dc_current_density_mA_cm2, dc_potential_V
        The DC record (s, mA/cm2 positive anodic, V), sorted by time.
    ocv_current_density_mA_cm2
        ``|i|`` at or below this is open circuit.
    ocv_V
        The open-circuit potential the overpotentials are measured from, V.
    tracking
        The per-step table: gives each cycle's R_int at its start and end (the
        ok fits nearest inside the cycle) and its number of impedance steps.

    Returns
    -------
    CycleTable
        Columns: ``cycle`` (from 1), ``first_half`` (``strip`` or ``plate``),
        ``complete``, ``start_s``, ``stop_s``, ``charge_strip_mAh_cm2``,
        ``charge_plate_mAh_cm2`` (negative), ``charge_ratio`` (|plate| / strip),
        ``overpotential_strip_max_V``, ``overpotential_plate_max_V`` (largest
        |E - E_ocv| in each half), ``n_steps``, ``R_int_start_ohm_cm2``,
        ``R_int_end_ohm_cm2``; empty without a complete cycle.
    """
    time_s = np.asarray(dc_time_s, dtype=np.float64)
    density = np.asarray(dc_current_density_mA_cm2, dtype=np.float64)
    potential = np.asarray(dc_potential_V, dtype=np.float64)
    state = _states(density, ocv_current_density_mA_cm2)
    halves = _half_cycles(state)
    if len({sign for sign, _, _ in halves}) < 2:
        return CycleTable({})
    cycles = []
    position = 0
    while position < len(halves):
        first = halves[position]
        second = None
        if position + 1 < len(halves) and halves[position + 1][0] == -first[0]:
            second = halves[position + 1]
        cycles.append((first, second))
        position += 2 if second is not None else 1
    if not any(second is not None for _, second in cycles):
        return CycleTable({})
    step_time = step_r = step_ok = None
    if tracking is not None:
        step_time = np.asarray(tracking["time_s"], dtype=np.float64)
        step_r = np.asarray(tracking.get("R_int_ohm_cm2", np.full(step_time.size, np.nan)), float)
        step_ok = np.asarray(tracking.get("fit_ok", np.ones(step_time.size, bool)), bool)
    rows: dict[str, list] = {}
    for number, (first, second) in enumerate(cycles, start=1):
        parts = {first[0]: first, **({second[0]: second} if second else {})}
        cycle_start = float(time_s[first[1]])
        last = second or first
        # The cycle ends where its last half does: at the next row (the current stopped).
        cycle_stop = float(time_s[min(last[2], time_s.size - 1)])

        def charge(sign: int, parts=parts) -> float:
            if sign not in parts:
                return math.nan
            _, begin, end = parts[sign]
            stop = float(time_s[end]) if end < time_s.size else float(time_s[-1])
            return _held_integral(time_s, density, float(time_s[begin]), stop) / 3600.0

        def overpotential(sign: int, parts=parts) -> float:
            if sign not in parts:
                return math.nan
            _, begin, end = parts[sign]
            values = np.abs(potential[begin:end] - ocv_V)
            values = values[np.isfinite(values)]
            return float(values.max()) if values.size else math.nan

        strip_q, plate_q = charge(1), charge(-1)
        row: dict[str, object] = {
            "cycle": number,
            "first_half": STRIP if first[0] == 1 else PLATE,
            "complete": second is not None,
            "start_s": cycle_start,
            "stop_s": cycle_stop,
            "charge_strip_mAh_cm2": strip_q,
            "charge_plate_mAh_cm2": plate_q,
            "charge_ratio": abs(plate_q) / strip_q
            if strip_q and np.isfinite(plate_q)
            else math.nan,
            "overpotential_strip_max_V": overpotential(1),
            "overpotential_plate_max_V": overpotential(-1),
            "n_steps": 0,
            "R_int_start_ohm_cm2": math.nan,
            "R_int_end_ohm_cm2": math.nan,
        }
        if step_time is not None:
            inside = (step_time >= cycle_start) & (step_time <= cycle_stop)
            good = np.flatnonzero(inside & step_ok & np.isfinite(step_r))
            row["n_steps"] = int(inside.sum())
            if good.size:
                row["R_int_start_ohm_cm2"] = float(step_r[good[0]])
                row["R_int_end_ohm_cm2"] = float(step_r[good[-1]])
        for key, value in row.items():
            rows.setdefault(key, []).append(value)
    return CycleTable(_arrays(rows))
