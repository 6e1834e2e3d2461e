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


def test_unreadable_files_are_said_in_words(tmp_path: Path) -> None:
    """HDF5's own "truncated file: eof = ..., sblock->base_addr = 0, stored_eof = ..." and
    errno dumps reached the user as they were."""
    whole = tmp_path / "results.h5"
    record = ExperimentRecord("run", _counter_experiment(n_sweeps=20, n_points=200))
    write_store(whole, [record], config_toml="", package_version="1")
    data = whole.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(gp.StoreError, match=f"truncated .*holds {len(data) // 2:,} of"):
        read_store(cut)
    text = tmp_path / "notes.h5"
    text.write_text("not results")
    with pytest.raises(gp.StoreError, match="not an HDF5 file"):
        read_store(text)
    (tmp_path / "folder.h5").mkdir()
    with pytest.raises(gp.StoreError, match="a folder, not a result file"):
        read_store(tmp_path / "folder.h5")


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


def _counter_experiment(n_sweeps: int = 3, n_points: int = 5) -> Experiment:
    freq = np.logspace(5, 0, n_points)
    spectra = tuple(
        Spectrum(
            freq=freq,
            z=(100 + step) - 20j * np.ones(n_points),
            time_s=10.0 * step,
            point_time_s=10.0 * step + np.arange(n_points, dtype=float),
            current_mA=0.3,
            potential_V=0.05,
            charge_mAh=0.0,
            source="cell.mpt",
            sweep_index=step,
            z_ce=(150 - step) - 30j * np.ones(n_points),
            potential_ce_V=-0.07,
        )
        for step in range(n_sweeps)
    )
    dc = DCRecord(np.arange(4.0), np.ones(4), np.full(4, 0.3), np.zeros(4), -np.ones(4))
    metadata = ExperimentMetadata(0.5, 0.3, ("GEIS",), None, ("cell.mpt",), (0.3,))
    return Experiment(spectra, dc, metadata)


def test_counter_electrode_and_tables_round_trip(tmp_path: Path) -> None:
    from geis_pipeline.store import ElectrodeResults

    experiment = _counter_experiment()
    n = len(experiment)
    stage = StageData("h", sweeps={"ok": np.ones(n, bool)}, attrs={"n_done": n})
    segments = {"label": np.array(["strip"], dtype=object), "start_s": np.array([0.0])}
    record = ExperimentRecord(
        "cell",
        experiment,
        stages={"kk": stage},
        tracking={"time_s": experiment.time_s},
        summary={"electrode": "we"},
        tables={"segments": segments},
        electrodes={
            "ce": ElectrodeResults(
                {"kk": stage},
                {"R_int_ohm": np.arange(n, dtype=float)},
                {"electrode": "ce"},
                {"segments": segments},
            )
        },
    )
    path = tmp_path / "cell.h5"
    write_store(path, [record], config_toml="", package_version="0")
    back = read_store(path)[0]["cell"]
    for original, restored in zip(experiment.spectra, back.experiment.spectra, strict=True):
        np.testing.assert_array_equal(restored.z_ce, original.z_ce)
        assert restored.potential_ce_V == original.potential_ce_V
    np.testing.assert_array_equal(back.experiment.dc_record.potential_ce_V, -np.ones(4))
    assert list(back.tables["segments"]["label"]) == ["strip"]
    counter = back.electrodes["ce"]
    assert counter.summary["electrode"] == "ce"
    np.testing.assert_array_equal(counter.tracking["R_int_ohm"], np.arange(n))
    assert list(counter.tables["segments"]["start_s"]) == [0.0]
    results = gp.open_results(path)["cell"]
    assert results.electrodes == ("we", "ce")
    assert results.segments(electrode="ce").shape == (1, 2)
    np.testing.assert_array_equal(results.electrode("ce").spectra[1].z, experiment.spectra[1].z_ce)


def test_counter_results_without_counter_spectra_are_refused(tmp_path: Path) -> None:
    from geis_pipeline.errors import StoreError
    from geis_pipeline.store import ElectrodeResults

    experiment = _counter_experiment()
    plain = replace(
        experiment,
        spectra=tuple(replace(spectrum, z_ce=None) for spectrum in experiment.spectra),
    )
    record = ExperimentRecord(
        "cell", plain, electrodes={"ce": ElectrodeResults({}, {"time_s": plain.time_s}, {})}
    )
    path = tmp_path / "bad.h5"
    write_store(path, [record], config_toml="", package_version="0")
    with pytest.raises(StoreError, match="z_ce"):
        read_store(path)


