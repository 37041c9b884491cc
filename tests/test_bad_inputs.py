"""The bad-input corpus (tests/data/bad_inputs/corpus.yaml) through the real entry points.

Every case must stop with a message naming the file (and frame or key) and the problem, exit non-zero
(or raise the documented exception from the Python entry point), and leave no partial output: no file
under results/ or the case's output folder except the declared finished upstream outputs, and no
temporary file anywhere. The test reports "handled cleanly: N/N".
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from mlp_transfer.config import ConfigError, load_config
from mlp_transfer.data.extxyz_import import import_extxyz
from mlp_transfer.data.mlearn import import_mlearn
from mlp_transfer.data.validate import DatasetError

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "data" / "bad_inputs"
TINY = REPO / "tests" / "configs" / "tiny.yaml"
BIN = Path(sys.executable).parent
CASES = yaml.safe_load((CORPUS / "corpus.yaml").read_text())["cases"]
ERRORS = {"DatasetError": DatasetError, "ConfigError": ConfigError}

#: What issue 6 requires the corpus to cover.
REQUIRED = {
    "truncated extxyz", "empty file", "frame without energy", "frame without forces", "forces of the wrong shape",
    "NaN or infinite energy or forces", "element other than the declared one",
    "mixed elements in a single-element set", "energy/forces key names wrong in config",
    "mlearn entry with missing outputs", "dataset path that does not exist", "unknown config keys",
    "wrong config types", "training size larger than the pool", "size of zero or below",
    "element with no SW parameters", "transfer pair whose source model is missing",
}


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)


def leftovers(work: Path, keep=()) -> list[str]:
    """Files a failed case left behind: anything outside the corpus copy, Snakemake's metadata and the
    logs (which should explain the failure), other than ``keep``; and any temporary file anywhere."""
    found = []
    for path in work.rglob("*"):
        if not path.is_file():
            continue
        rel = path.relative_to(work).as_posix()
        if ".tmp" in path.name or path.name.startswith(".") and not rel.startswith(".snakemake/"):
            found.append(rel)
        elif rel.split("/")[0] not in {"bad_inputs", ".snakemake", "logs"} and rel not in keep:
            found.append(rel)
    return sorted(found)


def check_message(text: str, case: dict) -> list[str]:
    return [f"message lacks {s!r}" for s in case["expect"] if s not in text]


def run_case(case: dict, root: Path) -> list[str]:
    """Run one case in a fresh directory; return its problems (empty: handled cleanly)."""
    work = root / case["id"]
    shutil.copytree(CORPUS, work / "bad_inputs")
    data = work / "bad_inputs"
    problems: list[str] = []
    kind = case["kind"]
    mt = str(BIN / "mlp-transfer")
    snakemake = [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile")]

    # the Python entry point: the documented exception, naming file/frame/key and problem
    if kind in {"extxyz", "mlearn"} or case.get("load_config"):
        try:
            if kind == "extxyz":
                import_extxyz(data / case["train"], data / case["test"], case["element"], work / "py/train.xyz",
                              work / "py/test.xyz", **{k: case[k] for k in ("energy_key", "forces_key") if k in case})
            elif kind == "mlearn":
                import_mlearn(data / case["folder"], case["element"], work / "py/train.xyz", work / "py/test.xyz")
            else:
                load_config(data / case["config"])
            problems.append("Python entry point raised nothing")
        except ERRORS[case["error"]] as exc:
            problems += [f"Python: {p}" for p in check_message(str(exc), case)]
            if kind == "config" and Path(case["config"]).name not in str(exc):
                problems.append("Python: message does not name the config file")
        except Exception as exc:  # noqa: BLE001 - any other exception is a failure of the case
            problems.append(f"Python entry point raised {type(exc).__name__}, not {case['error']}: {exc}")

    # the command a user runs
    out = work / "out"
    if kind == "extxyz":
        argv = [mt, "import-extxyz", "--train", str(data / case["train"]), "--test", str(data / case["test"]),
                "--element", case["element"], "--out-train", str(out / "train.xyz"), "--out-test", str(out / "test.xyz")]
    elif kind == "mlearn":
        argv = [mt, "import-mlearn", "--folder", str(data / case["folder"]), "--element", case["element"],
                "--out-train", str(out / "train.xyz"), "--out-test", str(out / "test.xyz")]
    elif kind == "config":
        argv = [*snakemake, "-n", "--configfile", str(data / case["config"])]
    elif kind == "workflow":
        # the target first: --configfile takes several values
        argv = [*snakemake, case["target"], "--cores", "1", "--configfile", str(data / case["config"])]
    elif kind == "split":
        argv = [mt, "split", "--pool", str(data / case["pool"]), "--out", str(out / "split.json"), "--sizes",
                *case["sizes"], "--n-validation", str(case["n_validation"]), "--seed", "0"]
    elif kind == "generate":
        argv = [mt, "generate-sw", "--element", case["element"], "--out-train", str(out / "train.xyz"),
                "--out-test", str(out / "test.xyz"), "--supercell", "1", "--temperatures", "300",
                "--equilibration-steps", "2", "--sample-interval", "1", "--n-train", "2", "--n-test", "1"]
    elif kind == "train":
        argv = [mt, "train", "--regime", "transfer", "--pool", str(data / case["pool"]), "--splits",
                str(data / case["splits"]), "--size", case["size"], "--element", case["element"], "--seed", "0",
                "--config", str(TINY), "--source-model", f"bad_inputs/{case['source_model']}",
                "--source-element", case["source_element"], "--out-dir", str(out)]
    else:
        return [f"unknown kind {kind!r}"]
    proc = run(argv, cwd=work)
    if proc.returncode == 0:
        problems.append("command exited 0")
    problems += [f"command: {p}" for p in check_message(proc.stdout + proc.stderr, case)]
    if kind in {"workflow"} and proc.returncode != 0 and not (work / "logs").is_dir():
        problems.append("no log written")
    left = leftovers(work, case.get("keep", ()))
    if left:
        problems.append(f"left behind {left}")
    if problems:
        problems.append(f"output tail: {(proc.stdout + proc.stderr)[-1500:]}")
    return problems


def test_corpus_covers_every_requirement():
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    covered = {item for case in CASES for item in case["covers"]}
    assert REQUIRED <= covered, f"not covered: {sorted(REQUIRED - covered)}"
    for case in CASES:
        assert case["expect"], case["id"]
        for key in ("train", "test", "folder", "config", "pool", "splits"):
            if key in case and "does_not_exist" not in case[key] and "no_such" not in case[key]:
                assert (CORPUS / case[key]).exists(), f"{case['id']}: {case[key]} is not in the corpus"


def test_corpus_is_handled_cleanly(tmp_path):
    failures = {}
    for case in CASES:
        problems = run_case(case, tmp_path)
        if problems:
            failures[case["id"]] = problems
    n_clean = len(CASES) - len(failures)
    print(f"bad-input corpus: handled cleanly: {n_clean}/{len(CASES)}")
    for case_id, problems in failures.items():
        print(f"  {case_id}:\n    " + "\n    ".join(problems))
    assert not failures, f"handled cleanly: {n_clean}/{len(CASES)}; failed: {sorted(failures)}"
