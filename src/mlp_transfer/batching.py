"""Structures to schnetpack input batches, with neighbour lists computed once per structure.

schnetpack's data pipeline recomputes neighbour lists every epoch; for the small learning-curve subsets
trained for thousands of steps that dominates the cost, so each structure is converted once and kept in
memory, and batches are collated with schnetpack's own ``_atoms_collate_fn``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from ase import Atoms
from ase.stress import voigt_6_to_full_3x3_stress
from schnetpack import properties
from schnetpack.data.loader import _atoms_collate_fn
from schnetpack.transform import CastTo32, MatScipyNeighborList

# Reference labels get their own keys: the model writes its predictions into the input dict under
# "energy"/"forces", which would overwrite labels stored there.
ENERGY_REF = "energy_ref"
FORCES_REF = "forces_ref"
STRESS_REF = "stress_ref"


class MissingStressError(ValueError):
    """Stress labels were requested for a structure that carries none."""


def full_stress(stress) -> np.ndarray:
    """A stress label as a 3x3 array (ASE stores Voigt xx yy zz yz xz xy; a 3x3 label is returned as is)."""
    stress = np.asarray(stress, dtype=float)
    return voigt_6_to_full_3x3_stress(stress) if stress.shape == (6,) else stress


def structure_inputs(atoms: Atoms, index: int, cutoff: float, with_targets: bool = True,
                     with_stress: bool = False) -> dict:
    """One structure as a schnetpack input dict (float32), neighbour list included; targets optional.

    ``with_stress`` adds the stress label as a (1, 3, 3) tensor in eV/Å^3 with ASE's sign, the convention of
    schnetpack's ``Forces(calc_stress=True)`` (1/V dE/d strain).
    """
    inputs = {
        properties.idx: torch.tensor([index]),
        properties.n_atoms: torch.tensor([len(atoms)]),
        properties.Z: torch.from_numpy(atoms.get_atomic_numbers()),
        properties.R: torch.from_numpy(atoms.get_positions()),
        properties.cell: torch.from_numpy(atoms.get_cell().array).view(-1, 3, 3),
        properties.pbc: torch.from_numpy(atoms.get_pbc()).view(-1, 3),
    }
    inputs = MatScipyNeighborList(cutoff=cutoff)(inputs)
    inputs = CastTo32()(inputs)
    if with_targets:
        results = atoms.calc.results
        # Energies stay float64: totals of hundreds of eV would lose sub-meV resolution in float32.
        inputs[ENERGY_REF] = torch.tensor([float(results["energy"])], dtype=torch.float64)
        inputs[FORCES_REF] = torch.from_numpy(np.asarray(results["forces"], dtype=np.float32))
        if with_stress:
            if results.get("stress") is None:
                raise MissingStressError(f"structure {index} has no stress label")
            inputs[STRESS_REF] = torch.from_numpy(full_stress(results["stress"]).astype(np.float32)).view(1, 3, 3)
    return inputs


# Evaluation and validation batches: energy+forces throughput on CPU peaks at about 512 atoms per batch
# (benchmarks/README.md, inference: 8 x 64 atoms beat 1 x 64 by ~30%, 1 x 512 beat 8 x 512 by ~25%), and the
# bound keeps the memory of a validation no larger than that of a 512-atom forward and force pass.
MAX_BATCH_ATOMS = 512


class StructureSet:
    """Pre-converted structures that yield collated batches."""

    def __init__(self, frames: Sequence[Atoms], cutoff: float, with_targets: bool = True, with_stress: bool = False):
        self.with_stress = with_stress
        self.items = [structure_inputs(atoms, i, cutoff, with_targets, with_stress) for i, atoms in enumerate(frames)]
        self.n_atoms = np.array([len(atoms) for atoms in frames])

    def __len__(self) -> int:
        return len(self.items)

    def batch(self, indices: Sequence[int], device: str | torch.device = "cpu") -> dict:
        collated = _atoms_collate_fn([self.items[i] for i in indices])
        return {key: value.to(device) for key, value in collated.items()}

    def batches(self, batch_size: int, device: str | torch.device = "cpu", max_atoms: int | None = None):
        """Batches in order (for evaluation): at most ``batch_size`` structures and, when given, at most
        ``max_atoms`` atoms per batch (a structure larger than that gets a batch of its own)."""
        start = 0
        while start < len(self):
            stop = min(start + batch_size, len(self))
            if max_atoms is not None:
                counts = np.cumsum(self.n_atoms[start:stop])
                stop = start + max(1, int(np.searchsorted(counts, max_atoms, side="right")))
            yield self.batch(range(start, stop), device)
            start = stop


def mean_energy_per_atom(frames: Sequence[Atoms]) -> float:
    """Energy offset: mean over structures of E/N, the quantity ``AddOffsets`` multiplies by N."""
    return float(np.mean([atoms.calc.results["energy"] / len(atoms) for atoms in frames]))
