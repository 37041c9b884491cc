"""Stillinger-Weber reference potentials for Si and Ge, evaluated with matscipy.

The SW potentials stand in for DFT as the "ground truth" of the study: they are cheap enough to label
thousands of structures on a laptop, and Si and Ge differ only in their energy/length scales and the
three-body strength, which is exactly the kind of chemical change the transfer experiment probes.

Parameters are kept in the physicists' convention (cos(theta0) = -1/3, as in the papers and in LAMMPS)
and converted to matscipy's convention only when the calculator is built, because matscipy's SW writes
the angular term as (cos(theta) + costheta0)^2 and thus expects +1/3 (passing -1/3 silently gives wrong
energies; see NOTES.md).
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator

# Stillinger & Weber, PRB 31, 5262 (1985); Ding & Andersen, PRB 34, 6987 (1986) for Ge (epsilon,
# sigma, lambda changed, everything else as Si). Energies in eV, lengths in Å.
_SI = {
    "reference": "F. H. Stillinger and T. A. Weber, Phys. Rev. B 31, 5262 (1985)",
    "epsilon": 2.1683,
    "sigma": 2.0951,
    "a": 1.80,
    "lambda": 21.0,
    "gamma": 1.20,
    "costheta0": -1.0 / 3.0,
    "A": 7.049556277,
    "B": 0.6022245584,
    "p": 4.0,
    "q": 0.0,
}
_GE = dict(_SI, reference="K. Ding and H. C. Andersen, Phys. Rev. B 34, 6987 (1986)",
           epsilon=1.93, sigma=2.181, **{"lambda": 31.0})

#: Read-only SW parameter sets keyed by element symbol (physicists' convention, cos(theta0) = -1/3).
SW_PARAMETERS = MappingProxyType({"Si": MappingProxyType(_SI), "Ge": MappingProxyType(_GE)})


def sw_parameters(element: str) -> dict:
    """Return a copy of the SW parameters of ``element``; ValueError names the elements available."""
    try:
        return dict(SW_PARAMETERS[element])
    except KeyError:
        raise ValueError(
            f"no Stillinger-Weber parameters for element {element!r}; "
            f"available: {', '.join(sorted(SW_PARAMETERS))}"
        ) from None


def sw_lattice_constant(element: str) -> float:
    """Cubic diamond lattice constant (Å) at the SW minimum.

    The SW pair term has its minimum (-epsilon) at r = 2^(1/6) sigma and the three-body term vanishes at
    the tetrahedral angle, while second neighbours (a0/sqrt 2) lie beyond the cutoff a*sigma; the
    diamond equilibrium therefore has nearest neighbours at 2^(1/6) sigma, i.e. a0 = 4 r_nn / sqrt(3).
    (Si 5.4309 Å, Ge 5.6536 Å; checked against an ASE EOS fit in the tests.)
    """
    sigma = sw_parameters(element)["sigma"]
    return 4.0 * 2.0 ** (1.0 / 6.0) * sigma / np.sqrt(3.0)


def _matscipy_dict(element: str, params: dict) -> dict:
    """Translate to the parameter dict of matscipy's SW potentials (costheta0 sign flipped, lambda1)."""
    return {
        "__ref__": params["reference"],
        "el": element,
        "epsilon": params["epsilon"],
        "sigma": params["sigma"],
        "costheta0": -params["costheta0"],  # matscipy: (cos + costheta0)^2, so +1/3 here
        "A": params["A"],
        "B": params["B"],
        "p": params["p"],
        "q": params["q"],
        "a": params["a"],
        "lambda1": params["lambda"],
        "gamma": params["gamma"],
    }


def _fast_neighbourhood_class():
    """matscipy CutoffNeighbourhood that skips the unused j-k triplet connectivity.

    matscipy's ``CutoffNeighbourhood.get_triplets`` always calls ``triplet_list`` with the pair lists,
    which runs a pure-Python loop to find the j-k pair of every triplet (~85% of an energy+force call).
    Energy, forces and stress only request triplet quantities "ijD", so this subclass calls the same
    compiled ``triplet_list`` without the pair lists and builds the same ij/ik/D arrays. The results are
    bit-identical (tested); any request that needs "k" falls back to matscipy's own code.
    """
    from matscipy.neighbours import CutoffNeighbourhood, first_neighbours, neighbour_list, triplet_list

    class FastCutoffNeighbourhood(CutoffNeighbourhood):
        def get_triplets(self, atoms, quantities, neighbours=None, cutoff=None):
            if "k" in quantities:
                return super().get_triplets(atoms, quantities, neighbours, cutoff)
            if cutoff is None:
                cutoff = self.cutoff
            if neighbours is None:
                i_p, j_p, d_p, D_p = neighbour_list("ijdD", atoms, cutoff)
            else:
                i_p, j_p, d_p, D_p = neighbours
            first_n = first_neighbours(len(atoms), i_p)
            ij_t, ik_t = triplet_list(first_n, d_p, cutoff)
            connectivity = np.array([ij_t, ik_t]).T
            D = d = None
            if "d" in quantities or "D" in quantities:
                D = np.zeros((len(ij_t), 3, 3))
                D[:, 0] = D_p[ij_t]  # i->j
                D[:, 1] = D_p[ik_t]  # i->k
                D[:, 2] = D[:, 1] - D[:, 0]  # j->k
                d = np.linalg.norm(D, axis=-1)
            return self.make_result(quantities, connectivity, D, d, None, accepted_quantities="ijdD")

    return FastCutoffNeighbourhood


def sw_calculator(element: str, *, fast: bool = True) -> Calculator:
    """ASE calculator for the SW potential of ``element`` (energy, forces, stress; eV, eV/Å, eV/Å^3).

    Uses matscipy 1.3.1's generic ``newmb.Manybody`` with its ``StillingerWeberPair``/``Angle`` terms.
    That calculator keys potentials by pair/triplet *type*, and its default neighbourhood assigns type 1
    to every pair and triplet (not 0), so the dicts are keyed by 1. ``fast=False`` uses matscipy's
    unmodified neighbourhood (same numbers, ~5x slower; kept for the equivalence test). The calculator is
    single-element: feeding it other species would silently apply the same parameters, so callers
    validate composition (``data.validate``).
    """
    from matscipy.calculators.manybody.newmb import Manybody
    from matscipy.calculators.manybody.potentials import StillingerWeberAngle, StillingerWeberPair
    from matscipy.neighbours import CutoffNeighbourhood

    params = sw_parameters(element)
    mdict = _matscipy_dict(element, params)
    cutoff = params["a"] * params["sigma"]
    neighbourhood_cls = _fast_neighbourhood_class() if fast else CutoffNeighbourhood
    return Manybody(
        phi={1: StillingerWeberPair(mdict)},
        theta={1: StillingerWeberAngle(mdict)},
        neighbourhood=neighbourhood_cls(cutoff=cutoff),
    )


def diamond_cell(element: str, supercell: int = 2) -> Atoms:
    """Cubic diamond cell of ``element`` at its SW lattice constant, repeated ``supercell``^3 times.

    8 atoms per cubic cell, so supercell=2 gives 64 atoms (the cell size of the study and of mlearn).
    """
    if int(supercell) != supercell or supercell < 1:
        raise ValueError(f"supercell must be a positive integer, got {supercell!r}")
    atoms = bulk(element, "diamond", a=sw_lattice_constant(element), cubic=True)
    return atoms.repeat((int(supercell),) * 3)
