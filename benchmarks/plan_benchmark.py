"""Planning benchmark: wall time of `snakemake -n` on config/paper.yaml and the jobs it plans.

    .venv/bin/python benchmarks/plan_benchmark.py [--config config/paper.yaml] [--repeat 3]

Prints the dry-run time of each repetition (target < 10 s), jobs per rule, SLURM submissions and GPU jobs.
Not a timed test: the machine is shared, so numbers are printed, not asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mlp_transfer.plan import plan  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "config" / "paper.yaml"))
    parser.add_argument("--profile", default=str(REPO / "workflow" / "profiles" / "slurm"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    times = []
    result = None
    for i in range(args.repeat):
        result = plan(args.config, args.profile, directory=str(REPO))
        times.append(result.seconds)
        print(f"dry run {i + 1}: {result.seconds:.2f} s", flush=True)
    print(result.table())
    print(f"dry-run time: median {statistics.median(times):.2f} s, min {min(times):.2f} s over {len(times)} runs; "
          f"{result.total_jobs} jobs, {result.submitted_jobs} SLURM jobs, {result.gpu_jobs} GPU jobs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
