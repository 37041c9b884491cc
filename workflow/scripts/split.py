from mlp_transfer.smk import log_to

log_to(snakemake.log[0])

from mlp_transfer.splits import write_splits

seed = snakemake.params.get("seed", None)
write_splits(snakemake.input.pool, snakemake.output[0], snakemake.params.sizes, snakemake.params.n_validation,
             int(snakemake.wildcards.seed) if seed is None else seed,
             max_temperature=snakemake.params.get("max_temperature", None),
             stratify_by=snakemake.params.get("stratify_by", None))
