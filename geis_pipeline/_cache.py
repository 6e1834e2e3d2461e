"""A small least-recently-used cache of per-grid objects (KK bases, DRT problems).

A notebook user calls ``check_kk`` or ``invert_drt`` on one spectrum after
another, measured on the same frequency grid: building the basis (and, for
the DRT, compiling the cvxpy problem) on every call would cost 10-100x the
solve. The verbs keep the last few grids' objects here, keyed by the grid's
exact values and every option the object depends on; a few entries bound
the memory (a KK basis with its point products is a few MB).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Generic, TypeVar

import numpy as np

__all__ = ["GridCache", "hashable"]

T = TypeVar("T")


def hashable(value: object) -> Hashable:
    """A hashable stand-in for an option value (arrays by dtype, shape and bytes)."""
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, Mapping):
        return ("mapping", tuple(sorted((str(key), hashable(item)) for key, item in value.items())))
    if isinstance(value, list | tuple):
        return ("sequence", tuple(hashable(item) for item in value))
    if isinstance(value, float | np.floating):
        return float(value)
    return value  # type: ignore[return-value]  # str, int, bool, None


class GridCache(Generic[T]):
    """Up to ``size`` objects, the least recently used dropped first (thread safe)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The object for ``key``, built by ``build()`` when it is not held."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        made = build()  # outside the lock: building may take a while
        with self._lock:
            self._items[key] = made
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return made

    def clear(self) -> None:
        """Forget every object."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
