from mlp_transfer.smk import log_to

log_to(snakemake.log[0])

from pathlib import Path

from mlp_transfer.md_aggregate import aggregate_md

tables = Path(snakemake.output[0]).parent
aggregate_md(snakemake.input.stability, snakemake.input.structure, tables, tables.parent / "plots",
             pairs=snakemake.params.pairs)
