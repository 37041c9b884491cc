"""The factorized SO3net convolution computes schnetpack's function, with schnetpack's weights, and models use it."""

from __future__ import annotations

import pytest
import torch
from schnetpack.nn.so3 import RealSphericalHarmonics, SO3Convolution

from mlp_transfer import models
from mlp_transfer.batching import StructureSet
from mlp_transfer.so3 import FactorizedSO3Convolution, set_so3_convolutions


def edge_inputs(lmax: int, n_atoms=12, n_edges=90, n_features=6, n_rbf=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    directions = torch.randn(n_edges, 3, generator=generator, dtype=torch.float64)
    directions = directions / directions.norm(dim=1, keepdim=True)
    return dict(x=torch.randn(n_atoms, (lmax + 1) ** 2, n_features, generator=generator, dtype=torch.float64),
                radial_ij=torch.rand(n_edges, n_rbf, generator=generator, dtype=torch.float64),
                dir_ij=RealSphericalHarmonics(lmax, "float64")(directions),
                cutoff_ij=torch.rand(n_edges, 1, generator=generator, dtype=torch.float64),
                idx_i=torch.randint(0, n_atoms, (n_edges,), generator=generator),
                idx_j=torch.randint(0, n_atoms, (n_edges,), generator=generator))


def output_and_derivatives(conv, inputs):
    """The output, the gradient of a scalar of it by every float input, and a second derivative through those
    gradients (training with forces differentiates the force, itself a gradient, once more)."""
    inputs = {k: v.clone().requires_grad_(True) if v.is_floating_point() else v for k, v in inputs.items()}
    leaves = [inputs[k] for k in ("x", "radial_ij", "dir_ij", "cutoff_ij")]
    out = conv(**inputs)
    grads = torch.autograd.grad((out ** 2).sum(), leaves, create_graph=True)
    second = torch.autograd.grad(sum((g ** 2).sum() for g in grads), leaves + list(conv.parameters()))
    return [out.detach(), *(g.detach() for g in grads), *second]


@pytest.mark.parametrize("lmax", [0, 1, 2, 3])
def test_factorized_convolution_is_schnetpack_function(lmax):
    torch.manual_seed(lmax)
    reference = SO3Convolution(lmax, n_atom_basis=6, n_radial=5).double()
    factorized = SO3Convolution(lmax, n_atom_basis=6, n_radial=5).double()
    factorized.load_state_dict(reference.state_dict())
    assert set_so3_convolutions(factorized) == 1 and type(factorized) is FactorizedSO3Convolution
    inputs = edge_inputs(lmax)
    for ours, theirs in zip(output_and_derivatives(factorized, inputs), output_and_derivatives(reference, inputs)):
        assert theirs.abs().max() > 0
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def so3net(tiny_model_config, seed=0):
    torch.manual_seed(seed)
    return models.build_model(**dict(tiny_model_config, architecture="so3net", lmax=2))


def test_build_model_keeps_schnetpack_weights_and_random_stream(tiny_model_config, monkeypatch):
    """The switch is a class swap: the same weights as a plain schnetpack build, and no random numbers drawn, so
    every seeded run initialises as it did before."""
    model = so3net(tiny_model_config)
    after_ours = torch.random.get_rng_state()
    monkeypatch.setattr(models, "set_so3_convolutions", lambda model, implementation: 0)
    plain = so3net(tiny_model_config)
    assert torch.equal(after_ours, torch.random.get_rng_state())
    assert all(type(m) is FactorizedSO3Convolution for m in model.representation.so3convs)
    assert all(type(m) is SO3Convolution for m in plain.representation.so3convs)
    ours, theirs = model.state_dict(), plain.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_energies_forces_and_stress_match_schnetpack(tiny_model_config, make_sw_frames):
    frames = make_sw_frames("Ge", 2, seed=4)
    model = so3net(tiny_model_config, seed=1).double()
    models.set_stress_output(model)
    batch = StructureSet(frames, tiny_model_config["cutoff"], with_targets=False).batch(range(len(frames)))
    batch = {k: v.double() if v.is_floating_point() else v for k, v in batch.items()}

    def predict():
        out = model(dict(batch))
        return [out[k].detach() for k in ("energy", "forces", "stress")]

    ours = predict()
    assert set_so3_convolutions(model, "schnetpack") == tiny_model_config["n_interactions"]
    theirs = predict()
    assert theirs[1].abs().max() > 1e-6 and theirs[2].abs().max() > 1e-8
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_saved_schnetpack_model_loads_with_the_factorized_convolution(tiny_model_config, make_sw_frames, tmp_path):
    """Models written before the switch (schnetpack's convolution pickled) predict as before, faster."""
    frames = make_sw_frames("Ge", 2, seed=5)
    model = so3net(tiny_model_config, seed=2)
    set_so3_convolutions(model, "schnetpack")
    models.save_model(model, tmp_path / "model.pt")
    batch = StructureSet(frames, tiny_model_config["cutoff"], with_targets=False).batch(range(len(frames)))
    before = model(dict(batch))["forces"].detach()
    loaded = models.load_model(tmp_path / "model.pt")
    assert all(type(m) is FactorizedSO3Convolution for m in loaded.representation.so3convs)
    torch.testing.assert_close(loaded(dict(batch))["forces"].detach(), before, rtol=1e-5, atol=1e-6)
    torch.save(loaded, tmp_path / "pickled.pt")  # the factorized class itself pickles and loads too
    assert type(models.load_model(tmp_path / "pickled.pt").representation.so3convs[0]) is FactorizedSO3Convolution


def test_saved_file_holds_schnetpack_classes_only(tiny_model_config, tmp_path):
    """A saved model loads with schnetpack alone (SpkCalculator, an older checkout); the model in memory keeps
    the factorized convolution."""
    model = so3net(tiny_model_config)
    models.save_model(model, tmp_path / "model.pt")
    assert all(type(m) is FactorizedSO3Convolution for m in model.representation.so3convs)
    raw = torch.load(tmp_path / "model.pt", weights_only=False)
    assert not [m for m in raw.modules() if type(m).__module__.startswith("mlp_transfer")]
    assert all(type(m) is SO3Convolution and not hasattr(m, "coupling") for m in raw.representation.so3convs)


def test_switch_leaves_other_architectures_and_refuses_unknown_names(tiny_model_config):
    painn = models.build_model(**tiny_model_config)
    assert set_so3_convolutions(painn) == 0
    with pytest.raises(ValueError, match="unknown SO3 convolution 'fast'"):
        set_so3_convolutions(painn, "fast")
