"""Shared fixtures: small Stillinger-Weber-labelled Si and Ge pools and a tiny model configuration.

Everything here is sized for speed: 8-atom diamond cells (supercell=1) and a PaiNN model with 8 features,
one interaction and 8 radial basis functions, so a training step takes milliseconds on one CPU thread.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlp_transfer.data.common import attach_results, write_extxyz
from mlp_transfer.reference import diamond_cell, sw_calculator

#: Model settings used by every test that builds or trains a model.
TINY_MODEL = {"architecture": "painn", "cutoff": 4.0, "n_atom_basis": 8, "n_interactions": 1, "n_rbf": 8}

#: Structures per element in the shared pools.
POOL_SIZE = 12


def sw_frames(element: str, n: int, seed: int = 0, stdev: float = 0.1, test_sets=None) -> list:
    """``n`` rattled 8-atom diamond cells of ``element`` labelled with its SW energy and forces.

    ``test_sets``, when given, is a sequence of labels stored cyclically in ``info['test_set']``.
    """
    calc = sw_calculator(element)
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        atoms = diamond_cell(element, supercell=1)
        atoms.positions += rng.normal(0.0, stdev, atoms.positions.shape)
        atoms.calc = calc
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        attach_results(atoms, energy, forces)
        if test_sets is not None:
            atoms.info["test_set"] = test_sets[i % len(test_sets)]
        frames.append(atoms)
    return frames


@pytest.fixture(scope="session")
def make_sw_frames():
    """Factory fixture giving :func:`sw_frames` to test modules (conftest helpers are not importable)."""
    return sw_frames


@pytest.fixture(scope="session")
def tiny_model_config() -> dict:
    return dict(TINY_MODEL)


@pytest.fixture(scope="session")
def sw_pools(tmp_path_factory) -> dict:
    """Paths of two extxyz training pools, ``{"Si": path, "Ge": path}``, of POOL_SIZE labelled cells each."""
    directory = tmp_path_factory.mktemp("pools")
    pools = {}
    for seed, element in enumerate(("Si", "Ge")):
        path = directory / f"{element}_train.xyz"
        write_extxyz(path, sw_frames(element, POOL_SIZE, seed=seed))
        pools[element] = path
    return pools
