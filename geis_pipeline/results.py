"""Reading a result file without knowing its layout: :func:`open_results`.

results = geis_pipeline.open_results("run.h5")
results.experiments                      # names
run = results["Li_LLZO_stripping"]
run.tracking()                           # per-step table (pandas DataFrame)
run.spectra[120].freq, run.spectra[120].z
run.fit_parameters()                     # per-step circuit parameters
run.drt_map()                            # tau grid, gamma per step
run.to_xarray()                          # the same as labelled arrays (needs xarray)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geis_pipeline.spectrum import Spectrum
from geis_pipeline.store import ExperimentRecord, StageData, read_store

__all__ = ["ExperimentResults", "Results", "open_results"]


def _table(columns: Mapping[str, np.ndarray], as_frame: bool):
    if not as_frame:
        return dict(columns)
    import pandas

    return pandas.DataFrame(dict(columns))


@dataclass(frozen=True)
class ExperimentResults:
    """One experiment's stored results."""

    record: ExperimentRecord

    @property
    def name(self) -> str:
        return self.record.name

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

    def stage(self, name: str) -> StageData | None:
        """Raw access to a stage's stored arrays (``kk``, ``fit``, ``drt``)."""
        return self.record.stages.get(name)

    def tracking(self, as_frame: bool = True):
        """The per-step table: a pandas DataFrame (or a dict of numpy arrays)."""
        return _table(self.record.tracking, as_frame)

    def fit_parameters(self, as_frame: bool = True):
        """Circuit parameters per step, with standard errors (``<name>_stderr``)."""
        stage = self.stage("fit")
        if stage is None:
            return None
        names = [str(name) for name in np.atleast_1d(stage.attrs["parameter_names"])]
        columns: dict[str, np.ndarray] = {"time_s": self.record.tracking.get("time_s")}
        for index, name in enumerate(names):
            columns[name] = stage.sweeps["parameters"][:, index]
            columns[f"{name}_stderr"] = stage.sweeps["stderr"][:, index]
        columns["chi2"] = stage.sweeps["chi2"]
        columns["fit_ok"] = stage.sweeps["ok"]
        return _table({key: value for key, value in columns.items() if value is not None}, as_frame)

    def drt_map(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(tau in s, gamma in ohm per unit ln tau with one row per step)."""
        stage = self.stage("drt")
        if stage is None:
            return None
        return stage.grid["tau_s"], stage.sweeps["gamma_ohm"]

    def points(self, stage: str, column: str, step: int) -> np.ndarray:
        """A per-point result (e.g. ``fit``/``z_fit_real_ohm``) of one step."""
        offsets = np.concatenate([[0], np.cumsum([spectrum.n_points for spectrum in self.spectra])])
        values = self.record.stages[stage].points[column]
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


def open_results(path: str | Path) -> Results:
    """Open a result file written by ``geis-pipeline run``.

    Raises
    ------
    StoreError
        Not a geis-pipeline result file, or a newer layout.
    """
    records, attrs = read_store(path)
    return Results(Path(path), records, attrs)
