"""Dataset generation, import and validation: counts, metadata, determinism and clear errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.stress import voigt_6_to_full_3x3_stress

from mlearn_data import MLEARN, needs_mlearn
from mlp_transfer.data.common import attach_results, read_extxyz, write_extxyz
from mlp_transfer.data.extxyz_import import cli as extxyz_cli
from mlp_transfer.data.extxyz_import import import_extxyz, normalise_frames
from mlp_transfer.data.generate import cli as generate_cli
from mlp_transfer.data.generate import generate_sw_dataset, held_out_positions
from mlp_transfer.data.mlearn import ase_stress_from_mlearn, import_mlearn, parse_temperature, read_mlearn_json
from mlp_transfer.data.validate import DatasetError, validate_frames
from mlp_transfer.reference import sw_calculator


SMALL = dict(supercell=1, temperatures=(300, 900), equilibration_steps=20, sample_interval=5,
             n_train_per_temperature=4, n_test_per_temperature=2,
             rattle={"n_train": 2, "n_test": 1, "stdev": 0.05},
             strain={"n_train": 2, "n_test": 1, "max_strain": 0.03, "stdev": 0.02})


def labelled(symbol="Si", n_rep=1, energy=-10.0, forces=None, seed=0):
    atoms = bulk(symbol, "diamond", a=5.43, cubic=True).repeat(n_rep)
    atoms.positions += np.random.default_rng(seed).normal(0, 0.02, atoms.positions.shape)
    return attach_results(atoms, energy, np.zeros((len(atoms), 3)) if forces is None else forces)


# --------------------------------------------------------------------------------------- generation

@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    d = tmp_path_factory.mktemp("sw")
    summary = generate_sw_dataset("Si", d / "train.xyz", d / "test.xyz", seed=7, **SMALL)
    return d, summary


def test_generate_counts_and_info(small_dataset):
    d, summary = small_dataset
    train, test = ase.io.read(d / "train.xyz", ":"), ase.io.read(d / "test.xyz", ":")
    assert (summary["n_train"], summary["n_test"]) == (len(train), len(test)) == (2 * 4 + 2 + 2, 2 * 2 + 1 + 1)
    validate_frames(train, "Si", d / "train.xyz")
    validate_frames(test, "Si", d / "test.xyz")
    for atoms in train:
        assert set(atoms.info) == {"source", "temperature"}
    for atoms in test:
        assert set(atoms.info) == {"source", "temperature", "test_set"}
    for atoms in train + test:
        assert len(atoms) == 8 and set(atoms.calc.results) == {"energy", "forces", "stress"}
        assert "momenta" not in atoms.arrays
    md_test = [a for a in test if a.info["source"] == "sw_md"]
    assert sorted({a.info["test_set"] for a in md_test}) == ["T300K", "T900K"]
    assert all(a.info["temperature"] == float(a.info["test_set"][1:-1]) for a in md_test)
    by_source = {s: [a for a in test if a.info["source"] == s] for s in ("sw_rattle", "sw_strain")}
    assert [a.info["test_set"] for a in by_source["sw_rattle"]] == ["rattle"]
    assert [a.info["test_set"] for a in by_source["sw_strain"]] == ["strain"]
    assert all(a.info["temperature"] == -1.0 for a in by_source["sw_rattle"] + by_source["sw_strain"])
    strained = [a for a in train if a.info["source"] == "sw_strain"][0]
    assert not np.allclose(strained.cell.lengths(), strained.cell.lengths()[0])  # really strained


def test_generate_labels_match_sw(small_dataset):
    d, _ = small_dataset
    # extxyz stores positions to 1e-8 Å, so recomputed labels agree to ~1e-8 eV, not bitwise
    for atoms in ase.io.read(d / "test.xyz", ":"):
        ref = atoms.copy()
        ref.calc = sw_calculator("Si")
        assert ref.get_potential_energy() == pytest.approx(atoms.get_potential_energy(), abs=1e-6)
        assert np.abs(ref.get_forces() - atoms.get_forces()).max() < 1e-6
        assert np.abs(ref.get_stress() - atoms.get_stress()).max() < 1e-8


def test_generate_train_test_disjoint(small_dataset):
    d, _ = small_dataset
    train, test = ase.io.read(d / "train.xyz", ":"), ase.io.read(d / "test.xyz", ":")
    for t in test:
        assert all(not np.allclose(t.positions, a.positions) for a in train)
    assert held_out_positions(30, 10) == [2, 6, 10, 14, 18, 22, 26, 30, 34, 38]
    assert held_out_positions(5, 0) == []


def test_generate_deterministic(small_dataset, tmp_path):
    d, _ = small_dataset
    generate_sw_dataset("Si", tmp_path / "a_train.xyz", tmp_path / "a_test.xyz", seed=7, **SMALL)
    assert (tmp_path / "a_train.xyz").read_bytes() == (d / "train.xyz").read_bytes()
    assert (tmp_path / "a_test.xyz").read_bytes() == (d / "test.xyz").read_bytes()
    generate_sw_dataset("Si", tmp_path / "b_train.xyz", tmp_path / "b_test.xyz", seed=8, **SMALL)
    assert (tmp_path / "b_train.xyz").read_bytes() != (d / "train.xyz").read_bytes()


def test_generate_md_temperature_is_thermostatted(tmp_path):
    """Equipartition: the mean potential energy above the minimum is ~3/2 kT per atom at low T."""
    generate_sw_dataset("Ge", tmp_path / "tr.xyz", tmp_path / "te.xyz", supercell=2, temperatures=(300,),
                        equilibration_steps=200, sample_interval=10, n_train_per_temperature=20,
                        n_test_per_temperature=1, rattle={"n_train": 0, "n_test": 0},
                        strain={"n_train": 0, "n_test": 0}, seed=1)
    frames = ase.io.read(tmp_path / "tr.xyz", ":")
    excess = np.mean([a.get_potential_energy() / len(a) for a in frames]) + 3.860
    kT = 8.617333e-5 * 300
    assert excess == pytest.approx(1.5 * kT, rel=0.25)


def test_generate_cli_and_errors(tmp_path):
    argv = ["--element", "Ge", "--out-train", str(tmp_path / "tr.xyz"), "--out-test", str(tmp_path / "te.xyz"),
            "--supercell", "1", "--temperatures", "500", "--equilibration-steps", "5", "--sample-interval", "2",
            "--n-train", "2", "--n-test", "1", "--rattle-train", "1", "--rattle-test", "0",
            "--strain-train", "0", "--strain-test", "1", "--seed", "3"]
    assert generate_cli(argv) == 0
    train, test = ase.io.read(tmp_path / "tr.xyz", ":"), ase.io.read(tmp_path / "te.xyz", ":")
    assert (len(train), len(test)) == (3, 2)
    assert {a.get_chemical_symbols()[0] for a in train + test} == {"Ge"}
    with pytest.raises(ValueError, match="'C'"):
        generate_sw_dataset("C", tmp_path / "x.xyz", tmp_path / "y.xyz", **SMALL)
    with pytest.raises(ValueError, match="no test frames"):
        generate_sw_dataset("Si", tmp_path / "x.xyz", tmp_path / "y.xyz", **{**SMALL, "n_test_per_temperature": 0,
                            "rattle": {"n_test": 0}, "strain": {"n_test": 0}})


# ------------------------------------------------------------------------------------------ mlearn

@needs_mlearn
@pytest.mark.parametrize("element,n_train,n_test", [("Si", 214, 25), ("Ge", 228, 25)])
def test_mlearn_import(tmp_path, element, n_train, n_test):
    summary = import_mlearn(MLEARN, element, tmp_path / "tr.xyz", tmp_path / "te.xyz")
    assert (summary["n_train"], summary["n_test"]) == (n_train, n_test)
    train, test = ase.io.read(tmp_path / "tr.xyz", ":"), ase.io.read(tmp_path / "te.xyz", ":")
    assert (len(train), len(test)) == (n_train, n_test)
    raw = json.loads((MLEARN / element / "training.json").read_text())
    for atoms, entry in zip(train, raw):
        assert atoms.get_potential_energy() == pytest.approx(entry["outputs"]["energy"], abs=1e-8)
        assert atoms.get_forces().shape == (entry["num_atoms"], 3)
        assert np.allclose(atoms.get_forces(), entry["outputs"]["forces"])
        assert atoms.info["source"] == f"mlearn_{entry['group']}"
        assert "test_set" not in atoms.info
        assert np.allclose(atoms.get_stress(), ase_stress_from_mlearn(entry["outputs"]["virial_stress"]))
    e_per_atom = np.array([a.get_potential_energy() / len(a) for a in train + test])
    assert np.all((e_per_atom < -3.0) & (e_per_atom > -6.5))  # PBE total energies of Si/Ge
    assert {a.info["test_set"] for a in test} == {"test"}
    assert {a.info["source"] for a in train} == {f"mlearn_{g}" for g in ("AIMD-NVT", "Elastic", "Surface", "Vacancy")}
    temps = {a.info["temperature"] for a in train}
    assert 300.0 in temps and -1.0 in temps


@needs_mlearn
@pytest.mark.parametrize("element", ["Si", "Ge"])
def test_mlearn_stress_convention_from_strained_crystals(element):
    """The stress convention, checked against the data alone: in each strained crystal of the Elastic group
    (uniaxial and shear strains of the cubic 2x2x2 cell) the largest strain component has a stress of its own
    sign (positive elastic moduli, ASE's tension-positive sign), a shear strain's stress is the largest shear
    stress (the component order), and the pressure falls as the volume grows."""
    frames = [a for a in read_mlearn_json(MLEARN / element / "training.json", element) if a.info["group"] == "Elastic"]
    a0 = np.median([np.diag(a.cell.array) for a in frames])  # the unstrained cell's edge
    checked, volumes, pressures = 0, [], []
    for atoms in frames:
        strain = atoms.cell.array / a0 - np.eye(3)
        strain = (strain + strain.T) / 2
        stress = voigt_6_to_full_3x3_stress(atoms.get_stress())
        volumes.append(atoms.get_volume())
        pressures.append(-np.trace(stress) / 3)
        i, j = np.unravel_index(np.abs(strain).argmax(), (3, 3))
        if abs(strain[i, j]) < 0.01:
            continue
        checked += 1
        assert np.sign(stress[i, j]) == np.sign(strain[i, j]), atoms.info["description"]
        if i != j:
            shear = np.abs(stress - np.diag(np.diag(stress)))
            assert abs(stress[i, j]) == pytest.approx(shear.max()), atoms.info["description"]
    assert checked >= 50
    assert np.corrcoef(volumes, pressures)[0, 1] < -0.5


@needs_mlearn
@pytest.mark.parametrize("element", ["Si", "Ge"])
def test_mlearn_stress_is_the_strain_derivative_of_the_energy(element):
    """The unit: along mlearn's uniaxial strain path ("mode 0": x stretched by -4 ... 4 %), the converted
    sigma_xx at zero strain and its slope C11 equal (1/V) dE/d(eps) and (1/V) d2E/d(eps)2 of the DFT energies
    themselves (Ge's reference cell is under about 1 GPa of compression, so the zero-strain value is tested too)."""
    frames = [a for a in read_mlearn_json(MLEARN / element / "training.json", element)
              if a.info["group"] == "Elastic" and "mode 0," in a.info["description"]]
    eps = np.array([float(a.info["description"].split("strain ")[1]) for a in frames])
    use = np.abs(eps) <= 0.041
    assert use.sum() >= 4
    energies = np.array([a.get_potential_energy() for a in frames])[use]
    volume0 = np.mean([a.get_volume() / (1 + e) for a, e in zip(frames, eps)])
    sigma_xx = np.array([a.get_stress()[0] for a in frames])[use] / units.GPa
    energy_fit = np.polyfit(eps[use], energies, 3)
    stress_fit = np.polyfit(eps[use], sigma_xx, 2)
    from_energy = {"sigma0": energy_fit[2] / volume0 / units.GPa, "c11": 2 * energy_fit[1] / volume0 / units.GPa}
    assert stress_fit[2] == pytest.approx(from_energy["sigma0"], abs=0.1)
    assert stress_fit[1] == pytest.approx(from_energy["c11"], rel=0.03)
    assert 80 < from_energy["c11"] < 200  # GPa: Si and Ge C11 under PBE, so neither side is off by a unit factor


def test_mlearn_stress_conversion():
    """kbar, VASP order xx yy zz xy yz zx, compression positive -> eV/A^3, ASE Voigt order, tension positive."""
    converted = ase_stress_from_mlearn([10.0, 20.0, 30.0, 1.0, 2.0, 3.0])
    assert np.allclose(converted / units.GPa, [-1.0, -2.0, -3.0, -0.2, -0.3, -0.1])
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        ase_stress_from_mlearn([0.0] * 5)


def test_parse_temperature():
    assert parse_temperature("Snapshot 8 of 40 of Vacancy AIMD NVT simulation at 300 K") == 300.0
    assert parse_temperature("Snapshot 92000 of 100000 of AIMD NVT simulation for normal structure at 2530 K") == 2530.0
    assert parse_temperature("Si 2x2x2 cell, mode 2, strain 0.1") == -1.0


def mlearn_entry(n=8, element="Si"):
    atoms = bulk(element, "diamond", a=5.43, cubic=True)[:n]
    return {
        "structure": {"lattice": {"matrix": atoms.cell.tolist()},
                      "sites": [{"species": [{"element": s, "occu": 1}], "xyz": p.tolist()}
                                for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)]},
        "outputs": {"energy": -40.0, "forces": np.zeros((n, 3)).tolist(), "virial_stress": [0.0] * 6},
        "group": "Elastic", "description": "Ground state crystal", "num_atoms": n,
    }


def write_mlearn(folder: Path, train, test, element="Si"):
    (folder / element).mkdir(parents=True, exist_ok=True)
    (folder / element / "training.json").write_text(json.dumps(train))
    (folder / element / "test.json").write_text(json.dumps(test))


def test_mlearn_synthetic_roundtrip(tmp_path):
    write_mlearn(tmp_path, [mlearn_entry(), mlearn_entry()], [mlearn_entry()])
    import_mlearn(tmp_path, "Si", tmp_path / "tr.xyz", tmp_path / "te.xyz")
    (atoms,) = ase.io.read(tmp_path / "te.xyz", ":")
    assert atoms.info["source"] == "mlearn_Elastic" and atoms.info["temperature"] == -1.0
    assert np.allclose(atoms.get_stress(), 0.0) and "virial_stress_raw" not in atoms.info


@pytest.mark.parametrize("mutate,message", [
    (lambda e: e.pop("outputs"), "no 'outputs'"),
    (lambda e: e["outputs"].pop("energy"), "no 'energy'"),
    (lambda e: e["outputs"].pop("forces"), "no 'forces'"),
    (lambda e: e["outputs"].__setitem__("forces", [[0.0, 0.0, 0.0]] * 7), r"forces have shape \(7, 3\), expected \(8, 3\)"),
    (lambda e: e["outputs"].__setitem__("energy", float("nan")), "energy is nan"),
    (lambda e: e["outputs"].__setitem__("virial_stress", [0.0] * 5), r"virial_stress has shape \(5,\)"),
    (lambda e: e["outputs"].__setitem__("virial_stress", [float("nan")] * 6), "stress is not finite"),
    (lambda e: e["structure"]["sites"][3]["species"][0].__setitem__("element", "Ge"), r"contains elements \['Ge', 'Si'\]"),
])
def test_mlearn_malformed_entry(tmp_path, mutate, message):
    bad = mlearn_entry()
    mutate(bad)
    write_mlearn(tmp_path, [mlearn_entry(), mlearn_entry(), bad], [mlearn_entry()])
    with pytest.raises(DatasetError, match=rf"training\.json, frame 2: .*{message}") as info:
        import_mlearn(tmp_path, "Si", tmp_path / "tr.xyz", tmp_path / "te.xyz")
    assert info.value.frame == 2 and info.value.path.endswith("training.json")
    assert not (tmp_path / "tr.xyz").exists()


def test_mlearn_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"nowhere.*training\.json: file does not exist"):
        import_mlearn(tmp_path / "nowhere", "Si", tmp_path / "tr.xyz", tmp_path / "te.xyz")


