# Molecular dynamics of every trained target model and of the reference potential: stability (time to
# failure per replica), structure (RDF/ADF) and their aggregation vs training size. Opt-in: md.enabled.
if MD_CFG["enabled"]:
    FINAL_OUTPUTS.extend(md_outputs())


rule md_model:
    input:
        model=f"{RESULTS}/models/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}/seed{{seed}}/model.pt",
        summary=f"{RESULTS}/models/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}/seed{{seed}}/summary.json",
    output:
        trajectories=expand(
            f"{RESULTS}/md/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}/seed{{seed}}/{{label}}.h5",
            label=MD_TEMPERATURE_LABELS,
            allow_missing=True,
        ),
        stability=f"{RESULTS}/md/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}/seed{{seed}}/stability.csv",
    log:
        "logs/md/{dataset}/{source}-{target}/{regime}/n{size}/seed{seed}.log",
    benchmark:
        f"{RESULTS}/benchmarks/md/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}/seed{{seed}}.tsv"
    params:
        settings=md_model_settings,
        cutoff=config["model"]["cutoff"],
    threads: MD_CFG["threads"]
    resources:
        mem_mb=MD_CFG["resources"]["mem_mb"],
        runtime=md_runtime,
        gpu=MD_GPU,
    conda:
        "../../envs/environment.yaml"
    script:
        "../scripts/md_run.py"


rule md_reference:
    output:
        trajectories=expand(
            f"{RESULTS}/md/{{dataset}}/reference/{{element}}/{{label}}.h5",
            label=MD_TEMPERATURE_LABELS,
            allow_missing=True,
        ),
        stability=f"{RESULTS}/md/{{dataset}}/reference/{{element}}/stability.csv",
    log:
        "logs/md/{dataset}/reference/{element}.log",
    benchmark:
        f"{RESULTS}/benchmarks/md/{{dataset}}/reference/{{element}}.tsv"
    params:
        settings=md_reference_settings,
    wildcard_constraints:
        dataset=datasets_of_kind("stillinger_weber"),
    threads: 1
    resources:
        mem_mb=MD_CFG["resources"]["mem_mb"],
        runtime=md_runtime,
    conda:
        "../../envs/environment.yaml"
    script:
        "../scripts/md_run.py"


rule md_structure:
    input:
        trajectories=expand(f"{RESULTS}/md/{{mdrun}}/{{label}}.h5", label=MD_TEMPERATURE_LABELS, allow_missing=True),
    output:
        f"{RESULTS}/md/{{mdrun}}/structure.csv",
    log:
        "logs/md_structure/{mdrun}.log",
    benchmark:
        f"{RESULTS}/benchmarks/md_structure/{{mdrun}}.tsv"
    params:
        temperatures=MD_CFG["temperatures"],
        equilibration_steps=MD_CFG["equilibration_steps"],
        structure=MD_CFG["structure"],
    threads: 1
    resources:
        mem_mb=config["resources"]["analysis_mem_mb"],
        runtime=analysis_runtime,
    conda:
        "../../envs/environment.yaml"
    script:
        "../scripts/md_structure.py"


rule md_aggregate:
    input:
        stability=get_md_stability_csvs(),
        structure=get_md_structure_csvs(),
    output:
        md_outputs(),
    log:
        "logs/md_aggregate.log",
    params:
        pairs=[(p["dataset"], p["source"], p["target"]) for p in PAIRS],
    localrule: True
    conda:
        "../../envs/environment.yaml"
    script:
        "../scripts/md_aggregate.py"
