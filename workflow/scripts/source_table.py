from mlp_transfer.smk import log_to

log_to(snakemake.log[0])

from mlp_transfer.aggregate import source_model_table

source_model_table(snakemake.input, snakemake.output[0])
