"""Run a config's hyper-parameter search on one GPU node without Snakemake, its runs side by side on the card.

A lent GPU machine has PyTorch but no Snakemake. This driver plans the same runs as the workflow's search
rules (``hpsearch_train``, ``hpsearch_source``) from the same package functions
(``hpsearch.candidate_run_settings``, ``candidate_source_settings``), writes the same layout, and lets
``mlp-transfer hpsearch-table`` rank them. Small models leave a GPU mostly idle between kernel launches, so
runs started together share it well; a transfer candidate with its own model starts once its source model is
written.

    python3 benchmarks/device/run_search.py --config config/X.yaml --results DIR [--threads 2] [--jobs 8]

Config validation needs Snakemake and jsonschema, which such a machine lacks too: validate here and write the
result (schema defaults filled in) with ``--config X.yaml --write-validated X.json``, then run there with
``--validated X.json`` in place of ``--config``.

DIR is a workflow ``results/`` folder that holds the data and split files the search reads
(``data/<dataset>/<element>/train.extxyz``, ``splits/<dataset>/<element>/seed<seed>.json`` and, for source
pre-training, ``source.json``) and, for transfer candidates with the study's model, the study's source model
(``models/<dataset>/source/<element>/model.pt``). Writes ``DIR/hpsearch/...`` and
``DIR/tables/hyperparameter_search.{csv,md}``; each run logs to ``DIR/logs/<run>.log``. Exit status 1 when a
run failed (the others still finish and are tabulated).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlp_transfer.hpsearch import candidate_run_settings, candidate_source_settings, model_tag, write_search_tables

log = logging.getLogger("run_search")


@dataclass
class Run:
    name: str  # path of its output folder below DIR, also its log name
    spec: dict  # keyword arguments of run_training
    after: str | None = None  # the run whose model.pt it starts from
    process: subprocess.Popen | None = field(default=None, repr=False)
    returncode: int | None = None


def plan_runs(config: dict, results: Path, threads: int) -> list[Run]:
    """The search's runs in the workflow's layout: source pre-trainings first, then every candidate."""
    search = config["hyperparameter_search"]
    runs: dict[str, Run] = {}
    for pair in config["pairs"]:
        dataset, source, target = pair["dataset"], pair["source"], pair["target"]
        for regime in config["learning_curve"]["regimes"]:
            for i, candidate in enumerate(search["candidates"][regime]):
                settings = candidate_run_settings(config, regime, candidate)
                name = f"hpsearch/{dataset}/{source}-{target}/{regime}/c{i}"
                spec = _spec(results, name, regime, dataset, target, str(search["size"]),
                             f"seed{search['seed']}", search["seed"], settings, threads)
                spec["metadata"] = {"dataset": dataset, "source": source, "target": target, "candidate": i,
                                    "overrides": candidate}
                after = None
                if regime == "transfer":
                    own_source = candidate_source_settings(config, candidate)
                    if own_source is None:
                        spec["source_model"] = str(results / f"models/{dataset}/source/{source}/model.pt")
                    else:
                        after = f"hpsearch/{dataset}/source/{source}/{model_tag(own_source['model'])}"
                        spec["source_model"] = str(results / after / "model.pt")
                        runs.setdefault(after, Run(after, _spec(
                            results, after, "source", dataset, source, str(config["source_training"]["n_train"]),
                            "source", config["source_training"]["seed"], own_source, threads)))
                    spec["source_element"] = source
                runs[name] = Run(name, spec, after)
    # sources first, so that their candidates can start as early as possible
    return sorted(runs.values(), key=lambda run: (run.spec["regime"] != "source", run.after is not None))


def _spec(results: Path, name: str, regime: str, dataset: str, element: str, size: str, split: str, seed: int,
          settings: dict, threads: int) -> dict:
    out = results / name
    return {"regime": regime, "pool": str(results / f"data/{dataset}/{element}/train.extxyz"),
            "splits": str(results / f"splits/{dataset}/{element}/{split}.json"), "size": size, "element": element,
            "seed": seed, "model_config": settings["model"],
            "training_config": dict(settings["training"], threads=threads),
            "out_model": str(out / "model.pt"), "out_history": str(out / "history.csv"),
            "out_summary": str(out / "summary.json")}


def needed_inputs(runs: list[Run]) -> list[str]:
    """The pools, split files and study source models that the runs read and none of them makes."""
    produced = {run.spec["out_model"] for run in runs}
    return sorted({path for run in runs for path in (run.spec["pool"], run.spec["splits"], run.spec.get("source_model"))
                   if path and path not in produced})


def missing_inputs(runs: list[Run]) -> list[str]:
    return [path for path in needed_inputs(runs) if not Path(path).is_file()]


def run_all(runs: list[Run], results: Path, max_jobs: int, poll_s: float = 2.0) -> list[Run]:
    """Start each run when its source model exists and a slot is free; a failed source fails its candidates."""
    by_name = {run.name: run for run in runs}
    pending, running = list(runs), []
    stop = []

    def on_signal(signum, frame):  # a time limit: the runs checkpoint (train.py) and the driver stops starting more
        stop.append(signum)
        for run in running:
            run.process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while pending or running:
        if stop:
            for run in pending:
                run.returncode = -1
                log.error("%s not started: signal %d", run.name, stop[0])
            pending.clear()
        for run in list(running):
            if run.process.poll() is not None:
                run.returncode = run.process.returncode
                running.remove(run)
                log.info("%s finished (exit %d)", run.name, run.returncode)
        for run in list(pending):
            source = by_name.get(run.after)
            if source is not None and source.returncode not in (None, 0):
                run.returncode = -1
                pending.remove(run)
                log.error("%s not started: its source run %s failed", run.name, source.name)
            elif (source is None or source.returncode == 0) and len(running) < max_jobs:
                pending.remove(run)
                running.append(run)
                logfile = results / "logs" / f"{run.name}.log"
                logfile.parent.mkdir(parents=True, exist_ok=True)
                spec_file = logfile.with_suffix(".json")
                spec_file.write_text(json.dumps(run.spec, indent=1))
                with open(logfile, "w") as handle:
                    run.process = subprocess.Popen([sys.executable, __file__, "--one", str(spec_file)],
                                                   stdout=handle, stderr=subprocess.STDOUT)
                log.info("%s started (%s, %s)", run.name, run.spec["regime"],
                         json.dumps(run.spec.get("metadata", {}).get("overrides", "source pre-training")))
        time.sleep(poll_s)
    return runs


def train_one(spec_file: str) -> int:
    from mlp_transfer.train import run_training  # noqa: PLC0415 (torch only in the run's own process)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    run_training(**json.loads(Path(spec_file).read_text()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="workflow config YAML (validated here: needs Snakemake)")
    parser.add_argument("--write-validated", type=Path, help="write the validated --config as JSON and stop")
    parser.add_argument("--validated", type=Path, help="a config written by --write-validated, used as is")
    parser.add_argument("--results", type=Path)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per run (default: training.threads)")
    parser.add_argument("--jobs", type=int, default=8, help="runs at a time")
    parser.add_argument("--list-inputs", action="store_true",
                        help="print the files the runs read and do not make (below --results), one per line, and "
                             "stop: the workflow targets that prepare_search.sh builds")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one run from its spec file
    args = parser.parse_args(argv)
    if args.one:
        return train_one(args.one)
    from mlp_transfer.config import load_config  # noqa: PLC0415

    if args.config and args.write_validated:
        args.write_validated.write_text(json.dumps(load_config(args.config), indent=1))
        return 0
    if bool(args.config) == bool(args.validated) or not args.results:
        parser.error("one of --config and --validated, and --results, are required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = load_config(args.config) if args.config else json.loads(args.validated.read_text())
    if not config.get("hyperparameter_search"):
        parser.error(f"{args.config or args.validated} has no hyperparameter_search section")
    runs = plan_runs(config, args.results, args.threads or config["training"]["threads"])
    if args.list_inputs:
        print("\n".join(needed_inputs(runs)))
        return 0
    missing = missing_inputs(runs)
    if missing:
        print("error: inputs missing (run the workflow's data and split rules first):\n  " + "\n  ".join(missing),
              file=sys.stderr)
        return 2
    start = time.perf_counter()
    run_all(runs, args.results, args.jobs)
    failed = [run.name for run in runs if run.returncode != 0]
    summaries = [run.spec["out_summary"] for run in runs
                 if run.returncode == 0 and run.spec["regime"] != "source"]
    tables = args.results / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    if summaries:
        write_search_tables(summaries, tables / "hyperparameter_search.csv", tables / "hyperparameter_search.md",
                            config["hyperparameter_search"].get("select_by", "val_loss"))
        print((tables / "hyperparameter_search.md").read_text())
    log.info("%d runs in %.0f s; failed: %s", len(runs), time.perf_counter() - start, failed or "none")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
