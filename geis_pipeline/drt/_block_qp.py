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

__all__ = ["BlockDAQP"]

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
        import daqp

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
        options = {
            key: value for key, value in solver_opts.items() if key in self.ALLOWED_SOLVER_OPTS
        }

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
            block_options = dict(options)
            if "eps_prox" not in block_options:
                # As cvxpy's DAQP interface: a proximal term only when the block is
                # not positive definite (DAQP's exact dual method needs a Cholesky).
                # (LAPACK directly: numpy's wrapper costs ~10x the factorisation here.)
                _, info = dpotrf(block_hessian, lower=True, clean=False)
                block_options["eps_prox"] = 0.0 if info == 0 else 1e-5
            x, value, exit_flag, info = daqp.solve(
                block_hessian,
                np.ascontiguousarray(linear[index]),
                np.zeros((0, size)),
                np.ascontiguousarray(upper[index]),
                np.ascontiguousarray(lower[index]),
                np.zeros(size, dtype=c_int),
                **block_options,
            )
            if exit_flag not in _SOLVED_FLAGS:
                flag = exit_flag
            solution[index] = x
            multipliers[index] = np.asarray(info["lam"])[:size]
            objective += value
            for key in info_total:
                info_total[key] += info[key]
        return solution, objective, flag, {**info_total, "lam": multipliers}
