# Static out-of-target properties (EOS, elastic constants, vacancy, phonons) of every trained target model,
# against the reference: the generating SW potential (computed) or documented DFT values from the config.
if PROPERTIES_CFG["enabled"]:
    FINAL_OUTPUTS.extend(property_outputs())


rule properties_reference:
    output:
        f"{RESULTS}/properties/{{dataset}}/reference/{{element}}.json",
    log:
        "logs/properties/{dataset}/reference/{element}.log",
    benchmark:
        f"{RESULTS}/benchmarks/properties/{{dataset}}/reference/{{element}}.tsv"
    params:
        kind=lambda wildcards: config["datasets"][wildcards.dataset]["kind"],
        settings=property_settings(),
        values=property_reference_values,
    threads: 1
    resources:
        mem_mb=config["resources"]["analysis_mem_mb"],
        runtime=analysis_runtime,
    conda:
        "../../envs/environment.yaml"
    script:
        "../scripts/properties_reference.py"


rule properties_target:
    input:
        model=f"{RESULTS}/models/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}/seed{{seed}}/model.pt",
        summary=f"{RESULTS}/models/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}/seed{{seed}}/summary.json",
        reference=f"{RESULTS}/properties/{{dataset}}/reference/{{target}}.json",
    output:
        table=f"{RESULTS}/properties/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}/seed{{seed}}.csv",
        spectra=f"{RESULTS}/properties/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}/seed{{seed}}.json",
    log:
        "logs/properties/{dataset}/{source}-{target}/{regime}/n{size}/seed{seed}.log",
    benchmark:
        f"{RESULTS}/benchmarks/properties/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}/seed{{seed}}.tsv"
    params:
        cutoff=config["model"]["cutoff"],
        settings=property_settings(),
    threads: 1
    resources:
        mem_mb=config["resources"]["analysis_mem_mb"],
        runtime=analysis_runtime,
    conda:
        "../../envs/environment.yaml"
    script:
        "../scripts/properties_target.py"


rule properties_aggregate:
    input:
        tables=get_property_tables(),
        spectra=get_property_spectra(),
        references=get_property_references(),
    output:
        table=f"{RESULTS}/tables/properties.csv",
        summary=f"{RESULTS}/tables/properties_summary.csv",
        markdown=f"{RESULTS}/tables/properties_summary.md",
        plots=property_plot_files(),
    log:
        "logs/properties/aggregate.log",
    localrule: True
    conda:
        "../../envs/environment.yaml"
    script:
        "../scripts/properties_aggregate.py"
