"""Fault injection: kills, damaged and hostile files, concurrent runs (issue 13's 13 cases).

Each test reproduces one case of the fault-injection report and checks the new
behaviour: nothing stored is lost, nothing planted is executed, nothing is
written outside the output, and a bad sweep or file is skipped, not fatal.
Runs are small (14 simulated sweeps, serial unless the case needs workers).
"""

from __future__ import annotations

import os
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
from hypothesis import given, settings
from hypothesis import strategies as st

import geis_pipeline as gp
from geis_pipeline.cli import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK, main
from geis_pipeline.config import Config, ExperimentSettings, config_to_toml, parse_config
from geis_pipeline.errors import ConfigError, StoreError
from geis_pipeline.pipeline import reprocess, run, stage_hashes
from geis_pipeline.pipeline.chunk_store import ChunkStore, chunk_digest
from geis_pipeline.pipeline.lock import OutputLock
from geis_pipeline.results import open_results
from geis_pipeline.simulate import SimulationSettings, simulate_experiment, write_experiment

CONFIG = parse_config(
    """
[executor]
kind = "serial"
chunk_size = 4
[drt]
lam = 0.3
solver = "NNLS"
"""
)
NAME = "cell"
GEIS = "Li_LLZO_stripping_01_GEIS_C01.mpt"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sim") / NAME
    write_experiment(path, SimulationSettings(seed=4, n_sweeps=12, n_relaxation=2))
    return path


