"""suggest and export on the shared real files, through the command line.

For each file: ``suggest FILE -o my.toml --plots DIR`` proposes a circuit and
writes a config that loads; ``run`` with it (the file alone in a folder) gives
fits that pass the verdict on every sweep that passes Kramers-Kronig.
geis.mpt (Li | PEO, reference-electrode artefact above ~50 kHz) must be
cropped below the artefact and give the ~145 ohm cm2 interface of step 0.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest

import geis_pipeline as gp
from geis_pipeline.cli import EXIT_BAD_INPUT, EXIT_OK, main
from geis_pipeline.config import load_config
from geis_pipeline.export import read_table

FILES = ["geis.mpt", "PEIS_SSB.mpr", "EISGALV_EISTest3.DTA", "exampleDataZPlot.z"]


@pytest.fixture(scope="module", params=FILES)
def suggested(request, realdata, tmp_path_factory):
    """(file, config path, plot folder, run output, stdout of suggest) per real file."""
    name = request.param
    base = tmp_path_factory.mktemp(name.replace(".", "_"))
    folder = base / "experiment"
    folder.mkdir()
    shutil.copy(realdata / name, folder / name)
    config, plots, output = base / "my.toml", base / "plots", base / "run.h5"
    log = base / "suggest.txt"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = main(
            ["suggest", str(folder / name), "-o", str(config), "--plots", str(plots), "-q"]
        )
    log.write_text(buffer.getvalue())
    assert status == EXIT_OK, buffer.getvalue()
    run_config = base / "run.toml"
    run_config.write_text(config.read_text() + '\n[executor]\nkind = "serial"\n')
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", str(folder), "-c", str(run_config), "-o", str(output), "-q"]) == 0
    return name, config, plots, output, buffer.getvalue()


def test_suggested_config_loads_and_the_run_passes_the_verdict(suggested) -> None:
    _, config, plots, output, printed = suggested
    loaded = load_config(config)
    assert loaded.fit.circuit in printed
    table = gp.open_results(output)["experiment"].tracking()
    kk_ok = table.kk_ok.to_numpy(bool)
    fit_ok = table.fit_ok.to_numpy(bool)
    assert kk_ok.any()
    # Every sweep that passes KK gets a fit marked ok (a real file may have one odd sweep).
    assert fit_ok[kk_ok].mean() >= 0.95, set(table.fit_reason[kk_ok & ~fit_ok])
    assert sorted(path.name for path in plots.iterdir()) == [
        "suggest_bode.png",
        "suggest_drt.png",
        "suggest_nyquist.png",
    ]


def test_geis_mpt_is_cropped_below_the_artefact_and_finds_the_interface(suggested) -> None:
    name, config, _, output, printed = suggested
    if name != "geis.mpt":
        pytest.skip("geis.mpt only")
    loaded = load_config(config)
    # DOMAIN.md: the reference electrode's artefact reaches down to ~50 kHz.
    assert loaded.kk.max_freq_hz is not None and 1e4 <= loaded.kk.max_freq_hz <= 6e4
    assert "Z' < 0 there" in printed
    table = gp.open_results(output)["experiment"].tracking()
    assert table.R_int_ohm_cm2.iloc[0] == pytest.approx(145, rel=0.05)
    assert 1e-6 < table.C_int_F_cm2.iloc[0] < 1e-5
    r_int = table.R_int_ohm_cm2.to_numpy()[table.fit_ok.to_numpy(bool)]
    assert r_int[-1] > 1.5 * r_int[0]  # stripping: the interface resistance rises


def test_export_of_the_run_reads_back(suggested, tmp_path) -> None:
    _, _, _, output, _ = suggested
    assert main(["export", str(output), "-o", str(tmp_path / "tables"), "-q"]) == EXIT_OK
    run = gp.open_results(output)["experiment"]
    back = read_table(tmp_path / "tables" / "experiment" / "tracking.csv")
    np.testing.assert_array_equal(back.columns, run.tracking().columns)
    assert (tmp_path / "tables" / "README.txt").is_file()


def test_suggest_and_export_errors_exit_3(tmp_path, capsys) -> None:
    assert main(["suggest", str(tmp_path / "missing.mpt")]) == EXIT_BAD_INPUT
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.h5"), "-o", str(tmp_path)]) == EXIT_BAD_INPUT
    bad = tmp_path / "bad.z"
    bad.write_text("not impedance\n")
    assert main(["suggest", str(bad)]) == EXIT_BAD_INPUT


def test_suggest_of_a_folder_and_a_usage_error(realdata, tmp_path, capsys) -> None:
    folder = tmp_path / "zplot"
    folder.mkdir()
    shutil.copy(realdata / "exampleDataZPlot.z", folder)
    assert main(["suggest", str(folder), "--area-cm2", "0.5", "-o", str(tmp_path / "a.toml")]) == 0
    assert load_config(tmp_path / "a.toml").experiment.area_cm2 == 0.5
    with pytest.raises(SystemExit) as error:
        main(["export", str(tmp_path / "x.h5")])  # -o is required
    assert error.value.code == 2
    assert Path(tmp_path / "a.toml").read_text().startswith("# Suggested by")
