"""Error evaluation of a trained model on test sets.

Errors are reported per test set (the ``test_set`` label each test structure carries, e.g. one per MD
temperature): energy MAE/RMSE per atom (meV/atom, on E/N of each structure) and force MAE/RMSE per
Cartesian component (meV/Å). With ``group_by`` (an ``atoms.info`` key such as mlearn's ``group``: AIMD-NVT,
Vacancy, Elastic, Surface...) each test set's row (group ``all``) is followed by one row per value of that key,
which shows where the error of a whole test set comes from. A model trained on stresses
(``training.loss_weights.stress``) on test structures that all carry one also gets the stress MAE/RMSE per
component (GPa).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import ase.io
import numpy as np
import pandas as pd
import torch
from ase import units

from mlp_transfer import models
from mlp_transfer.batching import MAX_BATCH_ATOMS, StructureSet, full_stress
from mlp_transfer.io import write_run_table

log = logging.getLogger(__name__)

METRIC_COLUMNS = ["energy_mae_mev_atom", "energy_rmse_mev_atom", "force_mae_mev_ang", "force_rmse_mev_ang"]


def predict_outputs(model, frames, cutoff: float, batch_size: int = 8, device: str = "cpu",
                    max_atoms: int | None = MAX_BATCH_ATOMS):
    """Energies (eV), per-structure force arrays (eV/Å) and, for a model that predicts them, stresses ((n, 3, 3)
    eV/Å^3, ASE's sign; else None), in one pass over ``frames``.

    Batches hold at most ``batch_size`` structures and ``max_atoms`` atoms (None: no atom limit).
    """
    model = model.to(device).eval()
    structures = StructureSet(frames, cutoff, with_targets=False)
    energies, forces, stresses = [], [], []
    with models.frozen(model):
        for batch in structures.batches(batch_size, device, max_atoms):
            pred = model(batch)  # forces come from autograd: no torch.no_grad / inference_mode here
            energies.append(pred["energy"].detach().cpu().double().numpy())
            counts = batch["_n_atoms"].cpu().numpy()
            forces.extend(np.split(pred["forces"].detach().cpu().double().numpy(), np.cumsum(counts)[:-1]))
            if "stress" in pred:
                stresses.append(pred["stress"].detach().cpu().double().numpy())
    return np.concatenate(energies), forces, (np.concatenate(stresses) if stresses else None)


def predict(model, frames, cutoff: float, batch_size: int = 8, device: str = "cpu",
            max_atoms: int | None = MAX_BATCH_ATOMS):
    """Energies (eV) and per-structure force arrays (eV/Å) predicted for ``frames`` (see :func:`predict_outputs`)."""
    energies, forces, _ = predict_outputs(model, frames, cutoff, batch_size, device, max_atoms)
    return energies, forces


def stress_metrics(ref_stress, pred_stress) -> dict:
    """MAE and RMSE of the stress components (GPa); ``ref_stress`` in Voigt or 3x3 form, eV/Å^3."""
    ref = np.array([full_stress(s) for s in ref_stress])
    ds = (np.asarray(pred_stress) - ref).reshape(-1) / units.GPa
    return {"stress_mae_gpa": float(np.mean(np.abs(ds))), "stress_rmse_gpa": float(np.sqrt(np.mean(ds ** 2)))}


def error_metrics(ref_energy, pred_energy, n_atoms, ref_forces, pred_forces) -> dict:
    """MAE and RMSE of E/N (meV/atom) and of force components (meV/Å)."""
    de = (np.asarray(pred_energy) - np.asarray(ref_energy)) / np.asarray(n_atoms)
    df = np.concatenate([(p - r).reshape(-1) for p, r in zip(pred_forces, ref_forces)])
    return {"energy_mae_mev_atom": 1000 * float(np.mean(np.abs(de))),
            "energy_rmse_mev_atom": 1000 * float(np.sqrt(np.mean(de ** 2))),
            "force_mae_mev_ang": 1000 * float(np.mean(np.abs(df))),
            "force_rmse_mev_ang": 1000 * float(np.sqrt(np.mean(df ** 2)))}


def labelled_subsets(frames, group_by: str | None = None) -> list[tuple[dict, np.ndarray]]:
    """The labelled subsets errors are reported on: ``({"test_set": label}, indices)`` per test set label
    (frames without one count as ``test``), in first-appearance order; with ``group_by``, each test set's
    entry gets ``group: "all"`` and is followed by one entry per value of ``atoms.info[group_by]``.

    A frame without that key is an error (a breakdown that silently drops structures would mislead).
    """
    labels = np.array([str(atoms.info.get("test_set", "test")) for atoms in frames])
    if group_by is not None:
        missing = [i for i, atoms in enumerate(frames) if group_by not in atoms.info]
        if missing:
            raise ValueError(f"{len(missing)} test structures (first: index {missing[0]}) have no info key "
                             f"{group_by!r} to group by")
        groups = np.array([str(atoms.info[group_by]) for atoms in frames])
    subsets = []
    for label in dict.fromkeys(labels):
        idx = np.flatnonzero(labels == label)
        if group_by is None:
            subsets.append(({"test_set": label}, idx))
            continue
        subsets.append(({"test_set": label, "group": "all"}, idx))
        for group in dict.fromkeys(groups[idx]):
            subsets.append(({"test_set": label, "group": group}, idx[groups[idx] == group]))
    return subsets


def read_test_frames(test_path: str | Path, group_by: str | None = None) -> list:
    """The structures of a test file, checked for the ``group_by`` key before any model runs on them; a
    missing key is a ``ValueError`` naming the file."""
    frames = ase.io.read(str(test_path), index=":", format="extxyz")
    try:
        labelled_subsets(frames, group_by)
    except ValueError as exc:
        raise ValueError(f"{test_path}: {exc}") from exc
    return frames


def evaluate_model(model, frames, cutoff: float, device: str = "cpu", group_by: str | None = None) -> pd.DataFrame:
    """One row per test set label (frames without a label count as ``test``); see :func:`labelled_subsets`."""
    energies, forces, stresses = predict_outputs(model, frames, cutoff, device=device)
    if not all(atoms.calc.results.get("stress") is not None for atoms in frames):
        stresses = None  # no stress labels to compare with
    rows = []
    for labels, idx in labelled_subsets(frames, group_by):
        row = {**labels, "n_structures": len(idx), **error_metrics(
            [frames[i].calc.results["energy"] for i in idx], energies[idx], [len(frames[i]) for i in idx],
            [frames[i].calc.results["forces"] for i in idx], [forces[i] for i in idx])}
        if stresses is not None:
            row.update(stress_metrics([frames[i].calc.results["stress"] for i in idx], stresses[idx]))
        rows.append(row)
    return pd.DataFrame(rows)


def run_evaluation(model_path: str | Path, test_path: str | Path, out_csv: str | Path, cutoff: float,
                   metadata: dict | None = None, summary_path: str | Path | None = None,
                   device: str = "cpu", threads: int = 1, group_by: str | None = None) -> pd.DataFrame:
    """Evaluate a saved model on a test file and write the per-test-set CSV (metadata columns first).

    ``n_train`` is taken from the training run's summary when given, so the ``all`` size resolves to
    the number of structures actually used. ``group_by``: see :func:`labelled_subsets`.
    """
    torch.set_num_threads(threads)
    frames = read_test_frames(test_path, group_by)
    model = models.load_model(model_path, device)
    table = evaluate_model(model, frames, cutoff, device, group_by)
    meta = dict(metadata or {})
    if summary_path is not None:
        import json

        meta["n_train"] = json.loads(Path(summary_path).read_text())["n_train"]
    table = write_run_table(table, out_csv, meta)
    for row in table.itertuples():
        log.info("%s%s: E MAE %.2f meV/atom, F MAE %.1f meV/A (%d structures)", row.test_set,
                 f" [{row.group}]" if group_by else "", row.energy_mae_mev_atom, row.force_mae_mev_ang,
                 row.n_structures)
    return table


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlp-transfer evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--test", required=True, help="test structures (extxyz)")
    parser.add_argument("--cutoff", type=float, required=True)
    parser.add_argument("--out", required=True, help="output CSV")
    parser.add_argument("--summary", help="training summary.json (for n_train)")
    parser.add_argument("--meta", nargs="*", default=[], metavar="KEY=VALUE",
                        help="columns to prepend, e.g. dataset=sw regime=transfer seed=0")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--group-by", metavar="INFO_KEY",
                        help="also report each group of this atoms.info key (e.g. group for mlearn data)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    meta = dict(item.split("=", 1) for item in args.meta)
    try:
        run_evaluation(args.model, args.test, args.out, args.cutoff, meta, args.summary, args.device,
                       group_by=args.group_by)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
