"""The papers' study workflows end to end: compositions, an alloy's OCV, a voltage cutoff.

krauskopf2020 compares Li and Li0.9Mg0.1 at several currents, each composition with its own
c0 and D_eff (0.8e-11 and 2.3e-11 cm2/s): simulated folders of both, described by
``[experiments.<name>]`` tables, go through ``pipeline.run``; Sand's fit per composition must
give each D_eff within 5 %. An alloy's 25 mV OCV must not show up as a DC-AC gap.
"""

from __future__ import annotations

import numpy as np
import pytest

from geis_pipeline.config import parse_config
from geis_pipeline.errors import ConfigError
from geis_pipeline.pipeline import run
from geis_pipeline.results import open_results
from geis_pipeline.simulate import SimulationSettings, sand_time_s, write_experiment

# composition -> (D_eff cm2/s, c0 mol/cm3, OCV V); krauskopf2020 Fig. 5, DOMAIN.md.
COMPOSITIONS = {"Li": (0.8e-11, 0.0768, 0.0), "Li0.9Mg0.1": (2.3e-11, 0.0696, 0.025)}
CURRENTS = (0.05, 0.1, 0.2)  # mA/cm2, as krauskopf2020: t0 of 2.4-38 h for Li
SWEEPS_TO_T0 = 36  # sweeps spaced so that each experiment reaches 1.1 t0 in this many
R_DCAC_TRUE = 20.0


def _name(composition: str, current: float) -> str:
    return f"{composition.replace('.', '_')}_{int(current * 1000)}uA"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("compositions")
    folders, tables = [], []
    for seed, (composition, (diffusivity, c0, ocv)) in enumerate(COMPOSITIONS.items()):
        for current in CURRENTS:
            name = _name(composition, current)
            t0_s = sand_time_s(current, diffusivity, c0)
            settings = SimulationSettings(
                sweep_interval_s=1.1 * t0_s / SWEEPS_TO_T0,
                current_density_mA_cm2=current,
                D_eff_cm2_s=diffusivity,
                c0_mol_cm3=c0,
                ocv_V=ocv,
                R_dcac_ohm_cm2=R_DCAC_TRUE,
                overhead_per_point_s=0.01,
                hold_s=2.0,
                n_relaxation=0,
                seed=10 * seed + int(current * 10),
            )
            write_experiment(root / name, settings)
            folders.append(root / name)
            tables.append(
                f'[experiments.{name}]\ncomposition = "{composition}"\n'
                f"c0_mol_cm3 = {c0}\nocv_V = {ocv}\n"
            )
    config = parse_config(
        '[executor]\nkind = "serial"\n[drt]\nsolver = "NNLS"\nlam = 0.3\n'
        "[track]\nr_int_threshold_ohm_cm2 = 10000.0\n" + "\n".join(tables)
    )
    output = root / "study.h5"
    run(folders, config, output)
    return open_results(output)


def test_sand_per_composition_gives_each_D_eff(study) -> None:
    sand = study.study["sand"]
    for composition, (diffusivity, c0, _) in COMPOSITIONS.items():
        entry = sand[composition]
        assert entry["n_experiments"] == len(CURRENTS)
        assert entry["c0_mol_cm3"] == pytest.approx(c0)
        assert entry["D_eff_cm2_s"] == pytest.approx(diffusivity, rel=0.05), composition
        assert 0 < entry["D_eff_stderr_cm2_s"] < 0.1 * diffusivity


def test_alloy_ocv_is_not_a_dcac_gap(study) -> None:
    """(E - E_ocv)/i - resistances: the 25 mV of Li0.9Mg0.1 would add ~25 ohm cm2 at 1 mA/cm2."""
    for composition, (_, _, ocv) in COMPOSITIONS.items():
        for current in CURRENTS:
            run_ = study[_name(composition, current)]
            table = run_.tracking()
            strip = (table.segment == "strip") & table.fit_ok
            gap = np.median(table.R_dcac_ohm_cm2[strip])
            assert gap == pytest.approx(R_DCAC_TRUE, rel=0.05), (composition, current)
            assert run_.summary["E_ocv_V"] == pytest.approx(ocv)
            assert run_.summary["composition"] == composition


def test_unknown_experiment_table_names_the_folders(tmp_path) -> None:
    settings = SimulationSettings(n_sweeps=3, n_relaxation=0, hold_s=2.0)
    write_experiment(tmp_path / "Li_a", settings)
    config = parse_config('[executor]\nkind = "serial"\n[experiments.Li_b]\ncomposition = "Li"\n')
    with pytest.raises(ConfigError, match="Li_a") as caught:
        run([tmp_path / "Li_a"], config, tmp_path / "out.h5")
    assert caught.value.key == "experiments.Li_b"


def test_no_run_wide_sand_line_through_several_compositions(study) -> None:
    sand = study.study["sand"]
    assert "D_eff_cm2_s" not in sand  # only the per-composition fits
    assert set(sand) == set(COMPOSITIONS)


def test_study_figures(study) -> None:
    from geis_pipeline import plot_study

    overlay = plot_study.overlay(study, x="thickness")
    resistance_ax = overlay.axes[0]
    assert len(resistance_ax.lines) == len(COMPOSITIONS) * len(CURRENTS)
    assert resistance_ax.get_yscale() == "log"
    sand = plot_study.sand_by_composition(study)
    labels = [text.get_text() for text in sand.axes[0].get_legend().get_texts()]
    assert len(labels) == len(COMPOSITIONS) and all("D$_{eff}$" in label for label in labels)


def test_report_has_the_per_composition_sand_plot(study) -> None:
    """The study page draws Sand's plot per composition, not one line through both."""
    from geis_pipeline.report import _study_jobs

    jobs = {stem: draw for stem, _, _, draw in _study_jobs(study)}
    assert "study_sand_by_composition.png" in jobs
    labels = [text.get_text() for text in jobs["study_sand_by_composition.png"]().axes[0]
              .get_legend().get_texts()]  # fmt: skip
    assert len(labels) == len(COMPOSITIONS)