# ------------------------------------------------------------------------------- extxyz import

def write_custom_keys(path: Path, frames_spec):
    """Frames with labels under custom keys, like many DFT training files."""
    frames = []
    for n_rep, energy, element in frames_spec:
        atoms = bulk(element, "diamond", a=5.43, cubic=True).repeat(n_rep) if n_rep else Atoms(element, cell=[10] * 3, pbc=True)
        atoms.info["dft_energy"] = energy
        atoms.info["config_type"] = "bulk"
        atoms.arrays["dft_force"] = np.full((len(atoms), 3), 0.5)
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")


def test_extxyz_import_custom_keys_and_single_atoms(tmp_path, caplog):
    write_custom_keys(tmp_path / "in_train.xyz", [(0, -0.1, "Si"), (1, -40.0, "Si"), (2, -320.0, "Si")])
    write_custom_keys(tmp_path / "in_test.xyz", [(1, -41.0, "Si"), (0, -0.2, "Si")])
    with caplog.at_level(logging.WARNING):
        summary = import_extxyz(tmp_path / "in_train.xyz", tmp_path / "in_test.xyz", "Si", tmp_path / "tr.xyz",
                                tmp_path / "te.xyz", energy_key="dft_energy", forces_key="dft_force")
    assert summary == {"element": "Si", "n_train": 2, "n_test": 1,
                       "dropped_single_atom_train": 1, "dropped_single_atom_test": 1}
    assert "in_train.xyz: dropped 1 single-atom frame" in caplog.text
    train, test = ase.io.read(tmp_path / "tr.xyz", ":"), ase.io.read(tmp_path / "te.xyz", ":")
    assert [a.get_potential_energy() for a in train] == [-40.0, -320.0]
    assert np.all(train[1].get_forces() == 0.5) and train[1].get_forces().shape == (64, 3)
    assert train[0].info == {"source": "extxyz", "temperature": -1.0, "config_type": "bulk"}
    assert test[0].info == {"source": "extxyz", "temperature": -1.0, "config_type": "bulk", "test_set": "test"}
    assert "dft_force" not in train[0].arrays


