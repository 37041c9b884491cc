"""Lightning callback used by the spktrain baseline: per-epoch training and validation wall times.

Instantiated by spktrain from the benchmark's hydra config (``callbacks.bench_timer``); writes a JSON list of
``{"epoch", "train_s", "val_s"}`` to ``path`` at the end of training. ``train_s`` excludes validation.
"""

from __future__ import annotations

import json
import time

from pytorch_lightning import Callback


class EpochTimer(Callback):
    def __init__(self, path: str):
        self.path = path
        self.rows: list[dict] = []
        self._epoch_start = self._val_start = 0.0
        self._val = 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_start = time.perf_counter()
        self._val = 0.0

    def on_validation_start(self, trainer, pl_module):
        self._val_start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module):
        self._val += time.perf_counter() - self._val_start

    def on_train_epoch_end(self, trainer, pl_module):
        total = time.perf_counter() - self._epoch_start
        self.rows.append({"epoch": trainer.current_epoch, "train_s": total - self._val, "val_s": self._val})
        # Written every epoch: the file is complete even if the run is cut short.
        with open(self.path, "w") as handle:
            json.dump(self.rows, handle)
