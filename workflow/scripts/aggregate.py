from mlp_transfer.smk import log_to

log_to(snakemake.log[0])

from pathlib import Path

from mlp_transfer.aggregate import aggregate, expected_runs

tables = Path(snakemake.output.learning_curve).parent
# The config's full grid: the rule's inputs must cover it, so a table is never built from a partial grid.
aggregate(tables.parent, tables, tables.parent / "plots", eval_csvs=snakemake.input.evals,
          histories=snakemake.input.histories, thresholds=snakemake.params.thresholds,
          expected=expected_runs(snakemake.config), published=snakemake.params.published)
