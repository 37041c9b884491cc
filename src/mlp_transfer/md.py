"""NVT molecular dynamics of trained models and of the reference potential, with stability monitoring.

Engine: ``schnetpack.md`` (``System``, ``Simulator``, ``VelocityVerlet``, ``LangevinThermostat`` or
``NHCThermostat``, ``FileLogger`` with ``MoleculeStream``/``PropertyStream``). All ``replicas`` of one
temperature are propagated together as the replica dimension of one ``System`` (one batched model call
per step), on ``cuda`` or ``cpu``. A trained model runs through schnetpack's own ``SchNetPackCalculator``
(with the model's energy offset kept, so logged energies are total energies); the reference potential (an
ASE calculator, e.g. Stillinger-Weber via matscipy) through :class:`ASEMDCalculator`, a thin
``MDCalculator`` that evaluates each replica with ASE.

Per run and temperature ``T`` the job writes one HDF5 file in schnetpack's ``FileLogger`` format
(readable with ``schnetpack.md.data.HDF5Loader``): group ``molecules`` (energies, positions, velocities,
cells every ``log_interval`` steps, internal units: nm, kJ/mol), group ``properties`` (``energy``), plus a
group ``thermo`` written by this module, one row per logged frame: ``step``, ``time_ps``, and per replica
``temperature`` (K), ``potential_energy`` (eV), ``min_distance`` (Å) and ``alive`` (False from the
failing step on). Root attributes record the settings. Frame ``k`` of the trajectory is the state after
``thermo/step[k]`` steps. A replica's frames after its failure are not physical (it is frozen at the
starting lattice, see :mod:`mlp_transfer.stability`) and are marked by ``alive``.

Stability follows :mod:`mlp_transfer.stability`; one CSV per run has a row per (temperature, replica).

Initial conditions: the ideal diamond cell of the target element (supercell ``supercell``^3 x 8 atoms)
with Maxwell-Boltzmann velocities at ``T`` (centre-of-mass motion removed). The random seed of a
temperature depends only on ``seed`` and ``T``, so replica r of every model at temperature T starts from
the same velocities (common random numbers for the model comparison).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

import h5py
import numpy as np
import pandas as pd
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator
from schnetpack import properties as spk_properties
from schnetpack import units as spk_units
from schnetpack.md import System
from schnetpack.md.calculators import SchNetPackCalculator
from schnetpack.md.calculators.base_calculator import MDCalculator
from schnetpack.md.initial_conditions import MaxwellBoltzmannInit
from schnetpack.md.integrators import VelocityVerlet
from schnetpack.md.neighborlist_md import NeighborListMD
from schnetpack.md.simulation_hooks import FileLogger, LangevinThermostat, MoleculeStream, NHCThermostat, \
    PropertyStream, SimulationHook
from schnetpack.md.simulator import Simulator
from schnetpack.transform import MatScipyNeighborList

from mlp_transfer.io import atomic_path, write_run_table
from mlp_transfer.stability import ReplicaMonitor, StabilityCriteria, nearest_neighbour_distance

log = logging.getLogger(__name__)

THERMOSTATS = ("langevin", "nhc")
_ANGSTROM = spk_units.unit2internal("Angstrom")  # internal length units per Å
_EV = spk_units.unit2internal("eV")  # internal energy units per eV

STABILITY_COLUMNS = ["temperature_K", "replica", "stable", "steps_to_failure", "time_to_failure_ps",
                     "run_length_ps", "reason", "detail", "n_atoms", "n_replicas", "thermostat", "device",
                     "wall_s", "steps_per_s"]


def temperature_label(temperature: float) -> str:
    """File/label form of an MD temperature: 600 -> ``T600K``."""
    return f"T{float(temperature):g}K"


# md config keys that map one to one onto MDSettings fields, with their types
_MD_SCALARS = {"supercell": int, "timestep_fs": float, "n_steps": int, "replicas": int, "seed": int,
               "log_interval": int, "device": str, "threads": int, "precision": int, "neighbor_skin": float,
               "compile": bool}
# md.thermostat keys -> (MDSettings field, type)
_THERMOSTAT_KEYS = {"kind": ("thermostat", str), "time_constant_fs": ("time_constant_fs", float),
                    "chain_length": ("chain_length", int)}


@dataclass(frozen=True)
class MDSettings:
    """MD settings of the workflow's ``md`` config section (see config/README.md); the defaults are the
    schema's (a test keeps them equal)."""

    temperatures: tuple = (600.0, 1500.0)
    supercell: int = 2
    timestep_fs: float = 2.0
    n_steps: int = 1000
    replicas: int = 2
    seed: int = 0
    thermostat: str = "langevin"
    time_constant_fs: float = 100.0
    chain_length: int = 3
    log_interval: int = 10
    device: str = "cpu"
    threads: int = 1
    precision: int = 32
    neighbor_skin: float = 1.0
    compile: bool = False
    lattice_constants: Mapping = field(default_factory=dict)
    stability: StabilityCriteria = field(default_factory=StabilityCriteria)

    def __post_init__(self):
        if self.thermostat not in THERMOSTATS:
            raise ValueError(f"unknown thermostat {self.thermostat!r}; choose one of {THERMOSTATS}")
        if self.precision not in (32, 64):
            raise ValueError(f"precision must be 32 or 64, got {self.precision}")
        if min(self.n_steps, self.replicas, self.log_interval, self.supercell) < 1 or self.timestep_fs <= 0:
            raise ValueError("n_steps, replicas, log_interval, supercell and timestep_fs must be positive")

    @classmethod
    def from_config(cls, md: Mapping) -> "MDSettings":
        """Build from the (schema-validated) ``md`` config section; a key it leaves out takes the field's default
        (the one copy of the defaults besides the schema, kept equal to it by a test)."""
        md = dict(md)
        stab = dict(md.pop("stability", {}) or {})
        thermostat = dict(md.pop("thermostat", {}) or {})
        given = {name: cast(md[name]) for name, cast in _MD_SCALARS.items() if name in md}
        if "temperatures" in md:
            given["temperatures"] = tuple(float(t) for t in md["temperatures"])
        if md.get("lattice_constants"):
            given["lattice_constants"] = dict(md["lattice_constants"])
        given.update({field_name: cast(thermostat[key]) for key, (field_name, cast) in _THERMOSTAT_KEYS.items()
                      if key in thermostat})
        timestep = given.get("timestep_fs", cls.timestep_fs)
        band = stab.pop("temperature_band", [0.5, 2.0])
        criteria = StabilityCriteria(
            min_distance_fraction=float(stab.get("min_distance_fraction", 0.6)),
            band_low=float(band[0]), band_high=float(band[1]),
            temperature_window=max(1, int(round(float(stab.get("temperature_window_fs", 100.0)) / timestep))),
            equilibration_steps=int(md.get("equilibration_steps", 250)),
            check_interval=int(stab.get("check_interval", 10)))
        return cls(**given, stability=criteria)

    @property
    def dtype(self) -> torch.dtype:
        return torch.float64 if self.precision == 64 else torch.float32

    def as_dict(self) -> dict:
        d = asdict(self)
        d["temperatures"] = list(self.temperatures)
        d["lattice_constants"] = dict(self.lattice_constants)
        return d


