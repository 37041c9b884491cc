"""Elastic figures implied by mlearn's own DFT data (the Elastic group of the Ge training file), for comparison
with the models' properties: the stress of the reference cell, C11 and C12 from the uniaxial path ("mode 0",
|strain| <= 4 %) and the unrelaxed C44 from the shear paths (modes 3-5; the atoms are not relaxed in those
cells). Run from the repository root: .venv/bin/python results/summaries/mlearn_full_stress_cpu/elastic_from_data.py
[path to mlearn, default ../shared/data/mlearn]
"""

import re
import sys
from pathlib import Path

import numpy as np
from ase.units import GPa

from mlp_transfer.data.mlearn import read_mlearn_json

folder = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/mlearn")
frames = [a for a in read_mlearn_json(folder / "Ge" / "training.json", "Ge") if a.info["group"] == "Elastic"]
uniaxial, shear = [], []
for atoms in frames:
    match = re.search(r"mode (\d+), strain ([-\d.]+)", atoms.info["description"])
    if match is None:  # the unstrained reference cell
        print(f"reference cell a = {atoms.cell.lengths()[0] / 2:.4f} A, stress {atoms.get_stress()[:3] / GPa} GPa")
        continue
    mode, strain = int(match.group(1)), float(match.group(2))
    if mode == 0 and abs(strain) <= 0.041:
        uniaxial.append((strain, atoms.get_stress()[:2] / GPa))
    if mode >= 3 and strain > 0 and abs(strain) <= 0.041:
        gamma = 2 * strain  # the cells carry the engineering shear 2 x strain
        shear.append(np.abs(atoms.get_stress()[3:]).max() / GPa / gamma)
eps = np.array([u[0] for u in uniaxial])
sigma = np.array([u[1] for u in uniaxial])
c11, c12 = np.polyfit(eps, sigma[:, 0], 2)[1], np.polyfit(eps, sigma[:, 1], 2)[1]
print(f"C11 = {c11:.1f} GPa, C12 = {c12:.1f} GPa, B = (C11 + 2 C12)/3 = {(c11 + 2 * c12) / 3:.1f} GPa, "
      f"C44 unrelaxed = {np.mean(shear):.1f} GPa (from {len(shear)} cells), at the reference cell")
