"""SchNetPack models: construction from config, transfer initialisation across elements, save and load.

A model is a ``schnetpack.model.NeuralNetworkPotential`` whose energy offset (mean energy per atom of its
training data) lives in the ``AddOffsets`` postprocessor. Postprocessing stays on during training, so the
network learns the residual ``E - N * mean`` and the offset is part of the saved model, exactly as
``schnetpack.interfaces.SpkCalculator`` expects.
"""

from __future__ import annotations

import contextlib

import copy
import logging
from pathlib import Path

import ase.data
import schnetpack as spk
import torch

from mlp_transfer.so3 import schnetpack_convolutions, set_so3_convolutions

log = logging.getLogger(__name__)

ARCHITECTURES = ("painn", "schnet", "so3net")
EMBEDDING_INITS = ("copy", "random")


def build_model(architecture: str = "painn", cutoff: float = 4.5, n_atom_basis: int = 32,
                n_interactions: int = 2, n_rbf: int = 20, lmax: int | None = None,
                norm_epsilon: float | None = None) -> spk.model.NeuralNetworkPotential:
    """A PaiNN, SchNet or SO3net energy model with forces from autograd and a per-atom energy offset.

    SO3net carries spherical-harmonic features up to ``lmax``. Why that can matter for tetrahedral solids: the
    l = 1 and l = 2 moments of a tetrahedral neighbour shell vanish by symmetry (l = 3 is the first that does
    not), and SO3net gates by scalars instead of feature norms, so it has no kink at the ideal crystal where
    PaiNN's vector features vanish (see ``mlp_transfer.properties``).

    ``norm_epsilon`` (PaiNN only) is the constant in PaiNN's vector-feature norm sqrt(|v|^2 + epsilon). At a site
    whose vector features vanish by symmetry (the ideal diamond crystal) the norm's curvature is of order
    1/sqrt(epsilon): with schnetpack's 1e-8 the second derivatives of the energy there, C44 and the phonons,
    come out unphysical; a larger constant smooths that kink away.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {ARCHITECTURES}")
    if norm_epsilon is not None and architecture != "painn":
        raise ValueError(f"norm_epsilon is a PaiNN setting; got architecture {architecture!r}")
    if (architecture == "so3net") != (lmax is not None):
        raise ValueError(f"lmax is required for so3net and only used by it; got architecture {architecture!r}, "
                         f"lmax {lmax!r}")
    radial_basis = spk.nn.GaussianRBF(n_rbf=n_rbf, cutoff=cutoff)
    cutoff_fn = spk.nn.CosineCutoff(cutoff)
    if architecture == "so3net":
        representation = spk.representation.SO3net(n_atom_basis=n_atom_basis, n_interactions=n_interactions,
                                                    lmax=lmax, radial_basis=radial_basis, cutoff_fn=cutoff_fn)
    elif architecture == "painn":
        extra = {} if norm_epsilon is None else {"epsilon": float(norm_epsilon)}
        representation = spk.representation.PaiNN(n_atom_basis=n_atom_basis, n_interactions=n_interactions,
                                                   radial_basis=radial_basis, cutoff_fn=cutoff_fn, **extra)
    else:
        representation = spk.representation.SchNet(n_atom_basis=n_atom_basis, n_interactions=n_interactions,
                                                   radial_basis=radial_basis, cutoff_fn=cutoff_fn)
    model = spk.model.NeuralNetworkPotential(
        representation=representation,
        input_modules=[spk.atomistic.PairwiseDistances()],
        output_modules=[spk.atomistic.Atomwise(n_in=n_atom_basis, output_key="energy"),
                        spk.atomistic.Forces(energy_key="energy", force_key="forces")],
        # float64 before adding the offset: total energies of hundreds of eV lose meV in float32.
        postprocessors=[spk.transform.CastTo64(), spk.transform.AddOffsets("energy", add_mean=True)],
    )
    set_so3_convolutions(model, "factorized")  # same function and weights as schnetpack's, several times faster
    return model


def set_stress_output(model, enabled: bool = True) -> None:
    """Make ``model`` also predict the stress ("stress", (n_structures, 3, 3), eV/Å^3, 1/V dE/d strain: ASE's
    sign), or stop it doing so; the weights are untouched.

    schnetpack computes the stress as the energy's response to a strain applied to positions, cell and
    periodic offsets, which ``Strain`` must do before the distances are formed; a model built or pre-trained
    without it (every source model, so that transfer can add a stress loss) gets it inserted here.
    """
    index = next((i for i, m in enumerate(model.output_modules) if isinstance(m, spk.atomistic.Forces)), None)
    if index is None:
        raise ValueError("model has no Forces output module to compute a stress with")
    old = model.output_modules[index]
    # Forces holds no weights: a new one declares its outputs and derivatives the way schnetpack does
    model.output_modules[index] = spk.atomistic.Forces(calc_forces=old.calc_forces, calc_stress=enabled,
                                                       energy_key=old.energy_key, force_key=old.force_key,
                                                       stress_key=old.stress_key)
    strain = [i for i, m in enumerate(model.input_modules) if isinstance(m, spk.atomistic.Strain)]
    if enabled and not strain:
        model.input_modules.insert(0, spk.atomistic.Strain())
    elif not enabled:
        for i in reversed(strain):
            del model.input_modules[i]
    model.collect_derivatives()
    model.collect_outputs()


def predicts_stress(model) -> bool:
    return any(isinstance(m, spk.atomistic.Forces) and m.calc_stress for m in model.output_modules)


def energy_offset_module(model) -> spk.transform.AddOffsets:
    for module in model.postprocessors:
        if isinstance(module, spk.transform.AddOffsets):
            return module
    raise ValueError("model has no AddOffsets postprocessor for the energy offset")


def set_energy_offset(model, mean_energy_per_atom: float) -> None:
    energy_offset_module(model).mean = torch.tensor([float(mean_energy_per_atom)], dtype=torch.float64)


def get_energy_offset(model) -> float:
    return float(energy_offset_module(model).mean.item())


def embedding_weight(model) -> torch.nn.Parameter:
    """The (Z_max x F) element embedding: the only trainable per-element tensor of PaiNN, SchNet and SO3net."""
    return model.representation.embedding.weight


def init_transfer_model(source_model, source_element: str, target_element: str, embedding_init: str = "copy",
                        target_energy_offset: float | None = None, seed: int = 0):
    """Copy every weight of the source model and prepare it for the target element.

    ``copy`` gives the target element the source element's embedding row, so the network sees the target as
    the chemistry it was trained on; ``random`` draws a fresh row like ``nn.Embedding``'s initialiser (N(0, 1))
    with ``seed``. The energy offset is replaced by the target's when given (mean energy per atom of the
    target training subset), because source and target cohesive energies differ by far more than the
    network's residual range.
    """
    if embedding_init not in EMBEDDING_INITS:
        raise ValueError(f"unknown embedding_init {embedding_init!r}; choose one of {EMBEDDING_INITS}")
    z_source = ase.data.atomic_numbers[source_element]
    z_target = ase.data.atomic_numbers[target_element]
    model = copy.deepcopy(source_model)
    weight = embedding_weight(model)
    with torch.no_grad():
        if embedding_init == "copy":
            weight[z_target] = weight[z_source]
        else:
            generator = torch.Generator().manual_seed(seed)
            weight[z_target] = torch.randn(weight.shape[1], generator=generator, dtype=weight.dtype)
    if target_energy_offset is not None:
        set_energy_offset(model, target_energy_offset)
    log.info("transfer init %s -> %s: embedding %s, energy offset %.6f eV/atom", source_element,
             target_element, embedding_init, get_energy_offset(model))
    return model


@contextlib.contextmanager
def frozen(model):
    """Parameters without gradients while inside: forces (a gradient with respect to positions) then skip
    the bookkeeping for parameter gradients, about 5-10% of an energy+forces call on CPU (measured)."""
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_model(model, path: str | Path) -> None:
    """Save the whole module (schnetpack's convention, loadable by ``SpkCalculator``), atomically; SO3net's
    convolutions are saved as schnetpack's own class, so that schnetpack alone can load the file."""
    from mlp_transfer.io import atomic_path

    with atomic_path(path) as tmp, schnetpack_convolutions(model):
        torch.save(model, tmp)


def load_model(path: str | Path, device: str = "cpu"):
    """Load a model written by :func:`save_model`.

    Whole-module pickles need ``weights_only=False``, which can execute code stored in the file. Callers
    pass only the workflow's own outputs (``results/models/.../model.pt``; a transfer run's source model is
    the output of ``train_source``) or a path the user names on the command line (``mlp-transfer train
    --source-model``, ``mlp-transfer evaluate --model``); the config cannot name a model file. A missing
    path raises FileNotFoundError naming it; train calls this before writing anything.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    try:
        model = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # truncated file, not a torch pickle, ...
        raise ValueError(f"model file {path} cannot be loaded: {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, spk.model.NeuralNetworkPotential):
        raise TypeError(f"{path} does not hold a schnetpack NeuralNetworkPotential (got {type(model).__name__})")
    set_so3_convolutions(model, "factorized")  # models saved with schnetpack's convolution get the faster one too
    return model
