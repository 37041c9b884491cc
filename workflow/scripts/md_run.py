from mlp_transfer.smk import log_to

log_to(snakemake.log[0])

from mlp_transfer.md import MDSettings, run_md_job

w = snakemake.wildcards
settings = MDSettings.from_config({**snakemake.params.settings, "threads": snakemake.threads})
if "regime" in w.keys():
    run_md_job(element=w.target, settings=settings, out_h5=list(snakemake.output.trajectories),
               out_stability=snakemake.output.stability, model_path=snakemake.input.model,
               cutoff=snakemake.params.cutoff, summary_path=snakemake.input.summary,
               metadata={"dataset": w.dataset, "source": w.source, "target": w.target, "regime": w.regime,
                         "seed": int(w.seed)})
else:
    run_md_job(element=w.element, settings=settings, out_h5=list(snakemake.output.trajectories),
               out_stability=snakemake.output.stability, reference="sw",
               metadata={"dataset": w.dataset, "target": w.element, "regime": "reference"})
