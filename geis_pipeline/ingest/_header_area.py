"""Electrode areas stated in instrument headers: their units, and which are a cell's."""

from __future__ import annotations

import math
import re

from geis_pipeline.ingest._eclab import parse_number

__all__ = ["PLAUSIBLE_AREA_CM2", "area_in_cm2", "implausible_area"]

#: Electrode areas (cm²) outside this range are a typing or reading slip, not a cell: a
#: 1 µm microelectrode is ~1e-8 cm², a pouch cell's electrode ~1e3.
PLAUSIBLE_AREA_CM2 = (1e-8, 1e4)
#: Area units a header may state, to cm² (EC-Lab writes cm²; a hand-typed header may not).
_AREA_UNIT = re.compile(r"^(?P<length>[µμu]m|cm|mm|m)(?:²|2|\^2|\ufffd)?$")
_AREA_SCALE = {"cm": 1.0, "mm": 1e-2, "m": 1e4, "µm": 1e-8, "μm": 1e-8, "um": 1e-8}


def area_in_cm2(text: str | None) -> tuple[float | None, str | None]:
    """A header's electrode area in cm², and why it is not used (None: it is).

    The unit after the number is converted (cm² when there is none); an unknown
    unit, or an area outside :data:`PLAUSIBLE_AREA_CM2`, gives no area and the
    reason (a 78.5 mm² read as 78.5 cm² made every per-area value 100x off).
    """
    if not text or not text.strip():
        return None, None
    value = parse_number(text)
    if value is None:
        return None, f"electrode area {text.strip()!r} is not a number"
    tokens = text.strip().split()
    unit = tokens[1] if len(tokens) > 1 else "cm²"
    match = _AREA_UNIT.match(unit)
    if match is None:
        return None, f"electrode area {text.strip()!r}: unknown unit {unit!r} (cm², mm², m²)"
    area = value * _AREA_SCALE[match.group("length")]
    problem = implausible_area(area)
    if problem is not None:
        return None, f"electrode area {text.strip()!r} = {problem}"
    return area, None


def implausible_area(area_cm2: float) -> str | None:
    """Why an electrode area (cm²) is not a cell's (None: it is one)."""
    low, high = PLAUSIBLE_AREA_CM2
    if math.isfinite(area_cm2) and low <= area_cm2 <= high:
        return None
    return f"{area_cm2:.3g} cm² is implausible (expected {low:g}..{high:g} cm²)"
