"""Result tables out of Python: CSV, Excel and Parquet files, and xarray datasets.

:func:`export_results` writes every table of a result file, as
:func:`~geis_pipeline.results.open_results` gives it, into a folder:

* per experiment ``<experiment>/tracking``, ``fit_parameters`` (every circuit
  parameter and its standard error per step), ``summary`` (one row), and the
  ``segments``, ``cycles`` and ``drt_events`` tables where the results have them
  (a 3-electrode cell's counter electrode's tables as ``<table>_ce``);
* ``_study/<name>`` for each study table (Sand, Arrhenius... one row each);
* ``README.txt`` naming every file's columns with their units.

CSV needs nothing beyond pandas (missing values are written ``NaN``, text as
is: :func:`read_table` reads a file back to the same table). Excel (one
workbook per experiment, a sheet per table) needs ``openpyxl`` and Parquet
``pyarrow``: ``pip install "geis-pipeline[export]"``.

:func:`experiment_dataset` (``ExperimentResults.to_xarray()``) gives one
experiment as an :class:`xarray.Dataset`: the per-step table along ``step``,
the raw and fitted impedance as ``step x frequency`` and the DRT as
``step x tau``; it needs ``xarray``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geis_pipeline.errors import ExportError

__all__ = [
    "FORMATS",
    "ExportResult",
    "column_description",
    "experiment_dataset",
    "experiment_tables",
    "export_results",
    "read_table",
    "study_tables",
]

#: Export formats and the package each needs beyond pandas (None: nothing).
FORMATS: Mapping[str, str | None] = {"csv": None, "xlsx": "openpyxl", "parquet": "pyarrow"}
_EXTENSIONS = {"csv": ".csv", "xlsx": ".xlsx", "parquet": ".parquet"}
_NA = "NaN"  # how CSV writes a missing number (empty text stays empty)
_STUDY = "_study"


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_results` wrote.

    Attributes
    ----------
    folder
        The output folder.
    files
        Every file written (tables, then README.txt).
    tables
        Table key (``<experiment>/tracking``, ``_study/sand``) -> its columns.
    """

    folder: Path
    files: tuple[Path, ...]
    tables: Mapping[str, tuple[str, ...]]


# -- the tables ----------------------------------------------------------------------------------


def _plain(value: object) -> object:
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _one_row(values: Mapping[str, object]):
    """A mapping of scalars (and lists, as JSON text) as a one-row table."""
    import pandas

    row = {}
    for key, value in values.items():
        if isinstance(value, list | tuple | dict):
            # Nested study groups (sand/<composition>) hold numpy scalars read from HDF5.
            value = json.dumps(value, default=_plain)
        elif isinstance(value, np.generic):
            value = value.item()
        row[str(key)] = [value]
    return pandas.DataFrame(row)


def experiment_tables(experiment) -> dict[str, object]:
    """The tables of one experiment (an :class:`~geis_pipeline.results.ExperimentResults`).

    Returns
    -------
    dict
        Table name (``tracking``, ``fit_parameters``, ``summary``, and
        ``segments`` / ``cycles`` / ``drt_events`` where the results have them; a
        3-electrode cell's counter electrode's as ``<name>_ce``) -> pandas DataFrame.
    """
    tables: dict[str, object] = {"tracking": experiment.tracking()}
    parameters = experiment.fit_parameters()
    if parameters is not None:
        tables["fit_parameters"] = parameters
    tables["summary"] = _one_row(experiment.summary)
    for name in ("segments", "cycles", "drt_events"):  # tables of layout 2, where they exist
        method = getattr(experiment, name, None)
        if callable(method):
            table = method()
            if table is not None and len(table):  # an empty table (no events) says nothing
                tables[name] = table
    # A 3-electrode cell's counter electrode: the same tables, suffixed ``_ce``.
    if "ce" in getattr(experiment, "electrodes", ()):
        counter = experiment.electrode("ce")
        for name, table in experiment_tables(counter).items():
            if name != "summary" or counter.summary:
                tables[f"{name}_ce"] = table
    return tables


def study_tables(results) -> dict[str, object]:
    """The study tables of a result file: name -> one-row DataFrame (lists as JSON text)."""
    return {name: _one_row(attrs) for name, attrs in results.study.items()}


# -- writing and reading -------------------------------------------------------------------------


