rule aggregate:
    input:
        evals=get_eval_csvs(),
        histories=get_histories(),
    output:
        learning_curve=f"{RESULTS}/tables/learning_curve.csv",
        summary=f"{RESULTS}/tables/summary.csv",
        summary_md=f"{RESULTS}/tables/summary.md",
        comparison=f"{RESULTS}/tables/comparison.csv",
        convergence=f"{RESULTS}/tables/convergence_summary.csv",
    log:
        "logs/aggregate.log",
    params:
        thresholds=config["aggregation"]["force_thresholds_mev_ang"],
        published=config["aggregation"]["published_errors"],
    localrule: True
    conda:
        "../../envs/environment.yaml"
    script:
        "../scripts/aggregate.py"


rule source_table:
    input:
        get_source_evals(),
    output:
        f"{RESULTS}/tables/source_models.csv",
    log:
        "logs/source_table.log",
    localrule: True
    conda:
        "../../envs/environment.yaml"
    script:
        "../scripts/source_table.py"


if COMMITTEE:

    rule committee_table:
        input:
            get_committee_csvs(),
        output:
            csv=f"{RESULTS}/tables/committee.csv",
            md=f"{RESULTS}/tables/committee.md",
        log:
            "logs/committee_table.log",
        localrule: True
        conda:
            "../../envs/environment.yaml"
        script:
            "../scripts/committee_table.py"

    FINAL_OUTPUTS.append(f"{RESULTS}/tables/committee.csv")


if config["aggregation"]["published_errors"]:

    rule published_comparison:
        input:
            summary=f"{RESULTS}/tables/summary.csv",
            source=f"{RESULTS}/tables/source_models.csv",
            committee=[f"{RESULTS}/tables/committee.csv"] if COMMITTEE else [],
        output:
            csv=f"{RESULTS}/tables/published_comparison.csv",
            md=f"{RESULTS}/tables/published_comparison.md",
        log:
            "logs/published_comparison.log",
        params:
            published=config["aggregation"]["published_errors"],
        localrule: True
        conda:
            "../../envs/environment.yaml"
        script:
            "../scripts/published_comparison.py"

    FINAL_OUTPUTS.append(f"{RESULTS}/tables/published_comparison.csv")
