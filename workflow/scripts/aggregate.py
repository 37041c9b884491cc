from mlp_transfer.smk import log_to

log_to(snakemake.log[0])

from pathlib import Path

from mlp_transfer.aggregate import aggregate

tables = Path(snakemake.output.learning_curve).parent
aggregate(tables.parent, tables, tables.parent / "plots", eval_csvs=snakemake.input.evals,
          histories=snakemake.input.histories, thresholds=snakemake.params.thresholds)
