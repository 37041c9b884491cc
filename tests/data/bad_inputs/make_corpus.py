"""Regenerate the data files of the bad-input corpus (``corpus.yaml`` lists the cases and their errors).

Run from the repository root: ``.venv/bin/python tests/data/bad_inputs/make_corpus.py``. The files are
committed; this script documents exactly how each defect was made and rewrites them byte for byte.
Every structure is an 8-atom diamond cell, rattled and labelled with the element's Stillinger-Weber
energy and forces, so a file is bad only through the one defect its name says.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import ase.io
import numpy as np
import yaml

from mlp_transfer.reference import diamond_cell, sw_calculator

HERE = Path(__file__).resolve().parent
TINY = HERE.parents[1] / "configs" / "tiny.yaml"


def frames(element: str, n: int, seed: int) -> list:
    """``n`` rattled 8-atom cells of ``element`` with SW energy/forces in info/arrays (plain extxyz keys)."""
    calc = sw_calculator(element)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        atoms = diamond_cell(element, supercell=1)
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        atoms.calc = calc
        energy, forces = float(atoms.get_potential_energy()), atoms.get_forces()
        atoms.calc = None
        atoms.info["energy"] = round(energy, 8)
        atoms.arrays["forces"] = np.round(forces, 8)
        out.append(atoms)
    return out


def write(name: str, structures: list) -> None:
    ase.io.write(HERE / "extxyz" / name, structures, format="extxyz")


def make_extxyz() -> None:
    (HERE / "extxyz").mkdir(exist_ok=True)
    write("good_Si.xyz", frames("Si", 4, seed=0))
    write("good_Ge.xyz", frames("Ge", 4, seed=1))

    good = HERE / "extxyz" / "good_Si.xyz"
    lines = good.read_text().splitlines(keepends=True)
    # frame 0 complete (2 header lines + 8 atoms), frame 1 cut after its 5th atom line
    (HERE / "extxyz" / "truncated.xyz").write_text("".join(lines[:10 + 2 + 5]))
    (HERE / "extxyz" / "empty.xyz").write_text("")

    def defect(name: str, mutate, n: int = 3, seed: int = 2, element: str = "Si") -> None:
        structures = frames(element, n, seed)
        mutate(structures)
        write(name, structures)

    defect("no_energy.xyz", lambda s: s[1].info.pop("energy"))
    defect("no_forces.xyz", lambda s: s[2].arrays.pop("forces"))

    def wrong_shape(s):
        # two force components per atom: shape (8, 2) instead of (8, 3)
        s[1].arrays["forces"] = s[1].arrays["forces"][:, :2].copy()

    defect("forces_wrong_shape.xyz", wrong_shape)

    def per_frame_forces(s):
        # a per-frame 3-vector where per-atom forces belong: shape (3,) instead of (8, 3)
        s[1].arrays.pop("forces")
        s[1].info["forces"] = np.array([0.1, 0.2, 0.3])

    defect("forces_per_frame.xyz", per_frame_forces)
    defect("nan_energy.xyz", lambda s: s[1].info.__setitem__("energy", float("nan")))

    def inf_forces(s):
        s[2].arrays["forces"][5, 1] = np.inf

    defect("inf_forces.xyz", inf_forces)
    # every structure Ge, file declared as Si
    write("wrong_element.xyz", frames("Ge", 3, seed=3))

    def mixed(s):
        s[1].symbols[4] = "Ge"

    defect("mixed_elements.xyz", mixed)

    def custom_keys(s):
        for atoms in s:
            atoms.info["dft_energy"] = atoms.info.pop("energy")
            atoms.arrays["dft_force"] = atoms.arrays.pop("forces")

    defect("custom_keys.xyz", custom_keys, n=4, seed=4)


def mlearn_entry(atoms) -> dict:
    return {
        "structure": {"@class": "Structure", "lattice": {"matrix": atoms.cell.tolist()},
                      "sites": [{"species": [{"element": s, "occu": 1}], "xyz": p.tolist()}
                                for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)]},
        "outputs": {"energy": atoms.info["energy"], "forces": atoms.arrays["forces"].tolist(),
                    "virial_stress": [0.0] * 6},
        "group": "AIMD-NVT", "description": "Snapshot of AIMD NVT simulation at 300 K", "num_atoms": len(atoms),
    }


def make_mlearn() -> None:
    for case, mutate in (
        ("missing_outputs", lambda entries: entries[2].pop("outputs")),
        ("missing_forces", lambda entries: entries[1]["outputs"].pop("forces")),
    ):
        entries = [mlearn_entry(a) for a in frames("Si", 3, seed=5)]
        mutate(entries)
        folder = HERE / "mlearn" / case / "Si"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "training.json").write_text(json.dumps(entries, indent=1) + "\n")
        (folder / "test.json").write_text(json.dumps([mlearn_entry(a) for a in frames("Si", 2, seed=6)],
                                                     indent=1) + "\n")


def make_splits() -> None:
    """A valid split of good_Si.xyz, so that the missing-source-model case fails only on the model."""
    split = {"seed": 0, "pool_size": 4, "validation": [0], "train": {"2": [1, 2]}, "pool": "good_Si.xyz"}
    (HERE / "extxyz" / "good_Si.split.json").write_text(json.dumps(split, indent=2) + "\n")


def make_configs() -> None:
    """Workflow configs, each the tiny test config with one defect. Data paths are relative to the
    directory Snakemake runs in, into which the test copies this folder as ``bad_inputs/``."""
    (HERE / "configs").mkdir(exist_ok=True)
    own = {"kind": "extxyz", "elements": {"Si": {"train": "bad_inputs/extxyz/good_Si.xyz",
                                                 "test": "bad_inputs/extxyz/good_Si.xyz"},
                                          "Ge": {"train": "bad_inputs/extxyz/good_Ge.xyz",
                                                 "test": "bad_inputs/extxyz/good_Ge.xyz"}}}

    def config(name: str, what: str, mutate) -> None:
        cfg = yaml.safe_load(TINY.read_text())
        mutate(cfg)
        text = yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None, width=110)
        (HERE / "configs" / name).write_text(f"# {what} (tests/configs/tiny.yaml otherwise)\n{text}")

    def own_data(cfg, **changes) -> None:
        dataset = {**copy.deepcopy(own), **changes}
        cfg["datasets"] = {"mine": dataset}
        cfg["pairs"] = [{"dataset": "mine", "source": "Si", "target": "Ge"}]
        cfg["source_training"] = {"n_train": "all", "n_validation": 1, "seed": 0}
        cfg["learning_curve"].update({"sizes": [2], "n_validation": 1})

    config("unknown_key.yaml", "typo in a key: learning_curve.sizez",
           lambda c: c["learning_curve"].__setitem__("sizez", [2]))
    config("unknown_dataset_key.yaml", "typo in a dataset key: datasets.sw.supercel",
           lambda c: c["datasets"]["sw"].__setitem__("supercel", 1))
    config("wrong_type.yaml", "wrong type: training.batch_size is a string",
           lambda c: c["training"].__setitem__("batch_size", "four"))
    config("size_larger_than_pool.yaml", "training size 20 > the 14-structure SW pool",
           lambda c: c["learning_curve"].__setitem__("sizes", [2, 20]))
    config("size_zero.yaml", "training size 0", lambda c: c["learning_curve"].__setitem__("sizes", [0, 2]))
    config("size_negative.yaml", "training size -3", lambda c: c["learning_curve"].__setitem__("sizes", [-3]))

    def no_sw(c):
        c["datasets"]["sw"]["elements"] = ["Si", "C"]
        c["pairs"] = [{"dataset": "sw", "source": "Si", "target": "C"}]

    config("no_sw_parameters.yaml", "element C has no Stillinger-Weber parameters", no_sw)

    def missing_path(c):
        own_data(c)
        c["datasets"]["mine"]["elements"]["Ge"]["train"] = "bad_inputs/extxyz/does_not_exist.xyz"

    config("extxyz_path_missing.yaml", "extxyz dataset whose Ge training file does not exist", missing_path)

    def mlearn_missing(c):
        c["datasets"] = {"dft": {"kind": "mlearn", "path": "bad_inputs/mlearn/no_such_folder",
                                 "elements": ["Si", "Ge"]}}
        c["pairs"] = [{"dataset": "dft", "source": "Si", "target": "Ge"}]

    config("mlearn_path_missing.yaml", "mlearn dataset folder that does not exist", mlearn_missing)

    def wrong_energy_key(c):
        own_data(c)
        c["datasets"]["mine"]["elements"]["Si"] = {"train": "bad_inputs/extxyz/custom_keys.xyz",
                                                   "test": "bad_inputs/extxyz/good_Si.xyz"}

    config("wrong_energy_key.yaml", "labels stored as dft_energy/dft_force, config keeps the default keys",
           wrong_energy_key)

    def wrong_forces_key(c):
        wrong_energy_key(c)
        c["datasets"]["mine"].update({"energy_key": "dft_energy", "forces_key": "dft_forces"})

    config("wrong_forces_key.yaml", "forces_key dft_forces, the file has dft_force", wrong_forces_key)

    def extxyz_too_small(c):
        own_data(c)
        c["learning_curve"]["sizes"] = [2, 10]

    config("extxyz_size_larger_than_pool.yaml", "training size 10 > the 4-structure extxyz Ge pool",
           extxyz_too_small)


if __name__ == "__main__":
    make_extxyz()
    make_mlearn()
    make_splits()
    make_configs()
