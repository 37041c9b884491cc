"""Stillinger-Weber dataset for one element: Langevin MD snapshots plus rattled and strained cells.

MD at several temperatures samples the thermally accessible configurations a potential is trained and
tested on; rattled cells add near-equilibrium displacements and strained cells cover the cell degrees of
freedom (stress labels). The SW potential replaces DFT so that the whole study runs in seconds.

Frame metadata (``atoms.info``), in both files:

* ``source``: ``"sw_md"``, ``"sw_rattle"`` or ``"sw_strain"``.
* ``temperature``: the thermostat temperature in K (float) for MD frames; ``-1.0`` for rattled and
  strained cells, which have no temperature (the same "not applicable" value the importers use; a NaN
  would not survive every extxyz reader and 0 K would be a false claim).

Test-file frames also carry ``test_set``: ``f"T{int(T)}K"`` for MD frames, ``"rattle"``, ``"strain"``,
so that errors can be reported per temperature and per kind. Training frames carry no ``test_set``.

Train/test split of MD frames: each temperature has one trajectory; ``n_train + n_test`` snapshots are
taken ``sample_interval`` steps apart after equilibration and every k-th of them (evenly spread over the
trajectory, k = (n_train + n_test) / n_test) goes to the test set. Train and test thus sample the same
trajectory (same distribution, no time-window bias) but are disjoint snapshots; test and training frames
are as correlated as any two consecutive snapshots, which ``sample_interval`` keeps small.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
from ase import Atoms, units
from ase.constraints import FixCom
from ase.data import atomic_numbers
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary

try:  # ASE >= 3.29; MaxwellBoltzmannDistribution is deprecated there
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # pragma: no cover - older ASE
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    def thermalize_momenta(atoms, temperature_K, *, rng=None):
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)

from mlp_transfer.data.common import NO_TEMPERATURE, make_frame, write_train_test
from mlp_transfer.data.validate import validate_frames
from mlp_transfer.reference import diamond_cell, sw_calculator, sw_parameters

logger = logging.getLogger(__name__)

# Defaults match workflow/schemas/config.schema.yaml: rattled/strained cells are opt-in.
DEFAULT_RATTLE = {"n_train": 0, "n_test": 0, "stdev": 0.1}
DEFAULT_STRAIN = {"n_train": 0, "n_test": 0, "max_strain": 0.03, "stdev": 0.03}

# Tags that separate the random streams of the MD runs, rattled and strained cells.
_STREAM_MD, _STREAM_RATTLE, _STREAM_STRAIN = 0, 1, 2


def _rng(seed: int, element: str, stream: int, *extra: int) -> np.random.Generator:
    """Independent, reproducible stream per (seed, element, kind, temperature)."""
    return np.random.default_rng([int(seed), atomic_numbers[element], stream, *extra])


def _labelled(atoms: Atoms, calc, info: Mapping) -> Atoms:
    """Evaluate SW on ``atoms`` and return a clean labelled copy (drops momenta etc.)."""
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    stress = atoms.get_stress()  # computed together with forces by the calculator: no extra cost
    return make_frame(atoms.get_chemical_symbols(), atoms.positions, atoms.cell, atoms.pbc,
                      energy, forces, stress, info)


def held_out_positions(n_train: int, n_test: int) -> list[int]:
    """Indices (within the ``n_train + n_test`` snapshots of a trajectory) that go to the test set."""
    n_total = n_train + n_test
    if n_test == 0:
        return []
    step = n_total / n_test  # >= 1, so the floors below are distinct
    return [int((i + 0.5) * step) for i in range(n_test)]


def _md_frames(element, temperature, *, supercell, timestep_fs, friction, equilibration_steps,
               sample_interval, n_train, n_test, seed):
    rng = _rng(seed, element, _STREAM_MD, int(round(temperature * 1000)))
    atoms = diamond_cell(element, supercell)
    calc = sw_calculator(element)
    atoms.calc = calc
    thermalize_momenta(atoms, temperature, rng=rng)
    Stationary(atoms)
    # Centre of mass fixed by a constraint rather than Langevin's deprecated fixcm=True, which ASE
    # documents as not sampling NVT exactly.
    atoms.set_constraint(FixCom())
    dyn = Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature,
                   friction=friction / units.fs, fixcm=False, rng=rng)
    if equilibration_steps:
        dyn.run(equilibration_steps)
    test_idx = set(held_out_positions(n_train, n_test))
    train, test = [], []
    for index in range(n_train + n_test):
        dyn.run(sample_interval)
        info = {"source": "sw_md", "temperature": float(temperature)}
        if index in test_idx:
            test.append(_labelled(atoms.copy(), calc, {**info, "test_set": f"T{int(temperature)}K"}))
        else:
            train.append(_labelled(atoms.copy(), calc, info))
    return train, test


def _rattled(element, n, stdev, supercell, rng, calc, test_set):
    frames = []
    for _ in range(n):
        atoms = diamond_cell(element, supercell)
        atoms.positions += rng.normal(0.0, stdev, atoms.positions.shape)
        info = {"source": "sw_rattle", "temperature": NO_TEMPERATURE}
        if test_set:
            info["test_set"] = "rattle"
        frames.append(_labelled(atoms, calc, info))
    return frames


def _strained(element, n, max_strain, stdev, supercell, rng, calc, test_set):
    frames = []
    for _ in range(n):
        atoms = diamond_cell(element, supercell)
        eps = rng.uniform(-max_strain, max_strain, (3, 3))
        eps = 0.5 * (eps + eps.T)  # symmetric: pure strain, no rotation
        atoms.set_cell(np.asarray(atoms.cell) @ (np.eye(3) + eps), scale_atoms=True)
        atoms.positions += rng.normal(0.0, stdev, atoms.positions.shape)
        info = {"source": "sw_strain", "temperature": NO_TEMPERATURE}
        if test_set:
            info["test_set"] = "strain"
        frames.append(_labelled(atoms, calc, info))
    return frames


def generate_sw_dataset(
    element: str,
    out_train: str | Path,
    out_test: str | Path,
    *,
    supercell: int = 2,
    temperatures: Sequence[float] = (300, 600, 900, 1200),
    timestep_fs: float = 2.0,
    friction: float = 0.01,
    equilibration_steps: int = 300,
    sample_interval: int = 25,
    n_train_per_temperature: int = 30,
    n_test_per_temperature: int = 10,
    rattle: Mapping | None = None,
    strain: Mapping | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Generate SW-labelled train and test extxyz files for ``element``; returns a summary dict.

    Units: temperatures in K, ``timestep_fs`` in fs, ``friction`` in 1/fs (converted to ASE's internal
    time unit for ``ase.md.langevin.Langevin``), ``rattle["stdev"]``/``strain["stdev"]`` in Å,
    ``strain["max_strain"]`` dimensionless (diagonal strain components uniform in ±max_strain; each
    off-diagonal one the mean of two such draws, so within the same bound but more often small).
    ``rattle``/``strain`` default to ``DEFAULT_RATTLE``/``DEFAULT_STRAIN``; missing keys take the
    defaults and ``n_train = n_test = 0`` switches a kind off. The same ``seed`` gives identical files.
    Every frame is validated before anything is written; files are written atomically.
    """
    say = log or logger.info
    sw_parameters(element)  # clear ValueError for elements without SW parameters
    rattle = {**DEFAULT_RATTLE, **(rattle or {})}
    strain = {**DEFAULT_STRAIN, **(strain or {})}
    temperatures = [float(t) for t in temperatures]
    if any(not np.isfinite(t) or t <= 0 for t in temperatures):
        raise ValueError(f"temperatures must be positive, got {temperatures}")
    if min(n_train_per_temperature, n_test_per_temperature) < 0 or sample_interval < 1 or equilibration_steps < 0:
        raise ValueError("frame counts and equilibration_steps must be >= 0 and sample_interval >= 1")
    for kind, n_key in (("training", "n_train"), ("test", "n_test")):
        per_t = n_train_per_temperature if n_key == "n_train" else n_test_per_temperature
        if per_t * len(temperatures) + rattle[n_key] + strain[n_key] == 0:
            raise ValueError(f"these settings give no {kind} frames; an empty {kind} set is not a dataset")

    start = time.perf_counter()
    train: list[Atoms] = []
    test: list[Atoms] = []
    run_md = n_train_per_temperature + n_test_per_temperature > 0
    for temperature in temperatures if run_md else []:
        t0 = time.perf_counter()
        tr, te = _md_frames(
            element, temperature, supercell=supercell, timestep_fs=timestep_fs, friction=friction,
            equilibration_steps=equilibration_steps, sample_interval=sample_interval,
            n_train=n_train_per_temperature, n_test=n_test_per_temperature, seed=seed)
        train += tr
        test += te
        steps = equilibration_steps + sample_interval * (len(tr) + len(te))
        say(f"{element} SW MD {temperature:g} K: {len(tr)} train + {len(te)} test frames, "
            f"{steps} steps in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    calc = sw_calculator(element)
    rng = _rng(seed, element, _STREAM_RATTLE)
    train += _rattled(element, rattle["n_train"], rattle["stdev"], supercell, rng, calc, False)
    test += _rattled(element, rattle["n_test"], rattle["stdev"], supercell, rng, calc, True)
    rng = _rng(seed, element, _STREAM_STRAIN)
    train += _strained(element, strain["n_train"], strain["max_strain"], strain["stdev"], supercell, rng, calc, False)
    test += _strained(element, strain["n_test"], strain["max_strain"], strain["stdev"], supercell, rng, calc, True)
    say(f"{element} SW rattled/strained cells: {rattle['n_train'] + strain['n_train']} train + "
        f"{rattle['n_test'] + strain['n_test']} test frames in {time.perf_counter() - t0:.1f} s")

    validate_frames(train, element, out_train)
    validate_frames(test, element, out_test)
    write_train_test(out_train, train, out_test, test)
    elapsed = time.perf_counter() - start
    say(f"{element} SW dataset: {len(train)} train -> {out_train}, {len(test)} test -> {out_test} "
        f"({elapsed:.1f} s)")
    return {"element": element, "n_train": len(train), "n_test": len(test), "seconds": elapsed}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlp-transfer generate-sw", description=__doc__.splitlines()[0])
    p.add_argument("--element", required=True, help="element symbol with SW parameters (Si, Ge)")
    p.add_argument("--out-train", required=True, type=Path)
    p.add_argument("--out-test", required=True, type=Path)
    p.add_argument("--supercell", type=int, default=2, help="cubic diamond cell repeats (2 -> 64 atoms)")
    p.add_argument("--temperatures", type=float, nargs="+", default=[300, 600, 900, 1200], help="K")
    p.add_argument("--timestep-fs", type=float, default=2.0)
    p.add_argument("--friction", type=float, default=0.01, help="Langevin friction in 1/fs")
    p.add_argument("--equilibration-steps", type=int, default=300)
    p.add_argument("--sample-interval", type=int, default=25, help="MD steps between saved frames")
    p.add_argument("--n-train", type=int, default=30, help="training frames per temperature")
    p.add_argument("--n-test", type=int, default=10, help="test frames per temperature")
    p.add_argument("--rattle-train", type=int, default=DEFAULT_RATTLE["n_train"])
    p.add_argument("--rattle-test", type=int, default=DEFAULT_RATTLE["n_test"])
    p.add_argument("--rattle-stdev", type=float, default=DEFAULT_RATTLE["stdev"], help="Å")
    p.add_argument("--strain-train", type=int, default=DEFAULT_STRAIN["n_train"])
    p.add_argument("--strain-test", type=int, default=DEFAULT_STRAIN["n_test"])
    p.add_argument("--max-strain", type=float, default=DEFAULT_STRAIN["max_strain"])
    p.add_argument("--strain-stdev", type=float, default=DEFAULT_STRAIN["stdev"], help="Å")
    p.add_argument("--seed", type=int, default=0)
    return p


def cli(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        _generate_from_args(args)
    except ValueError as exc:  # e.g. no SW parameters for the element; raised before anything is written
        print(f"mlp-transfer generate-sw: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _generate_from_args(args) -> None:
    generate_sw_dataset(
        args.element, args.out_train, args.out_test,
        supercell=args.supercell, temperatures=args.temperatures, timestep_fs=args.timestep_fs,
        friction=args.friction, equilibration_steps=args.equilibration_steps,
        sample_interval=args.sample_interval, n_train_per_temperature=args.n_train,
        n_test_per_temperature=args.n_test,
        rattle={"n_train": args.rattle_train, "n_test": args.rattle_test, "stdev": args.rattle_stdev},
        strain={"n_train": args.strain_train, "n_test": args.strain_test, "max_strain": args.max_strain,
                "stdev": args.strain_stdev},
        seed=args.seed,
    )


if __name__ == "__main__":
    sys.exit(cli())