def test_extxyz_import_keeps_a_one_atom_bulk_cell(tmp_path):
    """A periodic one-atom crystal (fcc primitive cell, images at 3.8 Å) is a structure, not an atomic reference."""
    from mlp_transfer.data.extxyz_import import is_isolated_atom

    fcc = bulk("Si", "fcc", a=5.4)
    assert len(fcc) == 1 and not is_isolated_atom(fcc)
    assert is_isolated_atom(Atoms("Si", cell=[10] * 3, pbc=True))
    assert is_isolated_atom(Atoms("Si", cell=[3] * 3, pbc=False))
    fcc.info["energy"] = -4.5
    fcc.arrays["forces"] = np.zeros((1, 3))
    frames, dropped = normalise_frames([fcc, labelled()], tmp_path / "in.xyz", "Si")
    assert dropped == 0 and [len(a) for a in frames] == [1, 8]


def test_extxyz_import_default_keys_cli(tmp_path):
    frames = [labelled(seed=i) for i in range(3)]
    frames[0].info["temperature"] = 900
    frames[2].info["test_set"] = "liquid"
    write_extxyz(tmp_path / "a.xyz", frames[:2])
    write_extxyz(tmp_path / "b.xyz", frames[2:])
    assert extxyz_cli(["--train", str(tmp_path / "a.xyz"), "--test", str(tmp_path / "b.xyz"), "--element", "Si",
                       "--out-train", str(tmp_path / "tr.xyz"), "--out-test", str(tmp_path / "te.xyz")]) == 0
    train, test = read_extxyz(tmp_path / "tr.xyz"), read_extxyz(tmp_path / "te.xyz")
    assert train[0].info["temperature"] == 900.0 and test[0].info["test_set"] == "liquid"


