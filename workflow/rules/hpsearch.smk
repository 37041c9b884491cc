# Hyper-parameter search on validation data: each regime's candidates are trained on one learning-curve subset
# and ranked on validation data (select_by). The table informs the config; it never changes the study's settings.
if SEARCH:

    rule hpsearch_train:
        input:
            unpack(get_search_train_inputs),
        output:
            model=f"{RESULTS}/hpsearch/{{dataset}}/{{source}}-{{target}}/{{regime}}/c{{candidate}}/model.pt",
            history=f"{RESULTS}/hpsearch/{{dataset}}/{{source}}-{{target}}/{{regime}}/c{{candidate}}/history.csv",
            summary=f"{RESULTS}/hpsearch/{{dataset}}/{{source}}-{{target}}/{{regime}}/c{{candidate}}/summary.json",
        log:
            "logs/hpsearch/{dataset}/{source}-{target}/{regime}/c{candidate}.log",
        benchmark:
            f"{RESULTS}/benchmarks/hpsearch/{{dataset}}/{{source}}-{{target}}/{{regime}}/c{{candidate}}.tsv"
        params:
            settings=search_training_params,
            overrides=search_overrides,
            size=str(SEARCH["size"]),
            seed=SEARCH["seed"],
        threads: TRAINING["threads"]
        resources:
            mem_mb=config["resources"]["train_mem_mb"],
            runtime=train_runtime,
            gpu=USE_GPU,
        conda:
            "../../envs/environment.yaml"
        script:
            "../scripts/hpsearch_train.py"

    # A transfer candidate whose model differs from the study's starts from a source model pre-trained with that
    # model and the study's source-training settings: train_source with another model, one per distinct model.
    use rule train_source as hpsearch_source with:
        output:
            model=f"{RESULTS}/hpsearch/{{dataset}}/source/{{element}}/{{model_tag}}/model.pt",
            history=f"{RESULTS}/hpsearch/{{dataset}}/source/{{element}}/{{model_tag}}/history.csv",
            summary=f"{RESULTS}/hpsearch/{{dataset}}/source/{{element}}/{{model_tag}}/summary.json",
        log:
            "logs/hpsearch/{dataset}/source/{element}/{model_tag}.log",
        benchmark:
            f"{RESULTS}/benchmarks/hpsearch/{{dataset}}/source/{{element}}/{{model_tag}}.tsv"
        params:
            size=str(config["source_training"]["n_train"]),
            seed=config["source_training"]["seed"],
            settings=search_source_params,

    rule hpsearch_table:
        input:
            get_search_summaries(),
        output:
            csv=f"{RESULTS}/tables/hyperparameter_search.csv",
            md=f"{RESULTS}/tables/hyperparameter_search.md",
        log:
            "logs/hpsearch_table.log",
        params:
            select_by=SEARCH["select_by"],
        localrule: True
        conda:
            "../../envs/environment.yaml"
        script:
            "../scripts/hpsearch_table.py"

    FINAL_OUTPUTS.append(f"{RESULTS}/tables/hyperparameter_search.csv")
