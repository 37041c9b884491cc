"""Side-by-side cost of two finished runs of the main job, from Snakemake's ``benchmark:`` files.

Run the default study at two commits (each in its own git worktree, concurrently, ``--cores 1``, under
``/usr/bin/time -v`` for the whole-job CPU time), then compare what each stage cost:

    git worktree add /tmp/before 04bd8d6 && git worktree add --detach /tmp/after HEAD
    (cd /tmp/before && PYTHONPATH=src /usr/bin/time -v -o time.txt $VENV/bin/snakemake \\
        --workflow-profile workflow/profiles/default --cores 1) &   # same for /tmp/after
    .venv/bin/python benchmarks/compare_main_job.py /tmp/before /tmp/after

Prints jobs, summed wall seconds and summed CPU seconds per stage (the first folder under
``results/benchmarks``) for both runs, and the after/before CPU ratio.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def stage_costs(workdir: Path) -> pd.DataFrame:
    """Jobs, wall and CPU seconds per stage of one finished run."""
    root = workdir / "results" / "benchmarks"
    rows = [{"stage": path.relative_to(root).parts[0], "wall_s": table["s"].sum(), "cpu_s": table["cpu_time"].sum()}
            for path in sorted(root.rglob("*.tsv")) for table in [pd.read_csv(path, sep="\t")]]
    if not rows:
        raise SystemExit(f"error: no benchmark files under {root}")
    return pd.DataFrame(rows).groupby("stage").agg(jobs=("wall_s", "size"), wall_s=("wall_s", "sum"),
                                                   cpu_s=("cpu_s", "sum"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path, help="working directory of the baseline run")
    parser.add_argument("after", type=Path, help="working directory of the run to compare")
    args = parser.parse_args(argv)
    table = pd.concat({"before": stage_costs(args.before), "after": stage_costs(args.after)}, axis=1)
    table[("ratio", "cpu after/before")] = table[("after", "cpu_s")] / table[("before", "cpu_s")]
    print(table.round(2).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
