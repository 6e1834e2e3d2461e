"""Reading experiment folders: linked-technique merge by absolute time, bad files, options."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

import geis_pipeline as gp

HEADER_LINES = 76


@pytest.fixture(scope="module")
def geis_lines(realdata: Path) -> list[str]:
    return (realdata / "geis.mpt").read_text(encoding="latin-1").splitlines()


def _write(path: Path, lines: list[str]) -> Path:
    path.write_bytes("\r\n".join(lines).encode("latin-1") + b"\r\n")
    return path


def _shift_start(header: list[str], hours: float) -> list[str]:
    """Move 'Acquisition started on' by ``hours``."""
    shifted = []
    for line in header:
        if line.startswith("Acquisition started on"):
            start = datetime(2021, 3, 3, 20, 40, 41) + timedelta(hours=hours)
            line = f"Acquisition started on : {start:%m/%d/%Y %H:%M:%S}.000"
        shifted.append(line)
    return shifted


def _shift_times(rows: list[str], names: list[str], seconds: float) -> list[str]:
    column = names.index("time/s")
    shifted = []
    for row in rows:
        cells = row.split("\t")
        cells[column] = repr(float(cells[column]) + seconds)
        shifted.append("\t".join(cells))
    return shifted


@pytest.fixture
def linked_folder(tmp_path: Path, geis_lines: list[str]) -> Path:
    """geis.mpt cut into linked-technique files, as EC-Lab writes a sequence.

    _01_GEIS: sweeps 31..61 (written first on purpose: order must come from time),
    _02_OCV: the 29 current-hold rows as a DC-only file (no freq column),
    _03_GEIS: sweeps 1..30, with its acquisition start one hour later and its
    time column one hour earlier (the same absolute times).
    """
    header, body = geis_lines[:HEADER_LINES], geis_lines[HEADER_LINES:]
    names = header[-1].split("\t")
    hold, sweeps = body[:29], body[29:]
    first_part, second_part = sweeps[: 30 * 41], sweeps[30 * 41 :]
    _write(tmp_path / "cell_01_GEIS_C01.mpt", header + second_part)
    keep = [index for index, name in enumerate(names) if name not in ("freq/Hz", "")]
    ocv_header = [*header[:-1], "\t".join(names[index] for index in keep)]
    ocv_header[3] = "Open Circuit Voltage"
    ocv_rows = ["\t".join(row.split("\t")[index] for index in keep) for row in hold]
    _write(tmp_path / "cell_02_OCV_C01.mpt", ocv_header + ocv_rows)
    _write(
        tmp_path / "cell_03_GEIS_C01.mpt",
        _shift_start(header, 1.0) + _shift_times(first_part, names, -3600.0),
    )
    (tmp_path / "cell.mps").write_text("EC-Lab settings file: not data, ignored")
    return tmp_path


def test_linked_files_merge_by_absolute_time(linked_folder: Path, realdata: Path) -> None:
    experiment = gp.read_experiment(linked_folder)
    whole = gp.read_spectra(realdata / "geis.mpt")
    assert len(experiment) == 61
    np.testing.assert_allclose(experiment.time_s, [spectrum.time_s for spectrum in whole])
    for merged, original in zip(experiment.spectra, whole, strict=True):
        np.testing.assert_array_equal(merged.z, original.z)
        np.testing.assert_allclose(merged.point_time_s, original.point_time_s, rtol=1e-12)
    assert experiment.metadata.start_time == datetime(2021, 3, 3, 20, 40, 41)
    assert experiment.metadata.techniques == ("OCV", "GEIS", "GEIS")
    assert [Path(source).name for source in experiment.metadata.sources] == [
        "cell_02_OCV_C01.mpt",
        "cell_03_GEIS_C01.mpt",
        "cell_01_GEIS_C01.mpt",
    ]
    # Every row of the three files is in the DC record, in time order.
    assert len(experiment.dc_record) == 2528
    assert np.all(np.diff(experiment.dc_record.time_s) >= 0)
    assert experiment.metadata.area_cm2 == pytest.approx(1.13)
    assert experiment.metadata.current_setpoint_mA == pytest.approx(0.38)
    # The last sweep of the first-written file is still the incomplete one.
    assert [spectrum.incomplete for spectrum in experiment.spectra] == [False] * 60 + [True]
    assert experiment.skipped == ()


def test_corrupt_file_is_skipped_and_reported(linked_folder: Path) -> None:
    (linked_folder / "broken_04_GEIS_C01.mpt").write_bytes(b"EC-Lab ASCII FILE\r\nNb header")
    progress_calls: list[tuple[int, int, str]] = []
    experiment = gp.read_experiment(
        linked_folder, progress=lambda done, total, name: progress_calls.append((done, total, name))
    )
    assert len(experiment) == 61
    (skipped,) = experiment.skipped
    assert skipped.path.endswith("broken_04_GEIS_C01.mpt")
    assert "broken_04_GEIS_C01.mpt:2" in skipped.reason
    assert [call[:2] for call in progress_calls] == [(index, 4) for index in range(1, 5)]
    with pytest.raises(gp.IngestError, match="broken_04_GEIS_C01"):
        gp.read_experiment(linked_folder, strict=True)


def test_area_override(linked_folder: Path) -> None:
    assert gp.read_experiment(linked_folder, area_cm2=0.5).metadata.area_cm2 == 0.5
    with pytest.raises(gp.GeisPipelineError) as caught:
        gp.read_experiment(linked_folder, area_cm2=-1.0)
    assert caught.value.key == "area_cm2"


def test_folder_without_impedance(tmp_path: Path) -> None:
    with pytest.raises(gp.NoImpedanceDataError, match="no readable impedance data"):
        gp.read_experiment(tmp_path)
    with pytest.raises(gp.GeisPipelineError, match="not a folder"):
        gp.read_experiment(tmp_path / "missing")


def test_mixed_formats_folder(tmp_path: Path, realdata: Path) -> None:
    for name in ("geis.mpr", "PEIS_SSB.mpr", "EISGALV_EISTest3.DTA", "exampleDataZPlot.z"):
        (tmp_path / name).write_bytes((realdata / name).read_bytes())
    experiment = gp.read_experiment(tmp_path)
    assert len(experiment) == 61 + 1 + 1 + 1
    assert np.all(np.diff(experiment.time_s) >= 0)
    # Dated files come first, in absolute time: 2018 ZPlot, 2021 geis, 2024 Gamry, 2025 PEIS.
    assert [Path(source).name for source in experiment.metadata.sources] == [
        "exampleDataZPlot.z",
        "geis.mpr",
        "EISGALV_EISTest3.DTA",
        "PEIS_SSB.mpr",
    ]


def test_entries_named_like_instrument_files_that_are_not_files_are_listed(
    linked_folder: Path,
) -> None:
    """A folder, a broken link, a link loop and a FIFO named *.mpt were ignored without a word."""
    (linked_folder / "folder_05_GEIS_C01.mpt").mkdir()
    (linked_folder / "broken_06_GEIS_C01.mpt").symlink_to(linked_folder / "nowhere.mpt")
    loop = linked_folder / "loop_07_GEIS_C01.mpt"
    loop.symlink_to(loop)
    os.mkfifo(linked_folder / "fifo_08_GEIS_C01.mpt")  # reading it would block the run
    experiment = gp.read_experiment(linked_folder)
    assert len(experiment) == 61
    reasons = {Path(item.path).name: item.reason for item in experiment.skipped}
    assert "a folder" in reasons["folder_05_GEIS_C01.mpt"]
    assert "broken or looping link" in reasons["broken_06_GEIS_C01.mpt"]
    assert "broken or looping link" in reasons["loop_07_GEIS_C01.mpt"]
    assert "not a regular file" in reasons["fifo_08_GEIS_C01.mpt"]
    with pytest.raises(gp.IngestError, match="broken_06_GEIS_C01"):  # the first, sorted
        gp.read_experiment(linked_folder, strict=True)
