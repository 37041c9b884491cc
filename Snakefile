# Cross-element transfer learning of ML interatomic potentials: learning-curve study.
# Thin entry point: config validation, wildcard constraints and input functions live in
# workflow/rules/common.smk; one rule file per stage.
import os

from snakemake.utils import min_version

min_version("9.0")


# A config given with --configfile replaces the embedded default instead of being merged into it, so
# datasets or pairs of the default never leak into another study. The default is found beside this file, not
# in the working directory, so that `--directory DIR` works without a config of its own.
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "config", "config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/aggregation.smk"
include: "workflow/rules/properties.smk"
include: "workflow/rules/md.smk"
include: "workflow/rules/hpsearch.smk"


rule all:
    input:
        get_final_outputs(),
    default_target: True
