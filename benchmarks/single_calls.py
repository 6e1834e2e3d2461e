"""Single calls as a notebook user makes them, beside the targets of issue 17 and the peers.

Each figure comes from fresh interpreters (a new process per repetition for
the import and the first calls), so nothing is cached that a new session
would not have:

* ``import geis_pipeline`` (``-X importtime``'s total; ``import numpy`` alone
  beside it: the floor);
* the first ``fit_circuit`` after the import, and a repeated one;
* ``check_kk`` and ``invert_drt`` on one 69-point spectrum: the first call on
  a grid (imports scipy / cvxpy, builds the basis, compiles the problem) and
  the calls after it (median), with and without the DRT's peak refinement;
* wall time and CPU time (the process's own; on a loaded machine it is the
  steadier figure, though shared caches still slow it);
* peers where installed: impedance.py (import + first ``CustomCircuit.fit``,
  and a repeated fit), pyDRTtools' ``simple_run`` (fixed λ, and its GCV λ
  search), pyimpspec (KK test and DRT).

Bytecode: the checkout may run with PYTHONDONTWRITEBYTECODE (then every import
compiles the package's sources: ~0.3 s); the children here get a bytecode
cache in a temporary folder, as an installed package has.

Usage: python benchmarks/single_calls.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent

SPECTRUM = """
import numpy as np
freq = np.geomspace(7e6, 1, 69)
jw = 2j * np.pi * freq
z = 60 + 50 / (1 + 50 * 3e-9 * jw**0.9) + 140 / (1 + 140 * 2e-6 * jw**0.85)
rng = np.random.default_rng(0)
z = z * (1 + 0.005 * (rng.standard_normal(69) + 1j * rng.standard_normal(69)))
"""

TIMED = """
import json, time
CPU = []
def timed(call, repeats):
    times = []
    for _ in range(repeats):
        started, cpu = time.perf_counter(), time.process_time()
        call()
        times.append(time.perf_counter() - started)
        CPU.append(time.process_time() - cpu)
    return times
"""

CHILDREN = {
    "fit": SPECTRUM
    + TIMED
    + """
from geis_pipeline import fit_circuit
circuit = "R0-p(R1,CPE1)-p(R2,CPE2)"
first = timed(lambda: fit_circuit(freq, z, circuit), 1)[0]
again = timed(lambda: fit_circuit(freq, z, circuit), 20)
print(json.dumps({"first": first, "again": again, "cpu_first": CPU[0], "cpu_again": CPU[1:]}))
""",
    "kk": SPECTRUM
    + TIMED
    + """
from geis_pipeline import check_kk
first = timed(lambda: check_kk(freq, z), 1)[0]
again = timed(lambda: check_kk(freq, z), 20)
print(json.dumps({"first": first, "again": again, "cpu_first": CPU[0], "cpu_again": CPU[1:]}))
""",
    "drt": SPECTRUM
    + TIMED
    + """
from geis_pipeline import invert_drt
first = timed(lambda: invert_drt(freq, z), 1)[0]
again = timed(lambda: invert_drt(freq, z), 20)
plain = timed(lambda: invert_drt(freq, z, refine=False), 21)[1:]
print(json.dumps({"first": first, "again": again, "plain": plain, "cpu_first": CPU[0],
                  "cpu_again": CPU[1:21], "cpu_plain": CPU[22:]}))
""",
    "impedance.py": SPECTRUM
    + TIMED
    + """
import time, warnings
started = time.perf_counter()
from impedance.models.circuits import CustomCircuit
def fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        circuit = CustomCircuit("R0-p(R1,CPE1)-p(R2,CPE2)",
                                initial_guess=[50, 50, 1e-9, 0.9, 150, 1e-6, 0.85])
        circuit.fit(freq, z, weight_by_modulus=True)
fit()
first = time.perf_counter() - started
again = timed(fit, 5)
print(json.dumps({"first": first, "again": again}))
""",
    "pyDRTtools": SPECTRUM
    + TIMED
    + f"""
import sys, time, contextlib, io
sys.path.insert(0, {str(HERE)!r})
from drt_speed import load_pydrttools
started = time.perf_counter()
runs = load_pydrttools()
def run(cv_type, reg_param=1e-3):
    entry = runs.EIS_object(freq, z.real, z.imag)
    with contextlib.redirect_stdout(io.StringIO()):
        runs.simple_run(entry, rbf_type="Gaussian", induct_used=1, der_used="1st order",
                        cv_type=cv_type, reg_param=reg_param)
run("custom")
first = time.perf_counter() - started
again = timed(lambda: run("custom"), 5)
gcv = timed(lambda: run("GCV"), 3)
print(json.dumps({{"first": first, "again": again, "gcv": gcv}}))
""",
    "pyimpspec": SPECTRUM
    + TIMED
    + """