def test_extxyz_wrong_key_names_list_existing(tmp_path):
    write_custom_keys(tmp_path / "in.xyz", [(1, -40.0, "Si")])
    with pytest.raises(DatasetError, match=r"in\.xyz, frame 0: energy key 'energy' not found; "
                                           r"per-frame info keys: \['config_type', 'dft_energy'\]"):
        import_extxyz(tmp_path / "in.xyz", tmp_path / "in.xyz", "Si", tmp_path / "tr.xyz", tmp_path / "te.xyz")
    with pytest.raises(DatasetError, match=r"in\.xyz, frame 0: forces key 'forces' not found; "
                                           r"per-atom array keys: .*'dft_force'"):
        import_extxyz(tmp_path / "in.xyz", tmp_path / "in.xyz", "Si", tmp_path / "tr.xyz", tmp_path / "te.xyz",
                      energy_key="dft_energy")


def bad_file(tmp_path, kind) -> Path:
    """Write an extxyz whose frame 1 (or the whole file) has one defect."""
    path = tmp_path / f"{kind}.xyz"
    good = [labelled(seed=0), labelled(seed=1), labelled(seed=2)]
    if kind == "truncated":
        write_extxyz(path, good)
        lines = path.read_text().splitlines()
        path.write_text("\n".join(lines[: 10 + 5]) + "\n")  # frame 0 complete (10 lines), frame 1 cut
    elif kind == "empty":
        path.write_text("")
    elif kind == "garbage":
        path.write_text("this is not\nan xyz file\n")
    else:
        atoms = good[1]
        if kind == "missing_energy":
            atoms.calc = None
            atoms.arrays["forces"] = np.zeros((len(atoms), 3))
        elif kind == "missing_forces":
            atoms.calc = None
            atoms.info["energy"] = -1.0
        elif kind == "nan_energy":
            attach_results(atoms, float("nan"), np.zeros((len(atoms), 3)))
        elif kind == "wrong_element":
            good[1] = labelled("Ge", seed=1)
        elif kind == "mixed_elements":
            atoms.symbols[3] = "Ge"
        write_extxyz(path, good)
    return path


