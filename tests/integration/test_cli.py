"""The geis-pipeline command: run, demo and simulate, exit codes and messages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import geis_pipeline as gp
from geis_pipeline.cli import EXIT_BAD_INPUT, EXIT_OK, main


@pytest.fixture
def real_folder(tmp_path: Path, realdata: Path) -> Path:
    folder = tmp_path / "experiment"
    folder.mkdir()
    shutil.copy(realdata / "geis.mpt", folder)
    return folder


def test_run_prints_summary(real_folder: Path, capsys) -> None:
    assert main(["run", str(real_folder), "--quiet"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "spectra          61 (flagged: 1 incomplete)" in out
    assert "electrode area   1.13 cm2" in out
    assert "DC setpoint      0.38 mA = 336.3 uA/cm2" in out


def test_run_reports_skipped_file(real_folder: Path, capsys) -> None:
    (real_folder / "bad.csv").write_text("freq,Re,Im\n1000,abc,1\n")
    assert main(["run", str(real_folder)]) == EXIT_OK
    captured = capsys.readouterr()
    assert "skipped 1" in captured.out
    assert "bad.csv:2" in captured.out
    assert main(["run", str(real_folder), "--strict"]) == EXIT_BAD_INPUT
    assert "bad.csv:2" in capsys.readouterr().err


def test_run_bad_folder_exit_code(tmp_path: Path, capsys) -> None:
    assert main(["run", str(tmp_path / "missing")]) == EXIT_BAD_INPUT
    assert "not a folder" in capsys.readouterr().err


def test_run_bad_area(real_folder: Path, capsys) -> None:
    assert main(["run", str(real_folder), "--area-cm2", "0"]) == EXIT_BAD_INPUT
    assert "area_cm2" in capsys.readouterr().err


def test_usage_error_exit_code() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["frobnicate"])
    assert caught.value.code == 2


def test_demo_writes_and_reads_example(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "demo"
    assert main(["demo", "--folder", str(folder), "--sweeps", "40", "--quiet"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "Example experiment" in out
    assert (folder / "truth.npz").is_file()
    experiment = gp.read_experiment(folder)
    assert f"spectra          {len(experiment)} " in out
    assert experiment.metadata.techniques[0] == "GEIS"


def test_console_script_runs(real_folder: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "geis_pipeline", "run", str(real_folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == EXIT_OK, completed.stderr
    assert "spectra          61" in completed.stdout
