"""Where one SO3net training step spends its CPU time (torch.profiler), on the architecture benchmark's batch:
4 structures of 64 atoms, 64 features x 3 interactions, cutoff 6 Å, 1 thread.

Run from the repository root: .venv/bin/python benchmarks/profile_so3net_step.py [lmax, default 2] [schnetpack]
(``schnetpack``: profile schnetpack's SO3 convolution instead of the workflow's factorized one)
"""

import sys
import time
from pathlib import Path

from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_allocator import make_so3net_step  # noqa: E402

lmax = int(sys.argv[1]) if len(sys.argv) > 1 else 2
convolution = sys.argv[2] if len(sys.argv) > 2 else "factorized"
step, batch = make_so3net_step(lmax, convolution)

step()  # first-call allocations outside the profile
with profile(activities=[ProfilerActivity.CPU]) as prof:
    start = time.perf_counter()
    step()
    print(f"lmax {lmax} ({convolution}): {len(batch['_idx_i'])} edges, one step {time.perf_counter() - start:.2f} s")
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
