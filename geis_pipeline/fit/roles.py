"""Which fitted arc is which physical process: identified by capacitance and time constant.

An arc is "the interface" because of its Brug capacitance and its place among
the time constants, not because of where it stands in the circuit string
(Irvine, Sinclair and West 1990; DOMAIN.md): bulk ~1e-12..1e-10 F/cm2, grain
boundary ~1e-11..1e-8 F/cm2, electrode interface ~1e-7..1e-4 F/cm2 (down to
1e-8 F/cm2 by default: a depleted interface keeps ~1 % of its contact), and the
bulk relaxes fastest, then the grain boundaries, then the interface processes.

:func:`identify_arcs` gives every declared role the fitted arc that matches
it best: each role's arc must lie within its capacitance class (and its
time-constant window, when the role has one) give or take
:data:`MATCH_TOLERANCE_DECADES`, roles of a lower rank must relax faster than
those of a higher rank, and among the assignments that match as many roles
as possible the one closest to the classes wins. Ties (two roles the physics
cannot tell apart) go to the arc the role had at the previous step (a chain
keeps its labels), then to the element the user named.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "ARC_ROLE_RANKS",
    "DEFAULT_ROLE_CLASSES",
    "MATCH_TOLERANCE_DECADES",
    "SERIES_ROLES",
    "ArcEstimate",
    "Identification",
    "RoleClass",
    "identify_arcs",
    "role_classes",
]


@dataclass(frozen=True)
class RoleClass:
    """The capacitance class (and optional time-constant window) of one process.

    Attributes
    ----------
    C_min_F_cm2, C_max_F_cm2
        Brug capacitance range, F/cm2.
    tau_min_s, tau_max_s
        Time-constant window, s (None: any).
    rank
        Order of relaxation: 0 bulk, 1 grain boundary, 2 interface processes.
        An arc of a lower rank must have a shorter time constant.
    """

    C_min_F_cm2: float
    C_max_F_cm2: float
    tau_min_s: float | None = None
    tau_max_s: float | None = None
    rank: int = 2

    def distance_decades(self, C_F_cm2: float, tau_s: float, C_resolved: bool = True) -> float:
        """How far an arc lies outside this class, in decades (0 inside).

        An arc whose apex lies outside the measured band has a poorly
        determined capacitance: its capacitance counts at most one decade, so
        a bulk arc above the band is still matched by its time constant.
        """
        if not (C_F_cm2 > 0 and tau_s > 0 and math.isfinite(C_F_cm2) and math.isfinite(tau_s)):
            return math.inf
        distance = _outside(C_F_cm2, self.C_min_F_cm2, self.C_max_F_cm2)
        if not C_resolved:
            distance = min(distance, 1.0)
        if self.tau_min_s is not None or self.tau_max_s is not None:
            distance += _outside(tau_s, self.tau_min_s or 0.0, self.tau_max_s or math.inf)
        return distance


def _outside(value: float, low: float, high: float) -> float:
    if value < low:
        return math.log10(low / value)
    if value > high:
        return math.log10(value / high)
    return 0.0


#: Rank (order of relaxation) of the built-in arc roles; every other role is an interface process.
ARC_ROLE_RANKS: Mapping[str, int] = MappingProxyType({"bulk": 0, "gb": 1, "int": 2})

#: Built-in capacitance classes, F/cm2 (DOMAIN.md; Irvine, Sinclair, West 1990).
DEFAULT_ROLE_CLASSES: Mapping[str, RoleClass] = MappingProxyType(
    {
        "bulk": RoleClass(1e-12, 1e-10, rank=0),
        "gb": RoleClass(1e-11, 1e-8, rank=1),
        # Down to 1e-8: a depleted interface keeps ~1 % of its contact (and its capacitance).
        "int": RoleClass(1e-8, 1e-4, rank=2),
    }
)

#: Roles of elements that are not R||CPE arcs, and the element types that may carry them.
SERIES_ROLES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "cable": frozenset({"L"}),  # lead inductance
        "bulk": frozenset({"R"}),  # a bulk arc above the band written as a series R
        "gb": frozenset({"R"}),
        "series": frozenset({"R"}),  # any other series resistance (contacts, electrolyte)
        "diffusion": frozenset({"CPE", "W", "C"}),  # a low-frequency diffusion tail
        "blocking": frozenset({"CPE", "C"}),  # a blocking electrode's capacitive spike
    }
)

#: A role is matched only by an arc within this many decades of its class.
MATCH_TOLERANCE_DECADES = 1.0
# Cost of leaving a declared role without an arc: more than any allowed match, so as
# many roles as possible are matched.
_UNMATCHED_COST = 2.0 * MATCH_TOLERANCE_DECADES + 1.0
# Weight (per decade of time constant) of keeping a role on the arc it had at the
# previous step, and of the element the user named: tie-breakers below the physics.
_CONTINUITY_WEIGHT = 0.05
_NAMED_WEIGHT = 1e-3
# An arc whose time constant moved at most this far since the previous step keeps its role.
_CONTINUITY_DECADES = 0.5


def role_classes(
    custom: Mapping[str, tuple[float, float]] | None = None,
    tau_windows: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, RoleClass]:
    """The built-in classes with the user's classes and time-constant windows applied.

    Parameters
    ----------
    custom
        Role -> (C_min, C_max) F/cm2: overrides a built-in class or declares a role.
    tau_windows
        Role -> (tau_min, tau_max) s, for any role with a class.

    Raises
    ------
    ValueError
        A range that is not 0 < low < high, or a window for a role without a class.
    """
    classes = dict(DEFAULT_ROLE_CLASSES)
    for role, (low, high) in (custom or {}).items():
        if not (0 < low < high < math.inf):
            raise ValueError(f"role_classes.{role}: needs 0 < C_min < C_max F/cm2, got {low, high}")
        rank = ARC_ROLE_RANKS.get(role, 2)
        classes[role] = RoleClass(low, high, rank=rank)
    for role, (low, high) in (tau_windows or {}).items():
        if role not in classes:
            raise ValueError(
                f"role_tau_windows.{role}: no such role; declare its class in role_classes "
                f"(roles with a class: {', '.join(classes)})"
            )
        if not (0 < low < high < math.inf):
            raise ValueError(
                f"role_tau_windows.{role}: needs 0 < tau_min < tau_max s, got {low, high}"
            )
        base = classes[role]
        classes[role] = RoleClass(base.C_min_F_cm2, base.C_max_F_cm2, low, high, base.rank)
    return classes


@dataclass(frozen=True)
class ArcEstimate:
    """What identification needs of one fitted arc.

    Attributes
    ----------
    tau_s
        Time constant, s.
    C_F
        Brug capacitance, F.
    C_resolved
        False when the arc's apex lies outside the measured band.
    """

    tau_s: float
    C_F: float
    C_resolved: bool = True


@dataclass(frozen=True)
class Identification:
    """Which arc each role got.

    Attributes
    ----------
    arc_of
        Role -> index of its arc (into the circuit's R||CPE blocks), None when
        no arc matches it.
    distance_decades
        Role -> how far its arc lies outside the role's class (0: inside).
    unmatched
        Roles without an arc, each with the reason.
    ambiguous
        Role -> the role it could swap arcs with: same rank, and both arcs
        inside both classes, so the physics cannot tell which is which.
    """

    arc_of: Mapping[str, int | None]
    distance_decades: Mapping[str, float]
    unmatched: Mapping[str, str]
    ambiguous: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def identify_arcs(
    arcs: Sequence[ArcEstimate],
    roles: Sequence[str],
    classes: Mapping[str, RoleClass],
    *,
    area_cm2: float | None = None,
    previous_tau_s: Mapping[str, float] | None = None,
    previous_arcs: Mapping[str, int | None] | None = None,
    named: Mapping[str, int] | None = None,
) -> Identification:
    """Give each declared role the fitted arc its physics matches.

    Parameters
    ----------
    arcs
        The fitted R||CPE blocks, in the circuit's order.
    roles
        The arc roles to assign (each at most once).
    classes
        Role -> :class:`RoleClass` (every role in ``roles`` must have one).
    area_cm2
        Electrode area, cm2; None compares capacitances as if it were 1 cm2.
    previous_tau_s, previous_arcs
        Role -> its time constant and arc at the previous step (a chain keeps its labels).
    named
        Role -> the arc the user named for it (the last tie-breaker).

    Returns
    -------
    Identification
    """
    area = area_cm2 if area_cm2 else 1.0
    roles = list(roles)
    previous_tau_s = previous_tau_s or {}
    named = named or {}
    n_arcs = len(arcs)
    # cost[r][a]: class distance of arc a for role r (inf where it cannot match).
    distance = [
        [classes[role].distance_decades(arc.C_F / area, arc.tau_s, arc.C_resolved) for arc in arcs]
        for role in roles
    ]
    previous_arcs = previous_arcs or {}
    cost = [
        [
            (
                min(value, MATCH_TOLERANCE_DECADES)
                + _tie_break(role, index, arcs[index].tau_s, previous_tau_s, named)
                if value <= MATCH_TOLERANCE_DECADES
                or _continued(role, index, arcs[index].tau_s, previous_arcs, previous_tau_s)
                else math.inf
            )
            for index, value in enumerate(row)
        ]
        for role, row in zip(roles, distance, strict=True)
    ]
    ranks = [classes[role].rank for role in roles]
    best: tuple[float, tuple[int | None, ...]] = (math.inf, tuple(None for _ in roles))
    # Fast path: the previous step's (or the user's) arcs, each inside its class, in order.
    # An arc kept only by continuity goes through the full search, where its class
    # distance competes (a sei label carried 1.2 decades outside its class and window
    # onto the interface's arc: R_int 59 ohm against 2000, ok).
    hint = tuple(
        previous_arcs.get(role, named.get(role)) if previous_arcs else named.get(role)
        for role in roles
    )
    if (
        all(arc is not None and 0 <= arc < n_arcs for arc in hint)
        and len(set(hint)) == len(hint)
        and all(distance[position][arc] == 0.0 for position, arc in enumerate(hint))
        and _ordered(hint, ranks, arcs)
    ):
        choices = [hint]
    else:
        options = list(range(n_arcs)) + [None] * len(roles)
        choices = set(itertools.permutations(options, len(roles)))
    for choice in choices:
        total = 0.0
        for position, arc in enumerate(choice):
            total += _UNMATCHED_COST if arc is None else cost[position][arc]
            if total >= best[0]:
                break
        else:
            if _ordered(choice, ranks, arcs):
                best = (total, choice)
    arc_of = dict(zip(roles, best[1], strict=True))
    unmatched = {}
    for position, role in enumerate(roles):
        if arc_of[role] is None:
            unmatched[role] = _why_unmatched(role, classes[role], arcs, distance[position], area)
    return Identification(
        arc_of=MappingProxyType(arc_of),
        distance_decades=MappingProxyType(
            {
                role: (distance[position][arc] if arc is not None else math.nan)
                for position, (role, arc) in enumerate(arc_of.items())
            }
        ),
        unmatched=MappingProxyType(unmatched),
        ambiguous=MappingProxyType(_ambiguous(roles, ranks, best[1], distance)),
    )


def _ambiguous(
    roles: Sequence[str],
    ranks: Sequence[int],
    choice: Sequence[int | None],
    distance: Sequence[Sequence[float]],
) -> dict[str, str]:
    """Role -> the role whose arc it could take as well (see :class:`Identification`).

    A custom role of the interface's rank whose class overlaps the interface's, with
    no time-constant window: which arc is "int" is then a coin flip (the counter
    electrode's arc reported as the interface in half the fits, R_int 59 ohm against
    200-1000, ok).
    """
    ambiguous: dict[str, str] = {}
    for first, second in itertools.combinations(range(len(roles)), 2):
        a, b = choice[first], choice[second]
        if a is None or b is None or ranks[first] != ranks[second]:
            continue
        if max(distance[first][a], distance[first][b]) <= 0 and (
            max(distance[second][a], distance[second][b]) <= 0
        ):
            ambiguous.setdefault(roles[first], roles[second])
            ambiguous.setdefault(roles[second], roles[first])
    return ambiguous


def _continued(
    role: str,
    index: int,
    tau_s: float,
    previous_arcs: Mapping[str, int | None],
    previous_tau_s: Mapping[str, float],
) -> bool:
    """The role's arc at the previous step, its time constant within half a decade.

    A depleting interface keeps its time constant while its capacitance falls
    with the contact area, out of any class: along a chain it stays the interface.
    """
    previous = previous_tau_s.get(role)
    return (
        previous_arcs.get(role) == index
        and previous is not None
        and previous > 0
        and tau_s > 0
        and abs(math.log10(tau_s / previous)) <= _CONTINUITY_DECADES
    )


def _tie_break(
    role: str,
    index: int,
    tau_s: float,
    previous_tau_s: Mapping[str, float],
    named: Mapping[str, int],
) -> float:
    cost = 0.0
    previous = previous_tau_s.get(role)
    if previous is not None and previous > 0 and tau_s > 0:
        cost += _CONTINUITY_WEIGHT * abs(math.log10(tau_s / previous))
    if named.get(role, index) != index:
        cost += _NAMED_WEIGHT
    return cost


def _ordered(
    choice: Sequence[int | None], ranks: Sequence[int], arcs: Sequence[ArcEstimate]
) -> bool:
    """Roles of a lower rank relax faster (shorter tau) than those of a higher rank."""
    assigned = [
        (ranks[position], arcs[arc].tau_s) for position, arc in enumerate(choice) if arc is not None
    ]
    return all(
        tau_first < tau_second
        for (rank_first, tau_first), (rank_second, tau_second) in itertools.permutations(
            assigned, 2
        )
        if rank_first < rank_second
    )


def _why_unmatched(
    role: str,
    role_class: RoleClass,
    arcs: Sequence[ArcEstimate],
    distances: Sequence[float],
    area: float,
) -> str:
    wanted = f"C {role_class.C_min_F_cm2:.0e}..{role_class.C_max_F_cm2:.0e} F/cm2"
    if role_class.tau_min_s is not None or role_class.tau_max_s is not None:
        wanted += f", tau {role_class.tau_min_s or 0:.0e}..{role_class.tau_max_s or math.inf:.0e} s"
    found = ", ".join(f"{arc.C_F / area:.1e}" for arc in arcs) or "none"
    if any(value <= MATCH_TOLERANCE_DECADES for value in distances):
        return (
            f"no arc for {role} ({wanted}) in time-constant order with the other roles; "
            f"arcs C: {found} F/cm2"
        )
    return f"no arc for {role} ({wanted}); arcs C: {found} F/cm2"
