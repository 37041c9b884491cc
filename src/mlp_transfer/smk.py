"""Support for the workflow's rule scripts: logging into the rule's log file.

Rule scripts call :func:`log_to` first. Log records, ``print`` output and everything written to the process's
stdout and stderr, also by C extensions (torch warnings, a crash's faulthandler traceback), go to the rule's
log; an uncaught error is written there with its traceback and, as one line naming the problem, to the console
Snakemake shows.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import sys
import traceback
from pathlib import Path


def log_to(log_path: str) -> None:
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    stream = open(log_path, "a", buffering=1)
    # the console keeps a descriptor of its own for the one-line error; file descriptors 1 and 2 then point
    # at the log, so that output not written through Python's sys streams lands there too
    sys.stdout.flush()
    sys.stderr.flush()
    console = os.fdopen(os.dup(2), "w", buffering=1)
    os.dup2(stream.fileno(), 1)
    os.dup2(stream.fileno(), 2)
    sys.stdout = sys.stderr = stream
    faulthandler.enable(file=stream)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=stream, force=True)

    def excepthook(exc_type, exc, tb):
        traceback.print_exception(exc_type, exc, tb, file=stream)
        print(f"error: {exc_type.__name__}: {exc} (log: {log_path})", file=console)

    sys.excepthook = excepthook
