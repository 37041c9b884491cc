"""The SW reference potentials: parameters, matscipy vs QUIP, equilibrium properties, derivatives."""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.fd import calculate_numerical_stress
from ase.data import atomic_numbers
from ase.eos import EquationOfState

from mlp_transfer.reference import (
    SW_PARAMETERS,
    diamond_cell,
    sw_calculator,
    sw_lattice_constant,
    sw_parameters,
)

ELEMENTS = ["Si", "Ge"]
# NOTES.md: ASE EOS fits of the SW potentials.
EXPECTED = {"Si": {"a0": 5.4309, "ecoh": 4.3366}, "Ge": {"a0": 5.6536, "ecoh": 3.860}}


def rattled(element, supercell=2, stdev=0.1, seed=0):
    atoms = diamond_cell(element, supercell)
    atoms.positions += np.random.default_rng(seed).normal(0.0, stdev, atoms.positions.shape)
    return atoms


def quip_sw(element):
    """QUIP's independent SW implementation ("IP SW"), parameters from the same table."""
    quippy = pytest.importorskip("quippy.potential")
    p = SW_PARAMETERS[element]
    z = atomic_numbers[element]
    # QUIP's SW has the angle term (cos + 1/3)^2 built in; p, q, a, sigma, eps, A, B, lambda, gamma as in SW.
    assert p["costheta0"] == pytest.approx(-1.0 / 3.0)
    xml = f"""<SW_params n_types="1">
<per_type_data type="1" atomic_num="{z}" />
<per_pair_data atnum_i="{z}" atnum_j="{z}" AA="{p['A']!r}" BB="{p['B']!r}" p="{p['p']!r}" q="{p['q']!r}"
  a="{p['a']!r}" sigma="{p['sigma']!r}" eps="{p['epsilon']!r}" />
<per_triplet_data atnum_c="{z}" atnum_j="{z}" atnum_k="{z}" lambda="{p['lambda']!r}" gamma="{p['gamma']!r}"
  eps="{p['epsilon']!r}" />
</SW_params>"""
    return quippy.Potential("IP SW", param_str=xml)


def efs(atoms, calc):
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy(), atoms.get_forces().copy(), atoms.get_stress().copy()


def test_parameters_as_published():
    si, ge = sw_parameters("Si"), sw_parameters("Ge")
    assert (si["epsilon"], si["sigma"], si["lambda"]) == (2.1683, 2.0951, 21.0)
    assert (ge["epsilon"], ge["sigma"], ge["lambda"]) == (1.93, 2.181, 31.0)
    for key in ("a", "gamma", "costheta0", "A", "B", "p", "q"):
        assert ge[key] == si[key]
    assert si["costheta0"] == pytest.approx(-1 / 3)


def test_unknown_element_names_available():
    with pytest.raises(ValueError, match=r"'C'.*Ge, Si"):
        sw_calculator("C")
    with pytest.raises(ValueError, match="Xx"):
        diamond_cell("Xx", 2)


@pytest.mark.parametrize("element", ELEMENTS)
def test_matscipy_agrees_with_quip(element):
    atoms = rattled(element)
    assert len(atoms) == 64
    e_m, f_m, s_m = efs(atoms, sw_calculator(element))
    e_q, f_q, s_q = efs(atoms, quip_sw(element))
    assert abs(e_m - e_q) < 1e-8
    assert np.abs(f_m - f_q).max() < 1e-8
    assert np.abs(s_m - s_q).max() < 1e-10  # eV/Å^3; same ASE sign convention
    assert np.abs(f_m).max() > 0.1  # the rattle is large enough to test something


@pytest.mark.parametrize("element", ELEMENTS)
def test_fast_neighbourhood_bit_identical(element):
    for supercell in (1, 2):
        atoms = rattled(element, supercell, seed=supercell)
        e_f, f_f, s_f = efs(atoms, sw_calculator(element, fast=True))
        e_s, f_s, s_s = efs(atoms, sw_calculator(element, fast=False))
        assert e_f == e_s
        assert np.array_equal(f_f, f_s)
        assert np.array_equal(s_f, s_s)


@pytest.mark.parametrize("element", ELEMENTS)
def test_lattice_constant_and_cohesive_energy(element):
    a0 = sw_lattice_constant(element)
    assert a0 == pytest.approx(EXPECTED[element]["a0"], abs=1e-4)
    volumes, energies = [], []
    for scale in np.linspace(0.98, 1.02, 9):
        atoms = diamond_cell(element, 1)
        atoms.set_cell(atoms.cell * scale, scale_atoms=True)
        atoms.calc = sw_calculator(element)
        volumes.append(atoms.get_volume())
        energies.append(atoms.get_potential_energy())
    v0, e0, _ = EquationOfState(volumes, energies).fit()
    assert v0 ** (1 / 3) == pytest.approx(EXPECTED[element]["a0"], abs=5e-4)
    assert -e0 / 8 == pytest.approx(EXPECTED[element]["ecoh"], abs=1e-3)
    cell = diamond_cell(element, 2)
    assert len(cell) == 64
    cell.calc = sw_calculator(element)
    assert -cell.get_potential_energy() / 64 == pytest.approx(EXPECTED[element]["ecoh"], abs=1e-3)
    assert np.abs(cell.get_forces()).max() < 1e-10
    assert np.abs(cell.get_stress()).max() < 1e-8


@pytest.mark.parametrize("element", ELEMENTS)
def test_forces_and_stress_are_energy_derivatives(element):
    atoms = rattled(element, 1, stdev=0.15, seed=3)
    atoms.calc = sw_calculator(element)
    forces = atoms.get_forces()
    h = 1e-5
    for i, c in [(0, 0), (3, 1), (7, 2), (5, 0)]:
        energies = []
        for sign in (1, -1):
            displaced = atoms.copy()
            displaced.positions[i, c] += sign * h
            displaced.calc = sw_calculator(element)
            energies.append(displaced.get_potential_energy())
        assert -(energies[0] - energies[1]) / (2 * h) == pytest.approx(forces[i, c], abs=1e-6)
    # stress = (1/V) dE/d(strain), ASE Voigt order xx yy zz yz xz xy
    numerical = calculate_numerical_stress(atoms, eps=1e-6)
    assert np.abs(numerical - atoms.get_stress()).max() < 1e-7
