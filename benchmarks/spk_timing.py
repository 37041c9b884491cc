"""Lightning callback used by the spktrain baseline: per-epoch training and validation wall times.

Instantiated by spktrain from the benchmark's hydra config (``callbacks.bench_timer``); writes a JSON list of
``{"epoch", "train_s", "val_s", "train_cpu_s", "val_cpu_s"}`` to ``path`` (wall and process CPU seconds;
the ``train_`` figures exclude validation).
"""

from __future__ import annotations

import json
import time

from pytorch_lightning import Callback


class EpochTimer(Callback):
    def __init__(self, path: str):
        self.path = path
        self.rows: list[dict] = []
        self._epoch_start = self._val_start = self._epoch_cpu = self._val_cpu_start = 0.0
        self._val = self._val_cpu = 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_start = time.perf_counter()
        self._epoch_cpu = time.process_time()
        self._val = self._val_cpu = 0.0

    def on_validation_start(self, trainer, pl_module):
        self._val_start = time.perf_counter()
        self._val_cpu_start = time.process_time()

    def on_validation_end(self, trainer, pl_module):
        self._val += time.perf_counter() - self._val_start
        self._val_cpu += time.process_time() - self._val_cpu_start

    def on_train_epoch_end(self, trainer, pl_module):
        total = time.perf_counter() - self._epoch_start
        cpu = time.process_time() - self._epoch_cpu
        self.rows.append({"epoch": trainer.current_epoch, "train_s": total - self._val, "val_s": self._val,
                          "train_cpu_s": cpu - self._val_cpu, "val_cpu_s": self._val_cpu})
        # Written every epoch: the file is complete even if the run is cut short.
        with open(self.path, "w") as handle:
            json.dump(self.rows, handle)
