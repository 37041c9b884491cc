"""MD stage: stability criteria (a broken potential must be detected, the SW reference must be stable),
MD runs writing their files, temperature-restricted splits, and MD aggregation on synthetic inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.neighborlist import neighbor_list

from mlp_transfer import md
from mlp_transfer.md_aggregate import aggregate_md, stability_runs_table, stability_summary
from mlp_transfer.models import build_model, save_model
from mlp_transfer.reference import sw_calculator, sw_lattice_constant
from mlp_transfer.splits import SplitError, eligible_by_temperature, make_splits, write_splits
from mlp_transfer.stability import ReplicaMonitor, StabilityCriteria, min_distances
from mlp_transfer.structure import read_frames

# ---------------------------------------------------------------------------------------------------
# Stability criteria on synthetic states
# ---------------------------------------------------------------------------------------------------


def _state(n_replicas=2, a=5.43):
    atoms = bulk("Si", "diamond", a=a, cubic=True)
    pos = torch.tensor(np.repeat(atoms.positions[None], n_replicas, 0))
    cell = torch.tensor(np.repeat(atoms.cell.array[None], n_replicas, 0))
    zeros = torch.zeros_like(pos)
    return atoms, pos, cell, zeros


def test_min_distances_match_ase_minimum_image():
    """The batched minimum-image distance equals ASE's on a rattled periodic cell."""
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
    atoms.rattle(0.3, seed=1)
    expected = atoms.get_all_distances(mic=True)[~np.eye(len(atoms), dtype=bool)].min()
    got = min_distances(torch.tensor(atoms.positions[None]), torch.tensor(atoms.cell.array[None]))
    assert float(got[0]) == pytest.approx(expected, rel=1e-10)


def test_monitor_flags_non_finite_close_atoms_and_temperature_band():
    criteria = StabilityCriteria(min_distance_fraction=0.6, temperature_window=2, equilibration_steps=5)
    atoms, pos, cell, zeros = _state(3)
    nn = 5.43 * np.sqrt(3) / 4
    mon = ReplicaMonitor(3, 1000.0, nn, criteria)
    energy = torch.zeros(3)
    forces = zeros.clone()
    forces[0, 0, 0] = float("nan")  # replica 0: non-finite force
    pos = pos.clone()
    pos[1, 1] = pos[1, 0] + torch.tensor([0.5, 0.0, 0.0], dtype=pos.dtype)  # replica 1: 0.5 A apart
    failing = mon.check(1, energy, forces, pos, zeros, cell)
    assert failing.tolist() == [True, True, False]
    assert mon.reason[:2] == ["non_finite", "min_distance"] and mon.failed_step[:2] == [1, 1]
    # replica 2 overheats: the band is not checked during equilibration, then it fails
    _, clean, _, _ = _state(3)
    for step in range(2, 9):
        mon.record_temperature(torch.tensor([1000.0, 1000.0, 2500.0], dtype=torch.float64))
        mon.check(step, energy, zeros, clean, zeros, cell)
        if step <= 5:
            assert bool(mon.alive[2])
    assert not bool(mon.alive[2]) and mon.reason[2] == "temperature" and mon.failed_step[2] == 6
    assert mon.all_failed
    rows = mon.records(n_steps=100, timestep_fs=2.0)
    assert [r["stable"] for r in rows] == [False, False, False]
    assert rows[2]["time_to_failure_ps"] == pytest.approx(6 * 2.0 / 1000)


def test_monitor_keeps_healthy_replicas_stable():
    criteria = StabilityCriteria(temperature_window=3, equilibration_steps=0)
    atoms, pos, cell, zeros = _state(2)
    mon = ReplicaMonitor(2, 600.0, 5.43 * np.sqrt(3) / 4, criteria)
    for step in range(1, 20):
        mon.record_temperature(torch.tensor([550.0, 700.0], dtype=torch.float64))
        assert not mon.check(step, torch.zeros(2), zeros, pos, zeros, cell).any()
    rows = mon.records(n_steps=19, timestep_fs=1.0)
    assert all(r["stable"] and r["reason"] == "stable" and r["steps_to_failure"] == 19 for r in rows)


@pytest.mark.parametrize("kwargs", [{"min_distance_fraction": 1.2}, {"band_low": 1.5}, {"temperature_window": 0}])
def test_invalid_criteria_rejected(kwargs):
    with pytest.raises(ValueError):
        StabilityCriteria(**kwargs)


