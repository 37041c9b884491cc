from mlp_transfer.smk import log_to

log_to(snakemake.log[0])

from mlp_transfer.data.extxyz_import import import_extxyz

import_extxyz(snakemake.input.train, snakemake.input.test, snakemake.wildcards.element, snakemake.output.train,
              snakemake.output.test, **snakemake.params.label_keys)
