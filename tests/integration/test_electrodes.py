"""Both electrodes of a 3-electrode cell, each through KK, fit, DRT and tracking.

A simulated cell whose working electrode is stripped while its counter plates (then a
rest, the current reversed, a rest, stripping again), both spectra written in EC-Lab's
3-electrode columns, must give each electrode's R_int and C_int against its own truth;
the counter of the real ``geis.mpt`` must be read and tracked end to end.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import geis_pipeline as gp
from geis_pipeline.config import parse_config
from geis_pipeline.errors import GeisPipelineError
from geis_pipeline.pipeline import run
from geis_pipeline.simulate_protocol import ProtocolSettings, write_protocol

SERIAL = '[executor]\nkind = "serial"\n[drt]\nsolver = "NNLS"\nlam = 0.3\n'


@pytest.fixture(scope="module")
def three_electrode(tmp_path_factory):
    folder = tmp_path_factory.mktemp("three") / "cell"
    protocol = write_protocol(folder, ProtocolSettings(counter=True))
    output = folder.parent / "run.h5"
    report = run([folder], parse_config(SERIAL), output)
    return protocol, gp.open_results(output)["cell"], report, folder, output


@pytest.mark.parametrize("electrode", ["we", "ce"])
def test_each_electrode_follows_its_own_truth(three_electrode, electrode) -> None:
    protocol, results, _, _, _ = three_electrode
    truth = protocol.truth if electrode == "we" else protocol.truth_ce
    table = results.tracking(electrode=electrode)
    assert table.fit_ok.all()
    for column in ("R_int_ohm_cm2", "C_int_F_cm2"):
        error = table[column].to_numpy() / truth[column] - 1
        assert np.median(np.abs(error)) < 0.01, (electrode, column)
    # Labels are the electrode's own: the counter plates while the working electrode strips.
    assert list(table.segment) == list(truth["label"])


def test_working_electrode_strips_while_counter_plates(three_electrode) -> None:
    protocol, results, _, _, _ = three_electrode
    first = protocol.segments[0]
    steps = slice(first["first_step"], first["last_step"] + 1)
    we = results.quantity("R_int").values[steps]
    ce = results.quantity("R_int", electrode="ce").values[steps]
    assert we[-1] > 1.5 * we[0]  # stripping: contact lost
    assert ce[-1] < 0.9 * ce[0]  # plating: contact regained
    # The counter's potential and current are its own: cathodic while it plates.
    counter = results.tracking(electrode="ce")
    assert np.all(counter.E_V.to_numpy()[steps] < 0)
    assert np.all(counter.current_density_mA_cm2.to_numpy()[steps] < 0)
    assert results.electrode("ce").summary["electrode"] == "ce"
    assert results.summary["electrode"] == "we"


def test_reader_api_and_rerun(three_electrode) -> None:
    _, results, report, folder, output = three_electrode
    assert results.electrodes == ("we", "ce")
    assert report.experiments[0].counter is not None
    assert results.fit_parameters(electrode="ce").shape[0] == len(results.spectra)
    tau, gamma = results.drt_map(electrode="ce")
    assert gamma.shape == (len(results.spectra), tau.size)
    assert not np.allclose(gamma, results.drt_map()[1])
    assert results.quality("ce").n_fit_failed == 0
    with pytest.raises(GeisPipelineError, match="electrode"):
        results.tracking(electrode="re")
    # Running again reuses both electrodes' stored results.
    again = run([folder], parse_config(SERIAL), output)
    assert again.experiments[0].n_sweeps_computed == 0
    assert again.experiments[0].counter.n_sweeps_computed == 0


def test_interfaces_setting_is_for_two_electrode_cells(three_electrode, tmp_path) -> None:
    _, results, _, folder, _ = three_electrode
    output = tmp_path / "run.h5"
    run([folder], parse_config(SERIAL + "[track]\ninterfaces = 2\n"), output)
    halved = gp.open_results(output)["cell"]
    # Each electrode's spectrum against the reference holds one interface: not halved.
    assert halved.summary["interfaces"] == 1
    np.testing.assert_allclose(
        halved.quantity("R_int", electrode="ce").values,
        results.quantity("R_int", electrode="ce").values,
    )


def test_real_counter_electrode_is_read_and_tracked(realdata, tmp_path) -> None:
    folder = tmp_path / "geis"
    folder.mkdir()
    shutil.copy(realdata / "geis.mpt", folder / "geis.mpt")
    # geis.mpt's counter spectrum is one arc (~150-200 ohm cm2, ~3e-6 F/cm2) on a series R.
    config = parse_config(
        SERIAL + "[kk]\nmax_freq_hz = 5e4\n"
        '[fit]\ncircuit = "R0-p(R1,CPE1)-p(R2,CPE2)"\nnoise_floor = 0.025\n'
        '[fit.roles]\nR0 = "bulk"\nR1 = "int"\n'
        '[counter_fit]\ncircuit = "R0-p(R1,CPE1)"\nnoise_floor = 0.025\n'
        '[counter_fit.roles]\nR0 = "bulk"\nR1 = "int"\n'
    )
    run([folder], config, tmp_path / "run.h5")
    results = gp.open_results(tmp_path / "run.h5")["geis"]
    assert results.electrodes == ("we", "ce")
    counter = results.tracking(electrode="ce")
    assert len(counter) == 61
    assert results.electrode("ce").summary["experiment_kind"] == "galvanostatic plate"
    ok = counter.fit_ok.to_numpy(bool)
    assert ok.sum() >= 10
    r_int = counter.R_int_ohm_cm2.to_numpy()
    assert np.all((r_int[ok] > 120) & (r_int[ok] < 260))
    c_int = counter.C_int_F_cm2.to_numpy()
    assert np.all((c_int[ok] > 1e-6) & (c_int[ok] < 1e-5))
    # The counter's interface changes far less than the stripped working electrode's.
    we = results.tracking()
    we_ok = we.fit_ok.to_numpy(bool)
    we_r = we.R_int_ohm_cm2.to_numpy()[we_ok]
    assert we_r[-1] / we_r[0] > 1.5
    assert r_int[ok].max() / r_int[ok].min() < 1.3


def test_figures_and_report_show_both_electrodes(three_electrode, tmp_path) -> None:
    from geis_pipeline import plot
    from geis_pipeline.report import write_report

    _, results, _, _, output = three_electrode

    def labels(figure) -> list[str]:
        return [line.get_label() for axis in figure.axes for line in axis.lines]

    assert "R_int counter" in labels(plot.evolution(results))
    assert any(label.startswith("counter") for label in labels(plot.capacitance(results)))
    assert any(label.startswith("counter") for label in labels(plot.contact_loss(results)))
    counter_map = plot.drt_map(results, electrode="ce")
    assert "counter electrode" in counter_map.axes[0].get_title()
    page = write_report(output, tmp_path / "report").read_text(encoding="utf-8")
    assert "Counter electrode (3-electrode cell)" in page
    assert "cell_nyquist_ce.png" in page and "cell_drt_map_ce.png" in page
    assert "Segment table" in page and "Cycles (DC record)" in page
