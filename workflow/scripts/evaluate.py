from mlp_transfer.smk import log_to

log_to(snakemake.log[0])

from mlp_transfer.evaluate import run_evaluation

w = snakemake.wildcards
if "target" in w.keys():
    meta = {"dataset": w.dataset, "source": w.source, "target": w.target, "regime": w.regime,
            "seed": int(w.seed)}
else:
    meta = {"dataset": w.dataset, "element": w.element, "regime": "source"}
run_evaluation(snakemake.input.model, snakemake.input.test, snakemake.output[0], snakemake.params.cutoff,
               metadata=meta, summary_path=snakemake.input.summary, threads=snakemake.threads)
