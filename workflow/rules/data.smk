rule generate_sw:
    output:
        train=f"{RESULTS}/data/{{dataset}}/{{element}}/train.extxyz",
        test=f"{RESULTS}/data/{{dataset}}/{{element}}/test.extxyz",
    log:
        "logs/data/{dataset}/{element}.log",
    benchmark:
        f"{RESULTS}/benchmarks/data/{{dataset}}/{{element}}.tsv"
    params:
        generation=sw_generation_params,
    wildcard_constraints:
        dataset=datasets_of_kind("stillinger_weber"),
    threads: 1
    resources:
        mem_mb=config["resources"]["data_mem_mb"],
        runtime=config["resources"]["data_runtime_min"],
    conda:
        "../../envs/environment.yaml"
    script:
        "../scripts/generate_sw.py"


rule import_mlearn:
    input:
        unpack(get_mlearn_inputs),
    output:
        train=f"{RESULTS}/data/{{dataset}}/{{element}}/train.extxyz",
        test=f"{RESULTS}/data/{{dataset}}/{{element}}/test.extxyz",
    log:
        "logs/data/{dataset}/{element}.log",
    benchmark:
        f"{RESULTS}/benchmarks/data/{{dataset}}/{{element}}.tsv"
    wildcard_constraints:
        dataset=datasets_of_kind("mlearn"),
    resources:
        mem_mb=config["resources"]["data_mem_mb"],
        runtime=config["resources"]["data_runtime_min"],
    conda:
        "../../envs/environment.yaml"
    script:
        "../scripts/import_mlearn.py"


rule import_extxyz:
    input:
        unpack(get_extxyz_inputs),
    output:
        train=f"{RESULTS}/data/{{dataset}}/{{element}}/train.extxyz",
        test=f"{RESULTS}/data/{{dataset}}/{{element}}/test.extxyz",
    log:
        "logs/data/{dataset}/{element}.log",
    benchmark:
        f"{RESULTS}/benchmarks/data/{{dataset}}/{{element}}.tsv"
    params:
        label_keys=extxyz_label_keys,
    wildcard_constraints:
        dataset=datasets_of_kind("extxyz"),
    resources:
        mem_mb=config["resources"]["data_mem_mb"],
        runtime=config["resources"]["data_runtime_min"],
    conda:
        "../../envs/environment.yaml"
    script:
        "../scripts/import_extxyz.py"


rule split_learning_curve:
    input:
        pool=f"{RESULTS}/data/{{dataset}}/{{element}}/train.extxyz",
    output:
        f"{RESULTS}/splits/{{dataset}}/{{element}}/seed{{seed}}.json",
    log:
        "logs/splits/{dataset}/{element}/seed{seed}.log",
    params:
        sizes=LC["sizes"],
        n_validation=LC["n_validation"],
        max_temperature=LC["train_max_temperature"],
        stratify_by=LC["stratify_by"],
    localrule: True
    conda:
        "../../envs/environment.yaml"
    script:
        "../scripts/split.py"


# One file per (seed, size) for the training rules: it does not depend on the other sizes, so a size added
# to the study trains only its own runs. The seed's overview above (all sizes, group counts) is for reading.
rule split_subset:
    input:
        pool=f"{RESULTS}/data/{{dataset}}/{{element}}/train.extxyz",
    output:
        f"{RESULTS}/splits/{{dataset}}/{{element}}/seed{{seed}}/n{{size}}.json",
    log:
        "logs/splits/{dataset}/{element}/seed{seed}/n{size}.log",
    params:
        sizes=lambda wildcards: [wildcards.size],
        n_validation=LC["n_validation"],
        max_temperature=LC["train_max_temperature"],
        stratify_by=LC["stratify_by"],
    localrule: True
    conda:
        "../../envs/environment.yaml"
    script:
        "../scripts/split.py"


rule split_source:
    input:
        pool=f"{RESULTS}/data/{{dataset}}/{{element}}/train.extxyz",
    output:
        f"{RESULTS}/splits/{{dataset}}/{{element}}/source.json",
    log:
        "logs/splits/{dataset}/{element}/source.log",
    params:
        sizes=[config["source_training"]["n_train"]],
        n_validation=config["source_training"]["n_validation"],
        seed=config["source_training"]["seed"],
        stratify_by=config["source_training"]["stratify_by"],
    localrule: True
    conda:
        "../../envs/environment.yaml"
    script:
        "../scripts/split.py"
