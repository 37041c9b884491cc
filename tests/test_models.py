"""Model construction, transfer initialisation across elements, energy offsets, save and load."""

from __future__ import annotations

import ase.data
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mlp_transfer import models
from mlp_transfer.batching import StructureSet

Z_SI = ase.data.atomic_numbers["Si"]
Z_GE = ase.data.atomic_numbers["Ge"]


@pytest.fixture(scope="module")
def si_frames(make_sw_frames):
    return make_sw_frames("Si", 3, seed=11)


@pytest.fixture(scope="module")
def ge_frames(make_sw_frames):
    return make_sw_frames("Ge", 3, seed=12)


@pytest.fixture
def source_model(tiny_model_config):
    torch.manual_seed(0)
    model = models.build_model(**tiny_model_config)
    models.set_energy_offset(model, -4.3)
    return model


def predict(model, frames, cutoff=4.0, dtype=None):
    batch = StructureSet(frames, cutoff, with_targets=False).batch(range(len(frames)))
    if dtype is not None:
        batch = {k: v.to(dtype) if v.is_floating_point() else v for k, v in batch.items()}
    out = model(batch)
    return out["energy"].detach(), out["forces"].detach()


def assert_same_state(a: dict, b: dict, skip=()):
    assert a.keys() == b.keys()
    for key in a:
        if key not in skip:
            assert torch.equal(a[key], b[key]), key


def architecture_config(tiny_model_config: dict, architecture: str) -> dict:
    config = dict(tiny_model_config, architecture=architecture)
    if architecture == "so3net":
        config["lmax"] = 3
    return config


@pytest.mark.parametrize("architecture", models.ARCHITECTURES)
def test_build_model_energy_and_force_shapes(architecture, tiny_model_config, si_frames):
    """Every architecture gives one float64 energy per structure and one force vector per atom."""
    energy, forces = predict(models.build_model(**architecture_config(tiny_model_config, architecture)), si_frames)
    assert energy.shape == (3,) and forces.shape == (24, 3)
    assert energy.dtype == torch.float64
    assert torch.isfinite(energy).all() and torch.isfinite(forces).all()


@pytest.mark.parametrize("architecture", models.ARCHITECTURES)
def test_energy_invariant_and_forces_equivariant_under_rotation(architecture, tiny_model_config, si_frames):
    """A rigid rotation of a periodic structure (cell and positions) leaves the energy and rotates the forces."""
    torch.manual_seed(3)
    model = models.build_model(**architecture_config(tiny_model_config, architecture))
    model = model.double()
    rotation = Rotation.from_euler("zyx", [0.7, -0.4, 1.9]).as_matrix()
    rotated = []
    for atoms in si_frames:
        atoms = atoms.copy()
        atoms.set_cell(atoms.get_cell().array @ rotation.T, scale_atoms=False)
        atoms.set_positions(atoms.get_positions() @ rotation.T)
        rotated.append(atoms)
    energy, forces = predict(model, si_frames, dtype=torch.float64)
    energy_rot, forces_rot = predict(model, rotated, dtype=torch.float64)
    # float32 inputs (positions rounded to ~1e-7 relative) bound the agreement; a broken equivariance is O(1).
    torch.testing.assert_close(energy_rot, energy, rtol=1e-7, atol=1e-6)
    torch.testing.assert_close(forces_rot, forces @ torch.from_numpy(rotation).T, rtol=1e-5, atol=1e-6)


def test_so3net_needs_lmax_and_others_refuse_it(tiny_model_config):
    with pytest.raises(ValueError, match="lmax is required for so3net"):
        models.build_model(**dict(tiny_model_config, architecture="so3net"))
    with pytest.raises(ValueError, match="only used by it"):
        models.build_model(**dict(tiny_model_config, lmax=2))


def test_norm_epsilon_smooths_painns_kink_at_the_ideal_crystal():
    """At the ideal diamond crystal PaiNN's vector features vanish; with schnetpack's 1e-8 under the norm, moving
    one atom by d changes the energy by a term in |d| (doubling d does not quadruple the change), with a larger
    norm_epsilon the change is quadratic in d, as it must be at a minimum-energy site (C44, phonons)."""
    from ase.build import bulk

    def energy_change_ratio(norm_epsilon, d=1e-3):
        torch.manual_seed(0)
        model = models.build_model(architecture="painn", cutoff=4.0, n_atom_basis=8, n_interactions=1, n_rbf=8,
                                   norm_epsilon=norm_epsilon).double()

        def energy(shift):
            atoms = bulk("Si", "diamond", a=5.43, cubic=True)
            atoms.positions[0] += np.array([1.0, 0.3, -0.5]) * shift
            batch = StructureSet([atoms], 4.0, with_targets=False).batch([0])
            batch = {k: v.double() if v.is_floating_point() else v for k, v in batch.items()}
            return float(model(batch)["energy"].detach())

        e0 = energy(0.0)
        return (energy(2 * d) - e0) / (energy(d) - e0), abs(energy(d) - e0)

    kinked, kink_change = energy_change_ratio(None)
    smooth, smooth_change = energy_change_ratio(1e-2)
    assert smooth == pytest.approx(4.0, abs=0.05)
    assert kinked < 3.7 and kink_change > 10 * smooth_change
    with pytest.raises(ValueError, match="norm_epsilon is a PaiNN setting"):
        models.build_model(architecture="schnet", cutoff=4.0, n_atom_basis=8, n_interactions=1, n_rbf=8,
                           norm_epsilon=1e-2)


