"""The papers' cell types as simulated spectra with known truth, for tests and circuit choice.

Each :class:`CellType` is one kind of spectrum the five source papers fit
(DOMAIN.md, ``shared/papers``): the Li | LLZO three-arc cell, a bulk written as
a series resistor, a diffusion tail after the interface arc (Mann 2024), a
single interface arc (Li | PEO, like ``realdata/geis.mpt``), the Li-In alloy's
three processes (Lu 2021), two interface arcs of one symmetric cell, an
ion-blocking electrode's capacitive spike and a low-impedance cell whose
high-frequency points are inductive. :func:`simulate_cell` draws a stripping series of it: the
evolving interfaces lose contact (R rises as 1/phi, C falls as phi) while the
other processes stay put, with proportional noise.

The spectra are evaluated with :class:`geis_pipeline.fit.Circuit` on a circuit
written from the truth (that evaluator is tested against impedance.py to
1e-10), so every test knows each process's true R, C, tau and alpha.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from geis_pipeline.elements import cpe_q_from_capacitance, time_constant
from geis_pipeline.fit.circuit import parse_circuit

__all__ = ["CELL_TYPES", "Arc", "CellSeries", "CellType", "simulate_cell"]


@dataclass(frozen=True)
class Arc:
    """One R||CPE process of a cell at full contact.

    Attributes
    ----------
    role
        The physical process (``bulk``, ``gb``, ``int``, or a custom role).
    R_ohm_cm2
        Resistance, ohm cm2.
    C_F_cm2
        Brug capacitance, F/cm2.
    alpha
        CPE exponent.
    evolves
        True for an interface that loses contact (R / phi, C * phi).
    """

    role: str
    R_ohm_cm2: float
    C_F_cm2: float
    alpha: float
    evolves: bool = False


@dataclass(frozen=True)
class CellType:
    """A cell of the papers: its processes, sweep and the circuit a user fits.

    Attributes
    ----------
    name, source
        Short name and where in the papers it comes from.
    arcs
        The R||CPE processes, fast to slow.
    series_R_ohm_cm2
        A series resistance (a bulk above the band written as R), ohm cm2; 0: none.
    series_role
        Role of that series resistance (``bulk``).
    L_H
        Cable inductance, H (0: none).
    tail
        None, ``("CPE", Q, alpha)`` (a diffusion tail or blocking spike; Q in
        F s^(alpha-1) per cm2) or ``("W", A_ohm_cm2)`` (Warburg, ohm cm2 s^-1/2).
    tail_role
        The tail's role: ``diffusion`` or ``blocking`` (an ion-blocking electrode's spike).
    area_cm2
        Electrode area, cm2.
    f_max_hz, f_min_hz, points_per_decade
        The sweep.
    role_classes, role_tau_windows
        Custom roles the fit must be told about: role -> (C_min, C_max) F/cm2,
        and role -> (tau_min, tau_max) s.
    fixed
        Parameters a user of this cell holds fixed (by role: ``{"gb": {"alpha": 0.9}}``).
    required
        The roles whose arc must be resolved for a step to be ok.
    """

    name: str
    source: str
    arcs: tuple[Arc, ...]
    series_R_ohm_cm2: float = 0.0
    series_role: str = "bulk"
    L_H: float = 2e-7
    tail: tuple | None = None
    tail_role: str = "diffusion"
    area_cm2: float = 0.5
    f_max_hz: float = 7e6
    f_min_hz: float = 1.0
    points_per_decade: int = 10
    role_classes: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    role_tau_windows: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    fixed: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    required: tuple[str, ...] = ("int",)

    @property
    def n_arcs(self) -> int:
        return len(self.arcs)

    @property
    def n_processes(self) -> int:
        """Physical processes: the arcs, a bulk written as a series R, and a tail."""
        return self.n_arcs + (self.series_R_ohm_cm2 > 0) + (self.tail is not None)

    def circuit(self, order: Sequence[int] | None = None) -> tuple[str, dict[str, str], dict]:
        """The circuit string a user writes, its roles and fixed parameters.

        Parameters
        ----------
        order
            Positions of the arcs in the string (a permutation of
            ``range(n_arcs)``); default fast to slow.

        Returns
        -------
        circuit, roles, fixed
            impedance.py string, element -> role, parameter -> value.
        """
        order = list(range(self.n_arcs)) if order is None else list(order)
        parts: list[str] = []
        roles: dict[str, str] = {}
        fixed: dict[str, float] = {}
        if self.L_H > 0:
            parts.append("L0")
            roles["L0"] = "cable"
        if self.series_R_ohm_cm2 > 0:
            parts.append("R0")
            roles["R0"] = self.series_role
        for number, arc_index in enumerate(order, start=1):
            arc = self.arcs[arc_index]
            parts.append(f"p(R{number},CPE{number})")
            roles[f"R{number}"] = arc.role
            for parameter, value in self.fixed.get(arc.role, {}).items():
                fixed[f"CPE{number}_{1 if parameter == 'alpha' else 0}"] = value
        if self.tail is not None:
            tail_name = f"{self.tail[0]}{self.n_arcs + 1}"
            parts.append(tail_name)
            roles[tail_name] = self.tail_role
        return "-".join(parts), roles, fixed

    def fit_keywords(self, order: Sequence[int] | None = None) -> tuple[str, dict[str, object]]:
        """The circuit and the :func:`~geis_pipeline.fit.fit_circuit` options a user would give."""
        text, roles, fixed = self.circuit(order)
        return text, {
            "roles": roles,
            "fixed": fixed,
            "role_classes": dict(self.role_classes),
            "role_tau_windows": dict(self.role_tau_windows),
            "required_roles": self.required,
            "area_cm2": self.area_cm2,
        }

    def frequencies_hz(self) -> np.ndarray:
        """The sweep, high to low, Hz."""
        decades = math.log10(self.f_max_hz / self.f_min_hz)
        count = round(decades * self.points_per_decade) + 1
        return np.logspace(math.log10(self.f_max_hz), math.log10(self.f_min_hz), count)


@dataclass(frozen=True)
class CellSeries:
    """A simulated stripping series of one cell type.

    Attributes
    ----------
    cell
        The cell type.
    freq
        Frequencies, Hz (one sweep for every step).
    z
        (n_steps, n_freq) complex impedance with noise, ohm.
    z_true
        The same without noise.
    contact_fraction
        phi per step (1 -> ``phi_min``).
    truth
        Role -> quantity (``R_ohm_cm2``, ``C_F_cm2``, ``tau_s``, ``alpha``,
        ``R_ohm``, ``C_F``) -> one value per step.
    """

    cell: CellType
    freq: np.ndarray
    z: np.ndarray
    z_true: np.ndarray
    contact_fraction: np.ndarray
    truth: Mapping[str, Mapping[str, np.ndarray]]


def simulate_cell(
    cell: CellType | str,
    *,
    n_steps: int = 24,
    noise_rel: float = 0.005,
    phi_min: float = 0.2,
    seed: int = 0,
) -> CellSeries:
    """Simulate a stripping series: evolving interfaces lose contact, the rest stays.

    Parameters
    ----------
    cell
        A :class:`CellType` or a name of :data:`CELL_TYPES`.
    n_steps
        Spectra in the series.
    noise_rel
        Relative noise sigma: Re and Im each get sigma |Z| N(0, 1).
    phi_min
        Contact fraction of the last step (R_int rises 1/phi_min-fold).
    seed
        Seed of the random generator.
    """
    cell = CELL_TYPES[cell] if isinstance(cell, str) else cell
    rng = np.random.default_rng(seed)
    freq = cell.frequencies_hz()
    phi = np.linspace(1.0, phi_min, n_steps)
    area = cell.area_cm2
    text, _, _ = cell.circuit()
    circuit = parse_circuit(text)
    names = circuit.parameter_names
    truth: dict[str, dict[str, np.ndarray]] = {}
    vectors = np.zeros((n_steps, len(names)))
    ones = np.ones(n_steps)
    if cell.L_H > 0:
        vectors[:, names.index("L0")] = cell.L_H
    if cell.series_R_ohm_cm2 > 0:
        vectors[:, names.index("R0")] = cell.series_R_ohm_cm2 / area
        truth[cell.series_role] = _readonly_truth(
            {
                "R_ohm_cm2": cell.series_R_ohm_cm2 * ones,
                "R_ohm": cell.series_R_ohm_cm2 / area * ones,
            }
        )
    for number, arc in enumerate(cell.arcs, start=1):
        scale = phi if arc.evolves else ones
        r_cm2 = arc.R_ohm_cm2 / scale
        c_cm2 = arc.C_F_cm2 * scale
        r_ohm, c_farad = r_cm2 / area, c_cm2 * area
        alpha = arc.alpha * ones
        q = cpe_q_from_capacitance(c_farad, r_ohm, alpha)
        vectors[:, names.index(f"R{number}")] = r_ohm
        vectors[:, names.index(f"CPE{number}_0")] = q
        vectors[:, names.index(f"CPE{number}_1")] = alpha
        truth[arc.role] = _readonly_truth(
            {
                "R_ohm_cm2": r_cm2,
                "C_F_cm2": c_cm2,
                "R_ohm": r_ohm,
                "C_F": c_farad,
                "alpha": alpha,
                "tau_s": time_constant(r_ohm, q, alpha),
            }
        )
    if cell.tail is not None:
        kind = cell.tail[0]
        number = cell.n_arcs + 1
        if kind == "CPE":
            vectors[:, names.index(f"CPE{number}_0")] = cell.tail[1] * area
            vectors[:, names.index(f"CPE{number}_1")] = cell.tail[2]
        else:
            vectors[:, names.index(f"W{number}")] = cell.tail[1] / area
    z_true = np.array([circuit.impedance(freq, vector) for vector in vectors])
    noise = noise_rel * np.abs(z_true)
    z = z_true + noise * (
        rng.standard_normal(z_true.shape) + 1j * rng.standard_normal(z_true.shape)
    )
    return CellSeries(
        cell=cell,
        freq=freq,
        z=z,
        z_true=z_true,
        contact_fraction=phi,
        truth=MappingProxyType(truth),
    )


def _readonly_truth(values: dict[str, np.ndarray]) -> Mapping[str, np.ndarray]:
    for array in values.values():
        array.flags.writeable = False
    return MappingProxyType(values)


_BULK = Arc("bulk", 200.0, 3e-11, 0.95)
_GB = Arc("gb", 40.0, 5e-9, 0.9)
_INT = Arc("int", 100.0, 2e-6, 0.85, evolves=True)

#: The cell types of the five papers, by name.
CELL_TYPES: Mapping[str, CellType] = MappingProxyType(
    {
        cell.name: cell
        for cell in (
            CellType("llzo_3arc", "krauskopf2019/2020: L - bulk - gb - int", (_BULK, _GB, _INT)),
            CellType(
                "llzo_series_bulk",
                "DOMAIN.md: bulk arc above 7 MHz written as a series R",
                (_GB, _INT),
                series_R_ohm_cm2=200.0,
            ),
            CellType(
                "mann_cpe_tail",
                "mann 2024: L - bulk - gb - int - CPE diffusion tail, 3.49 MHz .. 1 Hz",
                (
                    Arc("bulk", 120.0, 1.2e-11, 0.92),
                    Arc("gb", 60.0, 2e-9, 0.85),
                    Arc("int", 80.0, 3.2e-6, 0.8, evolves=True),
                ),
                tail=("CPE", 5e-3, 0.55),
                f_max_hz=3.49e6,
            ),
            CellType(
                "warburg_tail",
                "DOMAIN.md: series bulk - gb - int - Warburg tail",
                (_GB, _INT),
                series_R_ohm_cm2=150.0,
                tail=("W", 60.0),
            ),
            CellType(
                "peo_1arc",
                "realdata/geis.mpt: Li | PEO, one interface arc ~300 Hz, 1 MHz .. 0.1 Hz",
                (Arc("int", 145.0, 3e-6, 0.8, evolves=True),),
                series_R_ohm_cm2=30.0,
                L_H=0.0,
                f_max_hz=1e6,
                f_min_hz=0.1,
                area_cm2=1.13,
            ),
            CellType(
                "li_in_3proc",
                "lu 2021: Li-In alloy, gb ~3e-7 s, SEI ~1e-4 s, charge transfer ~1e-2 s",
                (
                    Arc("bulk", 150.0, 2e-11, 0.95),
                    Arc("gb", 60.0, 5e-9, 0.9),
                    Arc("sei", 30.0, 3e-6, 0.85),
                    Arc("int", 200.0, 5e-5, 0.8, evolves=True),
                ),
                f_min_hz=0.1,
                role_classes={"sei": (1e-7, 1e-5)},
                role_tau_windows={"sei": (1e-5, 1e-3)},
            ),
            CellType(
                "symmetric_2int",
                "krauskopf2019: symmetric cell, stripping and plating interfaces as two arcs",
                (
                    _GB,
                    Arc("ce", 30.0, 3e-7, 0.9),
                    Arc("int", 100.0, 2e-5, 0.85, evolves=True),
                ),
                series_R_ohm_cm2=200.0,
                role_classes={"ce": (1e-7, 1e-4)},
                role_tau_windows={"ce": (1e-6, 3e-4)},
            ),
            CellType(
                "blocking_spike",
                "DOMAIN.md: ion-blocking electrodes (no charge transfer): series bulk, gb arc, "
                "then the double layer's capacitive spike (CPE, alpha 0.9)",
                (Arc("gb", 150.0, 5e-9, 0.9),),
                series_R_ohm_cm2=200.0,
                tail=("CPE", 5e-6, 0.9),
                tail_role="blocking",
                required=(),
            ),
            CellType(
                "inductive_tail",
                "DOMAIN.md: cable inductance L; a low-impedance cell whose points above "
                "~100 kHz are inductive (like realdata/EISGALV_EISTest3.DTA)",
                (Arc("int", 20.0, 2e-6, 0.85, evolves=True),),
                series_R_ohm_cm2=5.0,
                L_H=1e-6,
                f_max_hz=1e6,
                area_cm2=1.0,
            ),
        )
    }
)
