from pathlib import Path

from mlp_transfer.smk import log_to

log_to(snakemake.log[0])

from mlp_transfer.data.mlearn import import_mlearn

import_mlearn(Path(snakemake.input.train).parent, snakemake.wildcards.element, snakemake.output.train,
              snakemake.output.test)
