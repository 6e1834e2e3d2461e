"""Simulated multi-segment protocols with known truth: strip / rest / plate ... and 3 electrodes.

:mod:`geis_pipeline.simulate` writes the example experiment (one stripping run,
then its relaxation). This module writes the protocols the segment and
electrode tables are tested on: any sequence of ``strip``, ``plate`` and
``ocv`` segments (krauskopf2019 Figs. 6-7: stripping then plating;
siniscalchi2022: rest and re-strip), optionally with the counter electrode of a
3-electrode cell recorded beside the working electrode in EC-Lab's columns
(``<Ece>/V``, ``Re(Zce)/Ohm``, ``-Im(Zce)/Ohm``, ``|Zce|/Ohm``,
``Phase(Zce)/deg``, and the whole cell's ``Re(Zwe-ce)/Ohm``, ``-Im(Zwe-ce)/Ohm``).

Model (per electrode, contact fraction φ; R_int = R_int0 / φ, C_int = C_int0 φ)
-------------------------------------------------------------------------------
* stripped: Sand-type depletion, φ = φ_min + (1 - φ_min) max(0, 1 - sqrt(s / t0)),
  s counting on from the stripping time that gives the segment's starting φ;
* plated: the contact recovers, φ = 1 - (1 - φ_s) exp(-Δt / ``tau_plate_s``);
* at open circuit: φ = φ_s + ``recovered_fraction`` (1 - φ_s)(1 - exp(-Δt / ``tau_relax_s``)),
  and the potential relaxes, E = E_ocv + ΔE exp(-Δt / ``tau_ocv_s``) with ΔE the
  DC-AC overpotential i R_dcac of the current before.

The working electrode carries the current i (positive: stripped); the counter
carries -i (it plates while the working electrode strips). Both see the bulk
and grain-boundary arcs of the base settings; each has its own interface. A
loaded segment is GEIS sweeps back to back at Is = ±I, an open-circuit segment
a PEIS spectrum every ``rest_interval_s``; one EC-Lab text file per segment
(``{name}_NN_GEIS_C01.mpt`` / ``_PEIS_``), all counting ``time/s`` from one
acquisition start. The truth per sweep and per segment is returned (and written
to ``truth.npz`` / ``truth.json``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geis_pipeline.errors import SimulationError
from geis_pipeline.simulate import (
    _I_RANGE_CODE,
    _IMPEDANCE_COLUMNS,
    _IMPEDANCE_FORMAT,
    SimulationSettings,
    _circuit_impedance,
    _circuit_truth,
    _format_rows,
    _geis_block,
    _header,
    _peis_block,
    _write_mpt,
)

__all__ = ["ProtocolSettings", "SimulatedProtocol", "simulate_protocol", "write_protocol"]

#: Segment labels a protocol is made of.
PROTOCOL_LABELS = ("strip", "plate", "ocv")
#: The counter electrode's columns, as a 3-electrode EC-Lab file writes them.
COUNTER_COLUMNS = (
    "<Ece>/V",
    "Re(Zce)/Ohm",
    "-Im(Zce)/Ohm",
    "|Zce|/Ohm",
    "Phase(Zce)/deg",
    "Re(Zwe-ce)/Ohm",
    "-Im(Zwe-ce)/Ohm",
)


def _quiet_base() -> SimulationSettings:
    return SimulationSettings(
        noise_rel=0.002,
        overhead_per_point_s=0.01,
        nonstationary_fraction=0.0,
        outlier_fraction=0.0,
        current_density_mA_cm2=0.5,
        tau_relax_s=90.0,
    )


@dataclass(frozen=True)
class ProtocolSettings:
    """A protocol: its segments, the electrodes' kinetics and the counter electrode.

    Attributes
    ----------
    base
        Circuit, sweep timing, noise, area, current density (the magnitude of
        every loaded segment), Sand's time, ``tau_relax_s``, ``recovered_fraction``,
        ``R_dcac_ohm_cm2``, ``ocv_V`` and seed (its imperfections other than
        the noise are not simulated here).
    segments
        (label, number of sweeps) per segment; labels ``strip``, ``plate``,
        ``ocv`` as seen by the working electrode.
    rest_interval_s
        Start-to-start interval of the PEIS spectra at open circuit, s.
    tau_plate_s
        Time constant of the contact recovery under plating, s.
    tau_ocv_s
        Time constant of the open-circuit potential relaxation, s.
    counter
        Record the counter electrode (a 3-electrode cell).
    counter_R_int0_ohm_cm2, counter_C_int0_F_cm2, counter_alpha_int
        The counter's interface at full contact.
    counter_contact0
        The counter's contact fraction at the start (< 1: plating improves it).
    counter_ocv_V
        The counter's open-circuit potential against the reference, V.
    """

    base: SimulationSettings = field(default_factory=_quiet_base)
    segments: tuple[tuple[str, int], ...] = (
        ("strip", 24),
        ("ocv", 10),
        ("plate", 24),
        ("ocv", 10),
        ("strip", 24),
    )
    rest_interval_s: float = 30.0
    tau_plate_s: float = 600.0
    tau_ocv_s: float = 60.0
    counter: bool = False
    counter_R_int0_ohm_cm2: float = 150.0
    counter_C_int0_F_cm2: float = 1.5e-6
    counter_alpha_int: float = 0.9
    counter_contact0: float = 0.7
    counter_ocv_V: float = 0.0

    def __post_init__(self) -> None:
        if not self.segments:
            raise SimulationError("a protocol needs at least one segment", key="segments")
        for label, count in self.segments:
            if label not in PROTOCOL_LABELS:
                raise SimulationError(
                    f"unknown segment {label!r}; choose one of {', '.join(PROTOCOL_LABELS)}",
                    key="segments",
                )
            if int(count) < 1:
                raise SimulationError(f"a segment needs >= 1 sweep, got {count!r}", key="segments")
        for name in ("rest_interval_s", "tau_plate_s", "tau_ocv_s", "counter_R_int0_ohm_cm2"):
            if not getattr(self, name) > 0:
                raise SimulationError(f"must be > 0, got {getattr(self, name)!r}", key=name)
        if not 0 < self.counter_contact0 <= 1:
            raise SimulationError(
                f"must be in (0, 1], got {self.counter_contact0!r}", key="counter_contact0"
            )
        if self.rest_interval_s <= self.base.sweep_duration_s:
            raise SimulationError(
                f"must exceed one sweep's duration ({self.base.sweep_duration_s:.1f} s)",
                key="rest_interval_s",
            )


@dataclass(frozen=True, eq=False)
class SimulatedProtocol:
    """A simulated protocol and its truth.

    Attributes
    ----------
    settings
        What it was simulated from.
    freq
        The sweep's frequencies, Hz (every sweep is complete).
    z, z_ce
        Measured impedance per sweep (n_sweeps, n_freq), ohm; ``z_ce`` None
        without a counter electrode.
    truth, truth_ce
        Per sweep: ``time_s``, ``segment_index``, ``label`` (the electrode's own:
        the counter's is mirrored), ``current_mA`` (the electrode's),
        ``contact_fraction``, ``R_int_ohm_cm2``, ``C_int_F_cm2``, ``potential_V``
        (noise-free) and the circuit's other parameters.
    segments
        Per segment (working electrode): label, first_step, last_step, start_s,
        stop_s, charge_mAh_cm2, R_int/C_int at its first and last step,
        contact_loss_C_end, and for an open-circuit segment after a current
        relaxation_tau_s, relaxation_recovered_fraction, ocv_tau_s.
    files
        The files written (empty from :func:`simulate_protocol`).
    """

    settings: ProtocolSettings
    freq: np.ndarray
    z: np.ndarray
    z_ce: np.ndarray | None
    truth: dict[str, np.ndarray]
    truth_ce: dict[str, np.ndarray] | None
    segments: tuple[dict[str, object], ...]
    files: tuple[str, ...] = ()


_MIRROR = {"strip": "plate", "plate": "strip", "ocv": "ocv"}


def _contact(
    label: str,
    phi_start: float,
    elapsed_s: np.ndarray,
    base: SimulationSettings,
    tau_plate_s: float,
) -> np.ndarray:
    """φ after ``elapsed_s`` in a segment (the module's model) from ``phi_start``."""
    phi_min = base.contact_fraction_min
    t0 = base.sand_time_s
    if label == "strip":
        depletion = max(0.0, min(1.0, (phi_start - phi_min) / (1 - phi_min)))
        equivalent_s = t0 * (1 - depletion) ** 2
        left = np.clip(1 - np.sqrt((equivalent_s + elapsed_s) / t0), 0.0, None)
        return phi_min + (1 - phi_min) * left
    if label == "plate":
        return 1 - (1 - phi_start) * np.exp(-elapsed_s / tau_plate_s)
    recovered = phi_start + base.recovered_fraction * (1 - phi_start)
    return phi_start + (recovered - phi_start) * -np.expm1(-elapsed_s / base.tau_relax_s)


def _electrode(
    settings: ProtocolSettings,
    labels: list[str],
    phi0: float,
    circuit: SimulationSettings,
    starts: np.ndarray,
    segment_of: np.ndarray,
    segment_start_s: np.ndarray,
    currents: np.ndarray,
    ocv_V: float,
) -> dict[str, np.ndarray]:
    """Per-sweep truth of one electrode whose segments are ``labels`` (its own view)."""
    base = settings.base
    phi = np.empty(starts.size)
    phi_start = phi0
    for number, label in enumerate(labels):
        steps = segment_of == number
        end_s = segment_start_s[number + 1]
        elapsed = starts[steps] - segment_start_s[number]
        phi[steps] = _contact(label, phi_start, elapsed, base, settings.tau_plate_s)
        phi_start = float(
            _contact(
                label, phi_start, np.asarray(end_s - segment_start_s[number]), base,
                settings.tau_plate_s,
            )
        )  # fmt: skip
    truth = _circuit_truth(phi, circuit)
    density_A_cm2 = currents * 1e-3 / base.area_cm2
    series = truth["R_b_ohm_cm2"] + truth["R_gb_ohm_cm2"] + truth["R_int_ohm_cm2"]
    potential = ocv_V + density_A_cm2 * (series + base.R_dcac_ohm_cm2)
    # At open circuit the DC-AC overpotential of the current before relaxes.
    previous_current = 0.0
    for number, label in enumerate(labels):
        steps = np.flatnonzero(segment_of == number)
        if label == "ocv":
            elapsed = starts[steps] - segment_start_s[number]
            step_s = previous_current * 1e-3 / base.area_cm2 * base.R_dcac_ohm_cm2
            potential[steps] = ocv_V + step_s * np.exp(-elapsed / settings.tau_ocv_s)
        else:
            previous_current = float(currents[steps[0]])
    truth |= {
        "time_s": starts,
        "segment_index": segment_of,
        "label": np.array([labels[index] for index in segment_of]),
        "current_mA": currents,
        "potential_V": potential,
    }
    return truth


def simulate_protocol(settings: ProtocolSettings | None = None) -> SimulatedProtocol:
    """Simulate the protocol (no files): sweeps, truth per sweep and per segment."""
    settings = settings or ProtocolSettings()
    base = settings.base
    rng = np.random.default_rng(base.seed)
    freq = base.frequencies_Hz
    sweep_s = base.sweep_duration_s
    starts, segment_of, segment_start = [], [], [0.0]
    for number, (label, count) in enumerate(settings.segments):
        interval = sweep_s if label != "ocv" else settings.rest_interval_s
        starts.extend(segment_start[-1] + interval * np.arange(count))
        segment_of.extend([number] * count)
        segment_start.append(segment_start[-1] + interval * count)
    starts_s = np.asarray(starts)
    segment_index = np.asarray(segment_of)
    segment_start_s = np.asarray(segment_start)
    labels = [label for label, _ in settings.segments]
    sign = {"strip": 1.0, "plate": -1.0, "ocv": 0.0}
    current = np.array([sign[labels[index]] for index in segment_index]) * base.current_mA
    truth = _electrode(
        settings, labels, 1.0, base, starts_s, segment_index, segment_start_s, current, base.ocv_V
    )
    z = _circuit_impedance(freq, truth)
    z_ce = truth_ce = None
    if settings.counter:
        counter_circuit = dataclasses.replace(
            base,
            R_int0_ohm_cm2=settings.counter_R_int0_ohm_cm2,
            C_int0_F_cm2=settings.counter_C_int0_F_cm2,
            alpha_int=settings.counter_alpha_int,
        )
        truth_ce = _electrode(
            settings,
            [_MIRROR[label] for label in labels],
            settings.counter_contact0,
            counter_circuit,
            starts_s,
            segment_index,
            segment_start_s,
            -current,
            settings.counter_ocv_V,
        )
        z_ce = _circuit_impedance(freq, truth_ce)
    # Noise last (the working electrode's first), so one seed gives one experiment.
    z = z + base.noise_rel * np.abs(z) * (
        rng.standard_normal(z.shape) + 1j * rng.standard_normal(z.shape)
    )
    if z_ce is not None:
        z_ce = z_ce + base.noise_rel * np.abs(z_ce) * (
            rng.standard_normal(z_ce.shape) + 1j * rng.standard_normal(z_ce.shape)
        )
    return SimulatedProtocol(
        settings,
        freq,
        z,
        z_ce,
        truth,
        truth_ce,
        _segment_truth(settings, truth, segment_start_s),
    )


def _segment_truth(
    settings: ProtocolSettings, truth: dict[str, np.ndarray], segment_start_s: np.ndarray
) -> tuple[dict[str, object], ...]:
    """The segment table's truth (working electrode; reference: the first sweep)."""
    base = settings.base
    c_ref = float(truth["C_int_F_cm2"][0])
    phi_ref = float(truth["contact_fraction"][0])
    rows = []
    previous_loaded = False
    for number, (label, _) in enumerate(settings.segments):
        steps = np.flatnonzero(truth["segment_index"] == number)
        first, last = int(steps[0]), int(steps[-1])
        sign = {"strip": 1.0, "plate": -1.0, "ocv": 0.0}[label]
        duration = segment_start_s[number + 1] - segment_start_s[number]
        row: dict[str, object] = {
            "label": label,
            "first_step": first,
            "last_step": last,
            "start_s": float(truth["time_s"][first]),
            "stop_s": float(truth["time_s"][last]),
            "charge_mAh_cm2": sign * base.current_density_mA_cm2 * duration / 3600.0,
            "R_int_start_ohm_cm2": float(truth["R_int_ohm_cm2"][first]),
            "R_int_end_ohm_cm2": float(truth["R_int_ohm_cm2"][last]),
            "C_int_start_F_cm2": float(truth["C_int_F_cm2"][first]),
            "C_int_end_F_cm2": float(truth["C_int_F_cm2"][last]),
            "contact_loss_C_end": 1 - float(truth["C_int_F_cm2"][last]) / c_ref,
        }
        if label == "ocv" and previous_loaded:
            phi_start = float(truth["contact_fraction"][first])
            row |= {
                "relaxation_tau_s": base.tau_relax_s,
                # Of the relative contact phi / phi_ref: the share of the loss recovered.
                "relaxation_recovered_fraction": base.recovered_fraction
                * (1 - phi_start)
                / (phi_ref - phi_start),
                "ocv_tau_s": settings.tau_ocv_s,
            }
        previous_loaded = previous_loaded or label != "ocv"
        rows.append(row)
    return tuple(rows)


def _rows(protocol: SimulatedProtocol, steps: np.ndarray, file_start_s: float) -> list[str]:
    """The impedance rows of one file's sweeps (with the counter's columns when recorded)."""
    base = protocol.settings.base
    freq = protocol.freq
    n_freq = freq.size
    offsets = np.concatenate([[0.0], np.cumsum(base.point_durations_s)[:-1]])
    columns: dict[str, list[np.ndarray]] = {}

    def add(name: str, values) -> None:
        columns.setdefault(name, []).append(np.broadcast_to(np.asarray(values, float), n_freq))

    noise = np.random.default_rng(base.seed + 1 + int(steps[0]))
    for cycle, step in enumerate(steps, start=1):
        z = protocol.z[step]
        point_time = protocol.truth["time_s"][step] + offsets
        current = float(protocol.truth["current_mA"][step])
        add("freq/Hz", freq)
        add("Re(Z)/Ohm", z.real)
        add("-Im(Z)/Ohm", -z.imag)
        add("|Z|/Ohm", np.abs(z))
        add("Phase(Z)/deg", np.degrees(np.angle(z)))
        add("time/s", point_time)
        potential = protocol.truth["potential_V"][step]
        add("<Ewe>/V", potential + base.potential_noise_V * noise.standard_normal(n_freq))
        add("<I>/mA", current)
        add("cycle number", float(cycle))
        add("I Range", float(_I_RANGE_CODE))
        add("(Q-Qo)/mA.h", current * (point_time - file_start_s) / 3600.0)
        if protocol.z_ce is not None:
            z_ce = protocol.z_ce[step]
            potential_ce = protocol.truth_ce["potential_V"][step]
            add("<Ece>/V", potential_ce + base.potential_noise_V * noise.standard_normal(n_freq))
            add("Re(Zce)/Ohm", z_ce.real)
            add("-Im(Zce)/Ohm", -z_ce.imag)
            add("|Zce|/Ohm", np.abs(z_ce))
            add("Phase(Zce)/deg", np.degrees(np.angle(z_ce)))
            add("Re(Zwe-ce)/Ohm", (z + z_ce).real)
            add("-Im(Zwe-ce)/Ohm", -(z + z_ce).imag)
    names = _columns(protocol)
    arrays = [np.concatenate(columns[name]) for name in names]
    arrays[names.index("I Range")] = arrays[names.index("I Range")].astype(np.int64)
    row_format = _IMPEDANCE_FORMAT + (
        "\t%.7E" * len(COUNTER_COLUMNS) if protocol.z_ce is not None else ""
    )
    return _format_rows(row_format, arrays)


def _columns(protocol: SimulatedProtocol) -> tuple[str, ...]:
    return _IMPEDANCE_COLUMNS + (COUNTER_COLUMNS if protocol.z_ce is not None else ())


def write_protocol(
    folder: Path | str, settings: ProtocolSettings | None = None, *, name: str = "protocol"
) -> SimulatedProtocol:
    """Simulate the protocol and write one EC-Lab text file per segment, plus the truth.

    Files: ``{name}_NN_GEIS_C01.mpt`` (a loaded segment, Is = ±I) or
    ``{name}_NN_PEIS_C01.mpt`` (open circuit), NN from 01; ``truth.npz`` (per
    sweep, the counter's as ``ce_<key>``) and ``truth.json`` (the segments).
    """
    if not name or any(separator in name for separator in ("/", "\\")):
        raise SimulationError(f"file-name stem must be a plain name, got {name!r}", key="name")
    protocol = simulate_protocol(settings)
    settings = protocol.settings
    base = settings.base
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for number, (label, count) in enumerate(settings.segments):
        steps = np.flatnonzero(protocol.truth["segment_index"] == number)
        technique = "PEIS" if label == "ocv" else "GEIS"
        path = folder / f"{name}_{number + 1:02d}_{technique}_C01.mpt"
        if technique == "GEIS":
            current = float(protocol.truth["current_mA"][steps[0]])
            block = _geis_block(base, count, current_mA=current)
        else:
            block = _peis_block(base, count)
        header = _header(technique, path.stem, block, _columns(protocol), base)
        file_start = float(protocol.truth["time_s"][steps[0]])
        _write_mpt(path, header, _rows(protocol, steps, file_start))
        files.append(str(path))
    arrays = {key: np.asarray(value) for key, value in protocol.truth.items()}
    if protocol.truth_ce is not None:
        arrays |= {f"ce_{key}": np.asarray(value) for key, value in protocol.truth_ce.items()}
    np.savez(folder / "truth.npz", freq_Hz=protocol.freq, **arrays)
    (folder / "truth.json").write_text(
        json.dumps(
            {
                "generator": "geis_pipeline.simulate_protocol",
                "segments": [_plain(row) for row in protocol.segments],
                "files": [Path(path).name for path in files],
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return dataclasses.replace(protocol, files=tuple(files))


def _plain(row: dict[str, object]) -> dict[str, object]:
    return {
        key: (None if isinstance(value, float) and math.isnan(value) else value)
        for key, value in row.items()
    }