@pytest.mark.parametrize("kind,message", [
    ("truncated", "frame 1: cannot be parsed as extxyz"),
    ("garbage", "frame 0: cannot be parsed as extxyz"),
    ("missing_energy", "frame 1: energy key 'energy' not found"),
    ("missing_forces", "frame 1: forces key 'forces' not found"),
    ("nan_energy", "frame 1: energy is nan"),
    ("wrong_element", r"frame 1: contains elements \['Ge'\], expected only Si"),
    ("mixed_elements", r"frame 1: contains elements \['Ge', 'Si'\], expected only Si"),
])
def test_extxyz_bad_inputs(tmp_path, kind, message):
    path = bad_file(tmp_path, kind)
    with pytest.raises(DatasetError, match=rf"{kind}\.xyz, {message}"):
        import_extxyz(path, path, "Si", tmp_path / "tr.xyz", tmp_path / "te.xyz")
    assert not (tmp_path / "tr.xyz").exists()


def test_extxyz_empty_and_nonexistent(tmp_path):
    path = bad_file(tmp_path, "empty")
    with pytest.raises(DatasetError, match=r"empty\.xyz: contains no structures"):
        import_extxyz(path, path, "Si", tmp_path / "tr.xyz", tmp_path / "te.xyz")
    with pytest.raises(DatasetError, match=r"missing\.xyz: file does not exist"):
        read_extxyz(tmp_path / "missing.xyz")
    only_atoms = tmp_path / "atoms.xyz"
    write_custom_keys(only_atoms, [(0, -0.1, "Si")])
    with pytest.raises(DatasetError, match=r"atoms\.xyz: contains no structures \(1 single-atom frame"):
        import_extxyz(only_atoms, only_atoms, "Si", tmp_path / "tr.xyz", tmp_path / "te.xyz",
                      energy_key="dft_energy", forces_key="dft_force")