# ---------------------------------------------------------------------------------------------------
# Broken and healthy potentials in real MD
# ---------------------------------------------------------------------------------------------------


class NaNAfter(Calculator):
    """SW forces for the first ``n_ok`` calls, then NaN everywhere."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, element, n_ok):
        super().__init__()
        self.sw = sw_calculator(element)
        self.n_ok = n_ok
        self.calls = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.calls += 1
        a = atoms.copy()
        a.calc = self.sw
        e, f = a.get_potential_energy(), a.get_forces()
        if self.calls > self.n_ok:
            e, f = float("nan"), np.full_like(f, np.nan)
        self.results = {"energy": e, "forces": f}


class Collapse(Calculator):
    """SW plus a strong constant attraction (20 eV/A) between atoms 0 and 1: they fall onto each other."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, element):
        super().__init__()
        self.sw = sw_calculator(element)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = atoms.copy()
        a.calc = self.sw
        forces = a.get_forces()
        d = a.get_distance(0, 1, mic=True, vector=True)
        r = np.linalg.norm(d)
        forces[0] += 20.0 * d / r
        forces[1] -= 20.0 * d / r
        self.results = {"energy": a.get_potential_energy() + 20.0 * r, "forces": forces}


def _settings(**kw):
    base = dict(temperatures=(600.0,), supercell=1, n_steps=60, replicas=2, log_interval=5, precision=64,
                stability=StabilityCriteria(equilibration_steps=10, temperature_window=10))
    base.update(kw)
    return md.MDSettings(**base)


def _run(calc, settings, tmp_path, element="Si"):
    a = sw_lattice_constant(element)
    atoms = md.start_cell(element, settings.supercell, a)
    out = tmp_path / "T.h5"
    rows = md.simulate(calc, atoms, settings.temperatures[0], settings, out, a * np.sqrt(3) / 4)
    return rows, out


def test_nan_potential_is_detected_at_the_failing_step(tmp_path):
    # equilibration beyond the failing step: an 8-atom cell's temperature must not end the run first
    settings = _settings(replicas=1, stability=StabilityCriteria(equilibration_steps=100))
    # call 1 is the initial force evaluation, so steps 1..24 see finite forces and step 25 NaN
    rows, out = _run(md.ASEMDCalculator(NaNAfter("Si", n_ok=25)), settings, tmp_path)
    assert rows[0]["stable"] is False and rows[0]["reason"] == "non_finite"
    assert rows[0]["steps_to_failure"] == 25
    assert rows[0]["time_to_failure_ps"] == pytest.approx(25 * settings.timestep_fs / 1000)
    with h5py.File(out) as h5:  # stopped early, file complete and consistent
        assert h5.attrs["steps_run"] == 25
        assert len(h5["thermo/step"]) == h5["molecules"].attrs["entries"]


def test_collapsing_potential_fails_on_min_distance(tmp_path):
    per_step = StabilityCriteria(equilibration_steps=10, temperature_window=10, check_interval=1)
    rows, _ = _run(md.ASEMDCalculator(Collapse("Si")), _settings(stability=per_step), tmp_path)
    assert [r["stable"] for r in rows] == [False, False]
    assert {r["reason"] for r in rows} == {"min_distance"}
    assert all(r["steps_to_failure"] <= 10 for r in rows)  # ~1 A closer in ~12 fs



def test_model_with_scaled_weights_is_unstable(tmp_path, tiny_model_config):
    """A PaiNN whose weights are scaled up (forces of thousands of eV/A) must not pass as stable."""
    torch.manual_seed(0)
    model = build_model(**tiny_model_config)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8.0)
    path = tmp_path / "broken.pt"
    save_model(model, path)
    settings = _settings(n_steps=100)
    calc = md.make_calculator(model_path=path, element="Si", cutoff=tiny_model_config["cutoff"], settings=settings)
    rows, _ = _run(calc, settings, tmp_path)
    assert not any(r["stable"] for r in rows)
    assert all(r["reason"] in ("non_finite", "min_distance", "temperature") for r in rows)


