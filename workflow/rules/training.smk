rule train_source:
    input:
        pool=f"{RESULTS}/data/{{dataset}}/{{element}}/train.extxyz",
        splits=f"{RESULTS}/splits/{{dataset}}/{{element}}/source.json",
    output:
        model=f"{RESULTS}/models/{{dataset}}/source/{{element}}/model.pt",
        history=f"{RESULTS}/models/{{dataset}}/source/{{element}}/history.csv",
        summary=f"{RESULTS}/models/{{dataset}}/source/{{element}}/summary.json",
    log:
        "logs/train/{dataset}/source/{element}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{dataset}}/source/{{element}}.tsv"
    params:
        size=str(config["source_training"]["n_train"]),
        seed=config["source_training"]["seed"],
        settings=source_training_params(),
    threads: TRAINING["threads"]
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=train_runtime,
        gpu=USE_GPU,
    conda:
        "../../envs/environment.yaml"
    script:
        "../scripts/train.py"


rule train_target:
    input:
        unpack(get_train_inputs),
    output:
        model=f"{RESULTS}/models/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}/seed{{seed}}/model.pt",
        history=f"{RESULTS}/models/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}/seed{{seed}}/history.csv",
        summary=f"{RESULTS}/models/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}/seed{{seed}}/summary.json",
    log:
        "logs/train/{dataset}/{source}-{target}/{regime}/n{size}/seed{seed}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{dataset}}/{{source}}-{{target}}/{{regime}}/n{{size}}/seed{{seed}}.tsv"
    params:
        settings=target_training_params,
    threads: TRAINING["threads"]
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=train_runtime,
        gpu=USE_GPU,
    conda:
        "../../envs/environment.yaml"
    script:
        "../scripts/train.py"