# ----------------------------------------------------------------------------------- validate_frames

def test_validate_frames_problems():
    path = "some/dir/data.xyz"
    validate_frames([labelled(), labelled(n_rep=2)], "Si", path)
    with pytest.raises(DatasetError, match=r"^some/dir/data\.xyz: contains no structures$"):
        validate_frames([], "Si", path)
    frames = [labelled(n_rep=2) for _ in range(8)]
    frames[7].calc.results["forces"] = np.zeros((63, 3))
    with pytest.raises(DatasetError, match=r"^some/dir/data\.xyz, frame 7: forces have shape \(63, 3\), expected \(64, 3\)$"):
        validate_frames(frames, "Si", path)
    nan_forces = labelled(forces=np.full((8, 3), np.nan))
    with pytest.raises(DatasetError, match="frame 1: forces are not finite"):
        validate_frames([labelled(), nan_forces], "Si", path)
    flat = labelled()
    flat.cell[2] = 0.0
    with pytest.raises(DatasetError, match="frame 0: pbc is .* but the cell volume is 0"):
        validate_frames([flat], "Si", path)
    no_calc = labelled()
    no_calc.calc = None
    with pytest.raises(DatasetError, match="frame 0: has no energy"):
        validate_frames([no_calc], "Si", path)
    with pytest.raises(DatasetError, match="frame 0: contains elements"):
        validate_frames([labelled()], "Ge", path)
    assert issubclass(DatasetError, ValueError)


def test_train_and_test_files_appear_together_or_not_at_all(tmp_path):
    """A test output that cannot be written (its folder is a file) leaves no train file behind either."""
    from mlp_transfer.data.common import write_train_test

    frames = [labelled(seed=i) for i in range(3)]
    (tmp_path / "afile").write_text("")
    with pytest.raises(OSError):
        write_train_test(tmp_path / "out" / "train.extxyz", frames, tmp_path / "afile" / "test.extxyz", frames)
    assert not (tmp_path / "out" / "train.extxyz").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == []  # no temporary left either
    write_train_test(tmp_path / "out" / "train.extxyz", frames, tmp_path / "out" / "test.extxyz", frames[:1])
    assert len(read_extxyz(tmp_path / "out" / "train.extxyz")) == len(frames)
    assert len(read_extxyz(tmp_path / "out" / "test.extxyz")) == 1
