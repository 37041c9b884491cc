"""Atomic file output: results appear only when complete, so a killed job never leaves a file that
looks finished."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

# The process's umask, read once (reading it means setting it). mkstemp creates files private (0600), which
# os.replace keeps; finished files get the mode an ordinary open() would give them, so a group sharing a
# cluster project directory can read the results.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Temporaries left by a killed writer of this same file are garbage: remove them. They end in ".tmp", not
    # in the target's suffix, so that no glob for finished files ("tables/*.csv") ever picks one up; every
    # writer therefore names its format explicitly.
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | os.PathLike, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_csv(table, path: str | os.PathLike):
    """Write a DataFrame as CSV without its index, atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return path


def write_run_table(table, path: str | os.PathLike, metadata: dict | None = None):
    """Write a per-run table as CSV (atomically) with the run's ``metadata`` as leading constant columns.

    The metadata (dataset, pair, regime, size, seed...) makes every per-run file self-describing, so the
    aggregation can concatenate them without parsing paths. Returns the table with those columns.
    """
    table = table.copy()
    for position, (key, value) in enumerate(dict(metadata or {}).items()):
        table.insert(position, key, value)
    write_csv(table, path)
    return table
