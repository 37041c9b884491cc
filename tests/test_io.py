"""Atomic output: a writer killed mid-write leaves no file that a glob for finished results would pick up."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from mlp_transfer.io import write_csv

KILLED_WRITER = """
import os, sys
from mlp_transfer.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_text("a,b\\n1,")  # half a table
    os._exit(9)  # like SIGKILL: no cleanup runs
"""


def test_killed_writer_leaves_no_file_that_looks_finished(tmp_path):
    target = tmp_path / "tables" / "summary.csv"
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)])
    assert proc.returncode == 9
    leftovers = list(target.parent.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".summary.csv.")
    assert not target.exists()
    assert list(target.parent.glob("*.csv")) == []  # what aggregation and checks glob for

    write_csv(pd.DataFrame({"a": [1], "b": [2]}), target)  # the rerun's writer removes the stale temporary
    assert [p.name for p in target.parent.iterdir()] == ["summary.csv"]
    assert pd.read_csv(target).to_dict("list") == {"a": [1], "b": [2]}


WRITER_UNDER_UMASK = """
import os, sys
os.umask(int(sys.argv[2], 8))
from mlp_transfer.io import write_text
write_text(sys.argv[1], "done")
"""


def test_finished_files_get_the_umask_mode_not_a_private_one(tmp_path):
    """Results in a shared project directory are readable by the group as an ordinary open() would make them
    (the temporary file behind the atomic write is created 0600)."""
    for umask, mode in (("022", 0o644), ("002", 0o664), ("077", 0o600)):
        target = tmp_path / f"umask{umask}.txt"
        subprocess.run([sys.executable, "-c", WRITER_UNDER_UMASK, str(target), umask], check=True)
        assert target.read_text() == "done"
        assert target.stat().st_mode & 0o777 == mode, umask