def test_pair_min_distance_equals_the_minimum_image_search(tiny_model_config):
    """The minimum distance taken from the model's neighbour pairs is the O(N^2) minimum, per replica."""
    from schnetpack.md import System
    from schnetpack.md.neighborlist_md import NeighborListMD
    from schnetpack.transform import MatScipyNeighborList

    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
    system = System()
    system.load_molecules(atoms, n_replicas=2, position_unit_input="Angstrom")
    system = system.to(dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    system.positions = system.positions + 0.02 * torch.randn(system.positions.shape, generator=generator,
                                                               dtype=torch.float64)  # nm: 0.2 A rattle
    nbl = NeighborListMD(cutoff=tiny_model_config["cutoff"], cutoff_shell=1.0, base_nbl=MatScipyNeighborList)
    calc = md.ModelMDCalculator(build_model(**tiny_model_config), nbl)
    calc.calculate(system)
    positions = system.positions.detach() / md._ANGSTROM
    cells = system.cells.detach().view(2, 3, 3) / md._ANGSTROM
    expected = min_distances(positions, cells)
    assert torch.allclose(calc.pair_min_distance.double(), expected, rtol=1e-6)
    assert expected[0] != expected[1]  # the replicas differ, so a mix-up would show


def test_model_md_checks_the_minimum_distance_every_step(tmp_path, tiny_model_config, monkeypatch):
    """With a model the O(N^2) search never runs: the neighbour pairs give the distance at every step."""
    calls = []
    import mlp_transfer.stability as stability

    monkeypatch.setattr(stability, "min_distances", lambda *a: calls.append(1) or min_distances(*a))
    path = tmp_path / "model.pt"
    torch.manual_seed(0)
    save_model(build_model(**tiny_model_config), path)
    settings = _settings(n_steps=20)
    calc = md.make_calculator(model_path=path, element="Si", cutoff=tiny_model_config["cutoff"], settings=settings)
    rows, out = _run(calc, settings, tmp_path)
    assert calls == []
    with h5py.File(out) as h5:
        logged = h5["thermo/min_distance"][()]
    assert np.isfinite(logged).all() and (logged > 1.0).all()


def test_wrapped_inputs_moves_only_atoms_more_than_a_cell_outside():
    from schnetpack.md import System

    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.set_cell(atoms.cell.array + [[0.0, 0.3, 0.0], [0.0, 0.0, 0.0], [0.2, 0.0, 0.0]], scale_atoms=True)  # triclinic
    system = System()
    system.load_molecules(atoms, n_replicas=2, position_unit_input="Angstrom")
    system = system.to(dtype=torch.float64)
    inputs = md.ASEMDCalculator(sw_calculator("Si"))._get_system_molecules(system)
    cell = inputs["_cell"][1]
    original = inputs["_positions"].clone()
    inputs["_positions"][9] += 5 * cell[0] - 3 * cell[2]  # replica 1, atom 1: far away
    inputs["_positions"][2] += 1.0 * cell[1]  # just outside (within one cell): left alone
    shifted = inputs["_positions"].clone()
    wrapped = md.wrapped_inputs(inputs)["_positions"]
    assert torch.allclose(wrapped[9], original[9], atol=1e-9)
    assert torch.equal(wrapped[2], shifted[2])
    mask = torch.ones(len(wrapped), dtype=bool)
    mask[9] = False
    assert torch.equal(wrapped[mask], shifted[mask])


def test_caching_neighbour_list_gives_schnetpacks_pairs_at_every_step():
    """Between rebuilds the cached list filtered at the current positions equals NeighborListMD's result."""
    from schnetpack.md import System
    from schnetpack.md.neighborlist_md import NeighborListMD
    from schnetpack.transform import MatScipyNeighborList

    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
    system = System()
    system.load_molecules(atoms, n_replicas=2, position_unit_input="Angstrom")
    system = system.to(dtype=torch.float64)
    reference = NeighborListMD(cutoff=3.0, cutoff_shell=0.6, base_nbl=MatScipyNeighborList)
    cached = md.CachingNeighborListMD(cutoff=3.0, cutoff_shell=0.6, base_nbl=MatScipyNeighborList)
    batcher = md.ASEMDCalculator(sw_calculator("Si"))  # for its system -> model-input conversion
    generator = torch.Generator().manual_seed(1)
    rebuilds = 0
    for step in range(40):  # a random walk: most steps within the skin, some rebuilds
        system.positions = system.positions + 0.004 * torch.randn(system.positions.shape, generator=generator,
                                                                   dtype=torch.float64)
        inputs = md.wrapped_inputs(batcher._get_system_molecules(system))
        before = cached._collated
        expected = reference.get_neighbors(dict(inputs))
        got = cached.get_neighbors(dict(inputs))
        rebuilds += cached._collated is not before
        for key in expected:
            assert torch.equal(got[key], expected[key]), (step, key)
    assert 2 <= rebuilds < 30  # both paths were exercised


def _md_positions(tmp_path, model_path, cutoff, compile, name):
    settings = _settings(n_steps=20, compile=compile)
    calc = md.make_calculator(model_path=model_path, element="Si", cutoff=cutoff, settings=settings)
    (tmp_path / name).mkdir()
    rows, out = _run(calc, settings, tmp_path / name)
    with h5py.File(out) as h5:
        return calc, h5["molecules"][()], rows


def _saved_tiny_model(tmp_path, model_config):
    path = tmp_path / "model.pt"
    torch.manual_seed(0)
    save_model(build_model(**model_config), path)
    return path, model_config["cutoff"]


#: torch.compile on the CPU (inductor) builds C++ kernels: without a compiler it can only fall back (tested below)
@pytest.mark.skipif(not any(shutil.which(c) for c in ("g++", "c++", "clang++")), reason="no C++ compiler")
def test_compiled_model_md_matches_eager(tmp_path, tiny_model_config):
    """md.compile: the same energies and forces as the eager model, hence the same (deterministic) trajectory."""
    path, cutoff = _saved_tiny_model(tmp_path, tiny_model_config)
    eager_calc, eager, eager_rows = _md_positions(tmp_path, path, cutoff, False, "eager")
    compiled_calc, compiled, compiled_rows = _md_positions(tmp_path, path, cutoff, True, "compiled")
    assert not eager_calc.compiled and compiled_calc.compiled and compiled_calc.compile_seconds > 0
    assert eager.shape == compiled.shape and np.isfinite(compiled).all()
    # float64 throughout: compiled kernels reorder sums, so agreement is to round-off, not bitwise
    np.testing.assert_allclose(compiled, eager, rtol=1e-9, atol=1e-9)
    assert [r["stable"] for r in compiled_rows] == [r["stable"] for r in eager_rows]


def test_failed_compilation_falls_back_to_eager(tmp_path, tiny_model_config, monkeypatch, caplog):
    """A compiler that fails on the first call (no C++ compiler on a node, say) costs a warning, not the run."""

    class FailsOnFirstCall(torch.nn.Module):  # what torch.compile returns: a module that compiles when called
        def forward(self, *args, **kw):
            raise RuntimeError("inductor: no working C++ compiler found")

    def broken_compile(module, **kwargs):
        return FailsOnFirstCall()

    path, cutoff = _saved_tiny_model(tmp_path, tiny_model_config)
    _, eager, _ = _md_positions(tmp_path, path, cutoff, False, "eager")
    monkeypatch.setattr(md.torch, "compile", broken_compile)
    with caplog.at_level("WARNING", logger="mlp_transfer.md"):
        calc, fallback, _ = _md_positions(tmp_path, path, cutoff, True, "fallback")
    assert not calc.compiled
    assert "torch.compile of the model failed (RuntimeError: inductor: no working C++ compiler" in caplog.text
    np.testing.assert_array_equal(fallback, eager)  # the first call was redone eagerly on the same inputs


def test_md_settings_defaults_are_the_schemas():
    """Settings built in code (benchmarks, the CLI for a key a config leaves out) run the MD the workflow would."""
    import dataclasses

    import yaml

    from mlp_transfer.config import validate_config

    config = yaml.safe_load((Path(__file__).parent / "configs" / "tiny.yaml").read_text())
    config["md"] = {"enabled": True}  # every other md key from the schema's defaults
    from_schema = md.MDSettings.from_config(validate_config(config, "tiny.yaml")["md"])
    assert md.MDSettings.from_config({}) == from_schema
    assert dataclasses.replace(md.MDSettings(), stability=from_schema.stability) == from_schema


def test_md_compile_is_read_from_config():
    assert md.MDSettings.from_config({"compile": True}).compile is True
    assert md.MDSettings.from_config({}).compile is False


@pytest.mark.parametrize("thermostat", ["langevin", "nhc"])
def test_sw_reference_is_stable_and_thermostatted(tmp_path, thermostat):
    """A healthy 64-atom SW run at 900 K: every replica stable, mean temperature near the target."""
    settings = _settings(temperatures=(900.0,), supercell=2, n_steps=200, replicas=1, thermostat=thermostat,
                         time_constant_fs=50.0, precision=32,
                         stability=StabilityCriteria(equilibration_steps=60, temperature_window=25))
    rows, out = _run(md.ASEMDCalculator(sw_calculator("Si")), settings, tmp_path)
    assert all(r["stable"] and r["steps_to_failure"] == 200 for r in rows), rows
    with h5py.File(out) as h5:
        t = h5["thermo/temperature"][:]
        steps = h5["thermo/step"][:]
        assert h5["thermo/min_distance"][:].min() > 0.75 * 2.35
    assert 600 < t[steps > 100].mean() < 1200


def test_reference_md_runs_on_the_cpu_whatever_md_device(tmp_path):
    """md.device: cuda is for the models: the reference potential's job (sent to a CPU node) runs on the CPU."""
    settings = _settings(temperatures=(600.0,), n_steps=10, device="cuda")
    table = md.run_md_job(element="Si", settings=settings, out_h5=[tmp_path / "T600K.h5"],
                          out_stability=tmp_path / "stability.csv", reference="sw",
                          metadata={"regime": "reference"})
    assert len(table) == settings.replicas and (tmp_path / "T600K.h5").is_file()


@pytest.mark.parametrize("extra", [{}, {"architecture": "so3net", "lmax": 2}], ids=["painn", "so3net"])
def test_run_md_job_writes_trajectories_and_stability(tmp_path, tiny_model_config, extra):
    """A model MD job: one schnetpack HDF5 per temperature (readable by HDF5Loader), one stability CSV."""
    torch.manual_seed(0)
    model = build_model(**{**tiny_model_config, **extra})
    path = tmp_path / "model.pt"
    save_model(model, path)
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"n_train": 7}))
    settings = _settings(temperatures=(300.0, 900.0), n_steps=20, log_interval=4)
    outs = [tmp_path / "md" / f"{md.temperature_label(t)}.h5" for t in settings.temperatures]
    table = md.run_md_job(element="Ge", settings=settings, out_h5=outs, out_stability=tmp_path / "md/stability.csv",
                          model_path=path, cutoff=tiny_model_config["cutoff"], summary_path=summary,
                          metadata={"dataset": "sw", "source": "Si", "target": "Ge", "regime": "scratch", "seed": 3})
    written = pd.read_csv(tmp_path / "md/stability.csv")
    assert len(written) == len(table) == 4
    assert list(written.columns[:6]) == ["dataset", "source", "target", "regime", "seed", "n_train"]
    assert set(written["n_train"]) == {7} and set(written["temperature_K"]) == {300.0, 900.0}
    assert sorted(p.name for p in (tmp_path / "md").iterdir()) == ["T300K.h5", "T900K.h5", "stability.csv"]
    from schnetpack.md.data import HDF5Loader

    loader = HDF5Loader(str(outs[0]), load_properties=True)
    with h5py.File(outs[0]) as h5:
        assert h5.attrs["temperature_K"] == 300.0 and h5.attrs["meta_n_train"] == "7"
        n_frames = len(h5["thermo/step"])
        alive = h5["thermo/alive"][:]
    assert loader.entries == n_frames == 5  # steps 1, 5, 9, 13, 17
    if alive.all():
        frames = read_frames(outs[0])
        assert len(frames) == 2 * n_frames
        ref = loader.convert_to_atoms(replica_idx=1)
        assert np.allclose(frames[1].get_scaled_positions(), ref[0].get_scaled_positions(), atol=1e-5)
        assert np.allclose(frames[1].cell.array, ref[0].cell.array, atol=1e-5)


