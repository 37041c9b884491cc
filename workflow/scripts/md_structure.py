from mlp_transfer.smk import log_to

log_to(snakemake.log[0])

from mlp_transfer.structure import run_structure

s = snakemake.params.structure
run_structure(list(snakemake.input.trajectories), snakemake.output[0], temperatures=snakemake.params.temperatures,
              equilibration_steps=snakemake.params.equilibration_steps, rdf_r_max=s["rdf_r_max"],
              rdf_bins=s["rdf_bins"], adf_cutoff_fraction=s["adf_cutoff_fraction"], adf_bins=s["adf_bins"])
