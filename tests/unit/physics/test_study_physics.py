"""The papers' study formulas against the numbers they print (shared/PAPER_NUMBERS.md)."""

from __future__ import annotations

import math

import pytest

from geis_pipeline.physics import (
    arrhenius_extrapolate,
    constriction_resistance_ohm,
    sand_diffusivity_from_capacity,
    stripped_thickness_um,
)

# Mann 2024, Table 1: LiNa, c0 = 76.8 mmol/cm3; (i mA/cm2, q mAh/cm2) -> D_eff, h.
MANN_TABLE_1 = [
    (0.1, 11.527, 9.7e-11, 56.0),
    (0.2, 5.121, 8.6e-11, 24.9),
    (0.2, 21.590, 3.64e-10, 104.8),
    (0.5, 14.127, 5.95e-10, 68.6),
    (1.0, 7.129, 6.00e-10, 34.6),
]


@pytest.mark.parametrize(("current", "capacity", "diffusivity", "thickness"), MANN_TABLE_1)
def test_mann_table_1(current, capacity, diffusivity, thickness) -> None:
    assert sand_diffusivity_from_capacity(capacity, current, 0.0768) == pytest.approx(
        diffusivity, rel=0.02
    )
    assert stripped_thickness_um(capacity) == pytest.approx(thickness, abs=0.2)


@pytest.mark.parametrize(
    ("celsius", "expected"), [(0, 3.9e-12), (50, 1.7e-10), (80, 9.5e-10), (100, 2.6e-9)]
)
def test_krauskopf2020_diffusivity_at_temperature(celsius, expected) -> None:
    """D(25 C) = 3e-11 cm2/s with E_A = 0.57 eV, printed to two digits."""
    value = arrhenius_extrapolate(3e-11, 298.15, 0.57, 273.15 + celsius)
    assert value == pytest.approx(expected, rel=0.02)


def test_constriction_resistance_follows_f_to_the_minus_half() -> None:
    one = constriction_resistance_ohm(100.0, 4.6e-4, 5.0)
    four = constriction_resistance_ohm(400.0, 4.6e-4, 5.0)
    assert four == pytest.approx(one / 2)
    # eq. 1 by hand: (1 / (2 * 4.6e-4 S/cm)) * sqrt(pi * 5e6 Pa / 100 N) in 1/cm.
    assert one == pytest.approx(math.sqrt(math.pi * 5e6 / 100) / 100 / (2 * 4.6e-4))
