"""Training of source, transfer and scratch models with early stopping, history and resumable checkpoints.

All regimes share one loop and one budget rule: train until the validation loss has not improved for
``patience`` validations (with a generous ``max_steps`` cap), keep the best-validation weights. Only the
initialisation (random, or copied from the source model) and the learning rate differ, so the comparison
between transfer and scratch is fair by construction. Every validation is logged with its optimiser step
and wall time, which makes "transfer expedites training" measurable.

Loss: ``w_E * MSE(E/N) + w_F * MSE(F) [+ w_S * MSE(stress)]`` in eV units (per-atom energies, force
components, stress components in eV/Å^3); with ``force_huber_delta`` the force term is twice the Huber loss
(see ``force_loss``). The stress term is there only with ``loss_weights.stress`` > 0, which needs a stress
label on every training and validation structure and makes the saved model predict stresses.

With ``ema_decay`` > 0 the weights used for validation, checkpoint selection and the saved model are an
exponential moving average of the optimiser's iterates (as NequIP and MACE train): it smooths the
step-to-step noise of small-batch Adam, so the plateau schedule and early stopping react to real progress.

With ``stage_two`` a second stage follows the first from its best weights with other loss weights and a new
learning rate (MACE's stage two raises the energy weight once the forces have converged); see
``TrainSettings.stage_two_settings`` and ``_join_stages``. With ``warmup_steps`` (or the stage's own) each stage's
learning rate ramps up linearly from its first step (``Trainer._warm_up``), so a fresh optimiser does not knock a
converged start off its weights.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import json
import logging
import math
import signal
import sys
import time
from pathlib import Path

import ase.io
import pandas as pd
import torch
from ase import units

from mlp_transfer import models
from mlp_transfer.batching import (ENERGY_REF, FORCES_REF, MAX_BATCH_ATOMS, STRESS_REF, MissingStressError,
                                   StructureSet, mean_energy_per_atom)
from mlp_transfer.io import atomic_path, write_json

log = logging.getLogger(__name__)

REGIMES = ("source", "transfer", "scratch")
# step: optimiser steps so far; epoch: completed passes over the training subset; wall_time_s: training
# time so far (validation excluded); val_*: errors on the validation set at that step.
HISTORY_COLUMNS = ["step", "epoch", "wall_time_s", "lr", "train_loss", "val_loss",
                   "val_energy_mae_mev_atom", "val_force_mae_mev_ang"]
# appended when the stress is trained
STRESS_HISTORY_COLUMN = "val_stress_mae_gpa"
# appended with a second training stage (training.stage_two): 1 or 2
STAGE_HISTORY_COLUMN = "stage"


# Training keys a regime never reads. Leaving them out of a run's settings means that changing, say, the
# fine-tuning learning rate does not invalidate (and rerun) the scratch runs.
UNUSED_BY_REGIME = {"source": {"transfer_lr", "embedding_init"}, "scratch": {"transfer_lr", "embedding_init"},
                    "transfer": {"lr"}}


# Training keys that change how a run executes but not the run: a checkpoint resumes across them.
EXECUTION_ONLY_KEYS = frozenset({"threads"})


def regime_training_config(training: dict, regime: str) -> dict:
    """``training`` without the keys ``regime`` does not use and without the execution-only ones (the caller
    adds the thread count its job has): a run's settings, whose change reruns it."""
    return {key: value for key, value in training.items()
            if key not in UNUSED_BY_REGIME[regime] and key not in EXECUTION_ONLY_KEYS}


def source_training_settings(config: dict, model: dict | None = None) -> dict:
    """Model and training settings of pre-training: its own learning rate and step cap, and no fine-tuning keys,
    so that changing the target regimes' learning rates does not invalidate (and rerun) the source model.
    ``model`` replaces the config's model (a search candidate's own source model)."""
    training = regime_training_config(config["training"], "source")
    training["lr"] = config["source_training"].get("lr", config["training"]["lr"])
    training["max_steps"] = config["source_training"].get("max_steps", config["training"]["max_steps"])
    return {"model": dict(model or config["model"]), "training": training}


