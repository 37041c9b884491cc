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
