"""Distribution of relaxation times (DRT): regularised inversion, λ choice, peaks.

* :func:`invert_drt` (one spectrum), :func:`invert_drt_batch` (an experiment)
  and :func:`build_drt_problem` (a reusable :class:`DRTProblem` for one
  frequency grid) return frozen :class:`DRTResult` objects;
* :func:`track_peaks` follows each process's peak (τ windows) through time.

Modules: :mod:`~geis_pipeline.drt.basis` (τ grid and basis matrices),
:mod:`~geis_pipeline.drt.inversion` (the cvxpy problem),
:mod:`~geis_pipeline.drt.regularization` (λ by GCV, L-curve, re/im CV),
:mod:`~geis_pipeline.drt.peaks` (peaks, processes, tracking).
"""

from __future__ import annotations

from geis_pipeline.drt.inversion import (
    SOLVERS,
    WEIGHTINGS,
    DRTOptions,
    DRTProblem,
    DRTResult,
    build_drt_problem,
    experiment_lambda,
    invert_drt,
    invert_drt_batch,
)
from geis_pipeline.drt.peaks import (
    DEFAULT_WINDOWS,
    DRTPeak,
    PeakEvent,
    PeakTrack,
    ProcessTrack,
    track_peaks,
    window_events,
)
from geis_pipeline.drt.regularization import LAMBDA_METHODS

__all__ = [
    "DEFAULT_WINDOWS",
    "LAMBDA_METHODS",
    "SOLVERS",
    "WEIGHTINGS",
    "DRTOptions",
    "DRTPeak",
    "DRTProblem",
    "DRTResult",
    "PeakEvent",
    "PeakTrack",
    "ProcessTrack",
    "build_drt_problem",
    "experiment_lambda",
    "invert_drt",
    "invert_drt_batch",
    "track_peaks",
    "window_events",
]