# ---------------------------------------------------------------------------------------------------
# Temperature-restricted splits
# ---------------------------------------------------------------------------------------------------


def test_eligible_by_temperature_keeps_frames_without_temperature():
    temps = [300, 600, 900, 1200, -1.0, 600.0]
    assert eligible_by_temperature(temps, 600) == [0, 1, 4, 5]


def test_restricted_split_uses_only_eligible_frames_and_is_nested():
    eligible = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]
    split = make_splits(20, [2, 5, "all"], n_validation=3, seed=1, eligible=eligible)
    used = set(split["validation"]) | set(split["train"]["all"])
    assert used == set(eligible)
    assert set(split["train"]["2"]) < set(split["train"]["5"]) < set(split["train"]["all"])
    assert len(split["train"]["all"]) == 7
    with pytest.raises(SplitError, match="eligible"):
        make_splits(20, [8], n_validation=3, seed=1, eligible=eligible)


def test_unrestricted_split_unchanged_by_new_argument():
    assert make_splits(30, [2, 5], 4, seed=2) == make_splits(30, [2, 5], 4, seed=2, eligible=None)


def test_write_splits_records_the_restriction(tmp_path, make_sw_frames):
    from mlp_transfer.data.common import write_extxyz

    frames = make_sw_frames("Ge", 10, seed=0)
    for k, atoms in enumerate(frames):
        atoms.info["temperature"] = [300.0, 1200.0, -1.0][k % 3]
    pool = tmp_path / "pool.xyz"
    write_extxyz(pool, frames)
    split = write_splits(pool, tmp_path / "s.json", [2, "all"], n_validation=2, seed=0, max_temperature=600)
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["max_temperature"] == 600.0 and saved["n_eligible"] == 7
    hot = {k for k in range(10) if k % 3 == 1}
    assert not hot & (set(split["validation"]) | set(split["train"]["all"]))
    assert len(split["train"]["all"]) == 5
    plain = write_splits(pool, tmp_path / "p.json", [2], n_validation=2, seed=0)
    assert "max_temperature" not in plain and plain["train"]["2"] == make_splits(10, [2], 2, 0)["train"]["2"]