import time
started = time.perf_counter()
import pyimpspec
data = pyimpspec.DataSet(frequencies=freq, impedances=z)
first_import = time.perf_counter() - started
kk = timed(lambda: pyimpspec.perform_kramers_kronig_test(data), 3)
drt = timed(lambda: pyimpspec.calculate_drt(data, method="tr-rbf"), 3)
print(json.dumps({"first": first_import, "kk": kk, "drt": drt}))
""",
}


def child_env(cache: str) -> dict[str, str]:
    env = os.environ.copy()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache
    env.setdefault("MPLBACKEND", "Agg")
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(variable, "1")
    return env


def import_cpu_seconds(module: str, env: dict[str, str]) -> float:
    """CPU time of importing ``module`` in a fresh interpreter (less sensitive to load)."""
    code = f"import time; t = time.process_time(); import {module}; print(time.process_time() - t)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return float(done.stdout.strip().splitlines()[-1])


def import_seconds(module: str, env: dict[str, str]) -> float:
    """Cumulative import time of ``module`` in a fresh interpreter (-X importtime)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    for line in done.stderr.splitlines():
        fields = [field.strip() for field in line.split("|")]
        if len(fields) == 3 and fields[2] == module:
            return int(fields[1]) / 1e6
    raise RuntimeError(f"no import time for {module}")


def run_child(name: str, env: dict[str, str]) -> dict | None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILDREN[name])],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        print(f"  ({name} not measured: {last})")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh interpreters per figure")
    arguments = parser.parse_args()
    load = os.getloadavg()
    print(f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    with tempfile.TemporaryDirectory() as cache:
        env = child_env(cache)
        import_seconds("geis_pipeline", env)  # fills the bytecode cache
        ours = [import_seconds("geis_pipeline", env) for _ in range(arguments.repeats)]
        floor = [import_seconds("numpy", env) for _ in range(arguments.repeats)]
        ours_cpu = [import_cpu_seconds("geis_pipeline", env) for _ in range(arguments.repeats)]
        floor_cpu = [import_cpu_seconds("numpy", env) for _ in range(arguments.repeats)]
        fresh = {
            name: [run_child(name, env) for _ in range(arguments.repeats)]
            for name in ("fit", "kk", "drt")
        }
        peers = {name: run_child(name, env) for name in ("impedance.py", "pyDRTtools", "pyimpspec")}

    def first(name: str) -> float:
        return statistics.median(run["first"] for run in fresh[name] if run)

    def again(name: str, key: str = "again") -> float:
        return statistics.median(t for run in fresh[name] if run for t in run[key])

    def cpu_first(name: str) -> float:
        return statistics.median(run["cpu_first"] for run in fresh[name] if run)

    print(f"{'':36s} {'wall (median)':>13s}  {'CPU (median)':>12s}  target")
    print(
        f"{'import geis_pipeline':36s} {ms(statistics.median(ours))}  "
        f"{ms(statistics.median(ours_cpu))}   <= 500 ms"
    )
    print(
        f"{'import numpy alone (the floor)':36s} {ms(statistics.median(floor))}  "
        f"{ms(statistics.median(floor_cpu))}"
    )
    rows = [
        ("first fit_circuit", first("fit"), cpu_first("fit"), "<= 50 ms"),
        ("fit_circuit again", again("fit"), again("fit", "cpu_again"), ""),
        ("first check_kk (scipy, basis)", first("kk"), cpu_first("kk"), ""),
        ("check_kk, same grid", again("kk"), again("kk", "cpu_again"), "<= 10 ms"),
        ("first invert_drt (cvxpy, compile)", first("drt"), cpu_first("drt"), ""),
        ("invert_drt, same grid", again("drt"), again("drt", "cpu_again"), "<= 20 ms"),
        (
            "invert_drt, same grid, refine=False",
            again("drt", "plain"),
            again("drt", "cpu_plain"),
            "",
        ),
    ]
    for label, value, cpu, target in rows:
        print(f"{label:36s} {ms(value)}  {ms(cpu)}   {target}")
    print("peers (one fresh interpreter each):")
    imp = peers["impedance.py"]
    if imp:
        print(f"  impedance.py import + first fit  {ms(imp['first'])}")
        print(f"  impedance.py fit again           {ms(statistics.median(imp['again']))}")
    drt = peers["pyDRTtools"]
    if drt:
        print(f"  pyDRTtools import + first run    {ms(drt['first'])}")
        print(f"  pyDRTtools simple_run, fixed λ   {ms(statistics.median(drt['again']))}")
        print(f"  pyDRTtools simple_run, GCV λ     {ms(statistics.median(drt['gcv']))}")
    spec = peers["pyimpspec"]
    if spec:
        print(f"  pyimpspec import                 {ms(spec['first'])}")
        print(f"  pyimpspec KK test                {ms(statistics.median(spec['kk']))}")
        print(f"  pyimpspec DRT (TR-RBF)           {ms(statistics.median(spec['drt']))}")


if __name__ == "__main__":
    main()
