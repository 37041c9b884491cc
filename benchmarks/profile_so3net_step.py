"""Where one SO3net training step spends its CPU time (torch.profiler), on the architecture benchmark's batch:
4 structures of 64 atoms, 64 features x 3 interactions, cutoff 6 Å, 1 thread.

Run from the repository root: .venv/bin/python benchmarks/profile_so3net_step.py [lmax, default 2]
"""

import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_benchmarks import _loss_terms, make_frames  # noqa: E402

from mlp_transfer import models  # noqa: E402
from mlp_transfer.batching import StructureSet, mean_energy_per_atom  # noqa: E402

torch.set_num_threads(1)
lmax = int(sys.argv[1]) if len(sys.argv) > 1 else 2
frames = make_frames(4, seed=5)
batch = StructureSet(frames, 6.0).batch(range(len(frames)))
torch.manual_seed(0)
model = models.build_model(architecture="so3net", cutoff=6.0, n_atom_basis=64, n_interactions=3, n_rbf=20, lmax=lmax)
models.set_energy_offset(model, mean_energy_per_atom(frames))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)


def step():
    e_err, f_err = _loss_terms(model(dict(batch)), batch)
    loss = 10.0 * (e_err ** 2).mean() + (f_err ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


step()  # first-call allocations outside the profile
with profile(activities=[ProfilerActivity.CPU]) as prof:
    start = time.perf_counter()
    step()
    print(f"lmax {lmax}: {len(batch['_idx_i'])} edges, one step {time.perf_counter() - start:.2f} s")
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
