"""A cvxpy QP solver for block-diagonal problems: each block solved densely by DAQP.

A batch of DRT inversions is one cvxpy problem of ``batch_size`` independent
blocks (one per spectrum), so that cvxpy's per-call work (writing parameter
values into the problem data) is shared. Each block is a small dense QP
(~90 unknowns, a dense Hessian, x >= 0). Measured on this problem
(benchmarks/drt_speed.py, 2-core VM):

- Clarabel (interior point, sparse LDL) spends ~7-8 ms of solver time per
  block: its setup and per-iteration work grow with the ~4,300 non-zeros of the
  dense Hessian, and warm starts or looser tolerances bring it only to ~4 ms;
- cvxpy's own DAQP interface turns the whole batched Hessian into one dense
  matrix, so a batch of 16 costs (16 n)^2 memory and (16 n)^3 work (~780 ms
  per spectrum at 16, against ~0.3 ms for one block alone);
- DAQP (a dual active-set method for dense QPs) solves one block in ~0.2-0.5 ms.

:class:`BlockDAQP` is cvxpy's DAQP interface with one change: it finds the
independent blocks of the canonicalised problem (connected components of the
Hessian; the problem must have only variable bounds, no constraint rows) and
gives each block to DAQP on its own. It is passed to ``Problem.solve`` as a
custom solver instance (cvxpy's documented extension point), so cvxpy still
does the modelling, the DPP parameter updates and the unpacking of results.
"""

from __future__ import annotations

from ctypes import c_int
from typing import Any

import numpy as np
from cvxpy import settings as cvxpy_settings
from cvxpy.error import SolverError
from cvxpy.reductions.solvers.qp_solvers.daqp_qpif import DAQP
from scipy.linalg.lapack import dpotrf
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["BlockDAQP", "canonical_qp_is_direct", "solve_dense_qp", "status_of"]

# DAQP exit flags that mean "solved" (1: optimal; 2: soft optimal).
_SOLVED_FLAGS = (1, 2)


def _dense_diagonal_block(matrix: csr_matrix, start: int, stop: int) -> np.ndarray:
    """Rows and columns start:stop of a block-diagonal CSR matrix, dense.

    Straight from the CSR arrays: scipy's 2-D slicing costs ~0.3 ms a block here.
    """
    size = stop - start
    pointers = matrix.indptr[start : stop + 1]
    first, last = int(pointers[0]), int(pointers[-1])
    rows = np.repeat(np.arange(size), np.diff(pointers))
    block = np.zeros((size, size))
    block[rows, matrix.indices[first:last] - start] = matrix.data[first:last]
    return block


def solve_dense_qp(
    hessian: np.ndarray,
    linear: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    options: dict[str, Any],
) -> tuple[np.ndarray, float, int, dict[str, Any]]:
    """min ½ xᵀ H x + qᵀ x within lower <= x <= upper, by DAQP: (x, value, exit flag, info).

    ``options``: DAQP settings (cvxpy's allowed names); without ``eps_prox`` a
    proximal term is added only when H is not positive definite, as cvxpy's
    DAQP interface does (DAQP's exact dual method needs a Cholesky factor).
    """
    import daqp

    size = linear.size
    block_options = {
        key: value for key, value in options.items() if key in DAQP.ALLOWED_SOLVER_OPTS
    }
    if "eps_prox" not in block_options:
        # LAPACK directly: numpy's wrapper costs ~10x the factorisation here.
        _, info = dpotrf(hessian, lower=True, clean=False)
        block_options["eps_prox"] = 0.0 if info == 0 else 1e-5
    return daqp.solve(
        np.ascontiguousarray(hessian),
        np.ascontiguousarray(linear),
        np.zeros((0, size)),
        np.ascontiguousarray(upper),
        np.ascontiguousarray(lower),
        np.zeros(size, dtype=c_int),
        **block_options,
    )


def status_of(exit_flag: int) -> str:
    """cvxpy's status name of a DAQP exit flag (cvxpy's own table)."""
    return str(DAQP.STATUS_MAP.get(exit_flag, cvxpy_settings.SOLVER_ERROR))


