"""A large text table parsed in two halves at once gives the rows and errors of one parse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import geis_pipeline.ingest._table as table
from geis_pipeline.errors import IngestError
from geis_pipeline.ingest._table import ColumnSpec, parse_file_table

_COLUMNS = [ColumnSpec(0, "a"), ColumnSpec(2, "c", "c/unit"), ColumnSpec(3, "d")]


def _write(path: Path, rows: np.ndarray, newline: str, header_lines: int, tail: str = "") -> Path:
    header = [f"header line {index}" for index in range(header_lines - 1)] + ["a\tb\tc\td\t"]
    body = ["\t".join(f"{value:.7E}" for value in row) + "\t" for row in rows]
    path.write_bytes((newline.join(header + body) + newline + tail).encode("latin-1"))
    return path


def _parse(path: Path, header_lines: int, split: bool, monkeypatch) -> object:
    """The table (or the error message) of one parse, or of the two-halves parse."""
    import threading

    monkeypatch.setattr(table, "SPLIT_BYTES", 1 if split else 1 << 40)
    monkeypatch.setattr(table, "spare_core", lambda: True)
    # Threads other tests left behind would turn the split off (the forked half only loads).
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    try:
        return parse_file_table(path, header_lines + 1, _COLUMNS)
    except IngestError as exc:
        return str(exc)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.integers(1, 400),
    st.sampled_from(["\n", "\r\n"]),
    st.integers(1, 6),
    st.sampled_from(["", "1.0\t2.0", "1.5E-0"]),
    st.integers(0, 2**31 - 1),
)
def test_two_halves_give_the_rows_of_one_parse(
    tmp_path: Path, monkeypatch, n_rows, newline, header_lines, tail, seed
) -> None:
    rows = np.random.default_rng(seed).normal(size=(n_rows, 4)) * 1e3
    path = _write(tmp_path / "table.txt", rows, newline, header_lines, tail)
    monkeypatch.setattr(table, "SPLIT_BYTES", 1)
    if n_rows > 1 and not tail:
        assert table._split_point(path, header_lines, None) is not None
    results = []
    load_halves = table._load_halves

    def recorded(*arguments):
        results.append(load_halves(*arguments))
        return results[-1]

    monkeypatch.setattr(table, "_load_halves", recorded)
    whole, halves = (_parse(path, header_lines, split, monkeypatch) for split in (False, True))
    if n_rows > 1 and not tail:
        assert results[-1] is not None  # the second parse was split
    assert whole.columns.keys() == halves.columns.keys()
    for name in whole.columns:
        np.testing.assert_array_equal(halves.columns[name], whole.columns[name])
    np.testing.assert_array_equal(
        halves.columns["c"][:n_rows], np.float64([float(f"{value:.7E}") for value in rows[:, 2]])
    )


@pytest.mark.parametrize("defect", ["nan-text", "short", "blank", "bad"])
@pytest.mark.parametrize("where", [0.1, 0.9])
def test_a_defect_in_either_half_is_reported_as_by_one_parse(
    tmp_path: Path, monkeypatch, defect: str, where: float
) -> None:
    rows = np.arange(2000 * 4, dtype=float).reshape(2000, 4)
    path = _write(tmp_path / "table.txt", rows, "\r\n", 3)
    lines = path.read_bytes().split(b"\r\n")
    line = 3 + int(where * 2000)
    lines[line] = {
        "nan-text": b"nan\t1\t2\t3",
        "short": b"1\t2",
        "blank": b"",
        "bad": b"1\t2\tx3\t4",
    }[defect]
    path.write_bytes(b"\r\n".join(lines))
    whole, halves = (_parse(path, 3, split, monkeypatch) for split in (False, True))
    if isinstance(whole, str):
        assert halves == whole and f":{line + 1}, column" in whole
    else:
        for name in whole.columns:
            np.testing.assert_array_equal(halves.columns[name], whole.columns[name])


def test_no_split_when_other_threads_run_or_no_core_is_spare(monkeypatch) -> None:
    import threading

    monkeypatch.setattr(threading, "active_count", lambda: 1)  # other tests may leave threads
    monkeypatch.setattr(table, "spare_core", lambda: True)
    assert table._fork_context() is not None
    monkeypatch.setattr(table, "spare_core", lambda: False)
    assert table._fork_context() is None
    monkeypatch.setattr(table, "spare_core", lambda: True)
    monkeypatch.setattr(threading, "active_count", lambda: 2)
    assert table._fork_context() is None


@pytest.mark.parametrize(("idle_ticks", "spare"), [(20, True), (15, True), (10, False), (2, False)])
def test_a_spare_core_is_more_than_this_process_idle(monkeypatch, idle_ticks, spare) -> None:
    import os

    import geis_pipeline._cores as cores

    # 2 cores, 20 ticks elapsed: this process sleeps while sampling, so its core is idle too.
    samples = iter([(100, 1000), (100 + idle_ticks, 1020)])
    monkeypatch.setattr(cores, "_cpu_times", lambda: next(samples))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(cores, "SAMPLE_S", 0.0)
    assert cores.spare_core() is spare
