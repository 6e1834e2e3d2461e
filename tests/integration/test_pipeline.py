"""The staged pipeline end to end: run, results, reprocess, incremental runs, crash and resume,
bad files, and identical numbers from every executor."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

import geis_pipeline as gp
from geis_pipeline.config import config_to_toml, parse_config
from geis_pipeline.pipeline import chunks, orchestrator, reprocess, run, stage_hashes
from geis_pipeline.results import open_results
from geis_pipeline.simulate import SimulationSettings, write_experiment
from geis_pipeline.store import read_store, write_store

CONFIG = parse_config(
    """
[executor]
kind = "serial"
chunk_size = 12
[drt]
lam = 0.3
"""
)


@pytest.fixture(scope="module")
def experiment_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sim") / "Li_LLZO_run"
    write_experiment(folder, SimulationSettings(seed=4, n_sweeps=30, n_relaxation=4))
    return folder


@pytest.fixture(scope="module")
def reference_run(experiment_folder: Path, tmp_path_factory):
    output = tmp_path_factory.mktemp("out") / "reference.h5"
    report = run([experiment_folder], CONFIG, output)
    return output, report


def _arrays(path: Path, name: str) -> dict[str, np.ndarray]:
    experiment = open_results(path)[name]
    arrays = {f"tracking/{key}": value for key, value in experiment.record.tracking.items()}
    for stage_name, stage in experiment.record.stages.items():
        for key, value in {**stage.sweeps, **stage.points, **stage.grid}.items():
            arrays[f"{stage_name}/{key}"] = value
    return arrays


def _assert_same_results(first: Path, second: Path, name: str) -> None:
    left, right = _arrays(first, name), _arrays(second, name)
    assert left.keys() == right.keys()
    for key in left:
        if left[key].dtype == object:
            assert list(left[key]) == list(right[key]), key
        else:
            np.testing.assert_array_equal(left[key], right[key], err_msg=key)


def test_run_writes_everything(reference_run, experiment_folder: Path) -> None:
    output, report = reference_run
    results = open_results(output)
    assert results.experiments == ["Li_LLZO_run"]
    experiment = results["Li_LLZO_run"]
    truth = np.load(experiment_folder / "truth.npz")
    n_spectra = truth["time_s"].size
    assert len(experiment.spectra) == n_spectra == report.n_spectra
    table = experiment.tracking()
    assert len(table) == n_spectra
    for column in (
        "time_s",
        "charge_mAh_cm2",
        "E_V",
        "R_b_ohm_cm2",
        "R_gb_ohm_cm2",
        "R_int_ohm_cm2",
        "C_int_F_cm2",
        "alpha_int",
        "tau_int_s",
        "contact_loss_C",
        "contact_loss_R",
        "fit_ok",
        "kk_ok",
        "R_int_drt_ohm_cm2",
    ):
        assert column in table.columns, column
    # Stored results against the simulator's ground truth.
    np.testing.assert_allclose(table["time_s"], truth["time_s"], rtol=1e-9)
    assert np.median(np.abs(table["R_int_ohm_cm2"] / truth["R_int_ohm_cm2"] - 1)) < 0.01
    assert np.median(np.abs(table["C_int_F_cm2"] / truth["C_int_F_cm2"] - 1)) < 0.02
    assert np.median(np.abs(table["R_int_drt_ohm_cm2"] / truth["R_int_ohm_cm2"] - 1)) < 0.1
    # Provenance: the resolved config, the package version, input hashes, stage hashes.
    assert parse_config(results.config_toml) == CONFIG
    assert results.package_version == gp.__version__
    assert {item.name for item in experiment.record.inputs} == {
        path.name for path in experiment_folder.glob("*.mpt")
    }
    assert all(len(item.sha256) == 64 for item in experiment.record.inputs)
    hashes = stage_hashes(CONFIG)
    for stage in ("kk", "fit", "drt"):
        assert experiment.stage(stage).config_hash == hashes[stage]
    tau, gamma = experiment.drt_map()
    assert gamma.shape == (n_spectra, tau.size)
    assert experiment.fit_parameters()["R3_ohm"].size == n_spectra
    z_fit = experiment.points("fit", "z_fit_real_ohm", 3)
    assert z_fit.size == experiment.spectra[3].n_points
    assert not output.with_name(output.name + ".parts").exists()
    with h5py.File(output) as handle:  # the final file is compressed (not the ones before)
        assert handle["experiments/Li_LLZO_run/fit/points/z_fit_real_ohm"].compression == "gzip"


def test_reprocess_changed_drt_lambda_reruns_only_drt(reference_run, tmp_path: Path) -> None:
    output, _ = reference_run
    changed = parse_config(config_to_toml(CONFIG).replace("lam = 0.3", "lam = 0.05"))
    target = tmp_path / "reprocessed.h5"
    report = reprocess(output, changed, output=target)
    (experiment,) = report.experiments
    assert experiment.stages_computed == ("drt",)
    assert set(experiment.stages_reused) == {"kk", "fit"}
    assert experiment.n_sweeps_computed == experiment.n_spectra
    before, after = open_results(output)["Li_LLZO_run"], open_results(target)["Li_LLZO_run"]
    np.testing.assert_array_equal(
        before.stage("fit").sweeps["parameters"], after.stage("fit").sweeps["parameters"]
    )
    assert before.stage("drt").config_hash != after.stage("drt").config_hash
    assert np.all(after.stage("drt").sweeps["lam"] == 0.05)
    assert len(after.spectra) == len(before.spectra)  # raw data kept


def test_a_drt_stage_without_the_resolved_flags_is_recomputed(
    reference_run, tmp_path: Path
) -> None:
    """A file written before ``<process>_resolved`` and ``_R_stderr_ohm``: reprocess adds them."""
    output, _ = reference_run
    records, attrs = read_store(output)
    name = "Li_LLZO_run"
    drt = records[name].stages["drt"]
    new_columns = ("_resolved", "_R_stderr_ohm", "_drt_stderr_ohm", "_drt_stderr_ohm_cm2")
    old_drt = replace(
        drt, sweeps={k: v for k, v in drt.sweeps.items() if not k.endswith(new_columns)}
    )
    old_tracking = {k: v for k, v in records[name].tracking.items() if not k.endswith(new_columns)}
    older = replace(
        records[name], stages={**records[name].stages, "drt": old_drt}, tracking=old_tracking
    )
    old_file = tmp_path / "older.h5"
    write_store(old_file, {name: older}, config_toml=attrs["config_toml"], package_version="0.1.0")
    assert "R_gb_drt_resolved" not in open_results(old_file)[name].tracking()
    report = reprocess(old_file, CONFIG, output=tmp_path / "new.h5")
    (experiment,) = report.experiments
    assert experiment.stages_computed == ("drt",)
    assert set(experiment.stages_reused) == {"kk", "fit"}
    table = open_results(tmp_path / "new.h5")[name].tracking()
    assert not table["R_gb_drt_resolved"].any()  # the bulk apex lies above 7 MHz
    assert table["R_int_drt_resolved"].mean() > 0.9
    assert np.isfinite(table["R_int_drt_stderr_ohm_cm2"]).mean() > 0.9


def test_incremental_run_processes_only_new_sweeps(
    experiment_folder: Path, reference_run, tmp_path: Path
) -> None:
    reference, _ = reference_run
    growing = tmp_path / "Li_LLZO_run"
    growing.mkdir()
    geis = next(experiment_folder.glob("*_01_GEIS_*.mpt"))
    lines = geis.read_bytes().split(b"\r\n")
    # The measurement is still running: the GEIS file holds its first ~60 % so far.
    (growing / geis.name).write_bytes(b"\r\n".join(lines[: int(len(lines) * 0.6)]) + b"\r\n")
    output = tmp_path / "results.h5"
    first = run([growing], CONFIG, output)
    n_first = first.n_spectra
    for path in experiment_folder.glob("*.mpt"):
        shutil.copy(path, growing / path.name)
    second = run([growing], CONFIG, output)
    assert second.n_spectra > n_first
    (grown,) = second.experiments
    assert "fit" in grown.stages_reused
    # Whole chunks of unchanged sweeps are reused; the rest is computed.
    assert grown.n_sweeps_computed <= second.n_spectra - (n_first // 12 - 1) * 12
    _assert_same_results(reference, output, "Li_LLZO_run")
    # Provenance describes the files as they are now, not as the first run saw them.
    inputs = open_results(output)["Li_LLZO_run"].record.inputs
    assert {(item.name, item.size_bytes) for item in inputs} == {
        (path.name, path.stat().st_size) for path in growing.glob("*.mpt")
    }


def test_killed_run_resumes_to_the_same_results(
    experiment_folder: Path, reference_run, tmp_path: Path
) -> None:
    _reference, _ = reference_run
    slow = replace(CONFIG, executor=replace(CONFIG.executor, chunk_size=4, publish_interval_s=0.01))
    config_file = tmp_path / "slow.toml"
    config_file.write_text(config_to_toml(slow))
    output = tmp_path / "Li_LLZO_run.h5"
    command = [
        sys.executable,
        "-m",
        "geis_pipeline",
        "run",
        str(experiment_folder),
        "-c",
        str(config_file),
        "-o",
        str(output),
        "--quiet",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    parts = output.with_name(output.name + ".parts")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(parts.rglob("*.npz"))) < 3:
        if process.poll() is not None:
            pytest.fail(f"run ended before it could be killed: {process.stderr.read().decode()}")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    # Whatever the moment, the file opens and holds the raw data (a publish before
    # the final one, left uncompressed).
    with h5py.File(output) as handle:
        assert handle["experiments/Li_LLZO_run/raw/z_real_ohm"].compression is None
    killed = open_results(output)["Li_LLZO_run"]
    assert len(killed.spectra) > 0
    done = int(killed.stage("fit").attrs["n_done"]) if killed.stage("fit") else 0
    assert done < len(killed.spectra)  # really killed mid-way
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    results = open_results(output)["Li_LLZO_run"]
    stages = {name: stage for name, stage in results.record.stages.items()}
    assert all(bool(stage.attrs["complete"]) for stage in stages.values())
    # Chunk boundaries differ (4 vs 12 sweeps): fits start fresh at each chunk, so
    # compare with an uninterrupted run of the same config.
    uninterrupted = tmp_path / "uninterrupted.h5"
    run([experiment_folder], slow, uninterrupted)
    _assert_same_results(uninterrupted, output, "Li_LLZO_run")


def test_folder_with_a_corrupt_file(experiment_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "with_bad_file"
    shutil.copytree(experiment_folder, folder)
    (folder / "broken_04_GEIS_C01.mpt").write_bytes(b"EC-Lab ASCII FILE\r\nNb header lines : 9\r\n")
    report = run([folder], CONFIG, tmp_path / "out.h5")
    (experiment,) = report.experiments
    assert experiment.n_spectra == len(gp.read_experiment(experiment_folder))
    assert any("broken_04_GEIS_C01.mpt" in path for path in experiment.skipped_files)


def test_process_pool_gives_identical_numbers(
    experiment_folder: Path, reference_run, tmp_path: Path
) -> None:
    reference, _ = reference_run
    pooled = replace(CONFIG, executor=replace(CONFIG.executor, kind="process", workers=2))
    output = tmp_path / "pooled.h5"
    run([experiment_folder], pooled, output)
    _assert_same_results(reference, output, "Li_LLZO_run")


def test_dask_executor_gives_identical_numbers(
    experiment_folder: Path, reference_run, tmp_path: Path
) -> None:
    reference, _ = reference_run
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        config = replace(
            CONFIG,
            executor=replace(CONFIG.executor, kind="dask", scheduler=cluster.scheduler_address),
        )
        output = tmp_path / "dask.h5"
        run([experiment_folder], config, output)
    _assert_same_results(reference, output, "Li_LLZO_run")


def test_chunks_compute_with_one_blas_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    controller = ThreadpoolController()

    def blas_threads() -> list[int]:
        return [pool.num_threads for pool in controller.select(user_api="blas").lib_controllers]

    before = blas_threads()
    if not before:
        pytest.skip("no BLAS library that threadpoolctl controls in this process")
    seen = []
    monkeypatch.setattr(chunks, "_process_chunk", lambda task: seen.append(blas_threads()))
    chunks.process_chunk(None)  # type: ignore[arg-type]
    assert seen == [[1] * len(before)]
    assert blas_threads() == before  # restored
    with chunks.one_blas_thread:  # nested (chunks run by threads): the outermost restores
        chunks.process_chunk(None)  # type: ignore[arg-type]
        assert blas_threads() == [1] * len(before)
    assert blas_threads() == before


def test_a_large_file_is_published_less_often(tmp_path: Path) -> None:
    config = replace(CONFIG, executor=replace(CONFIG.executor, publish_interval_s=10.0))
    state = orchestrator.RunState(tmp_path / "out.h5", config, {})
    state.last_publish = time.monotonic() - 11.0
    state.publish_cost_s = 0.1  # 20 x 0.1 s < 10 s: the interval applies
    assert state.publish_due()
    state.publish_cost_s = 1.0  # rewriting takes 1 s: wait 20 s, not 10
    assert not state.publish_due()
    state.last_publish = time.monotonic() - 21.0
    assert state.publish_due()


def test_not_a_result_file(tmp_path: Path) -> None:
    path = tmp_path / "other.h5"
    path.write_bytes(b"not hdf5")
    with pytest.raises(gp.GeisPipelineError, match="cannot read results"):
        open_results(path)


def test_one_blas_thread_also_limits_a_library_loaded_after_its_first_use() -> None:
    # scipy brings its own OpenBLAS, loaded by its first import: a chunk or single call
    # after that import must run it with one thread too. Fresh interpreter: nothing loaded.
    code = (
        "import json, numpy\n"
        "from threadpoolctl import ThreadpoolController\n"
        "from geis_pipeline._blas import one_blas_thread\n"
        "with one_blas_thread: pass\n"
        "import scipy.linalg\n"
        "with one_blas_thread:\n"
        "    pools = ThreadpoolController().select(user_api='blas').lib_controllers\n"
        "    print(json.dumps([pool.num_threads for pool in pools]))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    counts = json.loads(completed.stdout.strip())
    if not counts:
        pytest.skip("no BLAS library that threadpoolctl controls")
    assert counts == [1] * len(counts)
