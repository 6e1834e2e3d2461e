"""Physical constants and unit conversions for lithium-metal electrodes (DOMAIN.md)."""

from __future__ import annotations

__all__ = [
    "BOLTZMANN_EV_K",
    "FARADAY_C_MOL",
    "LI_DENSITY_G_CM3",
    "LI_MOLAR_MASS_G_MOL",
    "stripped_thickness_um",
]

FARADAY_C_MOL = 96485.33212
BOLTZMANN_EV_K = 8.617333262e-5
LI_MOLAR_MASS_G_MOL = 6.941
LI_DENSITY_G_CM3 = 0.534
_COULOMB_PER_MAH = 3.6


def stripped_thickness_um(charge_mAh_cm2: float) -> float:
    """Thickness of lithium stripped (or plated) by an area-specific charge.

    h = q M_Li / (F rho_Li); 1 mAh/cm2 -> 4.85 um.

    Parameters
    ----------
    charge_mAh_cm2
        Passed charge per electrode area, mAh/cm2.

    Returns
    -------
    float
        Thickness, um.
    """
    thickness_cm = (
        charge_mAh_cm2 * _COULOMB_PER_MAH * LI_MOLAR_MASS_G_MOL / (FARADAY_C_MOL * LI_DENSITY_G_CM3)
    )
    return thickness_cm * 1e4
