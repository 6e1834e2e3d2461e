"""The notebooks execute top to bottom (nbclient) on a tiny demo run."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")


NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.fixture(scope="module")
def demo_run(small_run: Path) -> Path:
    return small_run


def _execute(name: str) -> list[dict]:
    """Run one notebook in a fresh kernel; return its image outputs."""
    path = NOTEBOOKS / f"{name}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    # outputs are not committed
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute(env=dict(os.environ))  # the kernel sees GEIS_RESULTS
    return [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]


def test_notebooks_execute(demo_run: Path, monkeypatch) -> None:
    monkeypatch.setenv("GEIS_RESULTS", str(demo_run))
    before = demo_run.stat().st_mtime_ns
    names = ["inspect_experiment", "reprocess"]
    # two kernels side by side: the suite stays fast
    with ThreadPoolExecutor(max_workers=2) as pool:
        images = dict(zip(names, pool.map(_execute, names), strict=True))
    assert len(images["inspect_experiment"]) >= 10  # every figure and the time steps
    assert len(images["reprocess"]) >= 3  # the comparison and two DRT maps
    assert demo_run.stat().st_mtime_ns == before  # the input run is left as it was
