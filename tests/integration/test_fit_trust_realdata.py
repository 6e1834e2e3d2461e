"""The fit's verdict on a real file: geis.mpt (Li | PEO, one interface arc of ~145 ohm cm2)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import geis_pipeline as gp
from geis_pipeline.config import parse_config
from geis_pipeline.pipeline import run


@pytest.fixture(scope="module")
def geis_runs(realdata, tmp_path_factory):
    folder = tmp_path_factory.mktemp("geis") / "geis"
    folder.mkdir()
    shutil.copy(realdata / "geis.mpt", folder / "geis.mpt")
    serial = "[executor]\nkind = 'serial'\n"
    default = parse_config(serial)
    # What a user who looked at the spectra writes: the reference electrode's artefact
    # above ~50 kHz cropped, one series R and two arcs, and residuals up to 2.5 % RMS
    # accepted (this Li | PEO cell fits to 1-2.4 %, its KK residual is 0.2-0.4 %).
    tuned = parse_config(
        serial + "[kk]\nmax_freq_hz = 5e4\n"
        '[fit]\ncircuit = "R0-p(R1,CPE1)-p(R2,CPE2)"\nnoise_floor = 0.025\n'
        '[fit.roles]\nR0 = "bulk"\nR1 = "int"\n'
    )
    tables = {}
    for name, config in (("default", default), ("tuned", tuned)):
        output = folder.parent / f"{name}.h5"
        run([folder], config, output)
        tables[name] = gp.open_results(output)["geis"].tracking()
    return tables


def test_default_config_never_marks_the_tail_as_the_interface(geis_runs) -> None:
    table = geis_runs["default"]
    first = table.iloc[0]
    # Step 0's interface is the ~145 ohm cm2, ~3e-6 F/cm2 arc, or the step is not ok.
    if first.fit_ok:
        assert first.R_int_ohm_cm2 == pytest.approx(145, rel=0.1)
    assert first.R_int_ohm_cm2 == pytest.approx(145, rel=0.1)
    assert 1e-6 < first.C_int_F_cm2 < 1e-5
    # Never the low-frequency tail (C ~ 1e-2 F/cm2) marked ok.
    ok = table.fit_ok.to_numpy(bool)
    assert not np.any(table.C_int_F_cm2.to_numpy()[ok] > 1e-4)
    # Every not-ok step says why.
    assert all(reason for reason in table.fit_reason[~ok])


def test_a_suitable_config_makes_the_right_answer_reachable(geis_runs) -> None:
    table = geis_runs["tuned"]
    ok = table.fit_ok.to_numpy(bool)
    kk_ok = table.kk_ok.to_numpy(bool)
    # Every step that passes KK fits; only KK failures are not ok.
    assert ok[kk_ok].mean() >= 0.9, set(table.fit_reason[kk_ok])
    assert ok[0]
    r_int = table.R_int_ohm_cm2.to_numpy()
    assert r_int[0] == pytest.approx(145, rel=0.05)
    # Stripping: R_int rises over the run, C_int falls (contact loss).
    assert r_int[ok][-1] > 1.5 * r_int[0]
    c_int = table.C_int_F_cm2.to_numpy()
    assert c_int[ok][-1] < c_int[0]
