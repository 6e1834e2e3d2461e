"""Export round trips: every exported table reads back equal to open_results, in each format."""

from __future__ import annotations

import builtins
import json
from dataclasses import replace

import numpy as np
import pandas
import pytest

import geis_pipeline as gp
from geis_pipeline.errors import ExportError
from geis_pipeline.export import (
    column_description,
    experiment_tables,
    export_results,
    read_table,
)
from geis_pipeline.store import read_store, write_store


@pytest.fixture(scope="module")
def study_file(small_run, tmp_path_factory):
    """The small run twice (one experiment named unsafely for a file system), with a study."""
    records, attrs = read_store(small_run)
    record = next(iter(records.values()))
    unsafe = replace(record, name="Li LLZO 100 uA:run*")
    path = tmp_path_factory.mktemp("export") / "study.h5"
    study = {
        "sand": {"D_eff_cm2_s": 1.2e-11, "slope": 3.5, "experiments": [record.name, unsafe.name]},
        "arrhenius": {"E_A_R_int_eV": 0.37, "n": 2},
    }
    write_store(
        path,
        [record, unsafe],
        config_toml=str(attrs["config_toml"]),
        package_version="test",
        study=study,
    )
    return path


def _expected(results, directory_of) -> dict[str, pandas.DataFrame]:
    tables = {}
    for name in results.experiments:
        for table, frame in experiment_tables(results[name]).items():
            tables[f"{directory_of[name]}/{table}"] = frame
    for name, attrs in results.study.items():
        tables[f"_study/{name}"] = pandas.DataFrame(
            {
                key: [json.dumps(value) if isinstance(value, list) else value]
                for key, value in attrs.items()
            }
        )
    return tables


@pytest.mark.parametrize("format", ["csv", "xlsx", "parquet"])
def test_every_table_reads_back_equal(study_file, tmp_path, format) -> None:
    results = gp.open_results(study_file)
    written = export_results(study_file, tmp_path / format, format=format)
    directory_of = {}
    for name in results.experiments:
        keys = [key for key in written.tables if key.endswith("/tracking")]
        directory_of[name] = next(
            key.split("/")[0] for key in keys if key.split("/")[0] not in directory_of.values()
        )
    expected = _expected(results, directory_of)
    assert set(written.tables) == set(expected)
    for key, frame in expected.items():
        directory, table = key.split("/")
        if format == "xlsx":
            back = read_table(tmp_path / format / f"{directory}.xlsx", sheet=table)
        else:
            back = read_table(tmp_path / format / directory / f"{table}.{format}")
        if format == "xlsx":  # Excel keeps numbers as floats and empty text as no value
            _assert_close(back, frame, key)
        else:
            pandas.testing.assert_frame_equal(back, frame.reset_index(drop=True), obj=key)


def _assert_close(back: pandas.DataFrame, frame: pandas.DataFrame, key: str) -> None:
    assert list(back.columns) == list(frame.columns), key
    assert len(back) == len(frame), key
    for column in frame.columns:
        want, got = frame[column].to_numpy(), back[column].to_numpy()
        if want.dtype.kind in "fiub":
            np.testing.assert_allclose(
                got.astype(float), want.astype(float), rtol=1e-12, err_msg=f"{key}:{column}"
            )
        else:
            as_text = ["" if (isinstance(v, float) and np.isnan(v)) else str(v) for v in got]
            assert as_text == [str(v) for v in want], f"{key}:{column}"


def test_readme_names_every_column_with_its_unit(study_file, tmp_path) -> None:
    written = export_results(study_file, tmp_path)
    readme = (tmp_path / "README.txt").read_text(encoding="utf-8")
    for key, columns in written.tables.items():
        assert f"{key}.csv" in readme
        for column in columns:
            assert f"  {column}: " in readme, column
    assert "R_int_ohm_cm2: resistance of the interface, ohm cm2" in readme
    assert "standard error of circuit parameter R1, ohm" in readme
    assert column_description("CPE3_1", "fit_parameters").endswith("dimensionless (alpha)")
    assert column_description("tau_gb_s") == "time constant of the grain boundary, s"
    assert column_description("R_gb_drt_resolved").startswith(
        "the DRT resistance of the grain boundary is a measurement"
    )


def test_experiment_names_never_become_paths(study_file, tmp_path) -> None:
    written = export_results(study_file, tmp_path)
    for path in written.files:
        assert path.resolve().is_relative_to(tmp_path.resolve())
    directories = {key.split("/")[0] for key in written.tables}
    assert all("/" not in name and ":" not in name and " " not in name for name in directories)
    assert len(directories) == 3  # two experiments and the study


def test_missing_extra_is_named(study_file, tmp_path, monkeypatch) -> None:
    real_import = builtins.__import__

    def no_openpyxl(name, *args, **kwargs):
        if name == "openpyxl":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openpyxl)
    with pytest.raises(ExportError, match=r"geis-pipeline\[export\]") as error:
        export_results(study_file, tmp_path, format="xlsx")
    assert "openpyxl" in str(error.value)
    with pytest.raises(ExportError, match="choose one of"):
        export_results(study_file, tmp_path, format="ods")


def test_to_xarray_labels_every_array(small_run) -> None:
    run = next(iter(gp.open_results(small_run)))
    dataset = run.to_xarray()
    n_steps = len(run.spectra)
    assert dataset.sizes["step"] == n_steps
    table = run.tracking()
    np.testing.assert_array_equal(dataset["R_int_ohm_cm2"].to_numpy(), table.R_int_ohm_cm2)
    tau, gamma = run.drt_map()
    np.testing.assert_array_equal(dataset["tau"].to_numpy(), tau)
    np.testing.assert_array_equal(dataset["gamma_ohm"].to_numpy(), gamma)
    for step in (0, n_steps // 2, n_steps - 1):
        spectrum = run.spectra[step]
        row = dataset.isel(step=step).sel(frequency=spectrum.freq)
        np.testing.assert_array_equal(row["z_real_ohm"].to_numpy(), spectrum.z.real)
        np.testing.assert_array_equal(row["z_imag_ohm"].to_numpy(), spectrum.z.imag)
        np.testing.assert_array_equal(
            row["z_fit_real_ohm"].to_numpy(), run.points("fit", "z_fit_real_ohm", step)
        )
    # A sweep cut short has NaN where it measured nothing.
    counts = np.isfinite(dataset["z_real_ohm"].to_numpy()).sum(axis=1)
    assert list(counts) == [spectrum.n_points for spectrum in run.spectra]
