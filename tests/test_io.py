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
