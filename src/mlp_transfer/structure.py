"""Structure from MD: radial distribution function (RDF), bond-angle distribution (ADF), and their distance
from the reference potential's.

* **RDF** g(r) on ``n_bins`` equal bins of [0, r_max]: pair distances from matscipy's neighbour list
  (all periodic images, so r_max may exceed half the cell), histogrammed and normalised by the ideal-gas
  count, g = n(r, r+dr) / (N · ρ · 4π/3 ((r+dr)³ - r³)), averaged over frames. The running coordination
  number n(r) = (pairs closer than r) / N is returned too (ideal diamond: 4 at a·√3/4, 16 after a/√2).
* **ADF** p(θ): angles θ_jik between all pairs of bonds i-j, i-k shorter than the bond cutoff
  (``adf_cutoff``, Å; the workflow uses a fraction of the ideal nearest-neighbour distance that lies
  between the first and second neighbour shells), from matscipy's ``angle_distribution``, on ``n_bins``
  equal bins of [0°, 180°], normalised to a probability density per degree (ideal diamond: all at
  109.47°).
* **Distance** between a model's distribution f and the reference's g on the same bins, both normalised to
  unit area over the binned range: the total-variation distance D = ½ ∫ |f̂ - ĝ| dx, 0 for identical and 1
  for disjoint distributions (dimensionless, comparable between RDF and ADF); and the Wasserstein-1 (earth
  mover's) distance of the normalised distributions in the distribution's unit (Å for the RDF, degrees for
  the ADF), which measures how far the weight has to move (e.g. a shifted peak).

Trajectories are read from the HDF5 files of :mod:`mlp_transfer.md` with h5py (schnetpack's
``MoleculeStream`` layout, positions in nm). Only frames after equilibration at which the replica was
still alive (before its failure, see :mod:`mlp_transfer.stability`) are used; all replicas are pooled.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import h5py
import numpy as np
import pandas as pd
from ase import Atoms, units
from matscipy.angle_distribution import angle_distribution
from matscipy.neighbours import neighbour_list
from scipy.stats import wasserstein_distance

from mlp_transfer.io import write_run_table

log = logging.getLogger(__name__)

_NM_IN_ANGSTROM = units.nm / units.Angstrom  # schnetpack's internal length unit is the nm

STRUCTURE_COLUMNS = ["temperature_K", "kind", "x", "value", "n_frames"]


def rdf(frames: Iterable[Atoms], r_max: float, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame-averaged g(r) at the bin centres, and the running coordination number at the bin edges' ends.

    Returns ``(r_centres, g, coordination)``; ``coordination[k]`` counts neighbours closer than the upper
    edge of bin ``k`` per atom.
    """
    edges = np.linspace(0.0, r_max, n_bins + 1)
    counts = np.zeros(n_bins)
    normalisation = 0.0  # sum over frames of N * rho
    n_atoms_total = 0
    n_frames = 0
    for atoms in frames:
        d = neighbour_list("d", atoms, r_max)
        counts += np.histogram(d, bins=edges)[0]
        n = len(atoms)
        normalisation += n * n / atoms.get_volume()
        n_atoms_total += n
        n_frames += 1
    if n_frames == 0:
        raise ValueError("rdf needs at least one frame")
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g = counts / (normalisation * shell)
    coordination = np.cumsum(counts) / n_atoms_total
    return 0.5 * (edges[1:] + edges[:-1]), g, coordination