def lattice_constant(element: str, overrides: Mapping | None = None) -> float:
    """Starting lattice constant: ``overrides[element]`` if given, else the element's SW equilibrium."""
    if overrides and element in overrides:
        return float(overrides[element])
    from mlp_transfer.reference import SW_PARAMETERS, sw_lattice_constant

    if element not in SW_PARAMETERS:
        raise ValueError(f"no lattice constant for {element}: give md.lattice_constants.{element} in the config")
    return sw_lattice_constant(element)


def start_cell(element: str, supercell: int, a: float) -> Atoms:
    """Ideal cubic diamond cell (8 atoms per cubic cell, repeated ``supercell``^3 times)."""
    return bulk(element, "diamond", a=a, cubic=True).repeat((int(supercell),) * 3)


def wrapped_inputs(inputs: dict) -> dict:
    """Positions of a schnetpack MD input batch that lie more than one cell outside, wrapped back.

    Energies and forces do not depend on the periodic image an atom is written in, but neighbour-list
    builders slow down enormously on atoms that a broken potential has flung many cells away, so both
    calculators see wrapped positions. (The system itself keeps unwrapped positions.)
    """
    cells = inputs[spk_properties.cell]
    idx_m = inputs[spk_properties.idx_m]
    if not bool(inputs[spk_properties.pbc].all()):
        return inputs
    atom_cells = cells[idx_m]
    # positions are row vectors, R = frac @ cell: one 3x3 inverse per replica instead of one solve per atom
    frac = torch.einsum("ni,nij->nj", inputs[spk_properties.R], torch.linalg.inv(cells)[idx_m])
    # Only atoms more than a cell outside are moved: wrapping every boundary crossing would make the
    # Verlet-skin neighbour list rebuild at almost every step.
    far = (frac < -1.0) | (frac >= 2.0)
    if bool(far.any()):
        frac = frac - torch.where(far, torch.floor(frac), torch.zeros_like(frac))
        inputs[spk_properties.R] = torch.einsum("ni,nij->nj", frac, atom_cells)
    return inputs


