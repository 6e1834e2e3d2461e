"""Physical constants and unit conversions for lithium-metal electrodes (DOMAIN.md)."""

from __future__ import annotations

import math

__all__ = [
    "BOLTZMANN_EV_K",
    "FARADAY_C_MOL",
    "LI_DENSITY_G_CM3",
    "LI_MOLAR_MASS_G_MOL",
    "arrhenius_extrapolate",
    "constriction_resistance_ohm",
    "sand_diffusivity_from_capacity",
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


def sand_diffusivity_from_capacity(
    capacity_mAh_cm2: float, current_density_mA_cm2: float, c0_mol_cm3: float
) -> float:
    """Sand's effective diffusivity from the capacity stripped until the voltage cutoff.

    The depletion time is the capacity over the current, t = 3600 q / i (Mann
    et al. 2024, Table 1), and D = 4 i^2 t / (pi c0^2 F^2).

    Parameters
    ----------
    capacity_mAh_cm2
        Capacity stripped until the cutoff, mAh/cm2.
    current_density_mA_cm2
        Stripping current density, mA/cm2.
    c0_mol_cm3
        Lithium concentration of the electrode, mol/cm3.

    Returns
    -------
    float
        D_eff, cm2/s.
    """
    i_A_cm2 = abs(current_density_mA_cm2) * 1e-3
    t_s = 3600.0 * capacity_mAh_cm2 / abs(current_density_mA_cm2)
    return 4 * i_A_cm2**2 * t_s / (math.pi * (c0_mol_cm3 * FARADAY_C_MOL) ** 2)


def arrhenius_extrapolate(
    value: float, temperature_K: float, activation_energy_eV: float, at_temperature_K: float
) -> float:
    """A thermally activated quantity (a diffusivity) at another temperature.

    D(T) = D(T_ref) exp[-E_A/k_B (1/T - 1/T_ref)] (krauskopf2020, section 3).

    Parameters
    ----------
    value
        The quantity at ``temperature_K``.
    temperature_K
        Where it is known, K.
    activation_energy_eV
        E_A, eV.
    at_temperature_K
        Where it is wanted, K.
    """
    exponent = -activation_energy_eV / BOLTZMANN_EV_K * (1 / at_temperature_K - 1 / temperature_K)
    return value * math.exp(exponent)


def constriction_resistance_ohm(
    force_N: float, conductivity_S_cm: float, hardness_MPa: float
) -> float:
    """Constriction resistance of a metal pressed on a solid electrolyte (krauskopf2019, eq. 1).

    R = (1 / (2 sigma)) sqrt(pi H / F): current lines bundled into the contact
    spots a force F makes by plastic deformation of a metal of Vickers hardness H.

    Parameters
    ----------
    force_N
        Force normal to the interface, N.
    conductivity_S_cm
        Ionic conductivity of the electrolyte, S/cm (LLZO ~0.46 mS/cm).
    hardness_MPa
        Vickers hardness of the metal, MPa (lithium 2-8 MPa).

    Returns
    -------
    float
        Resistance, ohm (absolute: multiply by the area for ohm cm2).
    """
    root_per_cm = math.sqrt(math.pi * hardness_MPa * 1e6 / force_N) / 100.0  # 1/m -> 1/cm
    return root_per_cm / (2.0 * conductivity_S_cm)
