"""Checks every dataset passes before it enters the workflow.

Bad labels (NaN energies, force arrays of the wrong length, stray species) otherwise surface much later
as NaN losses or shape errors deep inside training, far from the file that caused them. Every problem is
reported as a :class:`DatasetError` naming the file, the frame and what is wrong.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols


class DatasetError(ValueError):
    """A dataset file is unusable; the message names the file, the frame (if any) and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str, frame: int | None = None):
        self.path = str(path)
        self.frame = frame
        self.problem = problem
        where = self.path if frame is None else f"{self.path}, frame {frame}"
        super().__init__(f"{where}: {problem}")


def frame_results(atoms: Atoms) -> dict:
    """Results stored on a frame's (single-point) calculator, or an empty dict if it has none."""
    calc = atoms.calc
    return dict(getattr(calc, "results", {}) or {}) if calc is not None else {}


def check_frame(atoms: Atoms, element: str) -> str | None:
    """Return a description of the first problem with one frame, or None if it is fine."""
    n = len(atoms)
    if n == 0:
        return "has no atoms"
    symbols = sorted(set(atoms.get_chemical_symbols()))
    if symbols != [element]:
        return f"contains elements {symbols}, expected only {element}"
    if not np.all(np.isfinite(atoms.positions)):
        return "positions are not finite"
    if np.any(atoms.pbc):
        volume = abs(np.linalg.det(np.asarray(atoms.cell)))
        if not np.isfinite(volume) or volume < 1e-8:
            return f"pbc is {atoms.pbc.tolist()} but the cell volume is {volume:g} Å^3"

    results = frame_results(atoms)
    energy = results.get("energy")
    if energy is None:
        return "has no energy"
    try:
        energy = float(np.asarray(energy).item())
    except (TypeError, ValueError):
        return f"energy {energy!r} is not a single number"
    if not np.isfinite(energy):
        return f"energy is {energy}"

    forces = results.get("forces")
    if forces is None:
        return "has no forces"
    forces = np.asarray(forces)
    if forces.shape != (n, 3):
        return f"forces have shape {forces.shape}, expected ({n}, 3)"
    if not np.all(np.isfinite(forces)):
        bad = int(np.argwhere(~np.isfinite(forces))[0][0])
        return f"forces are not finite (first at atom {bad})"

    stress = results.get("stress")
    if stress is not None:
        stress = np.asarray(stress)
        if stress.shape not in {(6,), (3, 3)}:
            return f"stress has shape {stress.shape}, expected (6,) or (3, 3)"
        if not np.all(np.isfinite(stress)):
            return "stress is not finite"
    return None


def validate_frames(frames: Sequence[Atoms], element: str, path: str | os.PathLike) -> None:
    """Raise :class:`DatasetError` on the first problem in ``frames`` (read from or bound for ``path``).

    Requires: at least one frame; every frame made of ``element`` only; finite positions; a cell of
    nonzero volume where pbc is set; a finite energy and finite forces of shape (n_atoms, 3) on the
    frame's calculator (a stress, if present, must be finite). Frame indices are 0-based.
    """
    if element not in chemical_symbols[1:]:
        raise DatasetError(path, f"declared element {element!r} is not a chemical symbol")
    if len(frames) == 0:
        raise DatasetError(path, "contains no structures")
    for index, atoms in enumerate(frames):
        problem = check_frame(atoms, element)
        if problem is not None:
            raise DatasetError(path, problem, frame=index)