def canonical_qp_is_direct(
    problem: Any, hessian: Any, linear: Any, n_columns: int, solver: BlockDAQP
) -> bool:
    """Whether cvxpy canonicalises a one-block problem to exactly P = H, q = c, x >= 0.

    ``problem`` minimises ``c @ x + ½ quad_form(x, H)`` over ``x >= 0`` with
    ``H`` (``hessian``) and ``c`` (``linear``, one column) as Parameters. If its
    canonical QP data (what cvxpy hands a solver) is H and c themselves, with
    only the bounds 0 <= x, each spectrum's QP can go to DAQP as it is, without
    cvxpy's reductions on every solve. Probed once with a random positive
    definite H. ``solver``: the instance the problem is solved with (cvxpy keys its
    compiled data by it).
    """
    rng = np.random.default_rng(0)
    factor = rng.standard_normal((n_columns, n_columns))
    probe_hessian = factor @ factor.T + n_columns * np.eye(n_columns)
    probe_linear = rng.standard_normal(n_columns)
    hessian.value = probe_hessian
    linear.value = probe_linear[:, np.newaxis]
    data, _, _ = problem.get_problem_data(solver=solver)
    if data[cvxpy_settings.A].shape[0] or data[cvxpy_settings.F].shape[0]:
        return False
    lower, upper = data[cvxpy_settings.LOWER_BOUNDS], data[cvxpy_settings.UPPER_BOUNDS]
    bounds_ok = (
        lower is not None
        and np.array_equal(np.asarray(lower, float), np.zeros(n_columns))
        and (upper is None or bool(np.all(np.isposinf(np.asarray(upper, float)))))
    )
    canonical_hessian = data[cvxpy_settings.P].toarray()
    canonical_linear = np.asarray(data[cvxpy_settings.Q], dtype=np.float64)
    return bool(
        bounds_ok
        and canonical_hessian.shape == probe_hessian.shape
        and np.allclose(canonical_hessian, probe_hessian, rtol=1e-12, atol=0.0)
        and np.allclose(canonical_linear, probe_linear, rtol=1e-12, atol=0.0)
    )


class BlockDAQP(DAQP):
    """DAQP on every independent block of a bound-constrained QP."""

    def name(self) -> str:
        return "GEIS_BLOCK_DAQP"

    def solve_via_data(
        self,
        data: dict[str, Any],
        warm_start: bool,
        verbose: bool,
        solver_opts: dict[str, Any],
        solver_cache: dict | None = None,
    ) -> tuple[np.ndarray, float, int, dict[str, Any]]:
        """Solve each block with DAQP; the result in the form cvxpy's DAQP ``invert`` reads."""
        if data[cvxpy_settings.A].shape[0] or data[cvxpy_settings.F].shape[0]:
            raise SolverError("BlockDAQP takes problems with variable bounds only")
        # cvxpy's P is the full symmetric Hessian in CSC form; read as CSR it is the
        # transpose, i.e. the same matrix, so no conversion is needed.
        hessian = data[cvxpy_settings.P]
        hessian = csr_matrix(
            (hessian.data, hessian.indices, hessian.indptr), shape=hessian.shape, copy=False
        )
        hessian.sum_duplicates()
        linear = np.asarray(data[cvxpy_settings.Q], dtype=np.float64)
        n_variables = linear.size
        lower = data[cvxpy_settings.LOWER_BOUNDS]
        upper = data[cvxpy_settings.UPPER_BOUNDS]
        lower = np.full(n_variables, -np.inf) if lower is None else np.asarray(lower, float)
        upper = np.full(n_variables, np.inf) if upper is None else np.asarray(upper, float)
        options = dict(solver_opts)

        n_blocks, labels = connected_components(hessian, directed=False)
        order = np.argsort(labels, kind="stable")
        edges = np.searchsorted(labels[order], np.arange(n_blocks + 1))
        # cvxpy lays each variable out contiguously, so blocks are usually plain slices.
        contiguous = bool(np.all(labels[:-1] <= labels[1:]))

        solution = np.empty(n_variables)
        multipliers = np.empty(n_variables)
        objective, flag = 0.0, 1
        info_total = {"iterations": 0, "solve_time": 0.0, "setup_time": 0.0}
        for block in range(n_blocks):
            start, stop = int(edges[block]), int(edges[block + 1])
            index = np.arange(start, stop) if contiguous else order[start:stop]
            if contiguous:
                block_hessian = _dense_diagonal_block(hessian, start, stop)
            else:
                block_hessian = hessian[index][:, index].toarray()
            size = index.size
            x, value, exit_flag, info = solve_dense_qp(
                block_hessian, linear[index], lower[index], upper[index], options
            )
            if exit_flag not in _SOLVED_FLAGS:
                flag = exit_flag
            solution[index] = x
            multipliers[index] = np.asarray(info["lam"])[:size]
            objective += value
            for key in info_total:
                info_total[key] += info[key]
        return solution, objective, flag, {**info_total, "lam": multipliers}
