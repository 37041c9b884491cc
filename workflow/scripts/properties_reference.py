from mlp_transfer.smk import log_to

log_to(snakemake.log[0])

from mlp_transfer.properties import write_reference

write_reference(snakemake.output[0], snakemake.params.kind, snakemake.wildcards.element,
                snakemake.params.settings, snakemake.params.values)
