from mlp_transfer.smk import log_to

log_to(snakemake.log[0])

from mlp_transfer.hpsearch import write_search_tables

write_search_tables(snakemake.input, snakemake.output.csv, snakemake.output.md, snakemake.params.select_by)
