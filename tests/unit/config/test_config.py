"""Config files: defaults, validation errors naming the key, TOML round trip, section hashes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geis_pipeline.config import (
    Config,
    config_to_toml,
    load_config,
    parse_config,
    section_hash,
)
from geis_pipeline.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def test_defaults_without_a_file() -> None:
    config = load_config(None)
    assert config == Config()
    assert config.fit.fixed == {"CPE2_1": 0.9}
    assert config.drt.windows["int"] == (1e-5, 1e-1)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda path: path.name)
def test_shipped_configs_are_valid(path: Path) -> None:
    config = load_config(path)
    assert parse_config(config_to_toml(config)) == config


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("[fit]\nweightin = 'unit'", "fit.weightin", "valid keys here: circuit, weighting"),
        ("[nonsense]\na = 1", "nonsense", "valid keys here: experiment, kk, fit"),
        ("[fit]\nweighting = 'sigma'", "fit.weighting", "choose one of 'modulus'"),
        ("[kk]\nthreshold = true", "kk.threshold", "must be a number"),
        ("[kk]\nthreshold = 2.0", "kk.threshold", "fraction"),
        ("[drt]\nlam = 'foo'", "drt.lam", "'gcv'"),
        ("[drt]\nlam = -1.0", "drt.lam", "> 0"),
        ("[drt]\npoints_per_decade = 2.5", "drt.points_per_decade", "whole number"),
        ("[fit.bounds]\nR1 = [5.0, 1.0]", "fit.bounds.R1", "lower < upper"),
        ("[fit.bounds]\nR1 = [5.0]", "fit.bounds.R1", "list of 2"),
        ("[experiment]\narea_cm2 = 0", "experiment.area_cm2", "> 0"),
        ("[executor]\nkind = 'dask'", "executor.scheduler", "scheduler"),
        ("fit = 3", "fit", "table"),
    ],
)
def test_errors_name_the_key(text: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_config(text, source="run.toml")
    assert caught.value.key == key
    assert caught.value.file == "run.toml"


def test_not_toml() -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_config("[fit\ncircuit = ", source="run.toml")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


@given(
    st.floats(1e-6, 0.5),
    st.floats(0.01, 0.99),
    st.integers(1, 40),
    st.one_of(st.floats(1e-8, 10.0), st.sampled_from(["gcv", "lcurve", "reim"])),
    # Parameters of the default circuit, within their bounds (CPE exponent 0.3..1, R > 1e-4 ohm).
    st.dictionaries(st.sampled_from(["CPE1_1", "CPE2_1", "R1"]), st.floats(0.3, 1.0)),
)
def test_toml_round_trip(threshold, mu, points, lam, fixed) -> None:
    text = (
        f"[kk]\nthreshold = {threshold!r}\nmu_criterion = {mu!r}\n"
        f"[drt]\npoints_per_decade = {points}\nlam = {lam!r}\n".replace("'", '"')
    )
    config = parse_config(text)
    config = type(config)(
        experiment=config.experiment,
        kk=config.kk,
        fit=type(config.fit)(**{**config.fit.__dict__, "fixed": fixed}),
        drt=config.drt,
        track=config.track,
        executor=config.executor,
    )
    assert parse_config(config_to_toml(config)) == config


def test_section_hash_changes_only_with_its_section() -> None:
    base = parse_config("")
    changed_drt = parse_config("[drt]\nlam = 0.5")
    assert section_hash(base, "drt") != section_hash(changed_drt, "drt")
    for section in ("experiment", "kk", "fit", "track", "executor"):
        assert section_hash(base, section) == section_hash(changed_drt, section)


def test_a_new_circuit_starts_from_empty_roles_fixed_and_bounds() -> None:
    """The defaults' roles and fixed exponent name the default circuit's elements."""
    config = parse_config('[fit]\ncircuit = "R0-p(R1,CPE1)"\n[fit.roles]\nR1 = "int"')
    assert dict(config.fit.roles) == {"R1": "int"}
    assert config.fit.fixed == {} and config.fit.bounds == {}
    # Without a new circuit, the defaults stay.
    assert parse_config("").fit.fixed == {"CPE2_1": 0.9}


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ('[fit.roles]\nR3 = "interface"', "fit.roles.R3", "valid: bulk, gb, int"),
        ('[fit.roles]\nL0 = "int"', "fit.roles.L0", "valid: cable"),
        ('[fit.roles]\nR9 = "int"', "fit.roles.R9", "unknown element"),
        ('[fit.roles]\nR1 = "int"\nR3 = "int"', "fit.roles.R3", "two parts of the circuit"),
        ("[fit.role_classes]\nsei = [1e-5, 1e-7]", "fit.role_classes.sei", "C_min < C_max"),
        ('[fit]\nrequired_roles = ["sei"]', "fit.required_roles", "given to no R||CPE"),
        ("[fit.fixed]\nCPE2_1 = 0.1", "fit.fixed.CPE2_1", "outside the bounds"),
    ],
)
def test_fit_section_errors_name_the_key(text: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_config(text, source="run.toml")
    assert caught.value.key == key


def test_a_custom_role_with_its_class_is_accepted() -> None:
    config = parse_config(
        '[fit]\ncircuit = "R0-p(R1,CPE1)-p(R2,CPE2)"\n'
        '[fit.roles]\nR1 = "sei"\nR2 = "int"\n'
        "[fit.role_classes]\nsei = [1e-7, 1e-5]\n[fit.role_tau_windows]\nsei = [1e-5, 1e-3]"
    )
    assert config.fit.role_classes == {"sei": (1e-7, 1e-5)}


def test_one_cutoff_key_and_the_old_one_names_it() -> None:
    assert parse_config("").track.cutoff_V is None
    assert parse_config("[track]\ncutoff_V = 5.0").track.cutoff_V == 5.0
    with pytest.raises(ConfigError, match="must not be 0 V") as caught:
        parse_config("[track]\ncutoff_V = 0.0", source="run.toml")
    assert caught.value.key == "track.cutoff_V"
    with pytest.raises(ConfigError, match=r"use track\.cutoff_V") as caught:
        parse_config("[track]\npotential_cutoff_V = 5.0", source="run.toml")
    assert caught.value.key == "track.potential_cutoff_V"


def test_drt_refine_reaches_the_stage_and_its_hash() -> None:
    """Refined and unrefined DRT results differ: a stored stage of one is never reused."""
    from geis_pipeline.pipeline.chunks import _drt_options, stage_hashes

    refined, plain = parse_config(""), parse_config("[drt]\nrefine = false\n")
    assert refined.drt.refine and not plain.drt.refine
    assert _drt_options(plain, None)["refine"] is False
    assert stage_hashes(refined)["drt"] != stage_hashes(plain)["drt"]
    assert stage_hashes(refined)["fit"] == stage_hashes(plain)["fit"]


def test_one_depletion_threshold_only() -> None:
    """Per cm2 or absolute (issue 14: exactly one); both given is an error naming them."""
    absolute = parse_config("[track]\nr_int_threshold_ohm = 10000.0\n")
    assert absolute.track.r_int_threshold_ohm == 10000.0
    with pytest.raises(ConfigError, match="not both") as caught:
        parse_config("[track]\nr_int_threshold_ohm = 1e4\nr_int_threshold_ohm_cm2 = 5e3\n")
    assert caught.value.key == "track.r_int_threshold_ohm"


def test_absolute_threshold_reads_back() -> None:
    config = parse_config("[track]\nr_int_threshold_ohm = 10000.0\n")
    assert parse_config(config_to_toml(config)) == config
