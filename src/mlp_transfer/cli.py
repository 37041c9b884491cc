"""``mlp-transfer <stage> ...``: one command-line entry point dispatching to each stage's ``cli``."""

from __future__ import annotations

import importlib
import sys

STAGES = {
    "generate-sw": ("mlp_transfer.data.generate", "Generate a Stillinger-Weber dataset by MD sampling"),
    "import-mlearn": ("mlp_transfer.data.mlearn", "Import the mlearn DFT JSON dataset"),
    "import-extxyz": ("mlp_transfer.data.extxyz_import", "Import and validate a user's extxyz dataset"),
    "split": ("mlp_transfer.splits", "Draw nested learning-curve subsets and a validation set"),
    "train": ("mlp_transfer.train", "Train a model (source, transfer or scratch)"),
    "hpsearch-table": ("mlp_transfer.hpsearch", "Rank hyper-parameter candidates by validation loss"),
    "evaluate": ("mlp_transfer.evaluate", "Evaluate a trained model on test sets"),
    "committee": ("mlp_transfer.committee", "Evaluate seed committees (mean prediction, spread) and tabulate them"),
    "aggregate": ("mlp_transfer.aggregate", "Build learning-curve tables and plots from finished runs"),
    "published": ("mlp_transfer.published", "Test errors of the study beside published potentials"),
    "md": ("mlp_transfer.md", "Run NVT MD of a model or the reference and check stability"),
    "md-structure": ("mlp_transfer.structure", "RDF/ADF of MD trajectories and their distance to the reference"),
    "md-aggregate": ("mlp_transfer.md_aggregate", "Stability and structure tables and plots from MD runs"),
    "properties": ("mlp_transfer.properties", "Lattice constant, EOS, elastic constants, vacancy, phonons"),
    "properties-aggregate": ("mlp_transfer.properties_aggregate",
                             "Property tables and plots from finished property runs"),
    "plan": ("mlp_transfer.plan", "Dry-run a study: jobs per rule, SLURM and GPU jobs it would submit"),
    "launch": ("mlp_transfer.launch", "Submit the Snakemake controller as a requeueable SLURM job (submitit)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in STAGES:
        print("usage: mlp-transfer <stage> [options]\n\nstages:")
        for name, (_, help_text) in STAGES.items():
            print(f"  {name:<20} {help_text}")
        return 0 if argv and argv[0] in {"-h", "--help"} else 2
    module = importlib.import_module(STAGES[argv[0]][0])
    return module.cli(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