@dataclasses.dataclass
class TrainSettings:
    """Optimisation settings shared by all regimes (see config/README.md for meanings)."""

    batch_size: int = 4
    lr: float = 1e-3
    transfer_lr: float = 5e-4
    optimizer: str = "adam"
    weight_decay: float = 0.0
    energy_weight: float = 10.0
    forces_weight: float = 1.0
    stress_weight: float = 0.0
    max_steps: int = 5000
    max_wall_time_s: float | None = None
    val_interval: int = 25
    patience: int = 10
    min_rel_improvement: float = 1e-3
    lr_factor: float = 0.5
    lr_patience: int = 4
    min_lr: float = 1e-5
    ema_decay: float = 0.0
    gradient_clip_norm: float | None = None
    # linear learning-rate warm-up over the first steps of each optimiser (0 = none): see Trainer._warm_up
    warmup_steps: int = 0
    force_huber_delta: float | None = None
    threads: int = 1
    device: str = "cpu"
    # {"loss_weights": {...}, "lr": float} or None: see stage_two_settings
    stage_two: dict | None = None

    @property
    def trains_stress(self) -> bool:
        """Whether any stage has a stress term (the model then predicts stresses throughout)."""
        stage_two = self.stage_two_settings()
        return self.stress_weight > 0 or (stage_two is not None and stage_two.stress_weight > 0)

    def stage_two_settings(self) -> "TrainSettings | None":
        """Settings of the second stage: these with the stage's loss weights (a term it does not name keeps its
        first-stage weight); None without a second stage. Its learning rate is ``stage_two["lr"]``."""
        if self.stage_two is None:
            return None
        weights = dict(self.stage_two.get("loss_weights", {}))
        unknown = sorted(set(weights) - {"energy", "forces", "stress"})
        unknown_keys = sorted(set(self.stage_two) - {"loss_weights", "lr", "warmup_steps"})
        if unknown or unknown_keys or "lr" not in self.stage_two:
            raise ValueError("stage_two needs loss_weights (energy, forces, stress) and lr, and may set "
                             f"warmup_steps; got {self.stage_two}")
        # a stage-two warm-up of its own, else the first stage's
        warmup = self.stage_two.get("warmup_steps", self.warmup_steps)
        return dataclasses.replace(self, stage_two=None, warmup_steps=warmup,
                                   **{f"{key}_weight": value for key, value in weights.items()})

    @classmethod
    def from_config(cls, training: dict) -> "TrainSettings":
        flat = dict(training)
        for key, value in flat.pop("loss_weights", {}).items():
            flat[f"{key}_weight"] = value
        schedule_names = {"factor": "lr_factor", "patience": "lr_patience", "min_lr": "min_lr"}
        for key, value in flat.pop("lr_schedule", {}).items():
            if key not in schedule_names:
                raise ValueError(f"unknown training settings: lr_schedule.{key} (known: {sorted(schedule_names)})")
            flat[schedule_names[key]] = value
        early = flat.pop("early_stopping", {})
        flat.update({k: v for k, v in early.items()})
        flat.pop("embedding_init", None)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(flat) - names)
        if unknown:
            raise ValueError(f"unknown training settings: {unknown}")
        return cls(**flat)


def force_loss(force_err: torch.Tensor, huber_delta: float | None) -> torch.Tensor:
    """Mean over force components of the squared error, or with ``huber_delta`` (eV/A) of twice the Huber
    loss: the squared error up to delta and ``2 delta |x| - delta^2`` beyond, so that the bulk of the errors
    keeps its weight against the energy term while the heavy tail (hot, strongly distorted structures) pulls
    only linearly, as the MAE it is judged by does."""
    if huber_delta is None:
        return (force_err ** 2).mean()
    return 2.0 * torch.nn.functional.huber_loss(force_err, torch.zeros_like(force_err), delta=huber_delta)


def _loss_terms(pred: dict, batch: dict):
    n_atoms = batch["_n_atoms"].to(pred["energy"].dtype)
    energy_err = (pred["energy"] - batch[ENERGY_REF]) / n_atoms
    force_err = pred["forces"] - batch[FORCES_REF]
    return energy_err, force_err


def _stress_error(pred: dict, batch: dict) -> torch.Tensor:
    return pred["stress"] - batch[STRESS_REF]


def weighted_loss(s: "TrainSettings", energy_err, force_err, stress_err=None) -> torch.Tensor:
    """The objective from per-structure energy errors (eV/atom), force and (with a stress weight) stress
    errors: of one batch in training, of the whole validation set in validation."""
    loss = s.energy_weight * (energy_err ** 2).mean() + s.forces_weight * force_loss(force_err, s.force_huber_delta)
    if s.stress_weight > 0:
        loss = loss + s.stress_weight * (stress_err ** 2).mean()
    return loss


