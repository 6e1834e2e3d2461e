"""Exception hierarchy: one base, one subclass per stage.

Every error carries the context a user needs to find the problem: the file, and
where it applies the line (1-based, as an editor shows it), the column name and
the config key.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ConfigError",
    "DRTError",
    "ExportError",
    "FitError",
    "GeisPipelineError",
    "IngestError",
    "NoImpedanceDataError",
    "SimulationError",
    "StoreError",
    "SuggestError",
    "UnknownFormatError",
    "ValidationError",
]


class GeisPipelineError(Exception):
    """Base class of every error raised on purpose by geis-pipeline.

    Parameters
    ----------
    message
        What went wrong, in words a user can act on.
    file
        The file the problem is in, if any.
    line
        1-based line number in ``file``.
    column
        Name of the column (or field) involved.
    key
        Dotted config key involved (``fit.weighting``).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        column: str | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.line = line
        self.column = column
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file if self.line is None else f"{self.file}:{self.line}")
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if self.key is not None:
            where.append(f"key {self.key!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def __reduce__(self):  # keep context when pickled across process pools
        return (
            _rebuild_error,
            (type(self), self.message, self.file, self.line, self.column, self.key),
        )


def _rebuild_error(cls, message, file, line, column, key):
    return cls(message, file=file, line=line, column=column, key=key)


class IngestError(GeisPipelineError):
    """An instrument file could not be read into spectra."""


class UnknownFormatError(IngestError):
    """The file is not in any format geis-pipeline reads."""


class NoImpedanceDataError(IngestError):
    """The file was read but holds no impedance rows (freq > 0)."""


class SimulationError(GeisPipelineError):
    """The settings given to the experiment simulator are impossible."""


class ValidationError(GeisPipelineError):
    """Kramers-Kronig validation was given impossible input or options."""


class FitError(GeisPipelineError):
    """Equivalent-circuit fitting was given an impossible circuit, bounds or options."""


class DRTError(GeisPipelineError):
    """The DRT inversion was given impossible input or options."""


class ConfigError(GeisPipelineError):
    """A config file or option is invalid (the error names the key)."""


class StoreError(GeisPipelineError):
    """A result file cannot be written or read."""


class SuggestError(GeisPipelineError):
    """Circuit suggestion was given spectra or options it cannot work with."""


class ExportError(GeisPipelineError):
    """Result tables cannot be exported (a missing optional package, an unwritable folder)."""
