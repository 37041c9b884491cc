rule evaluate_target:
    input:
        model=f"{RESULTS}/models/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}/seed{{seed}}/model.pt",
        summary=f"{RESULTS}/models/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}/seed{{seed}}/summary.json",
        test=f"{RESULTS}/data/{{dataset}}/{{target}}/test.extxyz",
    output:
        f"{RESULTS}/eval/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}/seed{{seed}}.csv",
    log:
        "logs/eval/{dataset}/{source}-{target}/{regime}/n{size}/seed{seed}.log",
    benchmark:
        f"{RESULTS}/benchmarks/eval/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}/seed{{seed}}.tsv"
    params:
        cutoff=config["model"]["cutoff"],
    threads: 1
    resources:
        mem_mb=config["resources"]["analysis_mem_mb"],
        runtime=analysis_runtime,
    conda:
        "../../envs/environment.yaml"
    script:
        "../scripts/evaluate.py"


rule evaluate_source:
    input:
        model=f"{RESULTS}/models/{{dataset}}/source/{{element}}/model.pt",
        summary=f"{RESULTS}/models/{{dataset}}/source/{{element}}/summary.json",
        test=f"{RESULTS}/data/{{dataset}}/{{element}}/test.extxyz",
    output:
        f"{RESULTS}/eval_source/{{dataset}}/{{element}}.csv",
    log:
        "logs/eval_source/{dataset}/{element}.log",
    benchmark:
        f"{RESULTS}/benchmarks/eval_source/{{dataset}}/{{element}}.tsv"
    params:
        cutoff=config["model"]["cutoff"],
    threads: 1
    resources:
        mem_mb=config["resources"]["analysis_mem_mb"],
        runtime=analysis_runtime,
    conda:
        "../../envs/environment.yaml"
    script:
        "../scripts/evaluate.py"


if COMMITTEE:

    rule evaluate_committee:
        input:
            unpack(get_committee_inputs),
        output:
            f"{RESULTS}/eval_committee/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}.csv",
        log:
            "logs/eval_committee/{dataset}/{source}-{target}/{regime}/n{size}.log",
        benchmark:
            f"{RESULTS}/benchmarks/eval_committee/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}.tsv"
        params:
            cutoff=config["model"]["cutoff"],
            seeds=SEEDS,
        threads: 1
        resources:
            mem_mb=config["resources"]["analysis_mem_mb"],
            runtime=analysis_runtime,
        conda:
            "../../envs/environment.yaml"
        script:
            "../scripts/evaluate_committee.py"
