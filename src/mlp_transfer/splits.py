"""Learning-curve subsampling: nested training subsets and one fixed validation set per seed.

For a seed, one random permutation of the training pool is drawn. Its first ``n_validation`` entries are
the validation set; the training subset of size ``n`` is the next ``n`` entries. Subsets are therefore
nested (the size-10 set is inside the size-25 set), the validation set is the same for every size and
regime of that seed, and test sets are never touched (they live in a different file).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

import ase.io
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
                pool_name: str = "training pool") -> dict:
    """Draw the validation set and nested training subsets (indices into the pool) for one seed."""
    sizes = [parse_size(s) for s in sizes]
    if n_validation < 1:
        raise SplitError(f"n_validation must be at least 1, got {n_validation}")
    available = pool_size - n_validation
    if available < 1:
        raise SplitError(f"{pool_name} has {pool_size} structures: too few for {n_validation} validation "
                         "structures plus training data")
    too_large = [s for s in sizes if s != ALL and s > available]
    if too_large:
        raise SplitError(f"training size(s) {too_large} larger than the {available} structures of {pool_name} "
                         f"left after {n_validation} validation structures ({pool_size} in total)")
    order = np.random.default_rng(seed).permutation(pool_size)
    validation = sorted(int(i) for i in order[:n_validation])
    remaining = order[n_validation:]
    train = {}
    for size in sizes:
        n = available if size == ALL else size
        train[str(size)] = sorted(int(i) for i in remaining[:n])
    return {"seed": int(seed), "pool_size": int(pool_size), "validation": validation, "train": train}


def write_splits(pool_path: str | Path, out_path: str | Path, sizes: Sequence[int | str], n_validation: int,
                 seed: int) -> dict:
    """Read the pool size from an extxyz file and write the split as JSON (atomically)."""
    pool_size = sum(1 for _ in ase.io.iread(str(pool_path), index=":", format="extxyz"))
    splits = make_splits(pool_size, sizes, n_validation, seed, pool_name=str(pool_path))
    splits["pool"] = str(pool_path)
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        write_splits(args.pool, args.out, args.sizes, args.n_validation, args.seed)
    except SplitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
