"""Import of the mlearn DFT benchmark (Zuo et al., J. Phys. Chem. A 124, 731 (2020)) for Si or Ge.

The mlearn JSON files hold pymatgen Structure dicts; they are parsed directly (lattice.matrix,
sites[*].xyz, sites[*].species[0].element) so that pymatgen is not needed. The published train/test
split is kept, as in the benchmark, so results stay comparable with the literature.

Written per frame: energy (eV, total), forces (eV/Å) and stress (eV/Å^3, ASE's convention and Voigt order)
on a SinglePointCalculator. The files do not state the convention of ``outputs.virial_stress``; it is VASP's
``in kB`` line: kbar, order xx yy zz xy yz zx, positive = compressive (ASE's sign is the opposite), which
:func:`ase_stress_from_mlearn` converts as ASE's own VASP reader does. Evidence, from the data alone
(tests/test_data.py, on ../shared/data/mlearn): across the isotropically and shear-strained crystals of the
Elastic group, the pressure falls as the volume grows and each shear stress has the sign of its shear strain;
along the uniaxial strain path the converted stress and its slope are the first and second strain derivatives of
the DFT energies per volume (to 0.1 GPa and 3 %: the unit); and a PaiNN model fitted to Ge energies and forces
only predicts the off-diagonal stresses of the training structures with a correlation of 0.985 in this order
(0.01 and 0.64 in the two other orders; results/summaries/mlearn_full_stress_cpu/stress_order_check.py).

``atoms.info``: ``source`` = ``f"mlearn_{group}"`` (AIMD-NVT, Elastic, Surface, Vacancy), ``group``,
``description`` (mlearn's text), ``temperature`` in K where the description states one ("... at 300 K")
else ``-1.0``, ``mlearn_index`` (entry index in the JSON list), and in the test file ``test_set`` =
``"test"``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.units import GPa

from mlp_transfer.data.common import NO_TEMPERATURE, make_frame, write_train_test
from mlp_transfer.data.validate import DatasetError, check_frame, validate_frames

logger = logging.getLogger(__name__)

_TEMPERATURE = re.compile(r"\bat\s+(\d+(?:\.\d+)?)\s*K\b")


def parse_temperature(text: str) -> float:
    """Temperature in K stated in an mlearn description ("... simulation at 300 K"), else -1.0."""
    match = _TEMPERATURE.search(text or "")
    return float(match.group(1)) if match else NO_TEMPERATURE


KBAR_TO_EV_PER_ANG3 = 0.1 * GPa
# mlearn/VASP component order xx yy zz xy yz zx -> positions in ASE's Voigt order xx yy zz yz xz xy
_VASP_TO_ASE_VOIGT = [0, 1, 2, 4, 5, 3]


def ase_stress_from_mlearn(virial_stress) -> np.ndarray:
    """mlearn's ``virial_stress`` (VASP: kbar, xx yy zz xy yz zx, compression positive) as an ASE stress
    (eV/Å^3, Voigt xx yy zz yz xz xy, tension positive)."""
    values = np.asarray(virial_stress, dtype=float)
    if values.shape != (6,):
        raise ValueError(f"virial_stress has shape {values.shape}, expected (6,)")
    return -KBAR_TO_EV_PER_ANG3 * values[_VASP_TO_ASE_VOIGT]


def entry_to_atoms(entry: Any, path: str | Path, index: int, *, test_set: str | None = None) -> Atoms:
    """Convert one mlearn entry; malformed entries raise DatasetError naming file and entry index."""
    def fail(problem: str) -> DatasetError:
        return DatasetError(path, problem, frame=index)

    if not isinstance(entry, dict):
        raise fail(f"entry is a {type(entry).__name__}, expected an object")
    for key in ("structure", "outputs"):
        if not isinstance(entry.get(key), dict):
            raise fail(f"entry has no '{key}' object (keys: {sorted(entry)})")
    structure, outputs = entry["structure"], entry["outputs"]
    for key in ("energy", "forces"):
        if key not in outputs:
            raise fail(f"outputs has no '{key}' (keys: {sorted(outputs)})")
    try:
        cell = np.array(structure["lattice"]["matrix"], dtype=float)
        sites = structure["sites"]
        symbols = [site["species"][0]["element"] for site in sites]
        positions = np.array([site["xyz"] for site in sites], dtype=float)
        energy = float(outputs["energy"])
        forces = np.array(outputs["forces"], dtype=float)
        stress = None if outputs.get("virial_stress") is None else ase_stress_from_mlearn(outputs["virial_stress"])
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise fail(f"malformed structure or outputs ({type(exc).__name__}: {exc})") from exc
    if cell.shape != (3, 3):
        raise fail(f"lattice matrix has shape {cell.shape}, expected (3, 3)")
    if positions.shape != (len(symbols), 3):
        raise fail(f"site coordinates have shape {positions.shape}, expected ({len(symbols)}, 3)")
    if forces.shape != (len(symbols), 3):
        # checked here as well as in validate_frames: a ragged list would not even make an array
        raise fail(f"forces have shape {forces.shape}, expected ({len(symbols)}, 3)")

    group = str(entry.get("group", "unknown"))
    description = str(entry.get("description", ""))
    info = {
        "source": f"mlearn_{group}",
        "group": group,
        "description": description,
        "temperature": parse_temperature(description),
        "mlearn_index": index,
    }
    if test_set is not None:
        info["test_set"] = test_set
    return make_frame(symbols, positions, cell, True, energy, forces, stress, info)


def read_mlearn_json(path: str | Path, element: str, *, test_set: str | None = None) -> list[Atoms]:
    """Read and validate one mlearn JSON file (a list of entries)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "file does not exist")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(path, f"is not valid JSON ({exc})") from exc
    if not isinstance(data, list):
        raise DatasetError(path, f"top level is a {type(data).__name__}, expected a list of entries")
    frames = []
    for index, entry in enumerate(data):
        atoms = entry_to_atoms(entry, path, index, test_set=test_set)
        problem = check_frame(atoms, element)
        if problem is not None:
            raise DatasetError(path, problem, frame=index)
        frames.append(atoms)
    validate_frames(frames, element, path)
    return frames


def import_mlearn(folder: str | Path, element: str, out_train: str | Path, out_test: str | Path) -> dict:
    """Convert ``folder/{element}/{training,test}.json`` to extxyz train/test files; returns counts.

    ``folder`` may be the mlearn data root (holding ``Si/``, ``Ge/``) or the element's own folder.
    """
    folder = Path(folder)
    if (folder / element / "training.json").exists() or not (folder / "training.json").exists():
        folder = folder / element
    train = read_mlearn_json(folder / "training.json", element)
    test = read_mlearn_json(folder / "test.json", element, test_set="test")
    write_train_test(out_train, train, out_test, test)
    logger.info("mlearn %s: %d train -> %s, %d test -> %s", element, len(train), out_train, len(test), out_test)
    return {"element": element, "n_train": len(train), "n_test": len(test)}


def cli(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mlp-transfer import-mlearn", description=__doc__.splitlines()[0])
    p.add_argument("--folder", required=True, type=Path, help="mlearn data root (with Si/, Ge/) or element folder")
    p.add_argument("--element", required=True)
    p.add_argument("--out-train", required=True, type=Path)
    p.add_argument("--out-test", required=True, type=Path)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        import_mlearn(args.folder, args.element, args.out_train, args.out_test)
    except DatasetError as exc:  # one line naming file, entry and problem; nothing was written
        print(f"mlp-transfer import-mlearn: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