@pytest.fixture(scope="module")
def reference(folder: Path, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("ref") / "reference.h5"
    run([folder], CONFIG, output)
    return output


def _arrays(path: Path, name: str = NAME) -> dict[str, np.ndarray]:
    experiment = open_results(path)[name]
    arrays = {f"tracking/{key}": value for key, value in experiment.record.tracking.items()}
    for stage_name, stage in experiment.record.stages.items():
        for key, value in {**stage.sweeps, **stage.points, **stage.grid}.items():
            arrays[f"{stage_name}/{key}"] = value
    return arrays


def _assert_same(first: Path, second: Path) -> None:
    left, right = _arrays(first), _arrays(second)
    assert left.keys() == right.keys()
    for key in left:
        if left[key].dtype == object:
            assert list(left[key]) == list(right[key]), key
        else:
            np.testing.assert_array_equal(left[key], right[key], err_msg=key)


def _config_file(tmp_path: Path, config: Config, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(config_to_toml(config), encoding="utf-8")
    return path


def _cli(*arguments: str | os.PathLike) -> list[str]:
    """The command line (warnings are on: some tests look for them)."""
    return [sys.executable, "-m", "geis_pipeline", *map(os.fsdecode, arguments)]


def _environment() -> dict[str, str]:
    return dict(os.environ)  # PYTHONPATH (the worktree) passes on


def _wait_for(condition, process: subprocess.Popen, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the run ended before {what}: {process.stderr.read().decode()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def _saved_chunks(output: Path) -> list[Path]:
    return list(output.with_name(output.name + ".parts").rglob("*.npz"))


def _slow(workers: int = 1, chunk_size: int = 1) -> Config:
    """One sweep per chunk, published often: many moments to be killed at."""
    kind = "serial" if workers == 1 else "process"
    return replace(
        CONFIG,
        executor=replace(
            CONFIG.executor,
            kind=kind,
            workers=workers,
            chunk_size=chunk_size,
            publish_interval_s=0.01,
        ),
    )


def _start(tmp_path: Path, *arguments: str | os.PathLike) -> subprocess.Popen:
    return subprocess.Popen(
        _cli(*arguments),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_environment(),
    )


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


# ------------------------------------------------------------ 1. pickles in .parts/


class _Payload:
    """Unpickling this creates ``marker``: proof that a planted pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _first_chunk_path(folder: Path, output: Path, stage: str) -> Path:
    experiment = gp.read_experiment(folder)
    spectra = experiment.spectra[: CONFIG.executor.chunk_size]
    key = (
        0,
        len(spectra),
        chunk_digest([s.freq for s in spectra], [s.z for s in spectra]),
    )
    store = ChunkStore(output)
    return store._path(NAME, stage, stage_hashes(CONFIG)[stage], key)


def test_planted_pickle_is_never_executed(
    folder: Path, reference: Path, tmp_path: Path, caplog
) -> None:
    output = tmp_path / "out.h5"
    marker = tmp_path / "pwned"
    for stage in ("kk", "fit", "drt"):
        path = _first_chunk_path(folder, output, stage)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:  # a chunk as a hostile writer would plant it
            np.savez(handle, **{"sweeps/ok": np.array([_Payload(marker)] * 4, dtype=object)})
    run([folder], CONFIG, output)
    assert not marker.exists()
    assert "discarding unreadable saved chunk" in caplog.text
    _assert_same(reference, output)


def test_saved_chunks_hold_plain_arrays(folder: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.h5"
    process = _start(tmp_path, "run", folder, "-c", _config_file(tmp_path, _slow()), "-o", output)
    _wait_for(lambda: len(_saved_chunks(output)) >= 3, process, "chunks were saved")
    _kill(process)
    for path in _saved_chunks(output):
        with np.load(path, allow_pickle=False) as archive:  # raises on any object array
            assert all(archive[key].dtype.kind != "O" for key in archive.files)


# ------------------------------------------------ 2. a file unreadable on the rerun


def test_rerun_keeps_the_sweeps_of_a_file_unreadable_now(
    folder: Path, reference: Path, tmp_path: Path, capsys
) -> None:
    copy = tmp_path / NAME
    shutil.copytree(folder, copy)
    output = tmp_path / "out.h5"
    run([copy], CONFIG, output)
    before = open_results(output)[NAME]
    # The instrument rewrites the file: for now it holds only the start of its header.
    (copy / GEIS).write_bytes((copy / GEIS).read_bytes()[:200])
    code = main(["run", str(copy), "-c", str(_config_file(tmp_path, CONFIG)), "-o", str(output)])
    assert code == EXIT_OK
    assert GEIS in capsys.readouterr().out  # reported among the skipped files
    after = open_results(output)[NAME]
    assert len(after.spectra) == len(before.spectra)
    for old, new in zip(before.spectra, after.spectra, strict=True):
        np.testing.assert_array_equal(old.z, new.z)
    assert [Path(item.path).name for item in after.record.experiment.skipped] == [GEIS]
    assert "stored sweeps are kept" in after.record.experiment.skipped[0].reason
    assert main(["info", str(output)]) == EXIT_OK
    assert "skipped 1" in capsys.readouterr().out
    _assert_same(reference, output)


def test_rerun_keeps_the_stored_sweeps_of_a_file_that_now_holds_fewer(
    folder: Path, reference: Path, tmp_path: Path
) -> None:
    """A file cut after a third of its bytes, then one whose frequency column was renamed.

    Both parsed: the rerun read 19 of 32 sweeps, then none, and dropped the rest from
    the store with exit 0 and "skipped 0" (found by a fault-injection pass). The
    renamed column is now an error of its own; the shorter file is reported as such.
    """
    copy = tmp_path / NAME
    shutil.copytree(folder, copy)
    output = tmp_path / "out.h5"
    run([copy], CONFIG, output)
    before = open_results(output)[NAME]
    text = (copy / GEIS).read_bytes()
    for damaged, why in (
        (text[: text.rfind(b"\r\n", 0, len(text) // 3) + 2], "fewer than the"),
        (text.replace(b"freq/Hz", b"freq/kHz"), "no 'freq/Hz' column"),
    ):
        (copy / GEIS).write_bytes(damaged)
        run([copy], CONFIG, output)
        after = open_results(output)[NAME]
        assert len(after.spectra) == len(before.spectra)
        for old, new in zip(before.spectra, after.spectra, strict=True):
            np.testing.assert_array_equal(old.z, new.z)
        (skipped,) = after.record.experiment.skipped
        assert Path(skipped.path).name == GEIS
        assert why in skipped.reason and "stored sweeps are kept" in skipped.reason
    _assert_same(reference, output)


def test_rerun_keeps_the_sweeps_of_a_file_that_is_gone(folder: Path, tmp_path: Path) -> None:
    copy = tmp_path / NAME
    shutil.copytree(folder, copy)
    output = tmp_path / "out.h5"
    run([copy], CONFIG, output)
    n_before = len(open_results(output)[NAME].spectra)
    (copy / "Li_LLZO_stripping_02_PEIS_C01.mpt").unlink()
    report = run([copy], CONFIG, output)
    assert report.experiments[0].n_spectra == n_before
    skipped = open_results(output)[NAME].record.experiment.skipped
    assert "gone" in skipped[0].reason


# ----------------------------------------------------------- 3. and 5. bad sweeps


def _csv(path: Path, sweeps: list[tuple[np.ndarray, np.ndarray]]) -> None:
    lines = ["sweep,freq/Hz,Re(Z)/Ohm,Im(Z)/Ohm,time/s"]
    for index, (freq, z) in enumerate(sweeps):
        for point, (f, value) in enumerate(zip(freq, z, strict=True)):
            cells = (index, float(f), float(value.real), float(value.imag), 100.0 * index + point)
            lines.append(",".join(map(repr, cells)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_defective_sweeps_are_skipped_with_file_and_index(tmp_path: Path) -> None:
    simulated = simulate_experiment(SimulationSettings(seed=2, n_sweeps=12, n_relaxation=0))
    sweeps = [(freq.copy(), z.copy()) for freq, z in zip(simulated.freq, simulated.z, strict=True)]
    sweeps[1] = (sweeps[1][0][:5], sweeps[1][1][:5])
    sweeps[3][0][4] = sweeps[3][0][3]  # a repeat splits it: 4 points, then the rest
    sweeps[4][1][20] = 0
    sweeps[6][0][0] = 1e300
    sweeps[7][0][-1] = 1e-300
    sweeps[9][1][30] = 1e300
    sweeps[11][1][8] = complex(np.nan, -1.0)
    # Index of each defective sweep in the file (the split makes sweep 3 two: 3 and 4).
    defects = {
        1: "fewer than",  # 5 points
        3: "fewer than",  # the 4 points before the repeated frequency
        5: "zero impedance",
        7: "implausible frequency",  # 1e300 Hz
        8: "implausible frequency",  # 1e-300 Hz
        10: "implausible |Z|",  # 1e300 ohm
        12: "non-finite value nan",  # NaN, named by its line: the file's other sweeps are kept
    }
    nan_line = 2 + sum(len(freq) for freq, _ in sweeps[:11]) + 8  # header, then 1-based rows
    cell = tmp_path / "bad_sweeps"
    cell.mkdir()
    _csv(cell / "cell.csv", sweeps)
    output = tmp_path / "out.h5"
    started = time.monotonic()
    assert (
        main(["run", str(cell), "-c", str(_config_file(tmp_path, CONFIG)), "-o", str(output)]) == 0
    )
    assert time.monotonic() - started < 120  # not minutes of allocating a 1e300 Hz grid
    stored = open_results(output)["bad_sweeps"]
    skipped = stored.record.experiment.skipped_sweeps
    assert {item.sweep_index: item.reason for item in skipped}.keys() == defects.keys()
    for item in skipped:
        assert item.source.endswith("cell.csv")
        assert defects[item.sweep_index] in item.reason
    assert f"cell.csv:{nan_line}" in skipped[-1].reason
    good = [index for index in range(13) if index not in defects]
    assert [spectrum.sweep_index for spectrum in stored.spectra] == good
    assert stored.stage("fit").attrs["complete"]
    assert np.all(stored.stage("fit").sweeps["ok"])


def test_reprocess_screens_stored_defective_sweeps(reference: Path, tmp_path: Path) -> None:
    """A file written before screening existed (defective sweep in raw/) still reprocesses."""
    output = tmp_path / "old.h5"
    shutil.copy(reference, output)
    with h5py.File(output, "r+") as handle:
        raw = handle[f"experiments/{NAME}/raw"]
        z_real = raw["z_real_ohm"][()]
        z_real[raw["offsets"][2] + 3] = 1e300
        raw["z_real_ohm"][...] = z_real
    changed = replace(CONFIG, drt=replace(CONFIG.drt, lam=0.5))
    report = reprocess(output, changed)
    assert [item.sweep_index for item in report.experiments[0].skipped_sweeps] == [2]
    assert len(open_results(output)[NAME].spectra) == len(open_results(reference)[NAME].spectra) - 1


# ------------------------------------------------------ 4. damaged chunks, kills


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_damaged_chunk_is_recomputed(folder: Path, tmp_path: Path, damage: str) -> None:
    slow = _slow()
    # No periodic publish: a resume takes the sweeps a published file holds from the
    # file, so whether it reads the damaged chunks would depend on the timing.
    slow = replace(slow, executor=replace(slow.executor, publish_interval_s=3600.0))
    output = tmp_path / "out.h5"
    command = ("run", folder, "-c", _config_file(tmp_path, slow), "-o", output)
    process = _start(tmp_path, *command)
    _wait_for(lambda: len(_saved_chunks(output)) >= 4, process, "chunks were saved")
    _kill(process)
    for path in _saved_chunks(output)[:2]:
        data = path.read_bytes()
        path.write_bytes(
            {"empty": b"", "truncated": data[: len(data) // 2], "garbage": os.urandom(len(data))}[
                damage
            ]
        )
    resumed = subprocess.run(_cli(*command), capture_output=True, text=True, env=_environment())
    assert resumed.returncode == 0, resumed.stderr
    assert "discarding unreadable saved chunk" in resumed.stderr
    uninterrupted = tmp_path / "uninterrupted.h5"
    run([folder], slow, uninterrupted)
    _assert_same(uninterrupted, output)


@pytest.mark.parametrize("moment", ["raw data published", "3 chunks", "25 of 42 chunks"])
def test_killed_at_several_moments_resumes_to_the_same_results(
    folder: Path, tmp_path: Path, moment: str
) -> None:
    slow = _slow()
    output = tmp_path / "out.h5"
    command = ("run", folder, "-c", _config_file(tmp_path, slow), "-o", output)
    process = _start(tmp_path, *command)
    wanted = {"raw data published": 0, "3 chunks": 3, "25 of 42 chunks": 25}[moment]
    _wait_for(lambda: output.exists() and len(_saved_chunks(output)) >= wanted, process, moment)
    _kill(process)
    assert len(open_results(output)[NAME].spectra) == 14  # the published file opens
    resumed = subprocess.run(_cli(*command), capture_output=True, text=True, env=_environment())
    assert resumed.returncode == 0, resumed.stderr
    uninterrupted = tmp_path / "uninterrupted.h5"
    run([folder], slow, uninterrupted)
    _assert_same(uninterrupted, output)
    assert not output.with_name(output.name + ".parts").exists()
    assert not output.with_name(output.name + ".lock").exists()


# ---------------------------------------------------------- 6. non-UTF-8 names


def test_non_utf8_file_and_folder_names(folder: Path, tmp_path: Path) -> None:
    cell = Path(os.fsdecode(os.fsencode(tmp_path) + b"/cell_\xff\xfe"))
    cell.mkdir()
    odd = os.fsdecode(b"run_\xe9\xff_01_GEIS_C01.mpt")
    shutil.copy(folder / GEIS, cell / odd)
    output = tmp_path / "out.h5"
    completed = subprocess.run(
        _cli("run", cell, "-c", _config_file(tmp_path, CONFIG), "-o", output),
        capture_output=True,
        env=_environment(),
    )
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    (name,) = open_results(output).experiments
    assert name == "cell_\ufffd\ufffd"
    sources = {spectrum.source for spectrum in open_results(output)[name].spectra}
    assert sources == {str(cell / odd)}  # the undecodable bytes survive the round trip
    info = subprocess.run(_cli("info", output), capture_output=True, env=_environment())
    assert info.returncode == 0, info.stderr.decode(errors="replace")


# ------------------------------------------------------- 7. one writer per output


def test_second_run_on_one_output_refuses_and_a_stale_lock_is_taken_over(
    folder: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out.h5"
    lock = output.with_name("out.h5.lock")
    process = _start(tmp_path, "run", folder, "-c", _config_file(tmp_path, _slow()), "-o", output)
    _wait_for(lambda: lock.exists() and lock.read_text().strip(), process, "the lock was taken")
    # Hold the first run inside its lock (a fast machine could finish it before the second starts).
    os.kill(process.pid, signal.SIGSTOP)
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    second = subprocess.run(
        _cli("run", other, "-c", _config_file(tmp_path, CONFIG), "-o", output),
        capture_output=True,
        text=True,
        env=_environment(),
    )
    assert second.returncode == EXIT_BAD_INPUT
    assert f"another geis-pipeline run (PID {process.pid}" in second.stderr
    _kill(process)
    assert lock.read_text().split()[0] == str(process.pid)  # left behind: stale now
    third = subprocess.run(
        _cli("run", other, folder, "-c", _config_file(tmp_path, CONFIG), "-o", output),
        capture_output=True,
        text=True,
        env=_environment(),
    )
    assert third.returncode == 0, third.stderr
    assert "stale lock" in third.stderr
    assert set(open_results(output).experiments) == {NAME, "other"}
    assert not lock.exists()


def test_lock_in_process(tmp_path: Path) -> None:
    output = tmp_path / "out.h5"
    with OutputLock(output):
        with pytest.raises(StoreError, match=f"PID {os.getpid()}"), OutputLock(output):
            pass
    with OutputLock(output):  # released
        pass


# ---------------------------------------------------- 8. transactional reprocess


def test_killed_reprocess_leaves_the_old_results(reference: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.h5"
    shutil.copy(reference, output)
    with h5py.File(output) as handle:
        old_config = handle.attrs["config_toml"]
    old = _arrays(output)
    changed = replace(_slow(), drt=replace(CONFIG.drt, lam=0.7))
    command = ("reprocess", output, "-c", _config_file(tmp_path, changed))
    process = _start(tmp_path, *command)
    _wait_for(lambda: len(_saved_chunks(output)) >= 4, process, "chunks were saved")
    _kill(process)
    with h5py.File(output) as handle:
        assert handle.attrs["config_toml"] == old_config
    for key, values in _arrays(output).items():  # the old results, whole
        if values.dtype != object:
            np.testing.assert_array_equal(values, old[key], err_msg=key)
    resumed = subprocess.run(_cli(*command), capture_output=True, text=True, env=_environment())
    assert resumed.returncode == 0, resumed.stderr
    stages = open_results(output)[NAME].record.stages
    assert stages["drt"].config_hash == stage_hashes(changed)["drt"]
    assert stages["drt"].attrs["complete"]


# -------------------------------------- 9. orphan workers, stale temporary files


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return children


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_workers_exit_when_the_orchestrator_is_killed(folder: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.h5"
    process = _start(
        tmp_path, "run", folder, "-c", _config_file(tmp_path, _slow(workers=2)), "-o", output
    )
    _wait_for(lambda: len(_saved_chunks(output)) >= 1, process, "the workers computed")
    workers = _children(process.pid)
    assert workers
    _kill(process)
    deadline = time.monotonic() + 10
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, workers))


def test_stale_temporary_files_are_removed(folder: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.h5"
    stale = tmp_path / ".out.h5.999999.tmp"
    stale.write_bytes(b"half a file")
    parts = ChunkStore(output).folder(NAME)
    parts.mkdir(parents=True)
    half_chunk = parts / ".kk-0-0-4-x.npz.999999.tmp"
    half_chunk.write_bytes(b"half a chunk")
    unrelated = tmp_path / ".other.h5.999999.tmp"
    unrelated.write_bytes(b"not ours")
    run([folder], CONFIG, output)
    assert not stale.exists() and not half_chunk.exists()
    assert unrelated.exists()


# ------------------------------------------------------ 10. store validation


def _damaged_copy(reference: Path, tmp_path: Path, damage) -> Path:
    path = tmp_path / "damaged.h5"
    shutil.copy(reference, path)
    with h5py.File(path, "r+") as handle:
        damage(handle[f"experiments/{NAME}"])
    return path


DAMAGES = {
    "missing freq": (lambda group: group["raw"].__delitem__("freq_hz"), "raw/freq_hz"),
    "missing config hash": (
        lambda group: group["fit"].attrs.__delitem__("config_hash"),
        "config_hash",
    ),
    "missing parameter names": (
        lambda group: group["fit"].attrs.__delitem__("parameter_names"),
        "parameter_names",
    ),
    "short offsets": (
        lambda group: (
            group["raw"].__delitem__("offsets"),
            group["raw"].create_dataset("offsets", data=np.array([0, 5, 3])),
        ),
        "raw/offsets",
    ),
    "missing tracking": (lambda group: group.__delitem__("tracking"), "tracking/"),
    "bad stderr": (
        lambda group: (
            group["fit"].__delitem__("stderr"),
            group["fit"].create_dataset("stderr", data=np.zeros(3)),
        ),
        "fit/",
    ),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_malformed_result_file_is_a_store_error_in_every_command(
    reference: Path, tmp_path: Path, damage: str, capsys
) -> None:
    change, named = DAMAGES[damage]
    path = _damaged_copy(reference, tmp_path, change)
    with pytest.raises(StoreError, match=named):
        open_results(path)
    config = str(_config_file(tmp_path, CONFIG))
    for command in (
        ["info", str(path)],
        ["report", str(path), "-o", str(tmp_path / "report")],
        ["reprocess", str(path), "-c", config],
    ):
        assert main([*command, "--quiet"]) == EXIT_BAD_INPUT, command
        assert named in capsys.readouterr().err


# ------------------------------------------------ 11. an experiment named ".."


def test_experiment_named_dotdot(reference: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "hostile.h5"
    shutil.copy(reference, path)
    with h5py.File(path, "r+") as handle:
        handle["experiments"].move(NAME, "..")
    assert main(["reprocess", str(path), "-c", str(_config_file(tmp_path, CONFIG))]) == 3
    assert "not a valid experiment name" in capsys.readouterr().err
    assert sorted(item.name for item in tmp_path.iterdir()) == ["config.toml", "hostile.h5"]
    # And the chunk store never turns a name into a path outside .parts/.
    store = ChunkStore(tmp_path / "out.h5")
    for name in ("..", "../..", "/etc", "a/../../b", "."):
        assert store.folder(name).parent == store.root


# ------------------------------------------------------------------ 12. config


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[track]\nreference_step = -3", "track.reference_step"),
        ("[drt]\npoints_per_decade = 2000", "drt.points_per_decade"),
        ("[executor]\nworkers = 0", "executor.workers"),
        ("[executor]\nchunk_size = 0", "executor.chunk_size"),
        ("[kk]\nmax_freq_hz = -1.0", "kk.max_freq_hz"),
        ("[track]\ntemperature_K = 1e6", "track.temperature_K"),
        ('[executor.tls]\nca_file = "ca.pem"', "executor.tls"),
    ],
)
def test_config_ranges(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.key == key


def test_reference_step_beyond_the_experiment(folder: Path, tmp_path: Path, capsys) -> None:
    config = replace(CONFIG, track=replace(CONFIG.track, reference_step=1_000_000))
    output = tmp_path / "out.h5"
    code = main(["run", str(folder), "-c", str(_config_file(tmp_path, config)), "-o", str(output)])
    assert code == EXIT_BAD_INPUT
    assert "track.reference_step" in capsys.readouterr().err
    within = replace(CONFIG, track=replace(CONFIG.track, reference_step=13))
    run([folder], within, output)
    loss = open_results(output)[NAME].tracking(as_frame=False)["contact_loss_R"]
    assert loss[13] == 0 and np.isfinite(loss).all()


def test_workers_zero_on_the_command_line(folder: Path, tmp_path: Path, capsys) -> None:
    output = tmp_path / "out.h5"
    assert main(["run", str(folder), "--workers", "0", "-o", str(output)]) == EXIT_BAD_INPUT
    assert "executor.workers" in capsys.readouterr().err


_names = st.text(max_size=12)
_values = st.floats(min_value=1.0, max_value=1999.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    temperatures=st.dictionaries(_names, _values, max_size=4),
    currents=st.dictionaries(_names, st.floats(0.001, 10.0), max_size=3),
    scheduler=st.one_of(st.none(), st.text(max_size=20)),
)
def test_config_toml_round_trip(temperatures, currents, scheduler) -> None:
    """[experiments.<any name>] tables and free text survive config_to_toml -> parse_config."""
    experiments = {
        name: ExperimentSettings(temperature_K=value) for name, value in temperatures.items()
    }
    for name, value in currents.items():
        experiments[name] = replace(
            experiments.get(name, ExperimentSettings()), current_density_mA_cm2=value
        )
    config = replace(
        Config(),
        experiments=experiments,
        executor=replace(Config().executor, scheduler=scheduler),
    )
    assert parse_config(config_to_toml(config)) == config


def test_toml_keys_are_escaped() -> None:
    hostile = {'a\\"b': 300.0, "x]\n[executor]\nworkers = 99": 310.0, "é": 320.0}
    experiments = {name: ExperimentSettings(temperature_K=value) for name, value in hostile.items()}
    config = replace(Config(), experiments=experiments)
    back = parse_config(config_to_toml(config))
    assert {name: item.temperature_K for name, item in back.experiments.items()} == hostile
    assert back.executor.workers == Config().executor.workers


# ---------------------------------------------- 13. a cut-off last line


def test_cut_off_last_line_is_left_for_the_next_run(folder: Path, tmp_path: Path) -> None:
    text = (folder / GEIS).read_bytes().rstrip(b"\r\n")
    whole = tmp_path / "whole.mpt"
    whole.write_bytes(text)  # complete, only its last line end missing: read whole
    cut_text = text[: text.rstrip().rfind(b"E") + 3]  # "...E-002" -> "...E-0"
    assert cut_text.count(b"\n") == text.count(b"\n")
    cut = tmp_path / "cut.mpt"
    cut.write_bytes(cut_text)
    complete_rows = tmp_path / "rows.mpt"
    complete_rows.write_bytes(text[: text.rfind(b"\n") + 1])
    points = {
        path.name: sum(spectrum.n_points for spectrum in gp.read_spectra(path))
        for path in (whole, cut, complete_rows)
    }
    assert points["cut.mpt"] == points["rows.mpt"] == points["whole.mpt"] - 1
    for left, right in zip(gp.read_spectra(cut), gp.read_spectra(complete_rows), strict=True):
        np.testing.assert_array_equal(left.z, right.z)


# -------------------------------------------------- Dask security, disk full


def test_dask_tls_settings_reach_the_client(monkeypatch, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    import distributed

    from geis_pipeline.pipeline import executors

    seen = {}

    class FakeClient:
        def __init__(self, address, security=None):
            seen["address"], seen["security"] = address, security

        def __enter__(self):
            raise RuntimeError("stop here")

        def __exit__(self, *exc_info):
            return False

    monkeypatch.setattr(distributed, "Client", FakeClient)
    config = parse_config(
        f"""
[executor]
kind = "dask"
scheduler = "tls://scheduler:8786"
[executor.tls]
ca_file = "{tmp_path / "ca.pem"}"
cert_file = "{tmp_path / "client.pem"}"
key_file = "{tmp_path / "client.key"}"
"""
    )
    assert parse_config(config_to_toml(config)) == config
    with pytest.raises(RuntimeError, match="stop here"):
        with executors.Executor(config).submit([object(), object()]):  # type: ignore[list-item]
            pass
    security = seen["security"]
    assert seen["address"] == "tls://scheduler:8786"
    assert security.tls_ca_file == str(tmp_path / "ca.pem")
    assert security.tls_client_cert == str(tmp_path / "client.pem")
    assert security.tls_client_key == str(tmp_path / "client.key")
    assert security.require_encryption


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # h5py's cleanup
def test_disk_full_keeps_the_previous_file(folder: Path, reference: Path, tmp_path: Path) -> None:
    """On a small tmpfs (where one can be mounted): a write that fails leaves the old file."""
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a size-limited tmpfs here")
    try:
        output = mount / "out.h5"
        shutil.copy(reference, output)
        before = output.read_bytes()
        # Room for the lock and a few chunks, not for the new file beside the old one.
        free = shutil.disk_usage(mount).free
        (mount / "filler").write_bytes(b"\0" * max(0, free - len(before) // 2))
        # In a process of its own, as users meet it: a failed HDF5 write must not take
        # the interpreter down (exit 139) and must say what went wrong.
        changed = _config_file(tmp_path, replace(CONFIG, drt=replace(CONFIG.drt, lam=0.9)))
        completed = subprocess.run(
            _cli("reprocess", output, "-c", changed),
            capture_output=True,
            text=True,
            env=_environment(),
        )
        assert completed.returncode in (EXIT_BAD_INPUT, EXIT_INTERNAL), completed.stderr
        assert "No space left" in completed.stderr or "space" in completed.stderr.lower()
        assert output.read_bytes() == before
        assert [item.name for item in mount.iterdir() if item.name.endswith(".tmp")] == []
    finally:
        subprocess.run(["umount", str(mount)], check=False)
