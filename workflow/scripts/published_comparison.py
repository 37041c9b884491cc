from mlp_transfer.smk import log_to

log_to(snakemake.log[0])

from mlp_transfer.published import write_comparison

write_comparison(snakemake.input.summary, snakemake.input.source, snakemake.params.published,
                 snakemake.output.csv, snakemake.output.md,
                 committee_csv=snakemake.input.committee[0] if snakemake.input.committee else None)
