"""A notebook session pays only for what it uses: heavy dependencies load on first need."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("cvxpy", "matplotlib", "pandas", "impedance", "scipy")


def _loaded_after(code: str) -> set[str]:
    """Top-level packages among HEAVY that a fresh interpreter holds after ``code``."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
        timeout=120,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_import_loads_no_heavy_dependency() -> None:
    assert _loaded_after("import geis_pipeline") == set()


def test_a_fit_loads_no_heavy_dependency() -> None:
    """fit_circuit names parameters and solves with numpy alone (no scipy, no impedance.py)."""
    code = """
import numpy as np
import geis_pipeline
freq = np.geomspace(7e6, 1, 69)
jw = 2j * np.pi * freq
z = 10 + 100 / (1 + 100 * 1e-9 * jw**0.9) + 300 / (1 + 300 * 1e-6 * jw**0.85)
assert geis_pipeline.fit_circuit(freq, z, "R0-p(R1,CPE1)-p(R2,CPE2)").ok
"""
    assert _loaded_after(code) == set()


@pytest.mark.parametrize(
    ("call", "needed"),
    [("check_kk(freq, z)", {"scipy"}), ("invert_drt(freq, z)", {"scipy", "cvxpy"})],
)
def test_checks_load_only_their_solvers(call: str, needed: set[str]) -> None:
    code = f"""
import numpy as np
from geis_pipeline import check_kk, invert_drt
freq = np.geomspace(7e6, 1, 69)
z = 10 + 100 / (1 + 2j * np.pi * freq * 1e-6)
{call}
"""
    assert _loaded_after(code) == needed
