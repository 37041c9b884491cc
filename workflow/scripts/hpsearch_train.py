from mlp_transfer.smk import log_to

log_to(snakemake.log[0])

from mlp_transfer.train import run_training

w = snakemake.wildcards
settings = snakemake.params.settings
run_training(regime=w.regime, pool=snakemake.input.pool, splits=snakemake.input.splits, size=snakemake.params.size,
             element=w.target, seed=snakemake.params.seed, model_config=settings["model"],
             training_config=dict(settings["training"], threads=snakemake.threads), out_model=snakemake.output.model,
             out_history=snakemake.output.history, out_summary=snakemake.output.summary,
             source_model=snakemake.input.get("source_model"), source_element=w.source,
             metadata={"dataset": w.dataset, "source": w.source, "target": w.target,
                       "candidate": int(w.candidate), "overrides": snakemake.params.overrides})