class ASEMDCalculator(MDCalculator):
    """schnetpack MD calculator that evaluates an ASE calculator (eV, Å) on each replica in turn."""

    def __init__(self, calculator: Calculator):
        super().__init__(required_properties=["energy", "forces"], force_key="forces", energy_unit="eV",
                         position_unit="Angstrom", energy_key="energy")
        self.ase_calculator = calculator

    def calculate(self, system: System):
        inputs = wrapped_inputs(self._get_system_molecules(system))
        numbers = inputs[spk_properties.Z].cpu().numpy()
        positions = inputs[spk_properties.R].detach().cpu().numpy()
        cells = inputs[spk_properties.cell].detach().cpu().numpy()
        pbc = inputs[spk_properties.pbc].cpu().numpy()
        bounds = np.concatenate([[0], np.cumsum(inputs[spk_properties.n_atoms].cpu().numpy())])
        energies, forces = [], []
        for m in range(len(bounds) - 1):
            sl = slice(bounds[m], bounds[m + 1])
            atoms = Atoms(numbers=numbers[sl], positions=positions[sl], cell=cells[m], pbc=pbc[m])
            atoms.calc = self.ase_calculator
            energies.append(atoms.get_potential_energy())
            forces.append(atoms.get_forces())
        self.results = {
            "energy": torch.tensor(np.array(energies), dtype=system.dtype, device=system.device),
            "forces": torch.tensor(np.concatenate(forces), dtype=system.dtype, device=system.device),
        }
        self._update_system(system)


def compile_representation(model) -> None:
    """``model.representation`` through ``torch.compile`` with dynamic shapes (a changing number of neighbour
    pairs does not recompile). Lazy: compilation happens on the first call."""
    model.representation = torch.compile(model.representation, dynamic=True)