def test_layout_version_1_file_reads(tmp_path: Path) -> None:
    """A file as layout 1 wrote it (built by hand): no counter electrode, no tables."""
    path = tmp_path / "v1.h5"
    freq = np.logspace(5, 0, 6)
    with h5py.File(path, "w") as handle:
        handle.attrs["format"] = "geis-pipeline results"
        handle.attrs["layout_version"] = 1
        handle.attrs["package_version"] = "0.1.0"
        handle.attrs["config_toml"] = ""
        group = handle.create_group("experiments").create_group("old")
        group.attrs["area_cm2"] = 0.5
        group.attrs["sources"] = '["a.mpt"]'
        group.attrs["techniques"] = '["GEIS"]'
        raw = group.create_group("raw")
        raw["offsets"] = np.array([0, 6, 12], dtype=np.int64)
        raw["freq_hz"] = np.concatenate([freq, freq])
        raw["z_real_ohm"] = np.full(12, 100.0)
        raw["z_imag_ohm"] = np.full(12, -10.0)
        raw["point_time_s"] = np.arange(12.0)
        for name, values in {
            "time_s": [0.0, 6.0],
            "current_mA": [0.1, 0.1],
            "potential_V": [0.02, 0.03],
            "charge_mAh": [0.0, 0.0],
            "sweep_index": [0, 1],
            "source_index": [0, 0],
            "incomplete": [False, False],
        }.items():
            raw[name] = np.array(values)
        raw.create_dataset(
            "sources", data=np.array([b"a.mpt"], dtype=object), dtype=h5py.string_dtype()
        )
        dc = raw.create_group("dc")
        for name in ("time_s", "potential_V", "current_mA", "charge_mAh"):
            dc[name] = np.zeros(3)
        fit = group.create_group("fit")
        fit.attrs["config_hash"] = "x"
        fit["ok"] = np.array([True, True])
        group.create_group("tracking")["R_int_ohm_cm2"] = np.array([50.0, 60.0])
        group.create_group("summary").attrs["t0_s"] = float("nan")
    results = gp.open_results(path)["old"]
    assert results.electrodes == ("we",)
    assert not any(spectrum.has_counter for spectrum in results.spectra)
    assert np.isnan(results.dc_record.potential_ce_V).all()
    assert list(results.tracking().R_int_ohm_cm2) == [50.0, 60.0]
    assert results.segments() is None and results.cycles() is None
    with pytest.raises(gp.GeisPipelineError, match="electrode"):
        results.tracking(electrode="ce")
    # Rewritten, it is a file of the current layout with the same content.
    records, _ = read_store(path)
    write_store(tmp_path / "v2.h5", records, config_toml="", package_version="0")
    assert read_store(tmp_path / "v2.h5")[1]["layout_version"] == LAYOUT_VERSION == 2


def _stored_chunks(dataset: h5py.Dataset) -> list[tuple[tuple[int, ...], int, bytes]]:
    """Every stored chunk of a dataset: its corner, filter mask and bytes as stored."""
    chunks = []
    for index in range(dataset.id.get_num_chunks()):
        corner = dataset.id.get_chunk_info(index).chunk_offset
        chunks.append((corner, *dataset.id.read_direct_chunk(corner)))
    return chunks


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["<f8", "<f4", "<i8", "<i4", "u1", "?", ">f8"]),
    st.lists(st.integers(1, 7000), min_size=1, max_size=2).map(tuple),
    st.integers(0, 2**31 - 1),
)
def test_threaded_compression_stores_what_hdf5_stores(dtype, shape, seed) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from geis_pipeline.store import _Compressor, _filters

    if len(shape) == 2:
        shape = (shape[0], 1 + shape[1] % 40)
    rng = np.random.default_rng(seed)
    values = (np.cumsum(rng.normal(size=shape), axis=0) * 100).astype(dtype)
    with h5py.File("mem.h5", "w", driver="core", backing_store=False) as handle:
        reference = handle.create_dataset("hdf5", data=values, **_filters(True))
        with ThreadPoolExecutor(2) as pool:
            _Compressor(pool).dataset(handle, "threads", values)
        threaded = handle["threads"]
        for attribute in ("shape", "dtype", "chunks", "compression", "compression_opts"):
            assert getattr(threaded, attribute) == getattr(reference, attribute)
        assert threaded.shuffle and reference.shuffle
        np.testing.assert_array_equal(threaded[()], values)
        # Chunk for chunk the bytes HDF5's own gzip and shuffle filters store.
        assert _stored_chunks(threaded) == _stored_chunks(reference)


@pytest.mark.parametrize("idle", [True, False])
def test_compressed_point_columns_written_in_blocks_are_the_whole_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, idle: bool
) -> None:
    import geis_pipeline.store as store

    monkeypatch.setattr(store, "spare_core", lambda: idle)  # threads, or HDF5's own filters
    monkeypatch.setattr(store, "_THREADED_BYTES", 0)

    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 400, size=60)
    spectra = tuple(
        Spectrum(
            freq=rng.uniform(1.0, 1e6, size),
            z=rng.normal(size=size) + 1j * rng.normal(size=size),
            time_s=float(index),
            point_time_s=np.arange(size, dtype=float),
            source="file.mpt",
            sweep_index=index,
        )
        for index, size in enumerate(sizes)
    )
    experiment = Experiment(spectra, DCRecord.empty(), ExperimentMetadata(None, None, (), None, ()))
    monkeypatch.setattr(store, "_BLOCK_POINTS", 1000)  # blocks that do not end on a chunk
    path = tmp_path / "blocks.h5"
    write_store(path, [ExperimentRecord("run", experiment)], config_toml="", package_version="1")
    with h5py.File(path) as handle:
        for name, part in (("freq_hz", "freq"), ("z_imag_ohm", "z")):
            dataset = handle[f"experiments/run/raw/{name}"]
            whole = np.concatenate([getattr(spectrum, part) for spectrum in spectra])
            whole = whole.imag if part == "z" else whole
            assert dataset.compression == "gzip" and dataset.chunks[0] < whole.size
            np.testing.assert_array_equal(dataset[()], whole)
