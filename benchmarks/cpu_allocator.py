"""SO3net training steps on a CPU under glibc malloc settings: how much of the step is the kernel handing out
fresh pages, and what keeping freed memory costs in resident memory.

glibc serves allocations above its mmap threshold (at most 32 MiB) with fresh mmap regions and unmaps them on
free. An SO3net step at lmax >= 2 allocates and frees (edges x Clebsch-Gordan terms x features) temporaries of
hundreds of MB, so every step faults in (and zeroes) those pages again: system time, not arithmetic.
Variants, each in its own process (the settings are read at process start), interleaved over repeats:

- ``default``: glibc as shipped.
- ``heap_only``: ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<huge>``: every allocation from the heap, which
  is never given back, so freed temporaries are reused without new page faults (more resident memory: the
  heap fragments).
- ``hugetlb``: ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``: mmap'ed chunks as transparent huge pages (2 MiB),
  512x fewer faults for the same zeroing (needs THP in ``madvise`` or ``always`` mode).

Prints and writes steps/s, CPU time split into user and system, peak resident memory and the ratio of each
variant's step time to ``default``. Same batch as the architecture benchmark (4 rattled 64-atom Ge cells,
64 features x 3 interactions, cutoff 6 Å, 1 thread), force training (double backward) and Adam.

    .venv/bin/python benchmarks/cpu_allocator.py [--lmax 2] [--steps 5] [--repeats 2] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = {
    "default": {},
    "heap_only": {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 40)},
    "hugetlb": {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"},
}


def make_so3net_step(lmax: int, convolution: str = "factorized"):
    """One SO3net training step (force loss, double backward, Adam) on the architecture benchmark's batch, 1
    thread, with the workflow's factorized SO3 convolution or schnetpack's; returns (step, batch)."""
    import torch

    sys.path.insert(0, str(HERE))
    from run_benchmarks import _loss_terms, make_frames

    from mlp_transfer import models
    from mlp_transfer.batching import StructureSet, mean_energy_per_atom
    from mlp_transfer.so3 import set_so3_convolutions

    torch.set_num_threads(1)
    frames = make_frames(4, seed=5)
    batch = StructureSet(frames, 6.0).batch(range(len(frames)))
    torch.manual_seed(0)
    model = models.build_model(architecture="so3net", cutoff=6.0, n_atom_basis=64, n_interactions=3, n_rbf=20,
                               lmax=lmax)
    set_so3_convolutions(model, convolution)
    models.set_energy_offset(model, mean_energy_per_atom(frames))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        e_err, f_err = _loss_terms(model(dict(batch)), batch)
        loss = 10.0 * (e_err ** 2).mean() + (f_err ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step, batch


def child(lmax: int, steps: int, convolution: str) -> None:
    """Time ``steps`` training steps after one warm-up step; print one JSON line."""
    step, _ = make_so3net_step(lmax, convolution)
    step()
    before = os.times()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    wall = time.perf_counter() - start
    after = os.times()
    print(json.dumps({"s_per_step": wall / steps, "user_s_per_step": (after.user - before.user) / steps,
                      "sys_s_per_step": (after.system - before.system) / steps}))


def run_variant(name: str, lmax: int, steps: int, convolution: str) -> dict:
    env = {**os.environ, **VARIANTS[name], "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, __file__, "--child", "--lmax", str(lmax), "--steps", str(steps),
                                "--convolution", convolution],
                               env=env, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise RuntimeError(f"variant {name} failed (wait status {status})")
    return {**json.loads(output.strip().splitlines()[-1]), "max_rss_gb": usage.ru_maxrss / 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lmax", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--convolution", choices=["factorized", "schnetpack"], default="factorized",
                        help="SO3 convolution: the workflow's (mlp_transfer.so3) or schnetpack's")
    parser.add_argument("--out", type=Path, default=None, help="folder for cpu_allocator.{json,md}")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.lmax, args.steps, args.convolution)
        return 0
    runs: dict[str, list[dict]] = {name: [] for name in args.variants}
    for repeat in range(args.repeats):
        for name in args.variants:
            runs[name].append(run_variant(name, args.lmax, args.steps, args.convolution))
            print(f"repeat {repeat} {name}: {runs[name][-1]}", file=sys.stderr, flush=True)
    base = statistics.median(r["s_per_step"] for r in runs[args.variants[0]])
    lines = [f"SO3net lmax {args.lmax} ({args.convolution} convolution), 4 x 64-atom cells, 1 thread, "
             f"{args.steps} steps x {args.repeats} repeats "
             f"(median [min, max])", "",
             "| malloc | s/step | user s/step | system s/step | peak RSS (GB) | step time / default |",
             "|---|---|---|---|---|---|"]

    def cell(values, fmt="{:.2f}"):
        return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}, {fmt.format(max(values))}]"

    for name, rows in runs.items():
        lines.append(f"| {name} | {cell([r['s_per_step'] for r in rows])} | {cell([r['user_s_per_step'] for r in rows])} "
                     f"| {cell([r['sys_s_per_step'] for r in rows])} | {cell([r['max_rss_gb'] for r in rows], '{:.1f}')} "
                     f"| {statistics.median(r['s_per_step'] for r in rows) / base:.2f} |")
    table = "\n".join(lines)
    print(table)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "cpu_allocator.json").write_text(json.dumps({"lmax": args.lmax, "steps": args.steps,
                                                                 "convolution": args.convolution,
                                                                 "runs": runs}, indent=1))
        (args.out / "cpu_allocator.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