class CachingNeighborListMD(NeighborListMD):
    """schnetpack's Verlet-skin MD neighbour list, minus its per-step bookkeeping between rebuilds.

    ``NeighborListMD`` splits the batch into replicas and re-collates their cached pair lists at every step,
    even when no replica needs a rebuild (most steps). This keeps the collated pair list (cutoff + skin) and,
    on such steps, only filters it down to the cutoff at the current positions, which is all the parent's
    result then differs by. Rebuilds (any replica moved more than half the skin, or a cell changed) run the
    parent's code unchanged.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._collated = None  # pairs within cutoff + skin of the last rebuild, collated over replicas

    def get_neighbors(self, inputs: dict) -> dict:
        positions = inputs[spk_properties.R]
        n_molecules = inputs[spk_properties.n_atoms].shape[0]
        if self._collated is not None and self.molecular_indices is not None \
                and len(self.molecular_indices) == n_molecules:
            update = self._update_required(positions, inputs[spk_properties.cell], inputs[spk_properties.idx_m],
                                           n_molecules)
            if not bool(update.any()):
                return self._filter_indices(positions, dict(self._collated), keep=False)
        return super().get_neighbors(inputs)

    def _filter_indices(self, positions: torch.Tensor, neighbor_idx: dict, keep: bool = True) -> dict:
        if keep:  # called by the parent's get_neighbors with the freshly collated lists
            self._collated = dict(neighbor_idx)
        return super()._filter_indices(positions, neighbor_idx)


class ModelMDCalculator(SchNetPackCalculator):
    """schnetpack's ``SchNetPackCalculator`` for an already loaded model.

    Unlike the parent (which loads a file and switches post-processing off), the energy offset
    (``AddOffsets``) stays active so that logged energies are total energies; forces are unaffected.

    ``compile=True`` runs the model's representation (the message-passing network, nearly all of a call's
    arithmetic) through ``torch.compile`` with dynamic shapes, so a changing number of neighbour pairs does
    not recompile. MD needs forces only as first derivatives, which compiled graphs support (training's
    double backward does not, so training stays eager). Compilation happens on the first call; if it fails
    (no C++ compiler or Triton on the node, an unsupported operator), the calculator logs a warning and
    continues eagerly, so a run never fails for the sake of speed.
    """

    def __init__(self, model, neighbor_list: NeighborListMD, dtype: torch.dtype = torch.float64,
                 compile: bool = False):
        MDCalculator.__init__(self, required_properties=["energy", "forces"], force_key="forces",
                              energy_unit="eV", position_unit="Angstrom", energy_key="energy")
        self.script_model = False
        self.pair_min_distance = None  # (R,) Å, set by each calculate()
        # MD needs only the gradient with respect to positions: no parameter-gradient bookkeeping
        self.model = model.to(dtype).eval().requires_grad_(False)
        self.neighbor_list = neighbor_list
        self._eager_representation = self.model.representation
        self.compiled = False  # whether calls currently run compiled
        self.compile_seconds = None  # wall time of the first (compiling) call
        self._compile_pending = bool(compile)
        if compile:
            compile_representation(self.model)
            self.compiled = True

    def _generate_input(self, system: System) -> dict:
        inputs = wrapped_inputs(self._get_system_molecules(system))
        inputs.update(self.neighbor_list.get_neighbors(inputs))
        return inputs

    def _evaluate(self, inputs: dict) -> dict:
        if not self._compile_pending:
            return self.model(inputs)
        # first call: torch.compile compiles here; fall back to the eager representation if that fails
        self._compile_pending = False
        saved = {key: value.clone() for key, value in inputs.items()}
        start = time.perf_counter()
        try:
            results = self.model(inputs)
        except Exception as exc:  # noqa: BLE001 - any compiler failure must leave a working eager model
            log.warning("torch.compile of the model failed (%s: %s); running MD eagerly",
                        type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            self.model.representation = self._eager_representation
            self.compiled = False
            inputs.clear()
            inputs.update(saved)
            return self.model(inputs)
        self.compile_seconds = time.perf_counter() - start
        log.info("compiled the model's representation in %.1f s", self.compile_seconds)
        return results

    def calculate(self, system: System):
        inputs = self._generate_input(system)
        results = self._evaluate(inputs)
        # The model's CastTo64 post-processor returns float64; keep the system in its own precision.
        self.results = {key: results[key].to(system.dtype) for key in self.required_properties}
        self.pair_min_distance = pair_min_distance(inputs, system.n_replicas)
        self._update_system(system)


def pair_min_distance(inputs: dict, n_replicas: int) -> torch.Tensor:
    """Shortest neighbour-pair distance (Å) per replica, from the pairs the model has just used.

    The pairs are all those within the model cutoff, so this is the exact minimum interatomic distance
    whenever that is below the cutoff (always, in a condensed phase; +inf otherwise, which no minimum-distance
    threshold below the cutoff can flag): the stability check gets it every step at no extra cost.
    """
    distances = torch.linalg.vector_norm(inputs[spk_properties.Rij].detach(), dim=-1)
    replica_of_pair = inputs[spk_properties.idx_m][inputs[spk_properties.idx_i]]
    out = torch.full((n_replicas,), float("inf"), dtype=distances.dtype, device=distances.device)
    return out.scatter_reduce(0, replica_of_pair, distances, reduce="amin", include_self=True)


class AllReplicasFailed(Exception):
    """Raised by :class:`StabilityHook` to end a simulation in which every replica has failed."""


class StabilityHook(SimulationHook):
    """Applies the stability criteria after every step, freezes failed replicas and keeps a thermo log.

    Place it after the thermostat and the FileLogger in the hook list: its ``on_step_begin`` then runs
    after the thermostat's and resets failed replicas before the positions are propagated, so non-finite
    numbers of a failed replica never reach the (batched) neighbour list; and the logger has written a
    frame before this hook may end the simulation, so trajectory frames and thermo rows stay aligned.
    """

    def __init__(self, monitor: ReplicaMonitor, n_steps: int, log_interval: int):
        super().__init__()
        self.monitor = monitor
        self.n_steps = n_steps
        self.log_interval = log_interval
        self.rows = {"step": [], "temperature": [], "potential_energy": [], "min_distance": [], "alive": []}
        self.initial_positions = None
        self.initial_momenta = None
        self.steps_done = 0

    def on_simulation_start(self, simulator: Simulator):
        system = simulator.system
        self.initial_positions = system.positions.detach().clone()
        self.initial_momenta = system.momenta.detach().clone()
        self.steps_done = 0
        # the starting configuration's forces must already be finite (its forces are computed before this hook)
        self._check(system, 0, distances=self._distances(simulator, 0))
        self._freeze(system, ~self.monitor.alive)
        if self.monitor.all_failed:
            raise AllReplicasFailed("all replicas failed at the starting configuration")

    def _check(self, system, step: int, distances: bool | torch.Tensor = True):
        r = system.n_replicas
        self.monitor.check(step, system.energy.detach().view(r), system.forces.detach(),
                           system.positions.detach() / _ANGSTROM, system.momenta.detach(),
                           system.cells.detach().view(r, 3, 3) / _ANGSTROM, distances=distances)

    def _distances(self, simulator: Simulator, step: int) -> bool | torch.Tensor:
        """The calculator's pair minimum distances if it has them, else whether to run the O(N^2) search."""
        pair_min = getattr(simulator.calculator, "pair_min_distance", None)
        if pair_min is not None:
            return pair_min
        return step % self.monitor.criteria.check_interval == 0 or step == self.n_steps

    def _freeze(self, system, mask: torch.Tensor):
        """Put failed replicas back on their starting configuration (finite numbers only)."""
        if not bool(mask.any()):
            return
        m = mask[:, None, None]
        system.positions = torch.where(m, self.initial_positions, system.positions)
        system.momenta = torch.where(m, self.initial_momenta, system.momenta)
        system.forces = torch.where(m, torch.zeros_like(system.forces), system.forces)

    def on_step_begin(self, simulator: Simulator):
        self._freeze(simulator.system, ~self.monitor.alive)

    def on_step_finalize(self, simulator: Simulator):
        system = simulator.system
        step = simulator.step + 1  # steps completed (simulator.step is incremented after the hooks)
        self.steps_done = step
        r = system.n_replicas
        temperature = system.temperature.detach().view(r)
        self.monitor.record_temperature(temperature)
        # Non-finite numbers are caught every step (they must never reach the neighbour list). The minimum
        # distance comes free from a model's neighbour pairs every step; otherwise (reference potentials)
        # an O(N^2) search runs every check_interval steps.
        self._check(system, step, distances=self._distances(simulator, step))
        if simulator.step % self.log_interval == 0:  # the frames the FileLogger writes
            self.rows["step"].append(step)
            self.rows["temperature"].append(temperature.double().cpu().numpy())
            self.rows["potential_energy"].append((system.energy.detach().view(r) / _EV).double().cpu().numpy())
            self.rows["min_distance"].append(self.monitor.last_min_distance.cpu().numpy())
            self.rows["alive"].append(self.monitor.alive.cpu().numpy())
        self._freeze(system, ~self.monitor.alive)
        if self.monitor.all_failed:
            raise AllReplicasFailed(f"all replicas failed by step {step}")