def _require(format: str) -> None:
    if format not in FORMATS:
        raise ExportError(
            f"unknown format {format!r}; choose one of {', '.join(FORMATS)}", key="format"
        )
    package = FORMATS[format]
    if package is None:
        return
    try:
        __import__(package)
    except ImportError:
        raise ExportError(
            f"{format} export needs the package {package}: "
            'pip install "geis-pipeline[export]" (or use --format csv)',
            key="format",
        ) from None


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_names(names: list[str]) -> dict[str, str]:
    """File-system names for experiment names: no separators, unique, never ``.``/``..``.

    A name that is not safe as it is gets a digest of itself appended.
    """
    safe: dict[str, str] = {}
    used: set[str] = {_STUDY.lower()}
    for name in names:
        candidate = _UNSAFE.sub("_", name).strip("._")[:60] or "experiment"
        if candidate != name or candidate.lower() in used:
            digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
            candidate = f"{candidate}_{digest}"
        used.add(candidate.lower())
        safe[name] = candidate
    return safe


def _write(frame, path: Path, format: str) -> None:
    if format == "csv":
        frame.to_csv(path, index=False, na_rep=_NA)
    elif format == "parquet":
        frame.to_parquet(path, index=False)


def read_table(path: str | Path, sheet: str | None = None):
    """Read an exported table back as pandas reads it (CSV: ``NaN`` missing, text as is).

    Parameters
    ----------
    path
        A ``.csv``, ``.parquet`` or ``.xlsx`` file written by :func:`export_results`.
    sheet
        The sheet of a workbook (the table name).
    """
    import pandas

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pandas.read_csv(path, keep_default_na=False, na_values=[_NA])
    if suffix == ".parquet":
        _require("parquet")
        return pandas.read_parquet(path)
    if suffix == ".xlsx":
        _require("xlsx")
        return pandas.read_excel(path, sheet_name=sheet)
    raise ExportError(f"not an exported table ({suffix or 'no extension'})", file=path)


def export_results(results, folder: str | Path, *, format: str = "csv") -> ExportResult:
    """Write every table of a result file into ``folder``, with a README.txt.

    Parameters
    ----------
    results
        A result file's path or an opened :class:`~geis_pipeline.results.Results`.
    folder
        Output folder (created; existing files of the same names are replaced).
    format
        ``csv`` (default), ``xlsx`` (openpyxl) or ``parquet`` (pyarrow).

    Raises
    ------
    ExportError
        An unknown format, a missing optional package (the message names the
        extra to install), or a folder that cannot be written.
    StoreError
        Not a readable result file.
    """
    from geis_pipeline.results import Results, open_results

    _require(format)
    if not isinstance(results, Results):
        results = open_results(results)
    folder = Path(folder)
    extension = _EXTENSIONS[format]
    safe = _safe_names(results.experiments)
    groups: list[tuple[str, str, dict[str, object]]] = [
        (name, safe[name], experiment_tables(results[name])) for name in results.experiments
    ]
    study = study_tables(results)
    if study:
        groups.append((_STUDY, _STUDY, study))
    files: list[Path] = []
    columns: dict[str, tuple[str, ...]] = {}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for _, directory, tables in groups:
            if format == "xlsx":
                path = folder / f"{directory}{extension}"
                import pandas

                with pandas.ExcelWriter(path, engine="openpyxl") as writer:
                    for table_name, frame in tables.items():
                        frame.to_excel(writer, sheet_name=table_name, index=False)
                files.append(path)
            else:
                (folder / directory).mkdir(exist_ok=True)
                for table_name, frame in tables.items():
                    path = folder / directory / f"{table_name}{extension}"
                    _write(frame, path, format)
                    files.append(path)
            for table_name, frame in tables.items():
                columns[f"{directory}/{table_name}"] = tuple(str(c) for c in frame.columns)
        readme = folder / "README.txt"
        readme.write_text(_readme(results, groups, format), encoding="utf-8")
        files.append(readme)
    except OSError as exc:
        raise ExportError(f"cannot write the tables: {exc.strerror or exc}", file=folder) from exc
    return ExportResult(folder=folder, files=tuple(files), tables=columns)


# -- README.txt ----------------------------------------------------------------------------------

