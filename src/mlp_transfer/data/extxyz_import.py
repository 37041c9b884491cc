"""Import of a user's own extxyz train/test files, normalised to the form of the SW datasets.

DFT training files name their labels differently (``energy``, ``dft_energy``, ``REF_energy``,
``DFT_forces`` ...). ASE's extxyz reader moves keys literally named ``energy``/``forces`` (and a few
other standard names) onto a SinglePointCalculator and leaves every other key in ``atoms.info`` (per
frame) or ``atoms.arrays`` (per atom), so ``energy_key`` is looked up in ``info`` and then in the
calculator results, ``forces_key`` in ``arrays`` and then in the calculator results.

Normalised output: energy (eV) and forces (eV/Å) on a SinglePointCalculator; no stress (stress and
virial conventions in users' files vary, so such data cannot be trained with ``loss_weights.stress``); ``info``
holds ``source = "extxyz"``, ``temperature`` (float K if the input frame has one, else -1.0),
``config_type`` if present, and in the test file ``test_set`` (the input frame's own ``test_set`` if it
has one, else ``"test"``). Training frames carry no ``test_set``.

Isolated single-atom frames are dropped: DFT training files often include isolated-atom reference energies,
which are not condensed-phase configurations, have no forces to learn, and would distort per-structure energy
statistics. A single atom counts as isolated when it has no periodic image within
``ISOLATED_ATOM_IMAGE_DISTANCE`` (a vacuum box, or no periodicity); a one-atom primitive cell of a bulk crystal
(fcc, bcc, simple cubic) is kept. Each dropped frame is counted and reported in one logged warning per file.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from mlp_transfer.data.common import NO_TEMPERATURE, attach_results, read_extxyz, write_train_test
from mlp_transfer.data.validate import DatasetError, check_frame, frame_results, validate_frames

logger = logging.getLogger(__name__)


def _lookup_energy(atoms: Atoms, key: str, path: Path, index: int) -> float:
    results = frame_results(atoms)
    if key in atoms.info:
        value = atoms.info[key]
    elif key in results:
        value = results[key]
    elif key in atoms.arrays:
        raise DatasetError(path, f"energy key {key!r} is a per-atom array of shape {atoms.arrays[key].shape}, "
                                 "expected one total energy per frame", frame=index)
    else:
        raise DatasetError(
            path,
            f"energy key {key!r} not found; per-frame info keys: {sorted(atoms.info)}, "
            f"calculator results: {sorted(results)}",
            frame=index,
        )
    try:
        return float(np.asarray(value, dtype=float).item())
    except (TypeError, ValueError) as exc:
        raise DatasetError(path, f"energy key {key!r} holds {value!r}, not a single number", frame=index) from exc


def _lookup_forces(atoms: Atoms, key: str, path: Path, index: int) -> np.ndarray:
    results = frame_results(atoms)
    if key in atoms.arrays:
        value = atoms.arrays[key]
    elif key in results:
        value = results[key]
    elif key in atoms.info:
        # a per-frame value where per-atom forces belong, e.g. forces="0.1 0.2 0.3" in the comment line
        shape = np.shape(atoms.info[key])
        raise DatasetError(path, f"forces key {key!r} is a per-frame value of shape {shape}, expected per-atom "
                                 f"forces of shape ({len(atoms)}, 3)", frame=index)
    else:
        raise DatasetError(
            path,
            f"forces key {key!r} not found; per-atom array keys: {sorted(atoms.arrays)}, "
            f"calculator results: {sorted(results)}",
            frame=index,
        )
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DatasetError(path, f"forces key {key!r} does not hold numbers", frame=index) from exc


# Å: beyond the first neighbour shells of any solid (3-4 Å) and every cutoff used here, below the 10-20 Å
# vacuum boxes of atomic reference calculations
ISOLATED_ATOM_IMAGE_DISTANCE = 6.0


def is_isolated_atom(atoms: Atoms) -> bool:
    """One atom without a periodic image within ``ISOLATED_ATOM_IMAGE_DISTANCE``."""
    return len(atoms) == 1 and len(neighbor_list("i", atoms, ISOLATED_ATOM_IMAGE_DISTANCE)) == 0


def normalise_frames(frames: list[Atoms], path: str | Path, element: str, *, energy_key: str = "energy",
                     forces_key: str = "forces", is_test: bool = False) -> tuple[list[Atoms], int]:
    """Normalise and validate frames read from ``path``; returns (frames, number of single-atom frames dropped).

    Errors name the frame's index in the input file (0-based), not its index after dropping.
    """
    path = Path(path)
    out: list[Atoms] = []
    dropped = 0
    for index, atoms in enumerate(frames):
        if is_isolated_atom(atoms):
            dropped += 1
            continue
        energy = _lookup_energy(atoms, energy_key, path, index)
        forces = _lookup_forces(atoms, forces_key, path, index)
        info: dict = {"source": "extxyz"}
        temperature = atoms.info.get("temperature", NO_TEMPERATURE)
        try:
            info["temperature"] = float(temperature)
        except (TypeError, ValueError) as exc:
            raise DatasetError(path, f"temperature {temperature!r} is not a number", frame=index) from exc
        if "config_type" in atoms.info:
            info["config_type"] = str(atoms.info["config_type"])
        if is_test:
            info["test_set"] = str(atoms.info.get("test_set", "test"))
        frame = Atoms(symbols=atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell,
                      pbc=atoms.pbc)
        frame.info.update(info)
        attach_results(frame, energy, forces)
        problem = check_frame(frame, element)
        if problem is not None:
            raise DatasetError(path, problem, frame=index)
        out.append(frame)
    if dropped:
        logger.warning("%s: dropped %d single-atom frame(s) (isolated-atom references: no periodic image "
                       "within %g A)", path, dropped, ISOLATED_ATOM_IMAGE_DISTANCE)
    if not out:
        suffix = f" ({dropped} single-atom frame(s) dropped)" if dropped else ""
        raise DatasetError(path, f"contains no structures{suffix}")
    validate_frames(out, element, path)
    return out, dropped


def import_extxyz(train_path: str | Path, test_path: str | Path, element: str, out_train: str | Path,
                  out_test: str | Path, energy_key: str = "energy", forces_key: str = "forces") -> dict:
    """Validate and normalise a user's train/test extxyz files; returns counts incl. dropped frames."""
    train, dropped_train = normalise_frames(read_extxyz(train_path), train_path, element,
                                            energy_key=energy_key, forces_key=forces_key, is_test=False)
    test, dropped_test = normalise_frames(read_extxyz(test_path), test_path, element,
                                          energy_key=energy_key, forces_key=forces_key, is_test=True)
    write_train_test(out_train, train, out_test, test)
    logger.info("extxyz %s: %d train -> %s, %d test -> %s", element, len(train), out_train, len(test), out_test)
    return {"element": element, "n_train": len(train), "n_test": len(test),
            "dropped_single_atom_train": dropped_train, "dropped_single_atom_test": dropped_test}


def cli(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mlp-transfer import-extxyz", description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, type=Path, help="input training extxyz")
    p.add_argument("--test", required=True, type=Path, help="input test extxyz")
    p.add_argument("--element", required=True)
    p.add_argument("--out-train", required=True, type=Path)
    p.add_argument("--out-test", required=True, type=Path)
    p.add_argument("--energy-key", default="energy", help="info key (or calculator result) of the total energy")
    p.add_argument("--forces-key", default="forces", help="per-atom array key (or calculator result) of the forces")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        import_extxyz(args.train, args.test, args.element, args.out_train, args.out_test,
                      energy_key=args.energy_key, forces_key=args.forces_key)
    except DatasetError as exc:  # one line naming file, frame and problem; nothing was written
        print(f"mlp-transfer import-extxyz: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
