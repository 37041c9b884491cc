"""Rule-script logging: everything a job writes lands in its rule's log; the console gets one line."""

from __future__ import annotations

import subprocess
import sys

FAILING_SCRIPT = """
import logging, os, sys
from mlp_transfer.smk import log_to
log_to(sys.argv[1])
print("progress from print")
os.write(2, b"written by C code to stderr\\n")
os.write(1, b"written by C code to stdout\\n")
logging.getLogger("stage").info("a log record")
raise ValueError("bad frame 3 in pool.extxyz")
"""


def test_a_failing_rule_script_logs_everything_and_names_the_problem_on_the_console(tmp_path):
    log = tmp_path / "logs" / "job.log"
    proc = subprocess.run([sys.executable, "-c", FAILING_SCRIPT, str(log)], capture_output=True, text=True)
    assert proc.returncode != 0
    text = log.read_text()
    for line in ("progress from print", "written by C code to stderr", "written by C code to stdout",
                 "stage INFO a log record", "Traceback", "ValueError: bad frame 3 in pool.extxyz"):
        assert line in text, line
    assert proc.stdout == ""
    assert proc.stderr.strip() == f"error: ValueError: bad frame 3 in pool.extxyz (log: {log})"
