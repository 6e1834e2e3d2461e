"""Small array helpers shared by the frozen result objects."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["readonly"]


def readonly(values: ArrayLike) -> np.ndarray:
    """A copy that cannot be written to: frozen results stay frozen."""
    copy = np.array(values, copy=True)
    copy.flags.writeable = False
    return copy
