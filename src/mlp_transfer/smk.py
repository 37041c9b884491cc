"""Support for the workflow's rule scripts: logging into the rule's log file.

Rule scripts call :func:`log_to` first. Log records and stderr go to the rule's log; an uncaught error is
written there with its traceback and, as one line naming the problem, to the console Snakemake shows.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path


def log_to(log_path: str) -> None:
    console = sys.stderr
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    stream = open(log_path, "a", buffering=1)
    sys.stderr = stream
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=stream, force=True)

    def excepthook(exc_type, exc, tb):
        traceback.print_exception(exc_type, exc, tb, file=stream)
        print(f"error: {exc_type.__name__}: {exc} (log: {log_path})", file=console)

    sys.excepthook = excepthook
