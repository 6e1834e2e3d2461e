"""Circuit suggestion against simulated truth: the papers' cells, the config it writes, errors.

Each cell type of :mod:`geis_pipeline.cells` (1-4 arcs, series bulk, CPE and
Warburg tails, a blocking spike, an inductive tail, Li-In's custom process, a
symmetric cell's two interfaces) is simulated with 0.5 % noise, three steps
(first, middle and last of a stripping series) and two seeds. The winner must
have the true number of processes with the right roles in >= 90 % of the
cases, and the config it writes must load and give the same fit.
"""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest

from geis_pipeline.cells import CELL_TYPES, simulate_cell
from geis_pipeline.config import Config, parse_config
from geis_pipeline.errors import SuggestError
from geis_pipeline.fit import fit_experiment
from geis_pipeline.suggest import format_ranking, suggest_circuit, suggestion_toml

NOISE = 0.005
SEEDS = (11, 12)
BUILTIN_ROLES = {"bulk", "gb", "int", "diffusion", "blocking"}


def _truth_roles(cell) -> set[str]:
    roles = {arc.role for arc in cell.arcs}
    if cell.series_R_ohm_cm2 > 0:
        roles.add(cell.series_role)
    if cell.tail is not None:
        roles.add(cell.tail_role)
    return roles


@pytest.fixture(scope="module")
def suggestions():
    """(cell name, seed) -> (series, suggestion) for every cell type and seed."""
    found = {}
    for name in sorted(CELL_TYPES):
        for seed in SEEDS:
            series = simulate_cell(name, n_steps=3, noise_rel=NOISE, seed=seed)
            result = suggest_circuit(
                [(series.freq, z) for z in series.z], area_cm2=series.cell.area_cm2, drt=False
            )
            found[name, seed] = (series, result)
    return found


def _right(series, result) -> tuple[bool, str]:
    """Whether the winner has the true processes, roles and interface (with what is wrong)."""
    cell, best = series.cell, result.best
    roles = {role for role in best.roles.values() if role not in ("cable", "series")}
    truth = _truth_roles(cell)
    if best.n_processes != cell.n_processes:
        return False, f"{best.circuit}: {best.n_processes} processes, truth {cell.n_processes}"
    # Built-in roles by name; a custom process of the truth (sei, ce) is a second arc of a
    # class for the suggestion (int2), so only their number must match.
    if roles & BUILTIN_ROLES != truth & BUILTIN_ROLES or len(roles - BUILTIN_ROLES) != len(
        truth - BUILTIN_ROLES
    ):
        return False, f"{best.circuit}: roles {sorted(roles)}, truth {sorted(truth)}"
    if "int" in truth:
        for step, fit in enumerate(best.fits):
            r_int = fit.roles["int"].R_ohm_cm2
            if not abs(r_int / series.truth["int"]["R_ohm_cm2"][step] - 1) <= 0.05:
                return False, f"{best.circuit}: R_int {r_int:.4g} at step {step}"
    return True, ""


def test_true_number_of_processes_ranked_first_with_the_right_roles(suggestions) -> None:
    outcomes = {key: _right(*value) for key, value in suggestions.items()}
    wrong = {key: why for key, (right, why) in outcomes.items() if not right}
    share = 1 - len(wrong) / len(outcomes)
    assert share >= 0.9, wrong


def test_the_winner_is_sound_and_its_verdicts_ok_on_clean_data(suggestions) -> None:
    for (name, seed), (_, result) in suggestions.items():
        best = result.best
        assert best.sound, (name, seed, best.circuit, best.reasons)
        assert best.ok, (name, seed, best.circuit, [fit.status for fit in best.fits])
        # Ranked: no sound candidate with adequate residuals has a lower BIC.
        for other in result.candidates[1:]:
            if other.sound and other.residual_rms <= best.residual_rms:
                assert other.bic >= best.bic, (name, other.circuit)


def test_second_arc_of_one_class_gets_its_own_role_and_window(suggestions) -> None:
    series, result = suggestions["li_in_3proc", SEEDS[0]]
    best = result.best
    custom = [role for role in best.role_classes if role not in ("bulk", "gb", "int")]
    assert len(custom) == 1
    role = custom[0]
    low, high = best.role_tau_windows[role]
    truth_tau = series.truth["sei"]["tau_s"][0]
    assert low < truth_tau < high
    assert not low < series.truth["int"]["tau_s"][0] < high
    r = best.fits[0].roles[role].R_ohm_cm2
    assert r == pytest.approx(series.truth["sei"]["R_ohm_cm2"][0], rel=0.05)


