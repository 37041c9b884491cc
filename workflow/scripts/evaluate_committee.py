from mlp_transfer.smk import log_to

log_to(snakemake.log[0])

from mlp_transfer.committee import run_committee_evaluation

w = snakemake.wildcards
meta = {"dataset": w.dataset, "source": w.source, "target": w.target, "regime": w.regime,
        "seeds": " ".join(snakemake.params.seeds)}
run_committee_evaluation(snakemake.input.models, snakemake.input.test, snakemake.output[0],
                         snakemake.params.cutoff, metadata=meta, summary_paths=snakemake.input.summaries,
                         threads=snakemake.threads)
