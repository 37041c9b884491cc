"""C44 and the equation of state of a trained PaiNN model with the constant in its vector-feature norm raised
after training (schnetpack's PaiNNMixing.epsilon; the weights are unchanged): the diagnostic that pointed at the
norm's kink. Run from the repository root:
  .venv/bin/python results/summaries/mlearn_full_norm_epsilon_cpu/posthoc_epsilon.py MODEL.pt [CUTOFF, default 6]
"""

import sys

import schnetpack as spk

from mlp_transfer import models
from mlp_transfer.properties import compute_properties, model_calculator

path, cutoff = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 6.0
for epsilon in (1e-8, 1e-4, 1e-2):
    model = models.load_model(path)
    for module in model.modules():
        if isinstance(module, spk.representation.painn.PaiNNMixing):
            module.epsilon = epsilon
    values = compute_properties(model_calculator(model, cutoff), "Ge", 5.77, {"groups": ["eos", "elastic"]})
    print(f"epsilon {epsilon:g}: " + ", ".join(f"{k} {values[k]:.3f}" for k in
                                             ("lattice_constant", "bulk_modulus", "C11", "C12", "C44", "C44_unrelaxed")))
