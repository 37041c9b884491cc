"""Plan a study before spending cluster hours: ``snakemake -n`` for a config, summarised.

Prints, per rule, how many jobs the dry run would run, how many of them are SLURM submissions (rules that
are not ``localrule``) and how many request GPUs (resource ``gpu`` > 0), with the time limits they would ask
for on their first attempt. Nothing is touched: the dry run reads no data and writes nothing but
Snakemake's own metadata. Example::

    mlp-transfer plan --configfile config/paper.yaml --profile workflow/profiles/slurm
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_JOB_HEADER = re.compile(r"^(?:local)?(?:checkpoint|rule) (\w+):$")
_RESOURCE = re.compile(r"(\w+)=([^,]*)")
# rules may sit inside an `if` block (optional stages), so a definition may be indented
_RULE_DEF = re.compile(r"^[ \t]*(?:rule|checkpoint) (\w+):", re.M)
_EXEC_KEYWORDS = ("script:", "shell:", "run:", "notebook:", "wrapper:", "cwl:", "template_engine:")


@dataclass
class RulePlan:
    jobs: int = 0
    gpu_jobs: int = 0
    gpus: int = 0
    runtime_min: float = 0.0  # sum of first-attempt time limits
    gpu_runtime_min: float = 0.0  # sum of gpus x time limit
    local: bool = False


@dataclass
class Plan:
    rules: dict[str, RulePlan] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_jobs(self) -> int:
        return sum(r.jobs for r in self.rules.values())

    @property
    def submitted_jobs(self) -> int:
        return sum(r.jobs for r in self.rules.values() if not r.local)

    @property
    def gpu_jobs(self) -> int:
        return sum(r.gpu_jobs for r in self.rules.values() if not r.local)

    @property
    def gpu_hours(self) -> float:
        return sum(r.gpu_runtime_min for r in self.rules.values() if not r.local) / 60

    def as_dict(self) -> dict:
        return {"total_jobs": self.total_jobs, "submitted_jobs": self.submitted_jobs, "gpu_jobs": self.gpu_jobs,
                "gpu_hours_requested": round(self.gpu_hours, 2), "dry_run_seconds": round(self.seconds, 2),
                "rules": {name: vars(r) for name, r in self.rules.items()}}

    def table(self) -> str:
        lines = [f"{'rule':<22} {'jobs':>6} {'where':>6} {'gpu jobs':>9} {'time limit (h)':>15}"]
        for name, r in sorted(self.rules.items(), key=lambda kv: (-kv[1].jobs, kv[0])):
            limit = "-" if r.local else f"{r.runtime_min / 60:.1f}"
            lines.append(f"{name:<22} {r.jobs:>6} {'local' if r.local else 'slurm':>6} {r.gpu_jobs:>9} {limit:>15}")
        lines.append(f"{'total':<22} {self.total_jobs:>6}")
        lines.append(f"{self.submitted_jobs} jobs would be submitted to SLURM, {self.gpu_jobs} of them requesting "
                     f"GPUs ({self.gpu_hours:.1f} GPU-hours of first-attempt time limits); "
                     f"{self.total_jobs - self.submitted_jobs} run on the submitting node. "
                     f"Dry run: {self.seconds:.1f} s.")
        return "\n".join(lines)


def _workflow_texts(snakefile: Path) -> list[tuple[Path, str]]:
    """(path, text) of the Snakefile and the rule files it includes."""
    texts = [(snakefile, snakefile.read_text())]
    for include in re.findall(r'^include:\s*"([^"]+)"', texts[0][1], re.M):
        path = snakefile.parent / include
        if path.is_file():
            texts.append((path, path.read_text()))
    return texts


def rule_bodies(snakefile: Path) -> list[tuple[Path, str, str]]:
    """(file, rule name, rule text) of every ``rule``/``checkpoint`` of the workflow, those in ``if`` blocks too."""
    bodies = []
    for path, text in _workflow_texts(snakefile):
        starts = [(m.start(), m.group(1)) for m in _RULE_DEF.finditer(text)]
        for i, (start, name) in enumerate(starts):
            bodies.append((path, name, text[start:starts[i + 1][0] if i + 1 < len(starts) else len(text)]))
    return bodies


def local_rules(snakefile: Path) -> set[str]:
    """Rules that never become cluster jobs: ``localrule: True``, ``localrules:`` entries, and rules without
    anything to execute (like ``all``). Read from the Snakefile and the rule files it includes."""
    local = set()
    for _, text in _workflow_texts(snakefile):
        for names in re.findall(r"^localrules:\s*(.+)$", text, re.M):
            local.update(n.strip() for n in names.split(",") if n.strip())
    for _, name, body in rule_bodies(snakefile):
        if re.search(r"^\s+localrule:\s*True", body, re.M) or not any(k in body for k in _EXEC_KEYWORDS):
            local.add(name)
    return local


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0


def parse_dry_run(output: str, local: set[str]) -> dict[str, RulePlan]:
    """Per-rule job counts, GPU requests and time limits from ``snakemake -n`` output."""
    rules: dict[str, RulePlan] = {}
    current = None
    for line in output.splitlines():
        header = _JOB_HEADER.match(line.strip()) if not line.startswith(" ") else None
        if header:
            current = rules.setdefault(header.group(1), RulePlan(local=header.group(1) in local))
            current.jobs += 1
            continue
        stripped = line.strip()
        if current is not None and stripped.startswith("resources:"):
            resources = dict(_RESOURCE.findall(stripped[len("resources:"):]))
            gpus = int(_number(resources.get("gpu", "0")))
            runtime = _number(resources.get("runtime", "0"))
            current.runtime_min += runtime
            if gpus > 0:
                current.gpu_jobs += 1
                current.gpus += gpus
                current.gpu_runtime_min += gpus * runtime
            current = None
    return rules


def plan(configfile: str | None = None, profile: str | None = None, directory: str | None = None,
         snakefile: str | Path = REPO / "Snakefile", extra: list[str] | None = None,
         snakemake: str | None = None) -> Plan:
    """Dry-run the workflow (no data touched) and summarise it."""
    exe = snakemake or str(Path(sys.executable).parent / "snakemake")
    cmd = [exe, "--dry-run", "--snakefile", str(snakefile)]
    if profile:
        cmd += ["--profile", profile]
    if configfile:
        cmd += ["--configfile", configfile]
    if directory:
        cmd += ["--directory", directory]
    cmd += list(extra or [])
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"dry run failed ({' '.join(cmd)}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    rules = parse_dry_run(proc.stdout + "\n" + proc.stderr, local_rules(Path(snakefile)))
    return Plan(rules=rules, seconds=seconds)


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlp-transfer plan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", help="study config (default: the embedded config/config.yaml)")
    parser.add_argument("--profile", help="Snakemake profile, e.g. workflow/profiles/slurm (resources as submitted)")
    parser.add_argument("--directory", help="working directory whose results/ counts as done (default: .)")
    parser.add_argument("--snakefile", default=str(REPO / "Snakefile"))
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument("snakemake_args", nargs="*", help="further snakemake arguments (after --)")
    args = parser.parse_args(argv)
    result = plan(args.configfile, args.profile, args.directory, args.snakefile, args.snakemake_args)
    print(json.dumps(result.as_dict(), indent=2) if args.json else result.table())
    return 0


if __name__ == "__main__":
    sys.exit(cli())