def _seed_for(seed: int, temperature: float) -> int:
    return int(np.random.SeedSequence([int(seed), int(round(temperature * 1000))]).generate_state(1)[0])


def _thermostat(settings: MDSettings, temperature: float):
    if settings.thermostat == "langevin":
        return LangevinThermostat(temperature, settings.time_constant_fs)
    return NHCThermostat(temperature, settings.time_constant_fs, chain_length=settings.chain_length)


def simulate(calculator: MDCalculator, atoms: Atoms, temperature: float, settings: MDSettings,
             out_h5: str | Path, nn_distance: float, attrs: Mapping | None = None) -> list[dict]:
    """Run ``settings.replicas`` NVT replicas of ``atoms`` at ``temperature``; write ``out_h5`` atomically.

    Returns one stability record per replica (see :meth:`ReplicaMonitor.records`) with run metadata.
    """
    device = torch.device(settings.device)
    torch.manual_seed(_seed_for(settings.seed, temperature))
    system = System()
    system.load_molecules(atoms, n_replicas=settings.replicas, position_unit_input="Angstrom")
    system = system.to(device=device, dtype=settings.dtype)
    MaxwellBoltzmannInit(temperature, remove_center_of_mass=True, remove_translation=True).initialize_system(system)
    monitor = ReplicaMonitor(settings.replicas, temperature, nn_distance, settings.stability, device)
    hook = StabilityHook(monitor, settings.n_steps, settings.log_interval)
    with atomic_path(out_h5) as tmp:
        tmp.unlink()  # FileLogger refuses to write into an existing file
        logger = FileLogger(str(tmp), buffer_size=100,
                            data_streams=[MoleculeStream(store_velocities=True),
                                          PropertyStream(target_properties=["energy"])],
                            every_n_steps=settings.log_interval, precision=32)
        simulator = Simulator(system, VelocityVerlet(settings.timestep_fs), calculator,
                              simulator_hooks=[_thermostat(settings, temperature), logger, hook], progress=False)
        simulator = simulator.to(device)
        calculator.to(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            simulator.simulate(settings.n_steps)
        except AllReplicasFailed as stop:
            log.info("%s: %s; stopping early", temperature_label(temperature), stop)
            if logger.file is not None:  # None when the start configuration already failed
                logger.on_simulation_end(simulator)
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        steps = hook.steps_done
        with h5py.File(tmp, "a") as h5:
            group = h5.create_group("thermo")
            group.create_dataset("step", data=np.array(hook.rows["step"], dtype=np.int64))
            group.create_dataset("time_ps", data=np.array(hook.rows["step"], dtype=float) * settings.timestep_fs
                                 / 1000.0)
            for key in ("temperature", "potential_energy", "min_distance", "alive"):
                data = np.array(hook.rows[key]).reshape(-1, settings.replicas)
                group.create_dataset(key, data=data)
            meta = {"temperature_K": float(temperature), "timestep_fs": settings.timestep_fs,
                    "n_steps": settings.n_steps, "steps_run": steps, "n_replicas": settings.replicas,
                    "log_interval": settings.log_interval, "nn_distance_A": nn_distance,
                    "thermostat": settings.thermostat, "device": str(device),
                    "criteria": json.dumps(settings.stability.as_dict()), **(attrs or {})}
            for key, value in meta.items():
                h5.attrs[key] = value
    records = monitor.records(settings.n_steps, settings.timestep_fs)
    for row in records:
        row.update({"temperature_K": float(temperature), "run_length_ps": settings.n_steps * settings.timestep_fs
                    / 1000.0, "n_atoms": len(atoms), "n_replicas": settings.replicas,
                    "thermostat": settings.thermostat, "device": str(device), "wall_s": wall, "cpu_s": cpu,
                    "steps_per_s": steps / wall if wall > 0 else float("nan")})
    n_stable = sum(r["stable"] for r in records)
    log.info("%s: %d/%d replicas stable, %d steps of %d atoms x %d replicas in %.1f s (%.1f steps/s)",
             temperature_label(temperature), n_stable, len(records), steps, len(atoms), settings.replicas, wall,
             steps / wall if wall > 0 else float("nan"))
    return records


def make_calculator(*, model_path: str | Path | None = None, reference: str | None = None, element: str,
                    cutoff: float | None, settings: MDSettings) -> MDCalculator:
    """MD calculator of a saved model (``model_path``, needs the model ``cutoff``) or of ``reference='sw'``."""
    if (model_path is None) == (reference is None):
        raise ValueError("give exactly one of model_path and reference")
    if model_path is not None:
        from mlp_transfer.models import load_model

        if cutoff is None:
            raise ValueError("a model needs its cutoff for the MD neighbour list")
        neighbor_list = CachingNeighborListMD(cutoff=cutoff, cutoff_shell=settings.neighbor_skin,
                                              base_nbl=MatScipyNeighborList)
        return ModelMDCalculator(load_model(model_path, "cpu"), neighbor_list, settings.dtype,
                                 compile=settings.compile)
    if reference == "sw":
        from mlp_transfer.reference import sw_calculator

        return ASEMDCalculator(sw_calculator(element))
    raise ValueError(f"unknown reference potential {reference!r} (available: 'sw')")


def run_md_job(*, element: str, settings: MDSettings, out_h5: Mapping[float, str | Path] | Sequence[str | Path],
               out_stability: str | Path, model_path: str | Path | None = None, reference: str | None = None,
               cutoff: float | None = None, metadata: Mapping | None = None,
               summary_path: str | Path | None = None) -> pd.DataFrame:
    """MD of one potential at every temperature of ``settings``: trajectories + one stability CSV.

    ``out_h5`` maps each temperature to its HDF5 path (or lists them in the order of
    ``settings.temperatures``). ``metadata`` columns are prepended to the CSV; ``n_train`` is read from
    the training ``summary_path`` when given (so that ``all`` resolves to a number).
    """
    if reference is not None and settings.device != "cpu":
        # the reference potential is a numpy calculator: on a GPU its forces would only be copied back and
        # forth, and its jobs are sent to CPU nodes (md.device is meant for the models)
        log.info("reference MD runs on the CPU (md.device %s applies to the models)", settings.device)
        settings = replace(settings, device="cpu")
    torch.set_num_threads(settings.threads)
    if settings.device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("md.device is cuda but torch sees no CUDA device")
    if not isinstance(out_h5, Mapping):
        out_h5 = dict(zip(settings.temperatures, out_h5, strict=True))
    meta = dict(metadata or {})
    if summary_path is not None:
        meta["n_train"] = json.loads(Path(summary_path).read_text())["n_train"]
    a = lattice_constant(element, settings.lattice_constants)
    atoms = start_cell(element, settings.supercell, a)
    nn = nearest_neighbour_distance(a)
    calculator = make_calculator(model_path=model_path, reference=reference, element=element, cutoff=cutoff,
                                 settings=settings)
    attrs = {"element": element, "lattice_constant_A": a,
             "potential": str(model_path) if model_path is not None else f"reference:{reference}",
             **{f"meta_{k}": str(v) for k, v in meta.items()}}
    rows = []
    for temperature in settings.temperatures:
        rows += simulate(calculator, atoms, temperature, settings, out_h5[temperature], nn, attrs)
    return write_run_table(pd.DataFrame(rows)[STABILITY_COLUMNS], out_stability, meta)


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlp-transfer md", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="workflow config (its md section is used)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="saved model (model.pt)")
    what.add_argument("--reference", choices=["sw"], help="reference potential")
    parser.add_argument("--element", required=True)
    parser.add_argument("--out-dir", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from mlp_transfer.config import load_config

    config = load_config(args.config)
    settings = MDSettings.from_config(config.get("md", {}))
    out = Path(args.out_dir)
    run_md_job(element=args.element, settings=settings,
               out_h5=[out / f"{temperature_label(t)}.h5" for t in settings.temperatures],
               out_stability=out / "stability.csv", model_path=args.model, reference=args.reference,
               cutoff=config["model"]["cutoff"])
    return 0


if __name__ == "__main__":
    sys.exit(cli())
