"""Segment and cycle tables of a simulated strip / rest / plate / rest / strip experiment."""

from __future__ import annotations

import numpy as np
import pytest

import geis_pipeline as gp
from geis_pipeline.config import parse_config
from geis_pipeline.export import experiment_tables
from geis_pipeline.pipeline import run
from geis_pipeline.simulate_protocol import ProtocolSettings, write_protocol

PROTOCOL = (("strip", 24), ("ocv", 14), ("plate", 24), ("ocv", 14), ("strip", 24))


@pytest.fixture(scope="module")
def protocol_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("protocol") / "cell"
    protocol = write_protocol(folder, ProtocolSettings(segments=PROTOCOL))
    output = folder.parent / "run.h5"
    config = parse_config('[executor]\nkind = "serial"\n[drt]\nsolver = "NNLS"\nlam = 0.3\n')
    run([folder], config, output)
    return protocol, gp.open_results(output)["cell"]


def test_segment_table_against_truth(protocol_run) -> None:
    protocol, results = protocol_run
    table = results.segments()
    assert list(table.label) == [label for label, _ in PROTOCOL]
    for truth, (_, row) in zip(protocol.segments, table.iterrows(), strict=True):
        assert (row.first_step, row.last_step) == (truth["first_step"], truth["last_step"])
        assert row.start_s == pytest.approx(truth["start_s"])
        assert row.stop_s == pytest.approx(truth["stop_s"])
        if truth["label"] == "ocv":
            assert abs(row.charge_mAh_cm2) < 1e-6
        else:
            assert row.charge_mAh_cm2 == pytest.approx(truth["charge_mAh_cm2"], rel=0.02)
        for key in ("R_int_start_ohm_cm2", "R_int_end_ohm_cm2", "C_int_start_F_cm2",
                    "C_int_end_F_cm2"):  # fmt: skip
            assert row[key] == pytest.approx(truth[key], rel=0.02), key
        assert row.contact_loss_C_end == pytest.approx(truth["contact_loss_C_end"], abs=0.02)


def test_every_rest_after_a_current_gets_its_relaxation_fits(protocol_run) -> None:
    protocol, results = protocol_run
    table = results.segments()
    rests = [truth for truth in protocol.segments if "relaxation_tau_s" in truth]
    assert len(rests) == 2
    fitted = table[table.label == "ocv"]
    for truth, (_, row) in zip(rests, fitted.iterrows(), strict=True):
        assert row.relaxation_tau_s == pytest.approx(truth["relaxation_tau_s"], rel=0.02)
        assert row.relaxation_recovered_fraction == pytest.approx(
            truth["relaxation_recovered_fraction"], rel=0.02
        )
        assert row.ocv_tau_s == pytest.approx(truth["ocv_tau_s"], rel=0.02)
        assert row.relaxation_n_steps == row.n_steps
    loaded = table[table.label != "ocv"]
    assert loaded.relaxation_tau_s.isna().all() and loaded.ocv_tau_s.isna().all()
    # The summary's relaxation is the first rest's.
    assert results.summary["relaxation_tau_s"] == pytest.approx(
        fitted.relaxation_tau_s.iloc[0], rel=1e-6
    )


def test_cycle_table_from_the_dc_record(protocol_run) -> None:
    protocol, results = protocol_run
    cycles = results.cycles()
    assert list(cycles.cycle) == [1, 2]
    assert list(cycles.complete) == [True, False]
    strip, plate = protocol.segments[0], protocol.segments[2]
    first = cycles.iloc[0]
    assert first.charge_strip_mAh_cm2 == pytest.approx(strip["charge_mAh_cm2"], rel=0.02)
    assert first.charge_plate_mAh_cm2 == pytest.approx(plate["charge_mAh_cm2"], rel=0.02)
    assert first.charge_ratio == pytest.approx(1.0, rel=0.02)
    assert first.R_int_start_ohm_cm2 == pytest.approx(strip["R_int_start_ohm_cm2"], rel=0.02)
    assert first.overpotential_strip_max_V > 0 and first.overpotential_plate_max_V > 0
    assert np.isnan(cycles.iloc[1].charge_plate_mAh_cm2)
    # Both tables reach the export.
    tables = experiment_tables(results)
    assert {"segments", "cycles"} <= set(tables)