def adf(frames: Iterable[Atoms], cutoff: float, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bond-angle distribution: bin centres (degrees) and probability density per degree.

    All angles j-i-k with |r_ij|, |r_ik| < ``cutoff`` (Å) are counted. A frame set without any such angle
    gives an all-zero density.
    """
    counts = np.zeros(n_bins)
    n_frames = 0
    for atoms in frames:
        i, j, dr = neighbour_list("ijD", atoms, cutoff)
        counts += angle_distribution(i, j, dr, n_bins, cutoff)
        n_frames += 1
    if n_frames == 0:
        raise ValueError("adf needs at least one frame")
    width = 180.0 / n_bins
    centres = (np.arange(n_bins) + 0.5) * width
    total = counts.sum()
    density = counts / (total * width) if total > 0 else counts
    return centres, density


def _normalised(values: np.ndarray, width: float) -> np.ndarray:
    values = np.clip(np.asarray(values, dtype=float), 0.0, None)
    area = values.sum() * width
    if not np.isfinite(area) or area <= 0:
        raise ValueError("distribution has no weight")
    return values / area


def tv_distance(x: np.ndarray, f: np.ndarray, g: np.ndarray) -> float:
    """½ ∫ |f̂ - ĝ| dx of the unit-area normalised distributions on equal bins centred at ``x``: 0..1."""
    width = float(x[1] - x[0])
    return 0.5 * float(np.sum(np.abs(_normalised(f, width) - _normalised(g, width))) * width)


def w1_distance(x: np.ndarray, f: np.ndarray, g: np.ndarray) -> float:
    """Wasserstein-1 distance between the normalised distributions (unit of ``x``)."""
    width = float(x[1] - x[0])
    return float(wasserstein_distance(x, x, u_weights=_normalised(f, width), v_weights=_normalised(g, width)))


def read_frames(h5_path: str | Path, min_step: int = 0) -> list[Atoms]:
    """Frames of every replica after ``min_step`` steps at which the replica was alive (MD HDF5 file)."""
    with h5py.File(h5_path, "r") as h5:
        if "molecules" not in h5:  # every replica failed at the starting configuration
            return []
        mol = h5["molecules"]
        n_entries = int(mol.attrs["entries"])
        n_mol = int(mol.attrs["n_molecules"])
        if n_mol != 1:
            raise ValueError(f"{h5_path}: expected one structure per replica, found {n_mol}")
        n_atoms = int(mol.attrs["total_n_atoms"])
        numbers = np.asarray(mol.attrs["atom_types"])
        pbc = np.asarray(mol.attrs["pbc"]).reshape(-1, 3)[0].astype(bool)
        data = mol[:n_entries]
        start = n_mol
        positions = data[:, :, start:start + 3 * n_atoms].reshape(n_entries, -1, n_atoms, 3) * _NM_IN_ANGSTROM
        start += 3 * n_atoms
        if mol.attrs["has_velocities"]:
            start += 3 * n_atoms
        if not mol.attrs["has_cells"]:
            raise ValueError(f"{h5_path}: no simulation cell stored")
        cells = data[:, :, start:start + 9].reshape(n_entries, -1, 3, 3) * _NM_IN_ANGSTROM
        steps = h5["thermo/step"][:]
        alive = h5["thermo/alive"][:]
    if len(steps) != n_entries:
        raise ValueError(f"{h5_path}: {n_entries} trajectory frames but {len(steps)} thermo rows")
    frames = []
    for k in range(n_entries):
        if steps[k] <= min_step:
            continue
        for r in range(positions.shape[1]):
            if alive[k, r]:
                atoms = Atoms(numbers=numbers, positions=positions[k, r], cell=cells[k, r], pbc=pbc)
                atoms.wrap()
                frames.append(atoms)
    return frames


def structure_table(h5_paths: Mapping[float, str | Path], *, equilibration_steps: int, rdf_r_max: float,
                    rdf_bins: int, adf_cutoff: float, adf_bins: int) -> pd.DataFrame:
    """Long table of RDF and ADF per temperature (columns ``STRUCTURE_COLUMNS``); temperatures without
    usable frames (every replica failed during equilibration) have no rows."""
    parts = []
    for temperature, path in h5_paths.items():
        frames = read_frames(path, equilibration_steps)
        if not frames:
            log.info("%s: no frames after equilibration before failure; no RDF/ADF", path)
            continue
        r, g, _ = rdf(frames, rdf_r_max, rdf_bins)
        theta, p = adf(frames, adf_cutoff, adf_bins)
        for kind, x, value in (("rdf", r, g), ("adf", theta, p)):
            parts.append(pd.DataFrame({"temperature_K": float(temperature), "kind": kind, "x": x, "value": value,
                                       "n_frames": len(frames)}))
        log.info("%s: RDF/ADF from %d frames", path, len(frames))
    if not parts:
        return pd.DataFrame(columns=STRUCTURE_COLUMNS)
    return pd.concat(parts, ignore_index=True)[STRUCTURE_COLUMNS]


def run_structure(h5_paths: Mapping[float, str | Path] | Sequence[str | Path], out_csv: str | Path, *,
                  temperatures: Sequence[float] | None = None, equilibration_steps: int, rdf_r_max: float,
                  rdf_bins: int, adf_cutoff_fraction: float, nn_distance: float | None = None,
                  adf_bins: int, metadata: Mapping | None = None) -> pd.DataFrame:
    """Write the structure table of one MD job. The ADF bond cutoff is ``adf_cutoff_fraction`` x the ideal
    nearest-neighbour distance (read from the trajectory files when ``nn_distance`` is not given). Metadata
    columns (dataset, regime, n_train, ...) default to the ``meta_*`` attributes of the trajectory files."""
    if not isinstance(h5_paths, Mapping):
        h5_paths = dict(zip(temperatures, h5_paths, strict=True))
    with h5py.File(next(iter(h5_paths.values())), "r") as h5:
        if nn_distance is None:
            nn_distance = float(h5.attrs["nn_distance_A"])
        if metadata is None:  # the MD job stores its run metadata as meta_* attributes
            metadata = {key[len("meta_"):]: str(value) for key, value in h5.attrs.items() if key.startswith("meta_")}
    table = structure_table(h5_paths, equilibration_steps=equilibration_steps, rdf_r_max=rdf_r_max,
                            rdf_bins=rdf_bins, adf_cutoff=adf_cutoff_fraction * nn_distance, adf_bins=adf_bins)
    return write_run_table(table, out_csv, metadata)


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlp-transfer md-structure", description=__doc__.splitlines()[0])
    parser.add_argument("trajectories", nargs="+", help="MD HDF5 files (one per temperature)")
    parser.add_argument("--out", required=True, help="output CSV")
    parser.add_argument("--equilibration-steps", type=int, default=0)
    parser.add_argument("--rdf-r-max", type=float, default=5.0)
    parser.add_argument("--rdf-bins", type=int, default=100)
    parser.add_argument("--adf-cutoff-fraction", type=float, default=1.3)
    parser.add_argument("--adf-bins", type=int, default=90)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    paths = {}
    for path in args.trajectories:
        with h5py.File(path, "r") as h5:
            paths[float(h5.attrs["temperature_K"])] = path
    run_structure(paths, args.out, equilibration_steps=args.equilibration_steps, rdf_r_max=args.rdf_r_max,
                  rdf_bins=args.rdf_bins, adf_cutoff_fraction=args.adf_cutoff_fraction, adf_bins=args.adf_bins)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