def training_loss(s: "TrainSettings", pred: dict, batch: dict) -> torch.Tensor:
    e_err, f_err = _loss_terms(pred, batch)
    return weighted_loss(s, e_err, f_err, _stress_error(pred, batch) if s.stress_weight > 0 else None)


class TrainingInterrupted(RuntimeError):
    """SIGTERM/SIGINT arrived (e.g. a SLURM time limit or preemption); a checkpoint was written first."""


class Trainer:
    """Mini-batch training of one model; resumable from its checkpoint.

    A checkpoint is written at every validation and, on SIGTERM or SIGINT, after the current optimiser step,
    so a killed job loses at most one step and a rerun continues exactly where it stopped.
    """

    def __init__(self, model, train_set: StructureSet, val_set: StructureSet, settings: TrainSettings, lr: float,
                 seed: int, checkpoint_path: Path | None = None):
        self.settings = settings
        self.device = torch.device(settings.device)
        self.model = model.to(self.device)
        self.train_set, self.val_set = train_set, val_set
        self.batch_size = min(settings.batch_size, len(train_set))
        opt_cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[settings.optimizer]
        self.optimizer = opt_cls(self.model.parameters(), lr=lr, weight_decay=settings.weight_decay)
        self.peak_lr = lr
        # The averaged copy is the model that is validated, selected and saved; 0 = the raw iterates.
        self.ema = None
        if settings.ema_decay > 0:
            self.ema = torch.optim.swa_utils.AveragedModel(
                self.model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(settings.ema_decay))
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=settings.lr_factor, patience=settings.lr_patience,
            min_lr=settings.min_lr, threshold=settings.min_rel_improvement)
        self.generator = torch.Generator().manual_seed(seed)
        self.checkpoint_path = checkpoint_path
        self.step = 0
        self.epoch = 0
        self.wall_time = 0.0
        self.history: list[dict] = []
        self.best_val = math.inf
        self.best_step = 0
        self.best_state = copy.deepcopy(self.evaluated_model.state_dict())
        self.bad_validations = 0
        self.stop_reason = None
        self.resumed_from_step = None
        # Batch order of the current epoch and the position in it, checkpointed so that a resumed run
        # continues the interrupted epoch exactly.
        self.order: list[int] | None = None
        self.position = 0
        self.signal_received: int | None = None

    # -- evaluation -------------------------------------------------------------------------------------
    @property
    def evaluated_model(self) -> torch.nn.Module:
        """The weights that are validated, selected and saved: the moving average when enabled."""
        return self.ema.module if self.ema is not None else self.model

    def validate(self) -> dict:
        """Validation loss and MAEs; forces need autograd, so no inference_mode here."""
        model = self.evaluated_model
        model.eval()
        s = self.settings
        energy_errors, force_errors, stress_errors = [], [], []
        for batch in self.val_set.batches(16, self.device, MAX_BATCH_ATOMS):
            pred = model(batch)
            e_err, f_err = _loss_terms(pred, batch)
            energy_errors.append(e_err.detach().cpu().double())
            force_errors.append(f_err.detach().cpu().double().reshape(-1))
            # measured whenever labelled, also in a stage whose loss leaves it out, so every history row has it
            if self.val_set.with_stress:
                stress_errors.append(_stress_error(pred, batch).detach().cpu().double().reshape(-1))
        e = torch.cat(energy_errors)
        f = torch.cat(force_errors)
        stress = torch.cat(stress_errors) if stress_errors else None
        metrics = {"val_loss": float(weighted_loss(s, e, f, stress)),
                   "val_energy_mae_mev_atom": float(e.abs().mean() * 1000),
                   "val_force_mae_mev_ang": float(f.abs().mean() * 1000)}
        if stress is not None:
            metrics[STRESS_HISTORY_COLUMN] = float(stress.abs().mean() / units.GPa)
        return metrics

    def _record(self, train_loss: float) -> bool:
        """Validate, log, update best/early-stopping state; return True when training should stop."""
        metrics = self.validate()
        row = {"step": self.step, "epoch": self.epoch, "wall_time_s": round(self.wall_time, 4),
               "lr": self.optimizer.param_groups[0]["lr"], "train_loss": train_loss, **metrics}
        self.history.append(row)
        val = metrics["val_loss"]
        if not math.isfinite(val):
            self.stop_reason = "non_finite_loss"
            return True
        warming_up = self.step < self.settings.warmup_steps
        if val < self.best_val * (1 - self.settings.min_rel_improvement):
            self.best_val, self.best_step = val, self.step
            self.best_state = copy.deepcopy(self.evaluated_model.state_dict())
            self.bad_validations = 0
        elif not warming_up:  # the warm-up's transient is expected: it counts neither for patience nor schedule
            self.bad_validations += 1
        if self.step > 0 and not warming_up:
            self.scheduler.step(val)
        stress = metrics.get(STRESS_HISTORY_COLUMN)
        log.info("step %5d  epoch %4d  lr %.2e  train %.3e  val %.3e  E %.2f meV/atom  F %.1f meV/A%s%s",
                 self.step, self.epoch, row["lr"], train_loss, val, metrics["val_energy_mae_mev_atom"],
                 metrics["val_force_mae_mev_ang"], "" if stress is None else f"  S {stress:.3f} GPa",
                 "  *" if self.best_step == self.step else "")
        self.stop_reason = self._budget_stop_reason()
        return self.stop_reason is not None

    def _budget_stop_reason(self) -> str | None:
        """Why training ends after the validation just recorded (None: it goes on); one rule for a running and
        a resumed run."""
        s = self.settings
        if self.bad_validations >= s.patience:
            return "early_stopping"
        if self.step >= s.max_steps:
            return "max_steps"
        if s.max_wall_time_s is not None and self.wall_time >= s.max_wall_time_s:
            return "max_wall_time"
        return None

    # -- checkpoints ------------------------------------------------------------------------------------
    def _state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "generator": self.generator.get_state(),
                "step": self.step, "epoch": self.epoch, "order": self.order, "position": self.position,
                "wall_time": self.wall_time, "history": self.history,
                "best_val": self.best_val, "best_step": self.best_step, "best_state": self.best_state,
                "bad_validations": self.bad_validations,
                "ema": self.ema.state_dict() if self.ema is not None else None}

    def save_checkpoint(self) -> None:
        if self.checkpoint_path is not None:
            with atomic_path(self.checkpoint_path) as tmp:
                torch.save(self._state(), tmp)

    def load_checkpoint(self) -> bool:
        if self.checkpoint_path is None or not self.checkpoint_path.is_file():
            return False
        state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        # map_location moved every tensor to the training device; the generator state must stay a CPU tensor
        self.generator.set_state(state["generator"].cpu())
        for key in ("step", "epoch", "order", "position", "history", "best_val", "best_step", "best_state",
                    "bad_validations"):
            setattr(self, key, state[key])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.wall_time = state["wall_time"]
        self.resumed_from_step = self.step
        log.info("resumed from checkpoint %s at step %d", self.checkpoint_path, self.step)
        return True

    # -- loop -------------------------------------------------------------------------------------------
    def fit(self) -> None:
        """Train until early stopping or ``max_steps``; SIGTERM/SIGINT checkpoint and raise."""
        handlers = {}

        def on_signal(signum, frame):
            self.signal_received = signum

        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                handlers[signum] = signal.signal(signum, on_signal)
            except ValueError:  # not the main thread: leave signals alone
                pass
        try:
            self._fit()
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)

    def _fit(self) -> None:
        s = self.settings
        if not self.load_checkpoint():
            if self._record(float("nan")):
                return
        elif self._should_stop_after_resume():
            return
        running, n_running = 0.0, 0
        while True:
            if self.position == 0 or self.order is None:
                self.order = torch.randperm(len(self.train_set), generator=self.generator).tolist()
            # drop_last: every step sees a full batch, so step costs and gradient noise stay uniform
            while self.position + self.batch_size <= len(self.order):
                t0 = time.perf_counter()
                self.model.train()
                batch = self.train_set.batch(self.order[self.position:self.position + self.batch_size],
                                             self.device)
                loss = training_loss(s, self.model(batch), batch)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self._warm_up()
                if s.gradient_clip_norm is not None:
                    # An outlier batch then enters the optimiser (and its moment estimates) with a bounded gradient.
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.gradient_clip_norm)
                self.optimizer.step()
                if self.ema is not None:
                    self.ema.update_parameters(self.model)
                self.step += 1
                self.position += self.batch_size
                running += float(loss.detach())
                n_running += 1
                self.wall_time += time.perf_counter() - t0
                if self.position + self.batch_size > len(self.order):  # epoch complete
                    self.epoch += 1
                    self.position = 0
                if self.step % s.val_interval == 0 or self.step >= s.max_steps:
                    stop = self._record(running / n_running)
                    running, n_running = 0.0, 0
                    self.save_checkpoint()
                    if stop:
                        return
                if self.signal_received is not None:
                    self.save_checkpoint()
                    raise TrainingInterrupted(f"signal {self.signal_received} received at step {self.step}; "
                                              f"checkpoint written to {self.checkpoint_path}")
                if self.position == 0:
                    break

    def _warm_up(self) -> None:
        """Set the learning rate of the coming step during the warm-up: peak × k / warmup_steps for step k.

        A fresh Adam state takes full-size steps whatever the gradient's scale, which knocks a converged model
        (stage two, fine-tuning) far off its start; ramping the rate up avoids that transient. A function of the
        step count only, so a resumed run continues the ramp exactly. (torch's LinearLR would do the same ramp but
        adds scheduler state to checkpoint and chains with ReduceLROnPlateau through the shared ``lr`` field.)"""
        warmup = self.settings.warmup_steps
        if self.step < warmup:
            for group in self.optimizer.param_groups:
                group["lr"] = self.peak_lr * (self.step + 1) / warmup

    def _should_stop_after_resume(self) -> bool:
        """A checkpoint written at the final validation: re-derive the stop decision without retraining.

        Only a checkpoint written at a validation can be final. One written on a signal between validations
        continues to the next validation, as the uninterrupted run does (its wall time may already be past the
        cap, which the uninterrupted run checks only there)."""
        last = self.history[-1] if self.history else None
        if last is None or last["step"] != self.step:
            return False
        if not math.isfinite(last["val_loss"]):
            self.stop_reason = "non_finite_loss"
        else:
            self.stop_reason = self._budget_stop_reason()
        return self.stop_reason is not None


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def settings_hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_training(*, regime: str, pool: str | Path, splits: str | Path, size: str, element: str, seed: int,
                 model_config: dict, training_config: dict, out_model: str | Path, out_history: str | Path,
                 out_summary: str | Path, source_model: str | Path | None = None,
                 source_element: str | None = None, metadata: dict | None = None) -> dict:
    """Train one model and write its best weights, validation history and summary (all atomically).

    ``regime``: ``source`` and ``scratch`` start from a random initialisation seeded by ``seed``; ``transfer``
    starts from ``source_model`` (see :func:`mlp_transfer.models.init_transfer_model`). The checkpoint beside
    ``out_model`` makes a killed run resume where it stopped.
    """
    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}; choose one of {REGIMES}")
    settings = TrainSettings.from_config(training_config)
    torch.set_num_threads(settings.threads)
    split = json.loads(Path(splits).read_text())
    if str(size) not in split["train"]:
        raise ValueError(f"{splits} has no training subset of size {size!r} (has {sorted(split['train'])})")
    frames = ase.io.read(str(pool), index=":", format="extxyz")
    train_frames = [frames[i] for i in split["train"][str(size)]]
    val_frames = [frames[i] for i in split["validation"]]
    offset = mean_energy_per_atom(train_frames)

    torch.manual_seed(seed)
    if regime == "transfer":
        if source_model is None or source_element is None:
            raise ValueError("transfer needs source_model and source_element")
        source = models.load_model(source_model)
        model = models.init_transfer_model(source, source_element, element,
                                           training_config.get("embedding_init", "copy"), offset, seed)
        lr = settings.transfer_lr
    else:
        model = models.build_model(**model_config)
        models.set_energy_offset(model, offset)
        lr = settings.lr

    # Labels are checked before anything is written: a missing stress is an error, not a partial run.
    with_stress = settings.trains_stress
    try:
        train_set = StructureSet(train_frames, model_config["cutoff"], with_stress=with_stress)
        val_set = StructureSet(val_frames, model_config["cutoff"], with_stress=with_stress)
    except MissingStressError as exc:
        key, weight = (("training.loss_weights.stress", settings.stress_weight) if settings.stress_weight > 0 else
                       ("training.stage_two.loss_weights.stress", settings.stage_two_settings().stress_weight))
        raise ValueError(f"{pool}: {key} is {weight}, but a structure of the training or validation subset has no "
                         f"stress label ({exc}); train on a dataset with stresses (mlearn, generated SW data) or set "
                         "the stress weight of every stage to 0") from None
    if with_stress:
        models.set_stress_output(model, True)
    elif models.predicts_stress(model):
        # a source pre-trained on stresses: the target run does not train them, so it neither computes them
        # (the strain derivative costs time every step) nor saves a model that predicts untrained stresses
        models.set_stress_output(model, False)

    checkpoint = Path(out_model).with_name("checkpoint.pt")
    # A checkpoint is resumed only by the identical run: same settings, subset, data and source model. The
    # thread count is how the run executes, not what it computes (a retried SLURM job may get other cores),
    # so it does not discard the work done.
    run_settings = {key: value for key, value in training_config.items() if key not in EXECUTION_ONLY_KEYS}
    fingerprint = settings_hash({"regime": regime, "element": element, "size": size, "seed": seed,
                                 "model": model_config, "training": run_settings,
                                 "train": split["train"][str(size)], "validation": split["validation"],
                                 "pool_sha256": file_sha256(pool),
                                 "source_sha256": file_sha256(source_model) if source_model else None})
    fingerprint_file = checkpoint.with_suffix(".fingerprint")
    checkpoint_two = checkpoint.with_name("checkpoint_stage_two.pt")
    # One fingerprint covers both stages' checkpoints: a stage-two checkpoint of other settings must not be
    # resumed after a fresh stage one.
    stale = [path for path in (checkpoint, checkpoint_two) if path.is_file()]
    if stale and (not fingerprint_file.is_file() or fingerprint_file.read_text() != fingerprint):
        for path in stale:
            log.warning("discarding checkpoint %s written for different settings", path)
            path.unlink()
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    fingerprint_file.write_text(fingerprint)

    log.info("%s training on %s: %d train / %d validation structures, lr %.1e, %d parameters%s", regime, element,
             len(train_frames), len(val_frames), lr, models.count_parameters(model),
             ", stress trained" if with_stress else "")
    trainer = Trainer(model, train_set, val_set, settings, lr, seed, checkpoint)
    trainer.fit()
    model.load_state_dict(trainer.best_state)
    result = _stage_result(trainer)

    stage_two = settings.stage_two_settings()
    if stage_two is not None:
        stage_two_lr = settings.stage_two["lr"]
        log.info("stage two from step %d's weights: lr %.1e, loss weights energy %g, forces %g, stress %g",
                 trainer.best_step, stage_two_lr, stage_two.energy_weight, stage_two.forces_weight,
                 stage_two.stress_weight)
        # Its checkpoint is resumed only after the first stage's (kept until the run ends) has been replayed.
        if trainer.signal_received is not None:
            # The signal came during stage one's last validation, after its checkpoint: stop here, not in stage two
            # (the rerun replays stage one from that checkpoint and starts stage two).
            raise TrainingInterrupted(f"signal {trainer.signal_received} received at the end of stage one "
                                      f"(step {trainer.step}); checkpoint written to {checkpoint}")
        trainer_two = Trainer(model, train_set, val_set, stage_two, stage_two_lr, seed, checkpoint_two)
        trainer_two.fit()
        model.load_state_dict(trainer_two.best_state)
        result = _join_stages(trainer, trainer_two, stage_two_lr)

    model.cpu()
    best = result["best_row"]
    summary = {**(metadata or {}), "regime": regime, "element": element, "n_train": len(train_frames),
               "n_validation": len(val_frames), "seed": seed, "lr": lr, "energy_offset_ev_atom": offset,
               "best_step": result["best_step"], "best_val_loss": result["best_val_loss"],
               "best_val_energy_mae_mev_atom": best["val_energy_mae_mev_atom"],
               "best_val_force_mae_mev_ang": best["val_force_mae_mev_ang"],
               **({"best_val_stress_mae_gpa": best[STRESS_HISTORY_COLUMN]} if with_stress else {}),
               "stopped_step": result["stopped_step"], "stop_reason": result["stop_reason"],
               "train_wall_time_s": result["wall_time"], "resumed_from_step": result["resumed_from_step"],
               **({"stage_one": result["stage_one"]} if "stage_one" in result else {}),
               "n_parameters": models.count_parameters(model), "threads": settings.threads,
               "device": settings.device, "torch_version": torch.__version__,
               # which card: timings of GPU runs are comparable only on the same one
               "device_name": torch.cuda.get_device_name(trainer.device) if trainer.device.type == "cuda" else None}
    with atomic_path(out_history) as tmp:
        columns = HISTORY_COLUMNS + ([STRESS_HISTORY_COLUMN] if with_stress else [])
        columns += [STAGE_HISTORY_COLUMN] if stage_two is not None else []
        pd.DataFrame(result["history"], columns=columns).to_csv(tmp, index=False)
    write_json(out_summary, summary)
    models.save_model(model, out_model)  # last: its presence marks the run finished
    for path in (checkpoint, checkpoint_two, fingerprint_file):
        path.unlink(missing_ok=True)
    log.info("%s done: best step %d (val E %.2f meV/atom, F %.1f meV/A), stopped at %d (%s), %.1f s", regime,
             result["best_step"], best["val_energy_mae_mev_atom"], best["val_force_mae_mev_ang"],
             result["stopped_step"], result["stop_reason"], result["wall_time"])
    return summary


