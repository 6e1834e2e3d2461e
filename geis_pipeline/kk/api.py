"""The KK stage's verbs: :func:`check_kk` (one spectrum) and :func:`check_kk_batch`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from geis_pipeline._blas import one_blas_thread
from geis_pipeline._cache import GridCache, hashable
from geis_pipeline.errors import ValidationError
from geis_pipeline.kk.basis import KKBasis, build_kk_basis
from geis_pipeline.kk.group import Group
from geis_pipeline.kk.options import (
    DEFAULT_MAX_ELEMENTS,
    DEFAULT_MU_CRITERION,
    DEFAULT_THRESHOLD,
    Options,
    check_max_freq,
    check_options,
    check_spectrum,
    crop,
)
from geis_pipeline.kk.verdict import KKResult, build_results, check_group
from geis_pipeline.spectrum import Experiment, Spectrum

ProgressCallback = Callable[[int, int], None]

# Spectra solved together: bounds memory of the (batch, M+3, M+3) and tail-test arrays.
_CHUNK = 256

# --------------------------------------------------------------------------- public API


def check_kk(
    freq: ArrayLike,
    z: ArrayLike,
    *,
    basis: KKBasis | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    mu_criterion: float = DEFAULT_MU_CRITERION,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    truncate: bool = True,
    include_inductance: bool = True,
    include_capacitance: bool = False,
    max_freq_hz: float | None = None,
    tau_extension_decades: float = 0.5,
    significance: float = 1e-3,
    min_deviation: float = 0.002,
    max_outliers: int = 2,
    max_truncated_fraction: float = 0.5,
) -> KKResult:
    """Kramers-Kronig check of one spectrum (Lin-KK with μ criterion, outliers, truncation).

    Parameters
    ----------
    freq
        Frequencies, Hz (finite, > 0, at least :data:`MIN_POINTS`), any order.
    z
        Complex impedance Z' + jZ'', ohm, same shape.
    basis
        A basis from :func:`build_kk_basis` for this grid (after cropping at
        ``max_freq_hz``), built with the same ``max_elements``,
        ``include_inductance``, ``include_capacitance`` and
        ``tau_extension_decades``; built here when None.
    threshold
        Largest RMS relative residual (per component, of the points used) for
        ``ok``; 0.01 = 1 %.
    mu_criterion
        Schönleber's c, in (0, 1).
    max_elements
        Cap on the number of RC elements (also capped at the number of points).
    truncate
        Drop a low-frequency tail that violates KK (else the spectrum fails).
    include_inductance, include_capacitance
        Series jωL (default on) / 1/(jωC) (default off) in the model.
    max_freq_hz
        Crop points above this frequency, Hz (None: keep all; inductive
        points are then modelled by L).
    tau_extension_decades
        τ range extension beyond the measured range, decades.
    significance
        Family-wise false-alarm probability of each outlier / tail test.
    min_deviation
        Smallest RMS relative deviation (beyond the noise) acted upon by the
        outlier and tail tests; outliers must also deviate by ``threshold``.
    max_outliers
        Most isolated bad points removed; a further one fails the spectrum.
    max_truncated_fraction
        Largest share of the points truncation may drop, in [0, 1).

    Returns
    -------
    KKResult

    Raises
    ------
    ValidationError
        Bad data (``column`` 'freq' or 'z'), an option out of range (``key``
        = the option) or a basis for another grid or options (``key='basis'``).
    """
    freq, z = check_spectrum(freq, z)
    options = check_options(
        threshold=threshold,
        mu_criterion=mu_criterion,
        truncate=truncate,
        significance=significance,
        min_deviation=min_deviation,
        max_outliers=max_outliers,
        max_truncated_fraction=max_truncated_fraction,
    )
    max_freq_hz = check_max_freq(max_freq_hz)
    kept, freq_cropped, z_cropped = crop(freq, z, max_freq_hz)
    basis_options = {
        "max_elements": max_elements,
        "include_inductance": include_inductance,
        "include_capacitance": include_capacitance,
        "tau_extension_decades": tau_extension_decades,
    }
    if basis is None:
        basis = _cached_basis(freq_cropped, basis_options)
    else:
        _check_basis(basis, freq_cropped, basis_options)
    return _run(basis, [(freq, z, kept)], [z_cropped], options)[0]


#: The bases of the last few grids and options :func:`check_kk` and
#: :func:`check_kk_batch` were called with (the pipeline calls the batch once
#: per chunk of sweeps, all on the same grid).
_BASES: GridCache[KKBasis] = GridCache(4)


def _cached_basis(freq: np.ndarray, basis_options: dict[str, object]) -> KKBasis:
    """:func:`build_kk_basis` of ``freq``, from :data:`_BASES` when it holds it."""
    # The option types are part of the key: True == 1, but only 1 is a valid max_elements.
    key = (
        freq.tobytes(),
        hashable(basis_options),
        tuple(type(value).__name__ for value in basis_options.values()),
    )
    return _BASES.get(key, lambda: build_kk_basis(freq, **basis_options))  # type: ignore[arg-type]


def _check_basis(basis: object, freq: np.ndarray, basis_options: dict[str, object]) -> None:
    if not isinstance(basis, KKBasis):
        raise ValidationError(
            f"must be a KKBasis from build_kk_basis, got {type(basis).__name__}", key="basis"
        )
    if not basis.matches(freq):
        raise ValidationError(
            "was built for another frequency grid (after cropping at max_freq_hz): "
            "build it with build_kk_basis(freq) or pass basis=None",
            key="basis",
        )
    capped = min(int(basis_options["max_elements"]), freq.size)  # type: ignore[call-overload]
    for name, value in basis_options.items():
        have = getattr(basis, name)
        wanted = capped if name == "max_elements" else value
        if have != wanted:
            raise ValidationError(
                f"was built with {name} = {have!r} but the check was asked for {value!r}: "
                "pass the same options to build_kk_basis and check_kk",
                key="basis",
            )


def _run(
    basis: KKBasis,
    crops: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    z_cropped: Sequence[np.ndarray],
    options: Options,
) -> list[KKResult]:
    z_sorted = np.stack([np.asarray(values)[basis.order] for values in z_cropped])
    # Small solves: BLAS threads only wait for each other (and for busy cores).
    with one_blas_thread:
        group = Group(basis, z_sorted)
        outcome = check_group(group, options)
        return build_results(group, outcome, options, crops)


def _as_arrays(item: object, position: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(item, Spectrum):
        return item.freq, item.z
    try:
        freq, z = item  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ValidationError(
            f"item {position} is neither a Spectrum nor a (freq, z) pair", key="spectra"
        ) from None
    return freq, z


def check_kk_batch(
    spectra: Experiment | Iterable[Spectrum | tuple[ArrayLike, ArrayLike]],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    mu_criterion: float = DEFAULT_MU_CRITERION,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    truncate: bool = True,
    include_inductance: bool = True,
    include_capacitance: bool = False,
    max_freq_hz: float | None = None,
    tau_extension_decades: float = 0.5,
    significance: float = 1e-3,
    min_deviation: float = 0.002,
    max_outliers: int = 2,
    max_truncated_fraction: float = 0.5,
    progress: ProgressCallback | None = None,
) -> list[KKResult]:
    """:func:`check_kk` for many spectra, one basis per distinct frequency grid.

    Spectra on the same grid (after cropping) share one :class:`KKBasis` and
    are solved together, in chunks; an incomplete sweep (fewer points) gets
    the basis of its own grid. Each result equals what :func:`check_kk` gives
    for that spectrum alone (to rounding).

    Parameters
    ----------
    spectra
        An :class:`~geis_pipeline.spectrum.Experiment`, or an iterable of
        :class:`~geis_pipeline.spectrum.Spectrum` or ``(freq, z)`` pairs.
    threshold, mu_criterion, max_elements, truncate, include_inductance, include_capacitance,
    max_freq_hz, tau_extension_decades, significance, min_deviation, max_outliers,
    max_truncated_fraction
        As for :func:`check_kk`.
    progress
        Called as ``progress(done, total)`` after each chunk of spectra.

    Returns
    -------
    list of KKResult
        In input order.

    Raises
    ------
    ValidationError
        As for :func:`check_kk`; the message names the spectrum's position.
    """
    options = check_options(
        threshold=threshold,
        mu_criterion=mu_criterion,
        truncate=truncate,
        significance=significance,
        min_deviation=min_deviation,
        max_outliers=max_outliers,
        max_truncated_fraction=max_truncated_fraction,
    )
    max_freq_hz = check_max_freq(max_freq_hz)
    items = spectra.spectra if isinstance(spectra, Experiment) else list(spectra)
    total = len(items)
    crops: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    cropped: list[tuple[np.ndarray, np.ndarray]] = []
    grids: dict[bytes, list[int]] = {}
    for position, item in enumerate(items):
        freq, z = _as_arrays(item, position)
        try:
            freq, z = check_spectrum(freq, z)
            kept, freq_cropped, z_cropped = crop(freq, z, max_freq_hz)
        except ValidationError as error:
            raise type(error)(
                f"spectrum {position}: {error.message}",
                column=error.column,
                key=error.key,
            ) from None
        crops.append((freq, z, kept))
        cropped.append((freq_cropped, z_cropped))
        grids.setdefault(freq_cropped.tobytes(), []).append(position)

    results: list[KKResult | None] = [None] * total
    done = 0
    basis_options = {
        "max_elements": max_elements,
        "include_inductance": include_inductance,
        "include_capacitance": include_capacitance,
        "tau_extension_decades": tau_extension_decades,
    }
    for positions in grids.values():
        basis = _cached_basis(cropped[positions[0]][0], basis_options)
        for start in range(0, len(positions), _CHUNK):
            chunk = positions[start : start + _CHUNK]
            chunk_results = _run(
                basis,
                [crops[position] for position in chunk],
                [cropped[position][1] for position in chunk],
                options,
            )
            for position, result in zip(chunk, chunk_results, strict=True):
                results[position] = result
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return [result for result in results if result is not None]
