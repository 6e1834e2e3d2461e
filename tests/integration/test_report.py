"""The HTML report and the ``geis-pipeline report`` command, from a small demo run."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from geis_pipeline.cli import EXIT_BAD_INPUT, EXIT_OK, main
from geis_pipeline.report import EXPERIMENT_FIGURES, write_report
from geis_pipeline.results import open_results


@pytest.fixture(scope="module")
def run_file(small_run: Path) -> Path:
    return small_run


@pytest.fixture(scope="module")
def report(run_file: Path, tmp_path_factory) -> Path:
    calls = []
    index = write_report(
        run_file, tmp_path_factory.mktemp("out"), progress=lambda *a: calls.append(a)
    )
    assert calls[-1][0] == calls[-1][1]  # progress ends at done == total
    return index


def test_every_figure_written_and_listed(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    for stem, caption, _, _ in EXPERIMENT_FIGURES:
        png = report.parent / f"experiment_{stem}.png"
        assert png.is_file(), png
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data) > 10_000
        assert f"experiment_{stem}.png" in page
        assert caption.replace("'", "&#x27;") in page
        # embedded: the page is self-contained
        assert base64.b64encode(data).decode("ascii") in page
    assert not re.search(r"<img src=\"(?!data:)", page)
    assert "Figures not drawn" not in page


def test_report_holds_summary_and_config(report: Path, run_file: Path) -> None:
    page = report.read_text(encoding="utf-8")
    results = open_results(run_file)
    experiment = results["experiment"]
    assert "<pre class='config'>" in page
    for line in results.config_toml.splitlines():
        if line.strip():
            assert line.replace('"', "&quot;").replace("'", "&#x27;") in page
    assert f"<th>spectra</th><td>{len(experiment.spectra)}</td>" in page
    # the quality table, read back from the stored stages
    quality = experiment.quality()
    assert f"<th>circuit fits</th><td>{quality.n_fit_failed} of {len(experiment.spectra)}" in page
    assert f"<th>KK truncated</th><td>{quality.n_kk_truncated} low-frequency" in page
    assert f"<th>Kramers-Kronig</th><td>{quality.n_kk_failed} of" in page
    # The bulk arc peaks above the top frequency (7 MHz): no DRT R_gb is a measurement.
    unresolved = {process: (n, n_not) for process, n, n_not in quality.drt_unresolved}
    assert unresolved["gb"][1] == unresolved["gb"][0] > 0
    assert unresolved["int"][1] < 0.02 * unresolved["int"][0]
    assert f"<th>DRT unresolved</th><td>gb {unresolved['gb'][1]} of" in page
    for key in experiment.summary:
        if key != "segments":  # the segments have their own table
            assert f"<th>{key}</th>" in page
    for segment in experiment.summary["segments"]:
        assert f"<th>steps {segment['first_step']}..{segment['last_step']}</th>" in page
    assert "<th>experiment kind</th><td>galvanostatic strip" in page
    assert "Experiment experiment" in page


def test_cli_report(run_file: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    # the figures themselves are drawn above and by the demo test of test_cli.py: here only
    # the command's wiring (arguments, default folder, message) is checked
    import geis_pipeline.report

    calls = []

    def fake(results, out_dir, *, progress=None):
        calls.append((Path(results), Path(out_dir)))
        return Path(out_dir) / "index.html"

    monkeypatch.setattr(geis_pipeline.report, "write_report", fake)
    out = tmp_path / "cli-report"
    assert main(["report", str(run_file), "-o", str(out), "-q"]) == EXIT_OK
    assert f"Report in {out / 'index.html'}" in capsys.readouterr().out
    assert main(["report", str(run_file), "-q"]) == EXIT_OK
    assert calls == [(run_file, out), (run_file, run_file.with_name("run-report"))]


def test_cli_report_missing_file(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path / "missing.h5"), "-o", str(tmp_path)]) == EXIT_BAD_INPUT
    assert "missing.h5" in capsys.readouterr().err


def test_figures_drawn_by_forked_processes_are_the_same(run_file: Path, tmp_path: Path) -> None:
    """A large file's figures are drawn by several processes: the same pictures."""
    serial = write_report(run_file, tmp_path / "serial", workers=1).parent
    forked = write_report(run_file, tmp_path / "forked", workers=2).parent
    pngs = sorted(path.name for path in serial.glob("*.png"))
    assert pngs and pngs == sorted(path.name for path in forked.glob("*.png"))
    for name in pngs:
        assert (serial / name).read_bytes() == (forked / name).read_bytes(), name
