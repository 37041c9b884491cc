from mlp_transfer.smk import log_to

log_to(snakemake.log[0])

from mlp_transfer.properties import run_model_properties

w = snakemake.wildcards
meta = {"dataset": w.dataset, "source": w.source, "target": w.target, "regime": w.regime, "seed": int(w.seed)}
run_model_properties(snakemake.input.model, snakemake.input.reference, snakemake.output.table,
                     snakemake.output.spectra, w.target, snakemake.params.cutoff, snakemake.params.settings,
                     metadata=meta, summary_path=snakemake.input.summary, threads=snakemake.threads)