def test_so3net_copy_init_gives_the_target_the_source_chemistry(tiny_model_config, si_frames):
    """With the embedding row copied, a Ge-labelled structure gets the Si energy (plus the offset change)."""
    torch.manual_seed(0)
    source = models.build_model(**architecture_config(tiny_model_config, "so3net"))
    models.set_energy_offset(source, -4.3)
    target = models.init_transfer_model(source, "Si", "Ge", "copy", target_energy_offset=-3.7)
    relabelled = [atoms.copy() for atoms in si_frames]
    for atoms in relabelled:
        atoms.set_chemical_symbols(["Ge"] * len(atoms))
    energy_si, forces_si = predict(source, si_frames)
    energy_ge, forces_ge = predict(target, relabelled)
    n_atoms = torch.tensor([len(a) for a in si_frames], dtype=torch.float64)
    torch.testing.assert_close(energy_ge, energy_si + 0.6 * n_atoms, rtol=0, atol=1e-4)
    torch.testing.assert_close(forces_ge, forces_si)


def test_unknown_architecture():
    """An unknown architecture is a ValueError naming it."""
    with pytest.raises(ValueError, match="nequip"):
        models.build_model("nequip")


def test_copy_init_copies_embedding_row_and_nothing_else(source_model):
    """'copy': the Ge row equals the Si row; every other parameter and buffer is the source's."""
    before = {k: v.clone() for k, v in source_model.state_dict().items()}
    target = models.init_transfer_model(source_model, "Si", "Ge", "copy")
    weight_key = "representation.embedding.weight"
    target_state, source_state = target.state_dict(), source_model.state_dict()
    assert torch.equal(target_state[weight_key][Z_GE], source_state[weight_key][Z_SI])
    assert not torch.equal(source_state[weight_key][Z_GE], source_state[weight_key][Z_SI])
    other_rows = [z for z in range(source_state[weight_key].shape[0]) if z != Z_GE]
    assert torch.equal(target_state[weight_key][other_rows], source_state[weight_key][other_rows])
    assert_same_state(target_state, source_state, skip={weight_key})
    # The source model is untouched and not shared with the target.
    assert_same_state(source_model.state_dict(), before)
    assert target.representation.embedding.weight.data_ptr() != source_model.representation.embedding.weight.data_ptr()


def test_random_init_new_row_deterministic_for_seed(source_model):
    """'random': the Ge row differs from the Si row, is reproducible for a seed and changes with it."""
    key = "representation.embedding.weight"
    a = models.init_transfer_model(source_model, "Si", "Ge", "random", seed=5).state_dict()[key]
    b = models.init_transfer_model(source_model, "Si", "Ge", "random", seed=5).state_dict()[key]
    c = models.init_transfer_model(source_model, "Si", "Ge", "random", seed=6).state_dict()[key]
    source = source_model.state_dict()[key]
    assert not torch.allclose(a[Z_GE], source[Z_SI])
    assert not torch.allclose(a[Z_GE], source[Z_GE])
    assert torch.equal(a, b)
    assert not torch.equal(a[Z_GE], c[Z_GE])
    assert torch.equal(a[Z_SI], source[Z_SI])


def test_unknown_embedding_init(source_model):
    with pytest.raises(ValueError, match="zeros"):
        models.init_transfer_model(source_model, "Si", "Ge", "zeros")


def test_target_offset_replaces_source_offset_and_shifts_energies(source_model, ge_frames):
    """The target offset replaces the source's; energies shift by exactly N * (new - old), forces do not."""
    same = models.init_transfer_model(source_model, "Si", "Ge", "copy")
    assert models.get_energy_offset(same) == pytest.approx(-4.3)
    shifted = models.init_transfer_model(source_model, "Si", "Ge", "copy", target_energy_offset=-3.85)
    assert models.get_energy_offset(shifted) == pytest.approx(-3.85)
    assert models.get_energy_offset(source_model) == pytest.approx(-4.3)
    e_same, f_same = predict(same, ge_frames)
    e_shift, f_shift = predict(shifted, ge_frames)
    torch.testing.assert_close(e_shift - e_same, torch.full((3,), 8 * (-3.85 + 4.3), dtype=torch.float64),
                               rtol=0, atol=1e-9)
    torch.testing.assert_close(f_shift, f_same, rtol=0, atol=0)


def test_save_load_round_trip(source_model, si_frames, tmp_path):
    """A saved and reloaded model predicts identically and keeps its offset; no temp files are left."""
    path = tmp_path / "model.pt"
    models.save_model(source_model, path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    loaded = models.load_model(path)
    assert models.get_energy_offset(loaded) == models.get_energy_offset(source_model)
    e0, f0 = predict(source_model, si_frames)
    e1, f1 = predict(loaded, si_frames)
    assert torch.equal(e0, e1) and torch.equal(f0, f1)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        models.load_model(tmp_path / "absent.pt")


def test_load_other_object_is_type_error(tmp_path):
    """A torch file holding something other than a NeuralNetworkPotential is a TypeError."""
    path = tmp_path / "state.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(TypeError, match="NeuralNetworkPotential"):
        models.load_model(path)
