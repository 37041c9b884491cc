from mlp_transfer.smk import log_to

log_to(snakemake.log[0])

from mlp_transfer.data.generate import generate_sw_dataset

generate_sw_dataset(snakemake.wildcards.element, snakemake.output.train, snakemake.output.test,
                    **snakemake.params.generation)