# ---------------------------------------------------------------------------------------------------
# Aggregation on synthetic inputs
# ---------------------------------------------------------------------------------------------------


def _stability_csv(path, regime, n_train, seed, stable, ttf, temps=(600.0, 1500.0)):
    rows = []
    for t in temps:
        for r, (s, x) in enumerate(zip(stable, ttf)):
            rows.append({"dataset": "sw", "source": "Si", "target": "Ge", "regime": regime, "seed": seed,
                         "n_train": n_train, "temperature_K": t, "replica": r, "stable": s, "steps_to_failure": 0,
                         "time_to_failure_ps": x, "run_length_ps": 2.0, "reason": "stable" if s else "min_distance",
                         "detail": ""})
    df = pd.DataFrame(rows)
    if regime == "reference":
        df = df.drop(columns=["source", "seed", "n_train"])
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path


def _structure_csv(path, regime, n_train, seed, shift):
    x = np.linspace(0.025, 4.975, 100)
    rows = []
    for t in (600.0, 1500.0):
        rows.append(pd.DataFrame({"temperature_K": t, "kind": "rdf", "x": x,
                                  "value": np.exp(-((x - 2.4 - shift) / 0.1) ** 2), "n_frames": 10}))
        th = np.linspace(1, 179, 90)
        rows.append(pd.DataFrame({"temperature_K": t, "kind": "adf", "x": th,
                                  "value": np.exp(-((th - 109.5) / 5) ** 2), "n_frames": 10}))
    df = pd.concat(rows)
    meta = {"dataset": "sw", "target": "Ge", "regime": regime}
    if regime != "reference":
        meta.update(source="Si", n_train=n_train, seed=seed)
    for k, (key, value) in enumerate(meta.items()):
        df.insert(k, key, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path


def test_md_aggregation_on_synthetic_runs(tmp_path):
    base = tmp_path / "results/md/sw"
    stab = [_stability_csv(base / "Si-Ge/transfer/n5/seed0/stability.csv", "transfer", 5, 0, [True, True], [2.0, 2.0]),
            _stability_csv(base / "Si-Ge/transfer/n5/seed1/stability.csv", "transfer", 5, 1, [True, False], [2.0, 0.5]),
            _stability_csv(base / "Si-Ge/scratch/n5/seed0/stability.csv", "scratch", 5, 0, [False, False], [0.1, 0.3]),
            _stability_csv(base / "reference/Ge/stability.csv", "reference", None, None, [True, True], [2.0, 2.0])]
    struct = [_structure_csv(base / "Si-Ge/transfer/n5/seed0/structure.csv", "transfer", 5, 0, 0.0),
              _structure_csv(base / "Si-Ge/scratch/n5/seed0/structure.csv", "scratch", 5, 0, 1.5),
              _structure_csv(base / "reference/Ge/structure.csv", "reference", None, None, 0.0)]
    written = aggregate_md(stab, struct, tmp_path / "tables", tmp_path / "plots")
    summary = pd.read_csv(tmp_path / "tables/md_stability.csv")
    row = summary[(summary.regime == "transfer") & (summary.temperature_K == 600)].iloc[0]
    assert row.n_replicas == 4 and row.n_stable == 3 and row.stable_fraction == pytest.approx(0.75)
    assert row.time_to_failure_ps_mean == pytest.approx((2 + 2 + 2 + 0.5) / 4) and row.n_seeds == 2
    assert row.time_to_failure_ps_min == pytest.approx(0.5)  # the one failed replica, not a stable one's 2.0
    scratch = summary[(summary.regime == "scratch") & (summary.temperature_K == 1500)].iloc[0]
    assert scratch.stable_fraction == 0 and scratch.reasons == "min_distance:2"
    ref = summary[summary.regime == "reference"]
    assert len(ref) == 2 and (ref.stable_fraction == 1).all()
    assert ref.time_to_failure_ps_min.isna().all()  # nothing failed: no first failure
    dist = pd.read_csv(tmp_path / "tables/md_structure_runs.csv")
    assert len(dist) == 2 * 2 * 2  # runs x temperatures x kinds
    rdf = dist[dist.kind == "rdf"]
    assert np.allclose(rdf.loc[rdf.regime == "transfer", "tv_distance"], 0.0, atol=1e-12)  # identical
    assert np.allclose(rdf.loc[rdf.regime == "scratch", "tv_distance"], 1.0, atol=1e-6)  # disjoint peaks
    assert np.allclose(dist.loc[dist.kind == "adf", "tv_distance"], 0.0, atol=1e-12)
    w1 = dist[(dist.kind == "rdf") & (dist.regime == "scratch")]["w1_distance"]
    assert np.allclose(w1, 1.5, atol=0.01)  # the peak moved by 1.5 A
    assert "3/4" in (tmp_path / "tables/md_stability.md").read_text()
    for name in ("md_stability_sw_Si-Ge.png", "md_structure_sw_Si-Ge.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 1000 and name in written


def test_md_aggregation_without_inputs_writes_empty_tables(tmp_path):
    aggregate_md([], [], tmp_path / "t", tmp_path / "p", pairs=[("sw", "Si", "Ge")])
    assert pd.read_csv(tmp_path / "t/md_stability.csv").empty
    assert "No data" in (tmp_path / "t/md_structure.md").read_text()
    assert (tmp_path / "p/md_stability_sw_Si-Ge.png").exists()


def test_stability_summary_counts_seeds_and_replicas(tmp_path):
    p = _stability_csv(tmp_path / "a.csv", "transfer", 2, 0, [True, False, False], [2.0, 1.0, 0.0])
    summary = stability_summary(stability_runs_table([p]))
    assert (summary.n_replicas == 3).all() and (summary.n_stable == 1).all()


def test_model_md_with_a_stress_trained_model_follows_the_same_trajectory(tmp_path, tiny_model_config):
    """A model saved with its stress output (``training.loss_weights.stress``) runs MD exactly as the same weights
    without it: the strain the stress needs does not enter energies or forces."""
    from mlp_transfer.models import set_stress_output

    torch.manual_seed(0)
    model = build_model(**tiny_model_config)
    save_model(model, tmp_path / "plain.pt")
    set_stress_output(model, True)
    save_model(model, tmp_path / "stress.pt")
    settings = _settings(n_steps=20)
    logs = []
    for name in ("plain", "stress"):
        calc = md.make_calculator(model_path=tmp_path / f"{name}.pt", element="Si",
                                  cutoff=tiny_model_config["cutoff"], settings=settings)
        (tmp_path / name).mkdir()
        _, out = _run(calc, settings, tmp_path / name)
        with h5py.File(out) as h5:
            logs.append(h5["thermo/temperature"][()])
    np.testing.assert_allclose(logs[0], logs[1], rtol=1e-10)