#: Unit suffixes of column names, longest first.
_UNITS = (
    ("_ohm_cm2", "ohm cm2"),
    ("_mAh_cm2", "mAh/cm2"),
    ("_mA_cm2", "mA/cm2"),
    ("_mol_cm3", "mol/cm3"),
    ("_F_cm2", "F/cm2"),
    ("_cm2_s", "cm2/s"),
    ("_ohm", "ohm"),
    ("_mAh", "mAh"),
    ("_MPa", "MPa"),
    ("_hz", "Hz"),
    ("_eV", "eV"),
    ("_mA", "mA"),
    ("_um", "um"),
    ("_cm2", "cm2"),
    ("_s", "s"),
    ("_F", "F"),
    ("_V", "V"),
    ("_H", "H"),
    ("_K", "K"),
)
_ROLE_NAMES = {"b": "bulk", "gb": "grain boundary", "int": "interface"}
_QUANTITIES = {
    "R": "resistance",
    "C": "Brug capacitance",
    "tau": "time constant",
    "f_apex": "apex frequency",
    "alpha": "CPE exponent (dimensionless)",
}
_FIXED = {
    "time_s": "start of the sweep since the experiment's start",
    "charge_mAh_cm2": "charge passed",
    "stripped_Li_um": "thickness of Li stripped from the passed charge",
    "E_V": "DC potential during the sweep",
    "contact_loss_C": "contact loss 1 - C_int/C_int(ref) (fraction)",
    "contact_loss_R": "contact loss 1 - R_int(ref)/R_int (fraction)",
    "C_int_reliable": "C_int resolved and precise enough to track (true/false)",
    "current_density_mA_cm2": "DC current density during the sweep",
    "segment": "strip / plate / ocv",
    "segment_index": "number of the segment (a new one where the label changes)",
    "fit_ok": "the fit's verdict (true/false)",
    "fit_reason": "why the fit is not ok (reason codes, empty when ok)",
    "kk_ok": "the Kramers-Kronig verdict (true/false)",
    "chi2": "weighted sum of squared residuals of the fit (dimensionless)",
    "R_dcac_ohm_cm2": "DC-AC gap: E/i minus every resistance of the circuit",
    "R_dcac_ohm": "DC-AC gap (absolute)",
}
# R1, R1_stderr, and the unit-named columns of fit_parameters(): R1_ohm, R1_stderr_ohm,
# CPE1_0_F_s^(a-1), L0_H.
_PARAMETER = re.compile(r"^(R|C|L|CPE|W|Zarc)(\d*)(?:_(\d))?(_stderr)?(?:_([A-Za-z].*))?$")
_PARAMETER_UNITS = {
    ("R", None): "ohm",
    ("C", None): "F",
    ("L", None): "H",
    ("W", None): "ohm s^-1/2",
    ("CPE", "0"): "F s^(alpha-1) (Q)",
    ("CPE", "1"): "dimensionless (alpha)",
    ("Zarc", "0"): "ohm (R)",
    ("Zarc", "1"): "s (tau)",
    ("Zarc", "2"): "dimensionless (gamma)",
}


def _unit(name: str) -> str | None:
    for suffix, unit in _UNITS:
        if name.endswith(suffix):
            return unit
    return None


def column_description(name: str, table: str = "tracking") -> str:
    """A column's meaning and unit, for README.txt (``"see README.md"`` when unknown)."""
    if table == "fit_parameters":
        match = _PARAMETER.match(name)
        if match:
            kind, number, index, stderr, _ = match.groups()
            unit = _PARAMETER_UNITS.get((kind, index)) or _PARAMETER_UNITS.get((kind, None))
            what = "standard error of circuit parameter" if stderr else "circuit parameter"
            parameter = f"{kind}{number}" + (f"_{index}" if index else "")
            return f"{what} {parameter}, {unit or 'natural units'}"
    if name.startswith("R_") and name.endswith("_drt_resolved"):
        role = name.removeprefix("R_").removesuffix("_drt_resolved")
        return (
            f"the DRT resistance of the {_ROLE_NAMES.get(role, role)} is a measurement: the "
            "refined ZARC's, its apex and its neighbours' inside the measured frequencies, "
            "the spectrum passing Kramers-Kronig (true/false)"
        )
    if name in _FIXED:
        unit = _unit(name)
        return _FIXED[name] + (f", {unit}" if unit and unit not in _FIXED[name] else "")
    stem = name
    for suffix, _ in _UNITS:
        if stem.endswith(suffix):
            stem = stem.removesuffix(suffix)
            break
    unit = _unit(name)
    for quantity, meaning in _QUANTITIES.items():
        if stem.startswith(quantity + "_"):
            rest = stem.removeprefix(quantity + "_")
            error = rest.endswith("_stderr")
            rest = rest.removesuffix("_stderr")
            source = ""
            if rest.endswith("_drt"):
                rest, source = rest.removesuffix("_drt"), " from the DRT"
            if rest.endswith("_T0"):
                rest, source = rest.removesuffix("_T0"), " normalised to the reference temperature"
            role = _ROLE_NAMES.get(rest, rest)
            text = f"{'standard error of the ' if error else ''}{meaning} of the {role}{source}"
            return text + (f", {unit}" if unit else "")
    if unit:
        return f"{name.removesuffix(next(s for s, u in _UNITS if u == unit))}, {unit}"
    return "see README.md of geis-pipeline"


