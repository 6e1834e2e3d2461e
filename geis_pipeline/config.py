"""Run configuration: TOML read with tomllib into typed, validated, frozen dataclasses.

Every key has a default (``configs/default.toml`` documents them); a config
file only states what differs. Unknown keys and ill-typed values are errors
that name the key's path and list the valid keys or choices. A resolved config
is written back as TOML into every result file, and each stage's section is
hashed so that re-processing re-runs only the stages whose settings changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from geis_pipeline.errors import ConfigError

__all__ = [
    "Config",
    "DRTConfig",
    "ExecutorConfig",
    "ExperimentConfig",
    "FitConfig",
    "KKConfig",
    "TLSConfig",
    "TrackConfig",
    "config_to_toml",
    "load_config",
    "parse_config",
    "section_hash",
    "toml_key",
    "toml_value",
]


@dataclass(frozen=True)
class ExperimentConfig:
    """What the instrument files may not say.

    Attributes
    ----------
    area_cm2
        Electrode area, cm2; overrides the file headers (needed when a file has none).
    strict
        Stop at the first unreadable file instead of skipping it.
    """

    area_cm2: float | None = None
    strict: bool = False


@dataclass(frozen=True)
class ExperimentSettings:
    """What one experiment (folder) of a study is: ``[experiments.<folder name>]``.

    Attributes
    ----------
    composition
        A label (``"Li"``, ``"Li0.9Mg0.1"``): the study groups Sand's fit by it.
    c0_mol_cm3
        Li concentration of the electrode for Sand's equation, mol/cm3
        (default ``track.c0_mol_cm3``).
    current_density_mA_cm2
        Stripping current density (default: from the current record).
    temperature_K
        Measurement temperature, K (default ``track.temperature_K``).
    stack_pressure_MPa, force_N
        Stack pressure and the force on the interface (constriction resistance).
    area_cm2
        Electrode area, cm2, overriding the file headers and ``experiment.area_cm2``.
    ocv_V
        Open-circuit voltage of the electrode against the reference (an alloy's,
        Li0.9Mg0.1 ~0.025 V): the DC-AC gap uses E - E_ocv (default ``track.ocv_V``).
    """

    composition: str | None = None
    c0_mol_cm3: float | None = None
    current_density_mA_cm2: float | None = None
    temperature_K: float | None = None
    stack_pressure_MPa: float | None = None
    force_N: float | None = None
    area_cm2: float | None = None
    ocv_V: float | None = None


@dataclass(frozen=True)
class KKConfig:
    """Kramers-Kronig validation (Lin-KK) and low-frequency truncation."""

    enabled: bool = True
    threshold: float = 0.01
    mu_criterion: float = 0.85
    truncate: bool = True
    include_inductance: bool = True
    max_freq_hz: float | None = None


@dataclass(frozen=True)
class FitConfig:
    """Equivalent-circuit fitting.

    Attributes
    ----------
    circuit
        impedance.py circuit string.
    weighting
        ``modulus``, ``proportional`` or ``unit``.
    roles
        Element -> role: which processes the circuit holds. Which fitted arc
        gets an arc role (``bulk``, ``gb``, ``int``, or one declared in
        ``role_classes``) is decided by its capacitance and time constant, not
        by the element it is written on; series elements keep theirs
        (``cable``, ``bulk``/``gb``/``series``, ``diffusion``, ``blocking``).
    fixed
        Parameter -> fixed value (the grain-boundary exponent, as the papers do).
    bounds
        Parameter -> [lower, upper] (defaults in ``configs/default.toml``).
    use_kk_mask
        Fit only the points the Kramers-Kronig truncation kept.
    role_classes
        Role -> [C_min, C_max] F/cm2: declares a custom role (``sei``...) or
        changes a built-in class (bulk 1e-12..1e-10, gb 1e-11..1e-8, int 1e-8..1e-4).
    role_tau_windows
        Role -> [tau_min, tau_max] s: narrows a role to a time-constant window.
    required_roles
        Roles whose arc must be matched and resolved for a step to be ok
        (default: ``int`` when the circuit has it).
    noise_ratio, noise_floor
        The fit's RMS relative residual may be at most ``noise_ratio`` times the
        spectrum's KK residual, or ``noise_floor``, whichever is larger.
    max_residual_rms
        A fit with a larger RMS relative residual is never ok.

    A config that sets ``circuit`` starts from empty ``roles``, ``fixed`` and
    ``bounds`` (the defaults' belong to the default circuit) unless it sets them.
    """

    circuit: str = "L0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)"
    weighting: Literal["modulus", "proportional", "unit"] = "modulus"
    roles: dict[str, str] = field(
        default_factory=lambda: {"L0": "cable", "R1": "bulk", "R2": "gb", "R3": "int"}
    )
    fixed: dict[str, float] = field(default_factory=lambda: {"CPE2_1": 0.9})
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    use_kk_mask: bool = True
    role_classes: dict[str, tuple[float, float]] = field(default_factory=dict)
    role_tau_windows: dict[str, tuple[float, float]] = field(default_factory=dict)
    required_roles: tuple[str, ...] | None = None
    noise_ratio: float = 2.5
    noise_floor: float = 0.01
    max_residual_rms: float = 0.05

    def fit_keywords(self) -> dict[str, Any]:
        """The keywords of :meth:`geis_pipeline.fit.FitOptions.build` this section sets."""
        return {
            "bounds": self.bounds,
            "fixed": self.fixed,
            "roles": self.roles,
            "weighting": self.weighting,
            "role_classes": self.role_classes,
            "role_tau_windows": self.role_tau_windows,
            "required_roles": self.required_roles,
            "noise_ratio": self.noise_ratio,
            "noise_floor": self.noise_floor,
            "max_residual_rms": self.max_residual_rms,
        }


@dataclass(frozen=True)
class DRTConfig:
    """Regularised distribution of relaxation times."""

    enabled: bool = True
    basis: Literal["gaussian", "pwl"] = "gaussian"
    points_per_decade: int = 10
    derivative: Literal[1, 2] = 1
    lam: float | Literal["gcv", "lcurve", "reim"] = "lcurve"
    lam_per_spectrum: bool = False
    # DAQP/CLARABEL/OSQP/SCS solve the DPP-built cvxpy problem (DAQP block by block,
    # exact, ~4x faster than Clarabel); NNLS solves the same problem without cvxpy
    # and reaches the same optimum as DAQP (tested), slightly faster.
    solver: Literal["DAQP", "CLARABEL", "OSQP", "SCS", "NNLS"] = "DAQP"
    inductance: bool = True
    # Peaks' R and tau from a ZARC fit of the spectrum started from gamma's peaks (areas
    # that add up, tails included); false: gamma's own peak areas (a run ~4x faster).
    refine: bool = True
    windows: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {"gb": (1e-7, 1e-5), "int": (1e-5, 1e-1)}
    )


@dataclass(frozen=True)
class TrackConfig:
    """Tracking of the interface: per step, per experiment and across experiments.

    Attributes
    ----------
    interfaces
        Interfaces in series in the spectrum (2: symmetric cell, R_int / 2).
    reference_step
        Step the contact loss is relative to (default: first valid).
    r_int_threshold_ohm_cm2
        Depletion time t0: R_int (per interface) first exceeds this.
    temperature_K
        Measurement temperature: R_int is normalised to the reference
        temperature (per experiment: ``[experiments.<name>] temperature_K``).
    reference_temperature_K, activation_energy_eV
        Temperature normalisation R(T0) = R(T) (T0/T) exp[(E_A/k_B)(1/T0 - 1/T)].
    c0_mol_cm3
        Li concentration of the electrode for Sand's equation (Li 0.0768,
        Li0.95Mg0.05 0.0732, Li0.9Mg0.1 0.0696 mol/cm3).
    current_density_mA_cm2
        Stripping current density for Sand's equation, overriding the one read
        from the current record (per experiment:
        ``[experiments.<name>] current_density_mA_cm2``).
    ocv_current_density_mA_cm2
        |i| at or below this is open circuit (segment labels).
    c_int_max_rel_stderr
        C_int is flagged unreliable above this relative standard error (or when
        the interface apex frequency lies outside the fitted band).
    relaxation_model
        ``exponential`` or ``stretched`` (Kohlrausch) for open-circuit relaxation.
    sand_through_origin
        Fit t0^(-1/2) = slope i through the origin (else with an intercept).
    r_int_threshold_ohm
        The depletion threshold as an absolute resistance (krauskopf2020: 10 kOhm);
        give it instead of ``r_int_threshold_ohm_cm2`` (both in one file is an error).
    ocv_V
        Open-circuit voltage against the reference for the DC-AC gap, V (per
        experiment: ``[experiments.<name>] ocv_V``; default: the median E of the
        open-circuit steps before the current, else 0).
    cutoff_V
        Voltage cutoff of the stripping, V (None: none): the DC potential first
        reaching it gives t_cutoff, the capacity q_cutoff and Sand's D_eff from
        it (Mann 2024, Table 1); t0 is also where the sweeps' |E| reaches
        |cutoff_V| while stripping, when that comes before R_int's threshold
        (``t0_criterion`` = ``potential cutoff``). The former
        ``track.potential_cutoff_V`` is this key.
    electrolyte_conductivity_S_cm, metal_hardness_MPa
        Constriction resistance (krauskopf2019, eq. 1) of an experiment with a
        force or a stack pressure and an area: the electrolyte's ionic
        conductivity (their LLZO: 0.46 mS/cm) and the metal's Vickers hardness
        (lithium: <= 5 MPa; they use 2-8 MPa).

    Per-experiment values (temperature, current density, c0, area, OCV,
    composition) go in ``[experiments.<folder name>]`` tables.
    """

    interfaces: int = 1
    reference_step: int | None = None
    r_int_threshold_ohm_cm2: float = 10000.0
    temperature_K: float | None = None
    reference_temperature_K: float = 298.15
    activation_energy_eV: float = 0.37
    c0_mol_cm3: float = 0.0768
    current_density_mA_cm2: float | None = None
    ocv_current_density_mA_cm2: float = 0.001
    c_int_max_rel_stderr: float = 0.1
    relaxation_model: Literal["exponential", "stretched"] = "exponential"
    sand_through_origin: bool = True
    r_int_threshold_ohm: float | None = None
    ocv_V: float | None = None
    cutoff_V: float | None = None
    electrolyte_conductivity_S_cm: float = 4.6e-4
    metal_hardness_MPa: float = 5.0


@dataclass(frozen=True)
class TLSConfig:
    """TLS for a Dask scheduler (``tls://`` address), as ``distributed.Security`` takes it.

    Attributes
    ----------
    ca_file
        Certificate authority that signed the scheduler's and workers' certificates.
    cert_file, key_file
        This client's certificate and private key (PEM).
    """

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


@dataclass(frozen=True)
class ExecutorConfig:
    """Where the work runs.

    A Dask scheduler runs whatever its clients submit and the client unpickles
    the results: anyone who can connect to a ``tcp://`` scheduler can run code
    on the workers and, through the results, on this machine. Use ``tcp://``
    only on a network you trust; otherwise ``tls://`` with ``[executor.tls]``.
    """

    kind: Literal["serial", "process", "dask"] = "process"
    workers: int = 2
    chunk_size: int = 200
    scheduler: str | None = None
    publish_interval_s: float = 60.0
    tls: TLSConfig = field(default_factory=TLSConfig)


@dataclass(frozen=True)
class Config:
    """A whole run's configuration, one section per stage."""

    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    kk: KKConfig = field(default_factory=KKConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    drt: DRTConfig = field(default_factory=DRTConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    experiments: dict[str, ExperimentSettings] = field(default_factory=dict)
    #: ``[counter_fit]``: the circuit of a 3-electrode cell's counter electrode (its spectrum
    #: often holds other arcs than the working electrode's); unset: the same as ``[fit]``.
    counter_fit: FitConfig | None = None

    def settings_of(self, name: str) -> ExperimentSettings:
        """The ``[experiments.<name>]`` table (all unset when the config has none)."""
        return self.experiments.get(name, ExperimentSettings())

    def for_counter(self) -> Config:
        """The config the counter electrode is processed with (``[counter_fit]`` as ``fit``)."""
        if self.counter_fit is None:
            return self
        return dataclasses.replace(self, fit=self.counter_fit, counter_fit=None)


def load_config(path: str | Path | None) -> Config:
    """Read and validate a TOML config file (None: all defaults).

    Raises
    ------
    ConfigError
        The file cannot be read, is not TOML (with the line), or holds unknown
        keys or wrong types (with the key's path and what is valid).
    """
    if path is None:
        return Config()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror or exc}", file=path) from exc
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x}): a TOML config is UTF-8; "
            "save it as UTF-8 (a Latin-1 accent in a comment, or not a text file?)",
            file=path,
            line=line,
        ) from None
    return parse_config(text, source=path)


