"""geis-pipeline: operando galvanostatic impedance, from instrument files to published numbers.

Stages, each a module with one verb returning a frozen result:
ingest (:func:`read_spectra`, :func:`read_experiment`), Kramers-Kronig
validation (:func:`check_kk`, :func:`check_kk_batch`), equivalent-circuit
fitting (:func:`fit_circuit`, :func:`fit_experiment`), the regularised DRT
(:func:`invert_drt`, :func:`invert_drt_batch`, :func:`track_peaks`), circuit
suggestion for a new cell (:func:`suggest_circuit`), table export
(:func:`export_results`) and the example experiment simulator
(:mod:`geis_pipeline.simulate`).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from geis_pipeline.drt import (
    DRTOptions,
    DRTPeak,
    DRTProblem,
    DRTResult,
    PeakTrack,
    build_drt_problem,
    invert_drt,
    invert_drt_batch,
    track_peaks,
)
from geis_pipeline.errors import (
    DRTError,
    ExportError,
    FitError,
    GeisPipelineError,
    IngestError,
    NoImpedanceDataError,
    SimulationError,
    StoreError,
    SuggestError,
    UnknownFormatError,
    ValidationError,
)
from geis_pipeline.export import export_results
from geis_pipeline.fit import ArcCapacitance, FitResult, fit_circuit, fit_experiment, parse_circuit
from geis_pipeline.ingest import FORMATS, read_experiment, read_file, read_spectra
from geis_pipeline.kk import KKBasis, KKResult, build_kk_basis, check_kk, check_kk_batch
from geis_pipeline.results import open_results
from geis_pipeline.spectrum import (
    FLAG_INCOMPLETE,
    DCRecord,
    Experiment,
    ExperimentMetadata,
    InstrumentFile,
    SkippedFile,
    SkippedSweep,
    Spectrum,
    screen_sweeps,
    sweep_defect,
)
from geis_pipeline.suggest import SuggestResult, suggest_circuit

try:
    __version__ = version("geis-pipeline")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "FLAG_INCOMPLETE",
    "FORMATS",
    "ArcCapacitance",
    "DCRecord",
    "DRTError",
    "DRTOptions",
    "DRTPeak",
    "DRTProblem",
    "DRTResult",
    "Experiment",
    "ExperimentMetadata",
    "ExportError",
    "FitError",
    "FitResult",
    "GeisPipelineError",
    "IngestError",
    "InstrumentFile",
    "KKBasis",
    "KKResult",
    "NoImpedanceDataError",
    "PeakTrack",
    "SimulationError",
    "SkippedFile",
    "SkippedSweep",
    "Spectrum",
    "StoreError",
    "SuggestError",
    "SuggestResult",
    "UnknownFormatError",
    "ValidationError",
    "__version__",
    "build_drt_problem",
    "build_kk_basis",
    "check_kk",
    "check_kk_batch",
    "export_results",
    "fit_circuit",
    "fit_experiment",
    "invert_drt",
    "invert_drt_batch",
    "open_results",
    "parse_circuit",
    "read_experiment",
    "read_file",
    "read_spectra",
    "screen_sweeps",
    "suggest_circuit",
    "sweep_defect",
    "track_peaks",
]