def _readme(results, groups, format: str) -> str:
    from geis_pipeline import __version__

    lines = [
        f"Tables exported by geis-pipeline {__version__} from {results.path.name}",
        f"(format {format}; units are in the column names and listed below).",
        "",
        "Missing values: NaN (CSV writes the text NaN; empty text is an empty cell).",
        "tracking: one row per time step, area-specific values (ohm cm2, F/cm2) with absolute",
        "twins (ohm, F) where written. fit_parameters: the circuit's parameters in natural",
        "units (ohm, F, H) per step, each with its standard error. summary: experiment-level",
        "results, one row. _study: tables across experiments, one row each (lists as JSON).",
        "",
    ]
    extension = _EXTENSIONS[format]
    for name, directory, tables in groups:
        for table_name, frame in tables.items():
            where = (
                f"{directory}{extension}, sheet {table_name}"
                if format == "xlsx"
                else f"{directory}/{table_name}{extension}"
            )
            title = "study" if name == _STUDY else f"experiment {name!r}"
            lines.append(f"{where}  ({title}, {len(frame)} rows)")
            for column in frame.columns:
                lines.append(f"  {column}: {column_description(str(column), table_name)}")
            lines.append("")
    return "\n".join(lines)


# -- xarray --------------------------------------------------------------------------------------


def experiment_dataset(experiment):
    """One experiment as an :class:`xarray.Dataset` (``ExperimentResults.to_xarray()``).

    Dimensions ``step`` (one per sweep), ``frequency`` (Hz: every frequency
    any sweep measured; NaN where a sweep did not) and ``tau`` (s, the DRT
    grid). Variables: every tracking column (``step``); ``z_real_ohm``,
    ``z_imag_ohm`` and, where stored, ``z_fit_real_ohm``/``z_fit_imag_ohm``
    (the circuit fit), ``kk_used`` and ``fit_used`` (``step x frequency``);
    ``gamma_ohm`` (``step x tau``). Attributes: the experiment's name and area.

    Raises
    ------
    ExportError
        xarray is not installed.
    """
    try:
        import xarray
    except ImportError:
        raise ExportError(
            'to_xarray needs the package xarray: pip install xarray (or "geis-pipeline[test]")'
        ) from None
    spectra = experiment.spectra
    n_steps = len(spectra)
    freq_all = np.concatenate([spectrum.freq for spectrum in spectra])
    grid = np.unique(freq_all)[::-1]  # high to low, as measured
    columns = np.empty(freq_all.size, dtype=np.intp)
    rows = np.repeat(np.arange(n_steps), [spectrum.n_points for spectrum in spectra])
    columns[:] = grid.size - 1 - np.searchsorted(grid[::-1], freq_all)

    def per_point(values: np.ndarray, fill=np.nan) -> np.ndarray:
        dtype = np.float64 if not isinstance(fill, bool) else bool
        array = np.full((n_steps, grid.size), fill, dtype=dtype)
        array[rows, columns] = values
        return array

    z = np.concatenate([spectrum.z for spectrum in spectra])
    variables: dict[str, tuple] = {
        "z_real_ohm": (("step", "frequency"), per_point(z.real)),
        "z_imag_ohm": (("step", "frequency"), per_point(z.imag)),
    }
    fit = experiment.stage("fit")
    if fit is not None and "z_fit_real_ohm" in fit.points:
        variables["z_fit_real_ohm"] = (
            ("step", "frequency"),
            per_point(fit.points["z_fit_real_ohm"]),
        )
        variables["z_fit_imag_ohm"] = (
            ("step", "frequency"),
            per_point(fit.points["z_fit_imag_ohm"]),
        )
        variables["fit_used"] = (("step", "frequency"), per_point(fit.points["used"], False))
    kk = experiment.stage("kk")
    if kk is not None and "used" in kk.points:
        variables["kk_used"] = (("step", "frequency"), per_point(kk.points["used"], False))
    coords: dict[str, object] = {"step": np.arange(n_steps), "frequency": grid}
    drt = experiment.drt_map()
    if drt is not None:
        tau, gamma = drt
        coords["tau"] = np.asarray(tau)
        variables["gamma_ohm"] = (("step", "tau"), np.asarray(gamma))
    for name, values in experiment.tracking(as_frame=False).items():
        values = np.asarray(values)
        if values.shape == (n_steps,):
            variables[name] = (("step",), values)
    dataset = xarray.Dataset(variables, coords=coords)
    dataset["frequency"].attrs["units"] = "Hz"
    if "tau" in dataset.coords:
        dataset["tau"].attrs["units"] = "s"
    area = experiment.metadata.area_cm2
    dataset.attrs.update({"experiment": experiment.name, "area_cm2": area if area else np.nan})
    return dataset
