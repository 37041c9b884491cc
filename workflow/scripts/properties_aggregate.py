from mlp_transfer.smk import log_to

log_to(snakemake.log[0])

from mlp_transfer.properties_aggregate import aggregate_properties, split_plot_paths

plots, band_plot = split_plot_paths(snakemake.output.plots)
aggregate_properties(snakemake.input.tables, snakemake.input.spectra, snakemake.input.references,
                     snakemake.output.table, snakemake.output.summary, snakemake.output.markdown, plots, band_plot)
