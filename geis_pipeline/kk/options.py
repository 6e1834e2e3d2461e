"""Options and input checks of the KK stage: defaults, validated option sets, cropping."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from geis_pipeline.errors import ValidationError

DEFAULT_THRESHOLD = 0.01
#: Schönleber's μ criterion for the number of RC elements.
DEFAULT_MU_CRITERION = 0.85
#: Default cap on the number of RC elements (also capped at the number of points).
DEFAULT_MAX_ELEMENTS = 50
#: Fewest points a spectrum (after cropping) must have to be checked.
MIN_POINTS = 8


@dataclass(frozen=True)
class Options:
    threshold: float
    mu_criterion: float
    truncate: bool
    significance: float
    min_deviation: float
    max_outliers: int
    max_truncated_fraction: float


# --------------------------------------------------------------------------- validation


def check_number(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValidationError(f"must be a number, got {value!r}", key=key)
    value = float(value)
    if not math.isfinite(value):
        raise ValidationError(f"must be finite, got {value!r}", key=key)
    return value


def check_whole(value: object, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValidationError(f"must be a whole number, got {value!r}", key=key)
    if value < minimum:
        raise ValidationError(f"must be >= {minimum}, got {value!r}", key=key)
    return int(value)


def check_flag(value: object, key: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValidationError(f"must be True or False, got {value!r}", key=key)
    return bool(value)


def check_options(
    *,
    threshold: float,
    mu_criterion: float,
    truncate: bool,
    significance: float,
    min_deviation: float,
    max_outliers: int,
    max_truncated_fraction: float,
) -> Options:
    threshold = check_number(threshold, "threshold")
    if threshold <= 0:
        raise ValidationError(f"must be > 0, got {threshold!r}", key="threshold")
    mu_criterion = check_number(mu_criterion, "mu_criterion")
    if not 0 < mu_criterion < 1:
        raise ValidationError(f"must be in (0, 1), got {mu_criterion!r}", key="mu_criterion")
    significance = check_number(significance, "significance")
    if not 0 < significance < 1:
        raise ValidationError(f"must be in (0, 1), got {significance!r}", key="significance")
    min_deviation = check_number(min_deviation, "min_deviation")
    if min_deviation < 0:
        raise ValidationError(f"must be >= 0, got {min_deviation!r}", key="min_deviation")
    fraction = check_number(max_truncated_fraction, "max_truncated_fraction")
    if not 0 <= fraction < 1:
        raise ValidationError(f"must be in [0, 1), got {fraction!r}", key="max_truncated_fraction")
    return Options(
        threshold=threshold,
        mu_criterion=mu_criterion,
        truncate=check_flag(truncate, "truncate"),
        significance=significance,
        min_deviation=min_deviation,
        max_outliers=check_whole(max_outliers, "max_outliers", 0),
        max_truncated_fraction=fraction,
    )


def check_freq(freq: ArrayLike) -> np.ndarray:
    try:
        freq = np.asarray(freq, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValidationError(
            f"frequencies must be real numbers ({error})", column="freq"
        ) from None
    if freq.ndim != 1:
        raise ValidationError(f"frequencies must be 1-D, got shape {freq.shape}", column="freq")
    if not np.all(np.isfinite(freq)):
        raise ValidationError("frequencies must be finite (found NaN or inf)", column="freq")
    if np.any(freq <= 0):
        raise ValidationError("frequencies must be > 0 Hz", column="freq")
    return freq


def check_spectrum(freq: ArrayLike, z: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    freq = check_freq(freq)
    try:
        z = np.asarray(z, dtype=np.complex128)
    except (TypeError, ValueError) as error:
        raise ValidationError(f"impedance must be complex numbers ({error})", column="z") from None
    if z.shape != freq.shape:
        raise ValidationError(
            f"freq and z must have the same shape, got {freq.shape} and {z.shape}", column="z"
        )
    if not np.all(np.isfinite(z)):
        raise ValidationError("impedance values must be finite (found NaN or inf)", column="z")
    if np.any(z == 0):
        raise ValidationError("impedance values must be non-zero (weights are 1/|Z|)", column="z")
    if freq.size < MIN_POINTS:
        raise ValidationError(
            f"a spectrum needs at least {MIN_POINTS} points for the KK check, got {freq.size}",
            column="freq",
        )
    return freq, z


def crop(
    freq: np.ndarray, z: np.ndarray, max_freq_hz: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points at or below ``max_freq_hz`` (all when None): (kept flags, freq, z)."""
    if max_freq_hz is None:
        kept = np.ones(freq.size, dtype=bool)
    else:
        kept = freq <= max_freq_hz
        if np.count_nonzero(kept) < MIN_POINTS:
            raise ValidationError(
                f"leaves {np.count_nonzero(kept)} points at or below {max_freq_hz:g} Hz; "
                f"the KK check needs at least {MIN_POINTS}",
                key="max_freq_hz",
            )
    return kept, freq[kept], z[kept]


def check_max_freq(max_freq_hz: float | None) -> float | None:
    if max_freq_hz is None:
        return None
    max_freq_hz = check_number(max_freq_hz, "max_freq_hz")
    if max_freq_hz <= 0:
        raise ValidationError(f"must be > 0, got {max_freq_hz!r}", key="max_freq_hz")
    return max_freq_hz
