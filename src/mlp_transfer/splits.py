"""Learning-curve subsampling: nested training subsets and one fixed validation set per seed.

For a seed, one random permutation of the training pool is drawn. Its first ``n_validation`` entries are
the validation set; the training subset of size ``n`` is the next ``n`` entries. Subsets are therefore
nested (the size-10 set is inside the size-25 set), the validation set is the same for every size and
regime of that seed, and test sets are never touched (they live in a different file).

Temperature restriction (``learning_curve.train_max_temperature``, for temperature-transferability
studies): when a maximum temperature is given, only pool frames with ``info["temperature"] <= T_max``
are eligible for validation and training. Frames without a temperature (``-1.0``: rattled and strained
cells, imported DFT frames) are **kept**: they are near-equilibrium configurations, not samples of a hot
trajectory. The permutation is then drawn over the eligible frames only, and the indices still refer to
the full pool file, so training and evaluation are unchanged; the split JSON records the restriction
(``max_temperature``, ``n_eligible``). Without a restriction the split is exactly the unrestricted one.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from mlp_transfer.io import write_json

log = logging.getLogger(__name__)

ALL = "all"


class SplitError(ValueError):
    """A requested split cannot be drawn from the pool (too small, non-positive size...)."""


def parse_size(size: int | str) -> int | str:
    """Training sizes are positive integers or the literal ``"all"`` (the whole pool minus validation)."""
    if isinstance(size, str):
        if size == ALL:
            return ALL
        try:
            size = int(size)
        except ValueError as exc:
            raise SplitError(f"training size {size!r} is neither a positive integer nor {ALL!r}") from exc
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
        raise SplitError(f"training size {size!r} must be a positive integer or {ALL!r}")
    return int(size)


def make_splits(pool_size: int, sizes: Sequence[int | str], n_validation: int, seed: int,
                pool_name: str = "training pool", eligible: Sequence[int] | None = None) -> dict:
    """Draw the validation set and nested training subsets (indices into the pool) for one seed.

    ``eligible`` (optional) restricts validation and training to these pool indices (e.g. the frames at
    or below a maximum temperature); returned indices still refer to the whole pool.
    """
    sizes = [parse_size(s) for s in sizes]
    if n_validation < 1:
        raise SplitError(f"n_validation must be at least 1, got {n_validation}")
    if eligible is None:
        candidates = None
        n_candidates = pool_size
        what = f"{pool_name} has {pool_size} structures"
    else:
        candidates = np.array(sorted({int(i) for i in eligible}), dtype=int)
        if candidates.size and (candidates[0] < 0 or candidates[-1] >= pool_size):
            raise SplitError(f"eligible indices of {pool_name} must lie in [0, {pool_size})")
        n_candidates = int(candidates.size)
        what = f"{pool_name} has {n_candidates} eligible structures (of {pool_size})"
    available = n_candidates - n_validation
    if available < 1:
        raise SplitError(f"{what}: too few for {n_validation} validation structures plus training data")
    too_large = [s for s in sizes if s != ALL and s > available]
    if too_large:
        raise SplitError(f"training size(s) {too_large} larger than the {available} structures left after "
                         f"{n_validation} validation structures: {what}")
    order = np.random.default_rng(seed).permutation(n_candidates)
    if candidates is not None:
        order = candidates[order]
    validation = sorted(int(i) for i in order[:n_validation])
    remaining = order[n_validation:]
    train = {}
    for size in sizes:
        n = available if size == ALL else size
        train[str(size)] = sorted(int(i) for i in remaining[:n])
    return {"seed": int(seed), "pool_size": int(pool_size), "validation": validation, "train": train}


def eligible_by_temperature(temperatures: Sequence[float], max_temperature: float) -> list[int]:
    """Pool indices with a temperature <= ``max_temperature``; frames without one (< 0, e.g. -1) are kept."""
    return [i for i, t in enumerate(temperatures) if t < 0 or t <= max_temperature]


def _pool_temperatures(pool_path: str | Path) -> list[float]:
    """``info["temperature"]`` of every pool frame (-1.0 when absent)."""
    from mlp_transfer.data.common import read_extxyz  # DatasetError naming the file if missing/unreadable

    return [float(atoms.info.get("temperature", -1.0)) for atoms in read_extxyz(pool_path)]


def write_splits(pool_path: str | Path, out_path: str | Path, sizes: Sequence[int | str], n_validation: int,
                 seed: int, max_temperature: float | None = None) -> dict:
    """Read the pool from an extxyz file and write the split as JSON (atomically).

    ``max_temperature`` (K) restricts validation and training to frames at or below it (see the module
    docstring); the JSON then records ``max_temperature`` and ``n_eligible``.
    """
    temperatures = _pool_temperatures(pool_path)
    pool_size = len(temperatures)
    eligible = None
    if max_temperature is not None:
        eligible = eligible_by_temperature(temperatures, float(max_temperature))
        if all(t < 0 for t in temperatures):
            log.warning("%s: no frame carries a temperature; the restriction to <= %g K keeps every frame",
                        pool_path, max_temperature)
    splits = make_splits(pool_size, sizes, n_validation, seed, pool_name=str(pool_path), eligible=eligible)
    splits["pool"] = str(pool_path)
    if max_temperature is not None:
        splits["max_temperature"] = float(max_temperature)
        splits["n_eligible"] = len(eligible)
        log.info("%s: %d of %d frames eligible at <= %g K (frames without a temperature kept)", out_path,
                 len(eligible), pool_size, max_temperature)
    write_json(out_path, splits)
    log.info("%s: %d validation structures, training sizes %s (seed %d)", out_path, n_validation,
             {k: len(v) for k, v in splits["train"].items()}, seed)
    return splits


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlp-transfer split", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", required=True, help="training pool (extxyz)")
    parser.add_argument("--out", required=True, help="output JSON")
    parser.add_argument("--sizes", nargs="+", required=True, help="training sizes (integers or 'all')")
    parser.add_argument("--n-validation", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--max-temperature", type=float, default=None,
                        help="only frames with info temperature <= this (K); frames without one are kept")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        write_splits(args.pool, args.out, args.sizes, args.n_validation, args.seed,
                     max_temperature=args.max_temperature)
    except (SplitError, ValueError) as exc:  # DatasetError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
