"""spectra_from_arrays builds what Spectrum(...) per sweep builds, with the same checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geis_pipeline.spectrum import DCRecord, Spectrum, spectra_from_arrays

_FIELDS = tuple(Spectrum.__dataclass_fields__)


def _columns(sizes, seed: int = 0, counter: bool = False):
    rng = np.random.default_rng(seed)
    n = int(np.sum(sizes))
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    n_sweeps = len(sizes)
    columns = {
        "freq": rng.uniform(1.0, 1e6, n),
        "z": rng.standard_normal(n) + 1j * rng.standard_normal(n),
        "point_time_s": np.arange(n) * 0.5,
        "offsets": offsets,
        "time_s": offsets[:-1] * 0.5,
        "current_mA": rng.standard_normal(n_sweeps),
        "potential_V": rng.standard_normal(n_sweeps),
        "charge_mAh": rng.standard_normal(n_sweeps),
        "source": [f"file{index % 2}.mpt" for index in range(n_sweeps)],
        "sweep_index": np.arange(n_sweeps),
        "incomplete": rng.random(n_sweeps) < 0.3,
        "potential_ce_V": rng.standard_normal(n_sweeps),
    }
    if counter:
        z_ce = rng.standard_normal(n) + 1j * rng.standard_normal(n)
        z_ce[offsets[0] : offsets[1]] = 0.0  # all zero: no counter spectrum (EC-Lab 2-electrode)
        if n_sweeps > 1:
            z_ce[offsets[1]] = np.nan  # not finite throughout: none either
        columns["z_ce"] = z_ce
    return columns


def _one_by_one(columns) -> list[Spectrum]:
    offsets = columns["offsets"]
    spectra = []
    for index in range(offsets.size - 1):
        window = slice(offsets[index], offsets[index + 1])
        z_ce = columns.get("z_ce")
        spectra.append(
            Spectrum(
                freq=columns["freq"][window],
                z=columns["z"][window],
                time_s=float(columns["time_s"][index]),
                point_time_s=columns["point_time_s"][window],
                current_mA=float(columns["current_mA"][index]),
                potential_V=float(columns["potential_V"][index]),
                charge_mAh=float(columns["charge_mAh"][index]),
                source=columns["source"][index],
                sweep_index=int(columns["sweep_index"][index]),
                flags=frozenset({"incomplete"}) if columns["incomplete"][index] else frozenset(),
                z_ce=None if z_ce is None else z_ce[window],
                potential_ce_V=float(columns["potential_ce_V"][index]),
            )
        )
    return spectra


def _same(a: Spectrum, b: Spectrum) -> None:
    for name in _FIELDS:
        left, right = getattr(a, name), getattr(b, name)
        if isinstance(left, np.ndarray) or isinstance(right, np.ndarray):
            assert isinstance(left, np.ndarray) and isinstance(right, np.ndarray), name
            assert left.dtype == right.dtype and np.array_equal(left, right), name
            assert not left.flags.writeable, name
        else:
            assert left == right or (left != left and right != right), name
            assert type(left) is type(right), name


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=30), st.booleans(), st.integers(0, 99))
def test_the_same_spectra_as_one_by_one(sizes, counter, seed) -> None:
    columns = _columns(sizes, seed, counter)
    expected = _one_by_one(columns)
    built = spectra_from_arrays(**columns)
    assert len(built) == len(expected)
    for a, b in zip(built, expected, strict=True):
        _same(a, b)


def test_no_sweeps() -> None:
    empty = np.empty(0)
    assert spectra_from_arrays(
        empty, empty.astype(complex), empty, [0], time_s=empty, current_mA=empty,
        potential_V=empty, charge_mAh=empty, source=[], sweep_index=empty, incomplete=empty,
    ) == ()  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["freq"].__setitem__(7, 0.0), "sweep 1: frequencies must be finite"),
        (lambda c: c["z"].__setitem__(12, np.nan), "sweep 2: impedance values must be finite"),
        (lambda c: c["offsets"].__setitem__(2, c["offsets"][1]), "sweep 1: a spectrum needs"),
        (lambda c: c.__setitem__("z", c["z"][:-1]), "same shape"),
    ],
)
def test_what_spectrum_refuses_is_refused_naming_the_sweep(change, message: str) -> None:
    columns = _columns([5, 5, 5])
    change(columns)
    with pytest.raises(ValueError, match=message):
        spectra_from_arrays(**columns)


def test_a_defective_sweep_keeps_its_values() -> None:
    columns = _columns([5, 5])
    columns["z"][6] = np.inf
    spectra = spectra_from_arrays(**columns, defect=["", "line 9: Re(Z) is inf"])
    assert spectra[1].defect == "line 9: Re(Z) is inf" and np.isinf(spectra[1].z[1])


def test_no_shift_is_the_same_object_and_a_shift_is_a_copy() -> None:
    (spectrum,) = spectra_from_arrays(**_columns([6]))
    assert spectrum.shifted(0.0) is spectrum
    moved = spectrum.shifted(10.0)
    assert moved.time_s == spectrum.time_s + 10.0
    np.testing.assert_array_equal(moved.point_time_s, spectrum.point_time_s + 10.0)
    record = DCRecord(np.arange(4.0), np.ones(4), np.ones(4), np.ones(4))
    assert record.shifted(0.0) is record
    np.testing.assert_array_equal(record.shifted(2.0).time_s, np.arange(4.0) + 2.0)
