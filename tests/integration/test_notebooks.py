"""The notebooks execute top to bottom (nbclient) on a tiny demo run."""

from __future__ import annotations

import importlib.util
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")


NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.fixture(scope="module", params=["small_run", "placeholder_run"])
def demo_run(request) -> Path:
    """The demo run, and one whose files state EC-Lab's placeholder area (results in ohm)."""
    return request.getfixturevalue(request.param)


def _widget_outputs(notebook) -> list[dict]:
    """What the notebook's ipywidgets Output widgets hold (the slider's step view)."""
    state = notebook.metadata.get("widgets", {}).get(
        "application/vnd.jupyter.widget-state+json", {}
    )
    return [
        output
        for model in state.get("state", {}).values()
        if model.get("model_name") == "OutputModel"
        for output in model["state"].get("outputs", [])
    ]


def _execute(name: str) -> tuple[list[dict], list[dict]]:
    """Run one notebook in a fresh kernel: its image outputs, and its widgets' images."""
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
    cell_outputs = [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    ]
    widget_outputs = _widget_outputs(notebook)
    # an exception inside a widget callback lands in the widget, not the cell
    assert not [o for o in cell_outputs + widget_outputs if o.get("output_type") == "error"]
    # and nothing warned (a warning is printed on the cell's stderr)
    stderr = [o.get("text", "") for o in cell_outputs + widget_outputs if o.get("name") == "stderr"]
    assert not [text for text in stderr if "Warning" in text or "WARNING" in text], stderr

    def images(outputs: list[dict]) -> list[dict]:
        return [output for output in outputs if "image/png" in output.get("data", {})]

    return images(cell_outputs), images(widget_outputs)


def test_notebooks_execute(demo_run: Path, monkeypatch) -> None:
    monkeypatch.setenv("GEIS_RESULTS", str(demo_run))
    before = demo_run.stat().st_mtime_ns
    names = ["inspect_experiment", "reprocess"]
    # two kernels side by side: the suite stays fast
    with ThreadPoolExecutor(max_workers=2) as pool:
        executed = dict(zip(names, pool.map(_execute, names), strict=True))
    images = {name: cells + widgets for name, (cells, widgets) in executed.items()}
    # every figure and the time steps (with ipywidgets: the slider's first step)
    assert len(images["inspect_experiment"]) >= 10
    assert len(images["reprocess"]) >= 3  # the comparison and two DRT maps
    assert demo_run.stat().st_mtime_ns == before  # the input run is left as it was
    if importlib.util.find_spec("ipywidgets") is not None:
        # the slider path (the test extra installs ipywidgets): its first step is drawn
        assert len(executed["inspect_experiment"][1]) == 1