def _default_of(config: Config, section: str, key: str, circuit_set: bool):
    if section == "fit" and circuit_set and key in ("roles", "fixed", "bounds"):
        return {}
    return getattr(getattr(config, section), key)


@pytest.mark.parametrize("name", ["mann_cpe_tail", "li_in_3proc", "blocking_spike"])
def test_config_loads_holds_only_changes_and_reproduces_the_fit(suggestions, name) -> None:
    series, result = suggestions[name, SEEDS[0]]
    text = suggestion_toml(result, source="simulated")
    config = parse_config(text)
    document = tomllib.loads(text)
    defaults = Config()
    circuit_set = "circuit" in document.get("fit", {})
    for section, table in document.items():
        for key, value in table.items():
            resolved = getattr(getattr(config, section), key)
            assert resolved != _default_of(defaults, section, key, circuit_set), (section, key)
            assert value is not None
    # Every key carries a comment saying why (the tables of bounds say it on their header).
    table = ""
    for line in text.splitlines():
        if line.startswith("["):
            table = line
        elif "=" in line and not line.startswith("#"):
            assert "#" in line or "#" in table, line
    assert config.fit.circuit == result.best.circuit
    assert dict(config.fit.roles) == dict(result.best.roles)
    # A run with the config fits the whole series: the interface (where there is one) right.
    fits = fit_experiment(
        [(series.freq, z) for z in series.z],
        config.fit.circuit,
        area_cm2=series.cell.area_cm2,
        **config.fit.fit_keywords(),
    )
    assert all(fit.ok for fit in fits), [fit.status for fit in fits]
    if "int" in series.truth:
        r_int = np.array([fit.roles["int"].R_ohm_cm2 for fit in fits])
        np.testing.assert_allclose(r_int, series.truth["int"]["R_ohm_cm2"], rtol=0.05)


def test_ranking_text_names_the_winner_and_its_roles(suggestions) -> None:
    _, result = suggestions["llzo_series_bulk", SEEDS[0]]
    text = format_ranking(result)
    assert result.best.circuit in text.splitlines()[2]
    for element, role in result.best.roles.items():
        assert f"{element} = {role}" in text


def test_a_cropped_artefact_and_an_unknown_area_are_noted() -> None:
    series = simulate_cell("peo_1arc", n_steps=1, noise_rel=NOISE, seed=1)
    freq, z = series.freq, series.z[0].copy()
    # A reference-electrode artefact: the top decade and a half swings inductive and Z' < 0.
    top = freq > 3e4
    z[top] += np.abs(z[top]) * (freq[top] / 3e4) ** 1.5 * (-0.4 + 0.5j)
    result = suggest_circuit([(freq, z)], drt=False)
    assert result.max_freq_hz is not None and result.max_freq_hz <= 3e4
    assert any("cropped" in note for note in result.notes)
    assert any("no electrode area" in note for note in result.notes)
    assert result.best.n_processes == 2
    text = suggestion_toml(result)
    config = parse_config(text)
    assert config.kk.max_freq_hz == result.max_freq_hz
    assert "# area_cm2" in text


@pytest.mark.parametrize(
    ("arguments", "key"),
    [
        ({"spectra": []}, "spectra"),
        ({"spectra": [(np.ones(3), np.ones(3))]}, "spectra"),
        ({"area_cm2": -1.0}, "area_cm2"),
        ({"max_arcs": 9}, "max_arcs"),
        ({"steps": [5]}, "steps"),
        ({"max_freq_hz": "soon"}, "max_freq_hz"),
    ],
)
def test_bad_input_names_the_key(arguments, key) -> None:
    series = simulate_cell("peo_1arc", n_steps=1, noise_rel=NOISE, seed=1)
    spectra = arguments.pop("spectra", [(series.freq, series.z[0])])
    with pytest.raises(SuggestError) as error:
        suggest_circuit(spectra, drt=False, **arguments)
    assert error.value.key == key


def test_non_finite_spectrum_is_refused() -> None:
    series = simulate_cell("peo_1arc", n_steps=1, noise_rel=NOISE, seed=1)
    z = series.z[0].copy()
    z[3] = math.nan
    with pytest.raises(SuggestError, match="finite"):
        suggest_circuit([(series.freq, z)], drt=False)
