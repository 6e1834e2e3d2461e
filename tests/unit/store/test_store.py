"""The HDF5 store: round trips, layout checks, atomic replacement."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import geis_pipeline as gp
from geis_pipeline.spectrum import (
    DCRecord,
    Experiment,
    ExperimentMetadata,
    SkippedSweep,
    Spectrum,
)
from geis_pipeline.store import (
    LAYOUT_VERSION,
    ExperimentRecord,
    InputFile,
    StageData,
    read_store,
    write_store,
)


@st.composite
def experiments(draw):
    n_sweeps = draw(st.integers(1, 6))
    spectra = []
    for index in range(n_sweeps):
        n_points = draw(st.integers(1, 12))
        freq = np.sort(draw(st.lists(st.floats(1e-2, 1e7), min_size=n_points, max_size=n_points)))[
            ::-1
        ]
        real = draw(st.lists(st.floats(-1e6, 1e6), min_size=n_points, max_size=n_points))
        imag = draw(st.lists(st.floats(-1e6, 1e6), min_size=n_points, max_size=n_points))
        spectra.append(
            Spectrum(
                freq=np.array(freq),
                z=np.array(real) + 1j * np.array(imag),
                time_s=float(index * 10),
                point_time_s=index * 10 + np.arange(n_points, dtype=float),
                current_mA=draw(st.floats(-1, 1)),
                potential_V=draw(st.one_of(st.just(float("nan")), st.floats(-5, 5))),
                charge_mAh=float(index),
                source=f"file_{index % 2}.mpt",
                sweep_index=index,
                flags=frozenset({"incomplete"}) if draw(st.booleans()) else frozenset(),
            )
        )
    n_dc = draw(st.integers(0, 5))
    dc = DCRecord(
        np.arange(n_dc, dtype=float), np.ones(n_dc), np.zeros(n_dc), np.full(n_dc, np.nan)
    )
    metadata = ExperimentMetadata(
        area_cm2=draw(st.one_of(st.none(), st.floats(0.01, 10))),
        current_setpoint_mA=draw(st.one_of(st.none(), st.floats(-1, 1))),
        techniques=("GEIS", "OCV"),
        start_time=datetime(2026, 11, 20, 10, 0, 0),
        sources=("file_0.mpt", "file_1.mpt"),
        setpoints_mA=(draw(st.floats(-1, 1)), math.nan),
        warnings=tuple(draw(st.lists(st.text(max_size=40), max_size=2))),
    )
    return Experiment(tuple(spectra), dc, metadata)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(experiments())
def test_raw_round_trip(tmp_path: Path, experiment: Experiment) -> None:
    path = tmp_path / "round.h5"
    stage = StageData(
        "abc",
        sweeps={
            "ok": np.ones(len(experiment), dtype=bool),
            "status": np.array(["ok"] * len(experiment), dtype=object),
        },
        points={"used": np.ones(sum(s.n_points for s in experiment.spectra), dtype=bool)},
        grid={"tau_s": np.logspace(-6, 0, 5)},
        attrs={"n_done": len(experiment), "parameter_names": ["R0", "R1"]},
    )
    record = ExperimentRecord(
        "run",
        experiment,
        (InputFile("file_0.mpt", 10, "0" * 64),),
        {"fit": stage},
        {"time_s": experiment.time_s},
        {"t0_s": float("nan"), "note": "x"},
    )
    write_store(path, [record], config_toml="[fit]\n", package_version="1.2.3")
    records, attrs = read_store(path)
    assert attrs["package_version"] == "1.2.3" and attrs["layout_version"] == LAYOUT_VERSION
    back = records["run"]
    for original, restored in zip(experiment.spectra, back.experiment.spectra, strict=True):
        np.testing.assert_array_equal(restored.freq, original.freq)
        np.testing.assert_array_equal(restored.z, original.z)
        np.testing.assert_array_equal(restored.point_time_s, original.point_time_s)
        assert restored.flags == original.flags
        assert restored.source == original.source and restored.sweep_index == original.sweep_index
        np.testing.assert_equal(restored.potential_V, original.potential_V)
    # NaN setpoints (none stated) compare unequal: compare them apart
    assert replace(back.experiment.metadata, setpoints_mA=()) == replace(
        experiment.metadata, setpoints_mA=()
    )
    np.testing.assert_array_equal(
        back.experiment.metadata.setpoints_mA, experiment.metadata.setpoints_mA
    )
    assert len(back.experiment.dc_record) == len(experiment.dc_record)
    assert back.inputs == record.inputs
    assert back.stages["fit"].config_hash == "abc"
    assert back.stages["fit"].attrs["parameter_names"] == ["R0", "R1"]
    assert list(back.stages["fit"].sweeps["status"]) == ["ok"] * len(experiment)
    np.testing.assert_array_equal(back.tracking["time_s"], experiment.time_s)
    assert back.summary["note"] == "x"


def test_uncompressed_file_has_the_same_content(tmp_path: Path) -> None:
    n_points = 5000
    spectra = tuple(
        Spectrum(
            freq=np.logspace(6, -1, n_points),
            z=np.linspace(1, 2, n_points) - 1j * np.linspace(0, 1, n_points),
            time_s=float(index),
            point_time_s=np.arange(n_points, dtype=float),
            source="file.mpt",
            sweep_index=index,
        )
        for index in range(3)
    )
    experiment = Experiment(spectra, DCRecord.empty(), ExperimentMetadata(None, None, (), None, ()))
    gamma = np.random.default_rng(1).random((3, 40))
    record = ExperimentRecord(
        "run", experiment, stages={"drt": StageData("h", sweeps={"gamma_ohm": gamma})}
    )
    paths = {compress: tmp_path / f"{compress}.h5" for compress in (True, False)}
    for compress, path in paths.items():
        write_store(path, [record], config_toml="", package_version="1", compress=compress)
        with h5py.File(path) as handle:
            dataset = handle["experiments/run/raw/z_real_ohm"]
            assert dataset.compression == ("gzip" if compress else None)
    compressed, plain = (read_store(paths[compress])[0]["run"] for compress in (True, False))
    np.testing.assert_array_equal(plain.stages["drt"].sweeps["gamma_ohm"], gamma)
    np.testing.assert_array_equal(
        plain.stages["drt"].sweeps["gamma_ohm"], compressed.stages["drt"].sweeps["gamma_ohm"]
    )
    for left, right in zip(plain.experiment.spectra, compressed.experiment.spectra, strict=True):
        np.testing.assert_array_equal(left.z, right.z)
        np.testing.assert_array_equal(left.freq, right.freq)


def test_newer_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.h5"
    with h5py.File(path, "w") as handle:
        handle.attrs["format"] = "geis-pipeline results"
        handle.attrs["layout_version"] = LAYOUT_VERSION + 1
        handle.create_group("experiments")
    with pytest.raises(gp.StoreError, match="upgrade"):
        read_store(path)


def test_foreign_hdf5_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as handle:
        handle["x"] = 1
    with pytest.raises(gp.StoreError, match="not a geis-pipeline result file"):
        read_store(path)


def test_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "results.h5"
    write_store(path, [], config_toml="", package_version="1")
    before = path.read_bytes()

    broken = ExperimentRecord("run", experiment=None)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        write_store(path, [broken], config_toml="", package_version="2")
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".results.h5.*"))


def test_skipped_files_and_sweeps_round_trip_and_older_files_read(tmp_path: Path) -> None:
    odd_source = "cell_\udcff.mpt"  # a file name that is not UTF-8 (surrogate escape)
    spectra = tuple(
        Spectrum(
            freq=np.logspace(5, 0, 10),
            z=np.linspace(1, 2, 10) - 1j,
            time_s=float(index),
            point_time_s=np.arange(10, dtype=float),
            source=odd_source,
            sweep_index=index,
        )
        for index in (0, 2)
    )
    experiment = Experiment(
        spectra,
        DCRecord.empty(),
        ExperimentMetadata(None, None, (), None, (odd_source,)),
        skipped=(gp.SkippedFile("bad.mpt", "truncated"),),
        skipped_sweeps=(SkippedSweep(odd_source, 1, 0.5, "zero impedance"),),
    )
    path = tmp_path / "skipped.h5"
    write_store(path, [ExperimentRecord("run", experiment)], config_toml="", package_version="1")
    back = read_store(path)[0]["run"].experiment
    assert back.skipped == experiment.skipped
    assert back.skipped_sweeps == experiment.skipped_sweeps
    assert {spectrum.source for spectrum in back.spectra} == {odd_source}
    # A layout-1 file written before these attributes existed reads with none.
    with h5py.File(path, "r+") as handle:
        del handle["experiments/run"].attrs["skipped_sweeps"]
        del handle["experiments/run"].attrs["skipped"]
    older = read_store(path)[0]["run"].experiment
    assert older.skipped == () and older.skipped_sweeps == ()
    assert len(older.spectra) == 2
