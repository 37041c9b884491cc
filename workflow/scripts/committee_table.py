from mlp_transfer.smk import log_to

log_to(snakemake.log[0])

from mlp_transfer.committee import write_committee_tables

write_committee_tables(snakemake.input, snakemake.output.csv, snakemake.output.md)
