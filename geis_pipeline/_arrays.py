"""Small array helpers shared by the frozen result objects."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["complex_from_parts", "readonly"]


def readonly(values: ArrayLike) -> np.ndarray:
    """A copy that cannot be written to: frozen results stay frozen."""
    copy = np.array(values, copy=True)
    copy.flags.writeable = False
    return copy


def complex_from_parts(real: np.ndarray, imag: np.ndarray) -> np.ndarray:
    """complex128 with exactly these parts, signs of zero included.

    ``real + 1j * imag`` turns a real part of -0.0 into 0.0 (the product's
    real part is +0.0 and -0.0 + 0.0 = 0.0), which breaks exact round trips.
    """
    z = np.empty(np.shape(real), dtype=np.complex128)
    z.real = real
    z.imag = imag
    return z
