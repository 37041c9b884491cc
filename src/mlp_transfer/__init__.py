"""Transfer learning of machine-learning interatomic potentials across chemical elements.

Stages (each a module with a ``cli(argv)`` entry point, all reachable through ``mlp-transfer <stage>``):
data generation/import, subsampling, training (source pre-training, transfer, scratch), evaluation and
aggregation into learning-curve tables and plots.
"""

__version__ = "0.1.0"
