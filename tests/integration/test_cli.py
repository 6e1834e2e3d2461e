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


def test_run_prints_summary(real_folder: Path, tmp_path: Path, capsys) -> None:
    output = tmp_path / "geis.h5"
    config = tmp_path / "fit.toml"
    # geis.mpt is a Li | PEO cell with wiring artefacts above 100 kHz: crop them.
    config.write_text(
        '[kk]\nmax_freq_hz = 1e5\n[fit]\ncircuit = "R0-p(R1,CPE1)-p(R2,CPE2)"\n'
        '[fit.roles]\nR2 = "int"\n[fit.fixed]\n[executor]\nkind = "serial"\n'
    )
    assert main(["run", str(real_folder), "-c", str(config), "-o", str(output), "-q"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "spectra          61 (flagged: 1 incomplete)" in out
    assert "electrode area   1.13 cm2" in out
    assert "DC setpoint      0.38 mA = 336.3 uA/cm2" in out
    assert f"Results in {output}" in out
    assert main(["info", str(output)]) == EXIT_OK
    assert "fit (61 done)" in capsys.readouterr().out


def test_run_reports_skipped_file(real_folder: Path, capsys) -> None:
    (real_folder / "bad.csv").write_text("freq,Re,Im\n1000,abc,1\n")
    assert main(["run", str(real_folder), "--strict"]) == EXIT_BAD_INPUT
    assert "bad.csv:2" in capsys.readouterr().err


def test_bad_config_names_the_key(real_folder: Path, tmp_path: Path, capsys) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[fit]\nweighting = 'sigma'\n")
    assert main(["run", str(real_folder), "-c", str(config)]) == EXIT_BAD_INPUT
    assert "fit.weighting" in capsys.readouterr().err


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


def test_demo_writes_and_processes_example(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "demo"
    command = ["demo", "--folder", str(folder), "--sweeps", "20", "--executor", "serial", "-q"]
    assert main(command) == EXIT_OK
    out = capsys.readouterr().out
    assert "Example experiment" in out
    assert (folder / "experiment" / "truth.npz").is_file()
    experiment = gp.read_experiment(folder / "experiment")
    assert f"spectra          {len(experiment)} " in out
    assert experiment.metadata.techniques[0] == "GEIS"
    index = folder / "report" / "index.html"
    assert f"Report in {index}" in out
    assert "experiment_nyquist.png" in index.read_text(encoding="utf-8")
    results = gp.open_results(folder / "demo.h5")
    assert len(results["experiment"].tracking()) == len(experiment)


def test_module_entry_point_runs(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "geis_pipeline", "info", str(tmp_path / "missing.h5")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == EXIT_BAD_INPUT
    assert "missing.h5" in completed.stderr


def test_verbose_logs_the_package_steps(real_folder: Path, tmp_path: Path, capsys) -> None:
    config = tmp_path / "serial.toml"
    config.write_text('[executor]\nkind = "serial"\n[drt]\nsolver = "NNLS"\n')
    output = tmp_path / "verbose.h5"
    (real_folder / "bad.csv").write_text("freq,Re,Im\n1000,abc,1\n")
    assert main(["run", str(real_folder), "-c", str(config), "-o", str(output), "-v"]) == EXIT_OK
    err = capsys.readouterr().err
    name = real_folder.name
    assert "geis_pipeline.ingest: read geis.mpt: GEIS, 61 sweeps, 2528 DC rows" in err
    assert (
        f"geis_pipeline.pipeline.orchestrator: {name}: read 61 sweeps from 1 file(s) (1 skipped)"
        in err
    )
    assert f"{name}: sweeps 0-60 done (kk, fit, drt); 61 of 61" in err
    assert f"{name}: Kramers-Kronig " in err
    assert f"geis_pipeline.pipeline.assembly: {name}: tracked 61 steps" in err
    # info reads the skipped file back from the result file, with the reason
    assert main(["info", str(output), "-q"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "skipped file     " in out and "bad.csv:2" in out
    assert "circuit fits     " in out and "Kramers-Kronig   " in out


def test_verbose_silences_third_party_debug(small_run: Path, tmp_path: Path) -> None:
    # A fresh interpreter: logging is configured as the command configures it.
    out = tmp_path / "report"
    completed = subprocess.run(
        [sys.executable, "-m", "geis_pipeline.cli", "report", str(small_run), "-o", str(out), "-v"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "DEBUG geis_pipeline.report: drew experiment_nyquist.png" in completed.stderr
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    # matplotlib's font lookups (DEBUG) and PIL's are not shown; only ours
    assert all("geis_pipeline" in line for line in lines), lines[:5]


def test_verbose_handler_is_not_added_twice() -> None:
    import argparse
    import logging

    from geis_pipeline import cli

    package = logging.getLogger("geis_pipeline")
    before = list(package.handlers)
    try:
        for _ in range(2):
            cli._configure_logging(argparse.Namespace(verbose=True, quiet=False))
        assert len(package.handlers) == len(before) + 1 and not package.propagate
        cli._configure_logging(argparse.Namespace(verbose=False, quiet=False))
        assert package.handlers == before and package.propagate
    finally:
        cli._configure_logging(argparse.Namespace(verbose=False, quiet=False))


def test_a_latin1_config_is_an_error_naming_the_file_and_line(tmp_path: Path, capsys) -> None:
    """A Latin-1 accent in a comment (a Windows editor) escaped as a UnicodeDecodeError."""
    config = tmp_path / "cell.toml"
    config.write_bytes(b"[fit]\n# r\xe9sistance\nnoise_ratio = 2.5\n")
    code = main(["run", str(tmp_path), "-c", str(config), "-o", str(tmp_path / "out.h5")])
    assert code == EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert "cell.toml:2:" in error and "UTF-8" in error
    assert "Traceback" not in error


def test_outputs_that_are_files_are_errors_not_tracebacks(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "sim"
    assert main(["simulate", str(folder), "--sweeps", "4"]) == EXIT_OK
    assert main(["run", str(folder), "-o", str(tmp_path / "out.h5"), "-q"]) == EXIT_OK
    taken = tmp_path / "taken.txt"
    taken.write_text("keep me")
    capsys.readouterr()
    assert main(["report", str(tmp_path / "out.h5"), "-o", str(taken)]) == EXIT_BAD_INPUT
    assert main(["simulate", str(taken)]) == EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert error.count("taken.txt:") == 2 and "internal error" not in error
    assert "report folder is a file" in error and "not a folder" in error
    assert taken.read_text() == "keep me"


def test_ctrl_c_is_reported_with_its_own_exit_code(tmp_path: Path, monkeypatch, capsys) -> None:
    import geis_pipeline.cli as cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_process", interrupted)
    assert main(["run", str(tmp_path), "-o", str(tmp_path / "out.h5")]) == cli.EXIT_INTERRUPTED
    assert "interrupted" in capsys.readouterr().err


def test_a_crop_below_every_frequency_names_its_key(tmp_path: Path, capsys) -> None:
    """kk.max_freq_hz = 1e-300 failed deep in the DRT, naming an internal key 'tau_range'."""
    folder = tmp_path / "sim"
    assert main(["simulate", str(folder), "--sweeps", "4"]) == EXIT_OK
    config = tmp_path / "crop.toml"
    config.write_text("[kk]\nmax_freq_hz = 1e-300\n")
    capsys.readouterr()
    code = main(["run", str(folder), "-c", str(config), "-o", str(tmp_path / "out.h5"), "-q"])
    assert code == EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert "kk.max_freq_hz" in error and "lowest measured frequency" in error
    assert "tau_range" not in error
    assert not (tmp_path / "out.h5").exists()
