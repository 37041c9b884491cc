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

Stratification (``learning_curve.stratify_by`` / ``source_training.stratify_by``, e.g. ``group`` for mlearn's
AIMD-NVT / Elastic / Surface / Vacancy): a heterogeneous pool drawn at random can leave a whole structure type
out of a small training subset or out of the validation set (mlearn Ge, seed 0: no surface among the 20
validation structures, so early stopping is blind to surfaces). With a stratification key, the eligible frames
are put in a *stratified order* instead of a plain permutation: within each group the order is random (by the
seed), and the groups are interleaved so that every prefix of the order holds each group in proportion to its
share, to within one structure (at each position the group furthest below its share comes next). The
validation set is the first ``n_validation`` entries; the remaining frames are ordered the same way again,
and each training subset is a prefix of that order, so subsets stay nested and each one is stratified. A group
smaller than its share of a subset rounds down (mlearn Ge: 11 surfaces of 228 give none in a subset of 5, one
in 20). The split JSON records ``stratify_by`` and the group counts of the validation set and every subset.
Without a key the split is exactly the unstratified one.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
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


def stratified_order(labels: Sequence[str], rng: np.random.Generator) -> np.ndarray:
    """Positions ``0..len(labels)-1`` in an order whose every prefix is stratified by ``labels``.

    Within a label the order is a random permutation; across labels, position k takes the label whose count
    among the first k entries falls furthest below k times its share (ties broken by a random priority drawn
    once), so every prefix holds each label within one entry of its proportional count.
    """
    labels = np.asarray([str(label) for label in labels])
    names = sorted(set(labels.tolist()))
    queues = {name: list(rng.permutation(np.flatnonzero(labels == name))) for name in names}
    shares = {name: len(queues[name]) / len(labels) for name in names}
    priority = dict(zip(names, rng.permutation(len(names)).tolist()))
    taken = dict.fromkeys(names, 0)
    order = []
    for k in range(1, len(labels) + 1):
        name = max((n for n in names if taken[n] < len(queues[n])),
                   key=lambda n: (k * shares[n] - taken[n], priority[n]))
        order.append(queues[name][taken[name]])
        taken[name] += 1
    return np.asarray(order, dtype=int)


def group_counts(indices: Sequence[int], labels: Sequence[str]) -> dict[str, int]:
    """How many of ``indices`` carry each label (sorted by label)."""
    return dict(sorted(Counter(str(labels[i]) for i in indices).items()))


def make_splits(pool_size: int, sizes: Sequence[int | str], n_validation: int, seed: int,
                pool_name: str = "training pool", eligible: Sequence[int] | None = None,
                labels: Sequence[str] | None = None) -> dict:
    """Draw the validation set and nested training subsets (indices into the pool) for one seed.

    ``eligible`` (optional) restricts validation and training to these pool indices (e.g. the frames at
    or below a maximum temperature); returned indices still refer to the whole pool. ``labels`` (optional,
    one per pool frame) stratifies validation and training subsets by label (module docstring).
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
    if labels is not None and len(labels) != pool_size:
        raise SplitError(f"{pool_name}: {len(labels)} stratification labels for {pool_size} structures")
    rng = np.random.default_rng(seed)
    pool_indices = np.arange(pool_size) if candidates is None else candidates
    if labels is None:
        order = pool_indices[rng.permutation(n_candidates)]
        remaining = order[n_validation:]
    else:
        order = pool_indices[stratified_order([labels[i] for i in pool_indices], rng)]
        rest = order[n_validation:]
        remaining = rest[stratified_order([labels[i] for i in rest], rng)]
    validation = sorted(int(i) for i in order[:n_validation])
    train = {}
    for size in sizes:
        n = available if size == ALL else size
        train[str(size)] = sorted(int(i) for i in remaining[:n])
    return {"seed": int(seed), "pool_size": int(pool_size), "validation": validation, "train": train}


def eligible_by_temperature(temperatures: Sequence[float], max_temperature: float) -> list[int]:
    """Pool indices with a temperature <= ``max_temperature``; frames without one (< 0, e.g. -1) are kept."""
    return [i for i, t in enumerate(temperatures) if t < 0 or t <= max_temperature]


def _pool_info(pool_path: str | Path, stratify_by: str | None) -> tuple[list[float], list[str] | None]:
    """``info["temperature"]`` of every pool frame (-1.0 when absent) and, with ``stratify_by``, its label.

    A frame without the stratification key is an error naming the pool, the key and the first such frames.
    """
    from mlp_transfer.data.common import read_extxyz  # DatasetError naming the file if missing/unreadable

    frames = read_extxyz(pool_path)
    temperatures = [float(atoms.info.get("temperature", -1.0)) for atoms in frames]
    if stratify_by is None:
        return temperatures, None
    missing = [i for i, atoms in enumerate(frames) if stratify_by not in atoms.info]
    if missing:
        raise SplitError(f"{pool_path}: {len(missing)} of {len(frames)} frames have no info[{stratify_by!r}] to "
                         f"stratify by (frames {missing[:5]}{' ...' if len(missing) > 5 else ''}); "
                         f"remove stratify_by or add the key to every frame")
    return temperatures, [str(atoms.info[stratify_by]) for atoms in frames]


def write_splits(pool_path: str | Path, out_path: str | Path, sizes: Sequence[int | str], n_validation: int,
                 seed: int, max_temperature: float | None = None, stratify_by: str | None = None) -> dict:
    """Read the pool from an extxyz file and write the split as JSON (atomically).

    ``max_temperature`` (K) restricts validation and training to frames at or below it (see the module
    docstring); the JSON then records ``max_temperature`` and ``n_eligible``. ``stratify_by`` (an
    ``atoms.info`` key, e.g. ``group``) stratifies validation and subsets by its value; the JSON then records
    ``stratify_by``, ``validation_groups`` and ``train_groups``.
    """
    temperatures, labels = _pool_info(pool_path, stratify_by)
    pool_size = len(temperatures)
    eligible = None
    if max_temperature is not None:
        eligible = eligible_by_temperature(temperatures, float(max_temperature))
        if all(t < 0 for t in temperatures):
            log.warning("%s: no frame carries a temperature; the restriction to <= %g K keeps every frame",
                        pool_path, max_temperature)
    splits = make_splits(pool_size, sizes, n_validation, seed, pool_name=str(pool_path), eligible=eligible,
                         labels=labels)
    splits["pool"] = str(pool_path)
    if max_temperature is not None:
        splits["max_temperature"] = float(max_temperature)
        splits["n_eligible"] = len(eligible)
        log.info("%s: %d of %d frames eligible at <= %g K (frames without a temperature kept)", out_path,
                 len(eligible), pool_size, max_temperature)
    if labels is not None:
        splits["stratify_by"] = stratify_by
        splits["validation_groups"] = group_counts(splits["validation"], labels)
        splits["train_groups"] = {size: group_counts(indices, labels) for size, indices in splits["train"].items()}
        log.info("%s: stratified by info[%r]; validation %s", out_path, stratify_by, splits["validation_groups"])
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
    parser.add_argument("--stratify-by", default=None,
                        help="atoms.info key (e.g. group): validation and subsets keep each value's share")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        write_splits(args.pool, args.out, args.sizes, args.n_validation, args.seed,
                     max_temperature=args.max_temperature, stratify_by=args.stratify_by)
    except (SplitError, ValueError) as exc:  # DatasetError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