def parse_config(text: str, source: str | Path | None = None) -> Config:
    """Validate TOML text into a :class:`Config` (see :func:`load_config`)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        raise ConfigError(f"not valid TOML: {exc}", file=source, line=line) from exc
    for name in ("fit", "counter_fit"):
        fit = document.get(name)
        if isinstance(fit, Mapping) and "circuit" in fit:
            # The default roles, fixed values and bounds name the default circuit's elements.
            document = {**document, name: {"roles": {}, "fixed": {}, "bounds": {}, **fit}}
    track = document.get("track")
    if isinstance(track, Mapping) and {"r_int_threshold_ohm", "r_int_threshold_ohm_cm2"} <= set(
        track
    ):
        # One threshold only: per cm2 (the default) or absolute (krauskopf2020's 10 kOhm).
        raise ConfigError(
            "give one depletion threshold: r_int_threshold_ohm_cm2 (per cm2) or "
            "r_int_threshold_ohm (absolute), not both",
            file=source,
            key="track.r_int_threshold_ohm",
        )
    config = _build(Config, document, "", source)
    _check_values(config, source)
    return config


#: Keys that were merged into another: an error naming the key to use.
RENAMED_KEYS = {"track.potential_cutoff_V": "track.cutoff_V"}


def _build(cls: type, values: Any, path: str, source: str | Path | None) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"must be a table of keys, got {type(values).__name__}", file=source, key=path or "."
        )
    hints = typing.get_type_hints(cls)
    fields = {item.name: item for item in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        key = f"{path}.{unknown[0]}" if path else unknown[0]
        if key in RENAMED_KEYS:
            raise ConfigError(f"renamed: use {RENAMED_KEYS[key]}", file=source, key=key)
        raise ConfigError(
            f"unknown key; valid keys here: {', '.join(fields)}", file=source, key=key
        )
    arguments = {}
    for name, value in values.items():
        key = f"{path}.{name}" if path else name
        arguments[name] = _convert(hints[name], value, key, source)
    return cls(**arguments)


def _convert(hint: Any, value: Any, key: str, source: str | Path | None) -> Any:
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key, source)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in arguments:
            if option is type(None):
                continue
            try:
                return _convert(option, value, key, source)
            except ConfigError as exc:
                errors.append(exc.message)
        raise ConfigError("; or ".join(errors), file=source, key=key)
    if origin is Literal:
        if value in arguments and type(value) is type(arguments[arguments.index(value)]):
            return value
        raise ConfigError(
            f"got {value!r}; choose one of {', '.join(repr(choice) for choice in arguments)}",
            file=source,
            key=key,
        )
    if origin is dict:
        key_type, value_type = arguments
        if not isinstance(value, Mapping):
            raise ConfigError(f"must be a table, got {type(value).__name__}", file=source, key=key)
        return {
            _convert(key_type, name, f"{key}.{name}", source): _convert(
                value_type, item, f"{key}.{name}", source
            )
            for name, item in value.items()
        }
    if origin is tuple and len(arguments) == 2 and arguments[1] is Ellipsis:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"must be a list, got {value!r}", file=source, key=key)
        return tuple(_convert(arguments[0], item, key, source) for item in value)
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(arguments):
            raise ConfigError(
                f"must be a list of {len(arguments)} values, got {value!r}", file=source, key=key
            )
        return tuple(
            _convert(item_type, item, key, source)
            for item_type, item in zip(arguments, value, strict=True)
        )
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"must be true or false, got {value!r}", file=source, key=key)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"must be a whole number, got {value!r}", file=source, key=key)
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"must be finite, got {value!r}", file=source, key=key)
            return float(value)
        raise ConfigError(f"must be a number, got {value!r}", file=source, key=key)
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"must be a string, got {value!r}", file=source, key=key)
    raise ConfigError(f"unsupported setting type {hint!r}", file=source, key=key)


#: Upper limits of numeric keys: beyond them a run would take hours or memory
#: without limit (a DRT grid of 2,000 points per decade), or the value is a typo.
MAX_POINTS_PER_DECADE = 100
MAX_WORKERS = 1024
MAX_CHUNK_SIZE = 100_000
MAX_TEMPERATURE_K = 2000.0


def _check_values(config: Config, source: str | Path | None) -> None:
    """Range checks that types cannot express."""

    def require(condition: bool, key: str, message: str) -> None:
        if not condition:
            raise ConfigError(message, file=source, key=key)

    area = config.experiment.area_cm2
    require(area is None or area > 0, "experiment.area_cm2", f"must be > 0 cm2, got {area}")
    require(0 < config.kk.threshold < 1, "kk.threshold", "must be a fraction in (0, 1)")
    require(0 < config.kk.mu_criterion < 1, "kk.mu_criterion", "must be in (0, 1)")
    require(
        config.kk.max_freq_hz is None or config.kk.max_freq_hz > 0,
        "kk.max_freq_hz",
        f"must be > 0 Hz, got {config.kk.max_freq_hz}",
    )
    ppd = config.drt.points_per_decade
    require(
        1 <= ppd <= MAX_POINTS_PER_DECADE,
        "drt.points_per_decade",
        f"must be in 1..{MAX_POINTS_PER_DECADE}, got {ppd}",
    )
    lam = config.drt.lam
    require(isinstance(lam, str) or lam > 0, "drt.lam", f"must be > 0 or a method, got {lam}")
    track = config.track
    require(track.interfaces in (1, 2), "track.interfaces", "must be 1 or 2")
    require(
        track.reference_step is None or track.reference_step >= 0,
        "track.reference_step",
        f"must be a step number >= 0 (0 = the first sweep), got {track.reference_step}",
    )
    require(track.r_int_threshold_ohm_cm2 > 0, "track.r_int_threshold_ohm_cm2", "must be > 0")
    require(track.c0_mol_cm3 > 0, "track.c0_mol_cm3", "must be > 0 mol/cm3")
    require(
        0 < track.reference_temperature_K <= MAX_TEMPERATURE_K,
        "track.reference_temperature_K",
        f"must be in (0, {MAX_TEMPERATURE_K:g}] K",
    )
    require(
        0 <= track.activation_energy_eV <= 10,
        "track.activation_energy_eV",
        "must be in [0, 10] eV",
    )
    require(
        track.ocv_current_density_mA_cm2 >= 0, "track.ocv_current_density_mA_cm2", "must be >= 0"
    )
    require(track.c_int_max_rel_stderr > 0, "track.c_int_max_rel_stderr", "must be > 0")
    require(
        track.temperature_K is None or 0 < track.temperature_K <= MAX_TEMPERATURE_K,
        "track.temperature_K",
        f"must be in (0, {MAX_TEMPERATURE_K:g}] K",
    )
    require(
        track.current_density_mA_cm2 is None or track.current_density_mA_cm2 != 0,
        "track.current_density_mA_cm2",
        "must not be 0",
    )
    require(
        track.r_int_threshold_ohm is None or track.r_int_threshold_ohm > 0,
        "track.r_int_threshold_ohm",
        "must be > 0 ohm",
    )
    require(track.cutoff_V is None or track.cutoff_V != 0, "track.cutoff_V", "must not be 0 V")
    for key in ("electrolyte_conductivity_S_cm", "metal_hardness_MPa"):
        require(getattr(track, key) > 0, f"track.{key}", "must be > 0")
    for name, settings in config.experiments.items():
        for key in ("c0_mol_cm3", "area_cm2", "stack_pressure_MPa", "force_N"):
            value = getattr(settings, key)
            require(value is None or value > 0, f"experiments.{name}.{key}", "must be > 0")
        require(
            settings.temperature_K is None or 0 < settings.temperature_K <= MAX_TEMPERATURE_K,
            f"experiments.{name}.temperature_K",
            f"must be in (0, {MAX_TEMPERATURE_K:g}] K",
        )
        require(
            settings.current_density_mA_cm2 is None or settings.current_density_mA_cm2 != 0,
            f"experiments.{name}.current_density_mA_cm2",
            "must not be 0",
        )
    executor = config.executor
    require(
        1 <= executor.workers <= MAX_WORKERS,
        "executor.workers",
        f"must be in 1..{MAX_WORKERS}, got {executor.workers}",
    )
    require(
        1 <= executor.chunk_size <= MAX_CHUNK_SIZE,
        "executor.chunk_size",
        f"must be in 1..{MAX_CHUNK_SIZE}, got {executor.chunk_size}",
    )
    tls = (executor.tls.ca_file, executor.tls.cert_file, executor.tls.key_file)
    require(
        all(item is None for item in tls) or all(item for item in tls),
        "executor.tls",
        "needs all of ca_file, cert_file and key_file (or none)",
    )
    require(config.executor.publish_interval_s > 0, "executor.publish_interval_s", "must be > 0 s")
    require(
        config.executor.kind != "dask" or bool(config.executor.scheduler),
        "executor.scheduler",
        "the dask executor needs a scheduler address",
    )
    for name, (low, high) in config.fit.bounds.items():
        require(0 <= low < high, f"fit.bounds.{name}", f"needs 0 <= lower < upper, got {low, high}")
    _check_fit(config.fit, source)
    if config.counter_fit is not None:
        for name, (low, high) in config.counter_fit.bounds.items():
            require(
                0 <= low < high,
                f"counter_fit.bounds.{name}",
                f"needs 0 <= lower < upper, got {low, high}",
            )
        _check_fit(config.counter_fit, source, "counter_fit")
    for name, (low, high) in config.drt.windows.items():
        require(0 < low < high, f"drt.windows.{name}", f"needs 0 < low < high, got {low, high}")


def _check_fit(section: FitConfig, source: str | Path | None, prefix: str = "fit") -> None:
    """The circuit, roles, fixed values and bounds checked against each other now, not mid-run."""
    from geis_pipeline.errors import FitError
    from geis_pipeline.fit import FitOptions  # the fit package does not import config

    try:
        FitOptions.build(section.circuit, **section.fit_keywords())
    except FitError as exc:
        key = f"{prefix}.{exc.key}" if exc.key else prefix
        raise ConfigError(exc.message, file=source, key=key) from exc


def config_to_toml(config: Config) -> str:
    """The resolved config as TOML text (every key, defaults included).

    Keys and strings are escaped (TOML basic strings), so the text reads back
    into the same config whatever the names hold.
    """
    lines: list[str] = []
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        if value is None:  # an optional section not set ([counter_fit])
            lines.append(f"# [{section.name}] not set")
            continue
        if isinstance(value, Mapping):  # [experiments.<name>]: one table per experiment
            for name, table in value.items():
                _table_lines(f"{section.name}.{toml_key(name)}", table, lines)
            continue
        _table_lines(section.name, value, lines)
    return "\n".join(lines)


def _table_lines(path: str, table: Any, lines: list[str]) -> None:
    """``[path]`` and its keys; nested tables and sub-sections after it."""
    lines.append(f"[{path}]")
    nested: list[tuple[str, Any]] = []
    for item in dataclasses.fields(table):
        value = getattr(table, item.name)
        if item.name == "r_int_threshold_ohm_cm2" and table.r_int_threshold_ohm is not None:
            # The absolute threshold replaces it: written together they would not read back.
            lines.append(f"# {item.name} replaced by r_int_threshold_ohm")
        elif value is None:
            lines.append(f"# {item.name} not set")
        elif isinstance(value, Mapping) or dataclasses.is_dataclass(value):
            nested.append((item.name, value))
        else:
            lines.append(f"{item.name} = {toml_value(value)}")
    lines.append("")
    for name, value in nested:
        if dataclasses.is_dataclass(value):
            _table_lines(f"{path}.{name}", value, lines)
            continue
        lines.append(f"[{path}.{name}]")
        lines.extend(f"{toml_key(key)} = {toml_value(item)}" for key, item in value.items())
        lines.append("")


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    escaped = "".join(
        _ESCAPES.get(char)
        or (f"\\u{ord(char):04X}" if ord(char) < 0x20 or ord(char) == 0x7F else char)
        for char in text
    )
    return f'"{escaped}"'


def toml_key(key: str) -> str:
    """A TOML key: bare when it may be, else a quoted, escaped string."""
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def toml_value(value: Any) -> str:
    """A bool, int, float (exact ``repr``), str (escaped) or list of them as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def section_hash(config: Config, section: str) -> str:
    """sha256 of one section's resolved values: equal hashes mean equal settings."""
    value = getattr(config, section)
    values = (
        {name: dataclasses.asdict(table) for name, table in value.items()}
        if isinstance(value, Mapping)
        else dataclasses.asdict(value)
    )
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()