def _stage_result(trainer: Trainer) -> dict:
    """What the summary and history take from a one-stage run."""
    return {"history": trainer.history, "best_step": trainer.best_step, "best_val_loss": trainer.best_val,
            "best_row": next(row for row in trainer.history if row["step"] == trainer.best_step),
            "stopped_step": trainer.step, "stop_reason": trainer.stop_reason, "wall_time": trainer.wall_time,
            "resumed_from_step": trainer.resumed_from_step}


def _join_stages(one: Trainer, two: Trainer, stage_two_lr: float) -> dict:
    """One history and summary for a two-stage run, on one step and wall-time axis.

    Stage two's steps and wall time continue stage one's. Its step-0 validation re-measures stage one's best
    weights (under the new loss weights) and is left out of the history, where it would repeat a step number.
    If stage two never beats that start, the saved weights are stage one's best, and so are the best step and
    errors; the best validation loss is always stage two's (the selection criterion of the saved model).
    """
    first = _stage_result(one)
    history = [{**row, STAGE_HISTORY_COLUMN: 1} for row in one.history]
    history += [{**row, "step": row["step"] + one.step, "wall_time_s": round(row["wall_time_s"] + one.wall_time, 4),
                 "epoch": row["epoch"] + one.epoch, STAGE_HISTORY_COLUMN: 2}
                for row in two.history if row["step"] > 0]
    if two.best_step == 0:
        best_step, best_row = first["best_step"], first["best_row"]
    else:
        best_step = two.best_step + one.step
        best_row = next(row for row in history if row["step"] == best_step)
    resumed = (one.resumed_from_step if two.resumed_from_step is None
               else two.resumed_from_step + one.step)
    stage_one = {key: first[key] for key in ("best_step", "best_val_loss", "stopped_step", "stop_reason")}
    stage_one.update(best_val_energy_mae_mev_atom=first["best_row"]["val_energy_mae_mev_atom"],
                     best_val_force_mae_mev_ang=first["best_row"]["val_force_mae_mev_ang"],
                     train_wall_time_s=one.wall_time)
    return {"history": history, "best_step": best_step, "best_val_loss": two.best_val, "best_row": best_row,
            "stopped_step": two.step + one.step, "stop_reason": two.stop_reason,
            "wall_time": one.wall_time + two.wall_time, "resumed_from_step": resumed,
            "stage_one": {**stage_one, "stage_two_lr": stage_two_lr}}


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlp-transfer train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regime", choices=REGIMES, required=True)
    parser.add_argument("--pool", required=True, help="training pool of the element (extxyz)")
    parser.add_argument("--splits", required=True, help="split JSON from 'mlp-transfer split'")
    parser.add_argument("--size", required=True, help="training subset size key in the split file")
    parser.add_argument("--element", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--config", required=True, help="workflow config YAML (its 'model' and 'training')")
    parser.add_argument("--source-model")
    parser.add_argument("--source-element")
    parser.add_argument("--out-dir", required=True, help="writes model.pt, history.csv, summary.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from mlp_transfer.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out_dir)
    run_training(regime=args.regime, pool=args.pool, splits=args.splits, size=args.size, element=args.element,
                 seed=args.seed, model_config=config["model"], training_config=config["training"],
                 out_model=out / "model.pt", out_history=out / "history.csv", out_summary=out / "summary.json",
                 source_model=args.source_model, source_element=args.source_element)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
