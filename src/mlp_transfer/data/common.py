"""Shared dataset helpers: one normalised frame form, atomic extxyz output, error-reporting input.

Every dataset of the study (SW, mlearn, users' extxyz) is written in the same form so that later stages
need one reader: positions, cell, pbc and species only; energy (eV), forces (eV/Å) and optionally stress
(eV/Å^3, ASE sign and Voigt order) on a SinglePointCalculator, which ASE's extxyz writer stores as
``energy``, ``forces`` and ``stress``; metadata in ``atoms.info``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import ase.io
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from mlp_transfer.data.validate import DatasetError
from mlp_transfer.io import atomic_path

#: Value of ``info["temperature"]`` when a frame has no (known) temperature.
NO_TEMPERATURE = -1.0


def attach_results(atoms: Atoms, energy: float, forces, stress=None) -> Atoms:
    """Store energy/forces/(stress) on ``atoms`` as a SinglePointCalculator; returns ``atoms``."""
    results = {"energy": float(energy), "forces": np.array(forces, dtype=float)}
    if stress is not None:
        results["stress"] = np.array(stress, dtype=float)
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def make_frame(symbols, positions, cell, pbc, energy: float, forces, stress=None,
               info: Mapping | None = None) -> Atoms:
    """A clean frame (no momenta, tags or stray arrays) carrying the labels and ``info``."""
    atoms = Atoms(symbols=symbols, positions=np.array(positions, dtype=float), cell=np.array(cell, dtype=float),
                  pbc=pbc)
    if info:
        atoms.info.update(info)
    return attach_results(atoms, energy, forces, stress)


def write_extxyz(path: str | os.PathLike, frames: Sequence[Atoms]) -> None:
    """Write ``frames`` to ``path`` as extxyz; the file appears only once completely written."""
    with atomic_path(path) as tmp:
        ase.io.write(tmp, list(frames), format="extxyz")


def write_train_test(out_train: str | os.PathLike, train: Sequence[Atoms], out_test: str | os.PathLike,
                     test: Sequence[Atoms]) -> None:
    """Write a dataset's train and test files together: both appear, or (on any error, e.g. an output folder
    that cannot be made) neither does, so a rerun never finds half a dataset that looks finished."""
    with atomic_path(out_train) as tmp_train, atomic_path(out_test) as tmp_test:
        ase.io.write(tmp_train, list(train), format="extxyz")
        ase.io.write(tmp_test, list(test), format="extxyz")


def read_extxyz(path: str | os.PathLike) -> list[Atoms]:
    """Read all frames of an extxyz file; unreadable input becomes a :class:`DatasetError`.

    Frames are read one by one so that a truncated or corrupt file is reported with the index of the
    frame that failed. An empty file gives an empty list (``validate_frames`` rejects it).
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(path, "file does not exist")
    if not path.is_file():
        raise DatasetError(path, "is not a regular file")
    frames: list[Atoms] = []
    try:
        for atoms in ase.io.iread(path, index=":", format="extxyz"):
            frames.append(atoms)
    except Exception as exc:  # ASE raises XYZError, ValueError, IndexError, ... for malformed input
        raise DatasetError(path, f"cannot be parsed as extxyz ({type(exc).__name__}: {exc}); "
                                 "truncated or corrupt file?", frame=len(frames)) from exc
    return frames
