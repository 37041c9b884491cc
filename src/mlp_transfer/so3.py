"""SO3net's equivariant convolution computed without (edges x Clebsch-Gordan terms x features) temporaries.

schnetpack's ``SO3Convolution`` evaluates, with combined indices s = (l, m),

    y_{i,s,f} = sum_j sum_{s1,s2} C^s_{s1,s2} W_{l(s1),f}(r_ij) Y_{s1}(r^_ij) x_{j,s2,f}

term by term over the non-zero Clebsch-Gordan coefficients: every edge gets gathered copies of the neighbour
features and filters for each of them (83 terms at lmax 2, 353 at lmax 3), so one training step with forces
(double backward) moves several (edges x terms x features) tensors through memory. Summing the coefficients
with the spherical harmonics first gives, per edge and filter order l1, a small matrix without a feature axis,

    M^{l1}_{s,s2}(r^_ij) = sum_{s1: l(s1) = l1} C^s_{s1,s2} Y_{s1}(r^_ij),

    y_{i,s,f} = sum_j sum_{l1,s2} M^{l1}_{s,s2}(r^_ij) W_{l1,f}(r_ij) x_{j,s2,f},

one batched ((lmax+1)^2 x (lmax+1)^3) @ ((lmax+1)^3 x features) product per edge. The function, the
parameters and the state dict are schnetpack's; only the order of the sums differs (float rounding). On this
2-core CPU a full training step takes 5.6x fewer CPU seconds at lmax 2 and 13.6x fewer at lmax 3
(benchmarks/results/architectures.md; README, Performance). Saved models hold schnetpack's class
(:func:`schnetpack_convolutions`), so plain schnetpack loads them; ``models.load_model`` switches them back.
"""

from __future__ import annotations

import contextlib

import torch
from schnetpack.nn import scatter_add
from schnetpack.nn.so3 import SO3Convolution

IMPLEMENTATIONS = ("factorized", "schnetpack")


class FactorizedSO3Convolution(SO3Convolution):
    """schnetpack's ``SO3Convolution`` with the Clebsch-Gordan sum done per edge before the features enter.

    Made from an existing convolution by :func:`set_so3_convolutions` (class swap plus one derived buffer), so
    its weights, and the random-number stream that initialised them, stay exactly schnetpack's.
    """

    def _add_coupling(self) -> None:
        """``coupling[s1, (s, l1, s2)] = C^s_{s1,s2}`` where l1 = l(s1), else 0: Y @ coupling gives every M^{l1}.
        schnetpack's own buffers give the terms: ``idx_in_1`` (s1), ``idx_in_2`` (s2), ``idx_out`` (s) and
        ``Widx`` (l(s1), the filter order of each term)."""
        n_sph, n_l = (self.lmax + 1) ** 2, self.lmax + 1
        coupling = torch.zeros(n_sph, n_sph, n_l, n_sph, dtype=torch.float64)
        index = tuple(idx.to("cpu") for idx in (self.idx_in_1, self.idx_out, self.Widx, self.idx_in_2))
        coupling.index_put_(index, self.clebsch_gordan.detach().to("cpu", torch.float64), accumulate=True)
        self.register_buffer("coupling", coupling.reshape(n_sph, -1).to(self.clebsch_gordan), persistent=False)

    def forward(self, x: torch.Tensor, radial_ij: torch.Tensor, dir_ij: torch.Tensor, cutoff_ij: torch.Tensor,
                idx_i: torch.Tensor, idx_j: torch.Tensor) -> torch.Tensor:
        # schnetpack's argument names: dir_ij holds the edges' spherical harmonics Y_{s1}(r^_ij)
        n_sph, n_l, n_features = x.shape[1], self.lmax + 1, self.n_atom_basis
        coupling = (dir_ij @ self.coupling).view(-1, n_sph, n_l * n_sph)  # M[e, s, (l1, s2)]
        filters = (self.filternet(radial_ij) * cutoff_ij).view(-1, n_l, 1, n_features)
        weighted = (filters * x[idx_j][:, None]).reshape(-1, n_l * n_sph, n_features)  # [e, (l1, s2), f]
        return scatter_add(torch.bmm(coupling, weighted), idx_i, dim_size=x.shape[0])


def _make_factorized(conv: SO3Convolution) -> None:
    conv.__class__ = FactorizedSO3Convolution
    conv._add_coupling()


def _make_schnetpack(conv: FactorizedSO3Convolution) -> None:
    conv.__class__ = SO3Convolution
    del conv.coupling


def set_so3_convolutions(model: torch.nn.Module, implementation: str = "factorized") -> int:
    """Switch every SO3net convolution in ``model`` to ``implementation`` in place; returns how many there are.

    ``factorized`` is :class:`FactorizedSO3Convolution`; ``schnetpack`` is schnetpack's own (the baseline the
    benchmark and tests compare with). Models without SO3net are left as they are (0).
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"unknown SO3 convolution {implementation!r}; choose one of {IMPLEMENTATIONS}")
    convolutions = [m for m in model.modules() if isinstance(m, SO3Convolution)]
    for conv in convolutions:
        if implementation == "factorized" and type(conv) is not FactorizedSO3Convolution:
            _make_factorized(conv)
        elif implementation == "schnetpack" and type(conv) is FactorizedSO3Convolution:
            _make_schnetpack(conv)
    return len(convolutions)


@contextlib.contextmanager
def schnetpack_convolutions(model: torch.nn.Module):
    """Within the block, ``model``'s factorized convolutions are schnetpack's (for pickling a whole model that
    schnetpack alone, e.g. ``SpkCalculator`` or an older checkout, can load); afterwards they are factorized again."""
    factorized = [m for m in model.modules() if type(m) is FactorizedSO3Convolution]
    for conv in factorized:
        _make_schnetpack(conv)
    try:
        yield model
    finally:
        for conv in factorized:
            _make_factorized(conv)
