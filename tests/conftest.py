"""Shared test fixtures: the real instrument files in ../shared/realdata."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

#: shared/ sits beside the checkout (CI clones the repo next to it).
REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


@pytest.fixture(scope="session")
def realdata() -> Path:
    """Folder holding the real instrument files; the suite fails loudly without it."""
    if not REALDATA.is_dir():
        pytest.fail(f"real instrument files not found at {REALDATA}: clone next to shared/")
    return REALDATA


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Path:
    """A result file from a short simulated run (40 stripping + 4 relaxation sweeps).

    Shared by the figure, report and notebook tests: one pipeline run for all.
    """
    from geis_pipeline.pipeline import run
    from geis_pipeline.simulate import SimulationSettings, write_experiment

    folder = tmp_path_factory.mktemp("small_run") / "experiment"
    write_experiment(folder, SimulationSettings(seed=1, n_sweeps=40, n_relaxation=4))
    output = folder.parent / "run.h5"
    run([folder], serial_config(), output)
    return output


# ------------------------------------------------------- EC-Lab text files for the cases


def _mpt_text(
    technique: str,
    columns: dict[str, object],
    *,
    area_cm2: float | None,
    settings: tuple[tuple[str, str], ...] = (),
) -> str:
    """An EC-Lab .mpt file: the header lines the reader uses, then the columns."""
    import numpy as np

    titles = {
        "GEIS": "Galvano Electrochemical Impedance Spectroscopy",
        "PEIS": "Potentio Electrochemical Impedance Spectroscopy",
    }
    header = [
        "EC-Lab ASCII FILE",
        "",
        "",
        titles[technique],
        "",
        "Acquisition started on : 01/02/2024 10:00:00.000",
    ]
    if area_cm2 is not None:
        header.append(f"Electrode surface area : {area_cm2:.3f} cm²")
    header += [f"{key:<20}{value:<20}" for key, value in settings]
    header += ["", "\t".join(columns) + "\t"]
    header[1] = f"Nb header lines : {len(header)}"
    table = np.column_stack([np.asarray(values, dtype=float) for values in columns.values()])
    rows = ["\t".join(f"{value:.7E}" for value in row) for row in table]
    return "\r\n".join(header + rows) + "\r\n"


def write_mpt(
    path: Path,
    technique: str,
    freq,
    z,
    *,
    current_mA,
    potential_V,
    area_cm2: float | None = 0.785,
    settings: tuple[tuple[str, str], ...] = (),
    sweep_interval_s: float = 60.0,
) -> Path:
    """Write sweeps (``z``: one complex array per sweep over ``freq``) as an EC-Lab .mpt.

    ``current_mA`` and ``potential_V`` give one value per point (arrays of the
    sweeps' shape) or per sweep.
    """
    import numpy as np

    z = np.asarray(z)
    n_sweeps, n_points = z.shape
    current = np.broadcast_to(np.asarray(current_mA, dtype=float).reshape(n_sweeps, -1), z.shape)
    potential = np.broadcast_to(np.asarray(potential_V, dtype=float).reshape(n_sweeps, -1), z.shape)
    time = np.arange(n_sweeps)[:, None] * sweep_interval_s + np.linspace(0, 20, n_points)
    columns = {
        "freq/Hz": np.tile(freq, n_sweeps),
        "Re(Z)/Ohm": z.real.ravel(),
        "-Im(Z)/Ohm": -z.imag.ravel(),
        "time/s": time.ravel(),
        "<Ewe>/V": potential.ravel(),
        "<I>/mA": current.ravel(),
        "(Q-Qo)/mA.h": np.zeros(z.size),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        _mpt_text(technique, columns, area_cm2=area_cm2, settings=settings).encode("latin-1")
    )
    return path


@pytest.fixture(scope="session")
def mpt_writer():
    """:func:`write_mpt`: EC-Lab text files for cases the real files do not cover."""
    return write_mpt


def set_area_line(folder: Path, text: str | None) -> None:
    """Rewrite the ``Electrode surface area`` line of every .mpt in ``folder``.

    ``text`` is the new value (e.g. ``"0.001 cm²"``, EC-Lab's placeholder) or None to
    drop the area (the line becomes a comment; the header keeps its line count).
    """
    for path in folder.glob("*.mpt"):
        lines = path.read_bytes().decode("latin-1").split("\r\n")
        for index, line in enumerate(lines):
            if line.startswith("Electrode surface area"):
                lines[index] = (
                    f"Electrode surface area : {text}" if text else "Comments : area not typed"
                )
        path.write_bytes("\r\n".join(lines).encode("latin-1"))


@pytest.fixture(scope="session")
def area_line_setter():
    """:func:`set_area_line`."""
    return set_area_line


def serial_config():
    """The defaults, serial, with the DRT solved by NNLS (fast, the same optimum)."""
    from geis_pipeline.config import Config

    config = Config()
    return replace(
        config,
        executor=replace(config.executor, kind="serial"),
        drt=replace(config.drt, solver="NNLS"),
    )


@pytest.fixture(scope="session")
def placeholder_run(tmp_path_factory) -> Path:
    """A short simulated run whose files state EC-Lab's placeholder area (0.001 cm2)."""
    from geis_pipeline.pipeline import run
    from geis_pipeline.simulate import SimulationSettings, write_experiment

    folder = tmp_path_factory.mktemp("placeholder_run") / "experiment"
    write_experiment(folder, SimulationSettings(seed=2, n_sweeps=24, n_relaxation=5))
    set_area_line(folder, "0.001 cm²")
    output = folder.parent / "run.h5"
    run([folder], serial_config(), output)
    return output
