"""Stability of MD runs: the documented failure criterion, checked per replica at every MD step.

A replica **fails** at the first checked step at which any of these holds (checked in this order, the
first that applies is the recorded ``reason``):

1. ``non_finite``: the potential energy, a force component, a position or a momentum is NaN or infinite;
2. ``min_distance``: the shortest interatomic distance (minimum image) is below
   ``min_distance_fraction`` x the ideal nearest-neighbour distance of the starting diamond cell
   (a·√3/4; atoms that close have fallen into an unphysical, usually collapsing, region of the potential);
3. ``temperature``: after ``equilibration_steps``, the kinetic temperature averaged over the last
   ``temperature_window`` steps lies outside ``[band_low, band_high]`` x the thermostat temperature
   (a run that heats up or freezes despite the thermostat is following unphysical forces). Averaging
   over a short window keeps the natural fluctuations of small cells (relative width sqrt(2/3N)) from
   triggering it; during equilibration the band is not checked because a cell started from the perfect
   lattice first loses about half its kinetic energy to the potential energy.

Criteria 1 and 2 apply from the first step. A replica that never fails is ``stable`` and its time to
failure is the full run length. Times are in ps: the time of the failing step, ``step * dt``.

An unstable run is a result of the study, not an error: the MD driver records it and goes on with the
other replicas (a failed replica is frozen at its starting configuration so that it cannot disturb the
batched neighbour list or the remaining replicas), and it stops early only when every replica has failed.

The checks run on torch tensors on the simulation's device (no copy to the host except a few booleans);
the minimum-image distance uses fractional coordinates, which is exact for the distances that matter
here (much shorter than half the cell width) in the cubic and mildly skewed cells of this study.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

REASONS = ("non_finite", "min_distance", "temperature")
STABLE = "stable"


@dataclass(frozen=True)
class StabilityCriteria:
    """Failure thresholds (see the module docstring)."""

    min_distance_fraction: float = 0.6
    band_low: float = 0.5
    band_high: float = 2.0
    temperature_window: int = 50  # steps
    equilibration_steps: int = 250
    check_interval: int = 10  # steps between minimum-distance checks (finiteness: every step)

    def __post_init__(self):
        if not 0 < self.min_distance_fraction < 1:
            raise ValueError(f"min_distance_fraction must be in (0, 1), got {self.min_distance_fraction}")
        if not 0 < self.band_low < 1 < self.band_high:
            raise ValueError(f"temperature band must satisfy 0 < low < 1 < high, got "
                             f"[{self.band_low}, {self.band_high}]")
        if self.temperature_window < 1 or self.check_interval < 1 or self.equilibration_steps < 0:
            raise ValueError("temperature_window and check_interval must be >= 1, equilibration_steps >= 0")

    def as_dict(self) -> dict:
        return asdict(self)


def min_distances(positions: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """Shortest minimum-image interatomic distance of each replica.

    ``positions``: (R, N, 3); ``cells``: (R, 3, 3) with lattice vectors as rows. Returns (R,).
    """
    n = positions.shape[1]
    inv = torch.linalg.inv(cells)
    diff = positions[:, :, None, :] - positions[:, None, :, :]  # (R, N, N, 3)
    frac = torch.einsum("rijk,rkl->rijl", diff, inv)
    frac = frac - torch.round(frac)
    cart = torch.einsum("rijk,rkl->rijl", frac, cells)
    dist = torch.linalg.norm(cart, dim=-1)
    eye = torch.eye(n, dtype=torch.bool, device=positions.device)
    dist = dist.masked_fill(eye, float("inf"))
    return dist.amin(dim=(1, 2))


class ReplicaMonitor:
    """Tracks the failure state of ``n_replicas`` independent replicas of one MD run.

    Call :meth:`check` with the state after each step (all quantities in eV, Å, K); it returns the mask of
    replicas that failed at this step. ``failed_step``/``reason`` hold the first failure of each replica.
    """

    def __init__(self, n_replicas: int, temperature: float, nn_distance: float, criteria: StabilityCriteria,
                 device: str | torch.device = "cpu"):
        self.n_replicas = int(n_replicas)
        self.temperature = float(temperature)
        self.nn_distance = float(nn_distance)
        self.criteria = criteria
        self.device = torch.device(device)
        self.alive = torch.ones(self.n_replicas, dtype=torch.bool, device=self.device)
        self.failed_step = [None] * self.n_replicas
        self.reason = [STABLE] * self.n_replicas
        self.failure_detail = [""] * self.n_replicas
        self._window = torch.zeros(criteria.temperature_window, self.n_replicas, dtype=torch.float64,
                                   device=self.device)
        self._n_window = 0
        self.last_min_distance = torch.full((self.n_replicas,), float("nan"), dtype=torch.float64,
                                            device=self.device)

    @property
    def min_distance_threshold(self) -> float:
        return self.criteria.min_distance_fraction * self.nn_distance

    def record_temperature(self, kinetic_temperature: torch.Tensor) -> None:
        """Add one step's kinetic temperatures (R,) to the moving window (call every step)."""
        self._window[self._n_window % self.criteria.temperature_window] = kinetic_temperature.detach().double()
        self._n_window += 1

    def window_temperature(self) -> torch.Tensor:
        n = min(self._n_window, self.criteria.temperature_window)
        if n == 0:
            return torch.full((self.n_replicas,), float("nan"), dtype=torch.float64, device=self.device)
        return self._window[:n].mean(dim=0)

    def check(self, step: int, energy: torch.Tensor, forces: torch.Tensor, positions: torch.Tensor,
              momenta: torch.Tensor, cells: torch.Tensor, distances: bool | torch.Tensor = True) -> torch.Tensor:
        """Apply the criteria after ``step`` steps; returns the (R,) mask of replicas failing now.

        ``energy`` (R,), ``forces``/``positions``/``momenta`` (R, N, 3), ``cells`` (R, 3, 3).
        ``distances=False`` skips the O(N^2) minimum-distance criterion (the caller runs it every
        ``check_interval`` steps); a tensor (R,) gives each replica's minimum distance already known (e.g.
        from a model's neighbour pairs), so the criterion costs nothing. Finiteness and temperature are cheap
        and always checked.
        """
        r = self.n_replicas
        finite = (torch.isfinite(energy.reshape(r, -1)).all(dim=1)
                  & torch.isfinite(forces.reshape(r, -1)).all(dim=1)
                  & torch.isfinite(positions.reshape(r, -1)).all(dim=1)
                  & torch.isfinite(momenta.reshape(r, -1)).all(dim=1))
        if isinstance(distances, torch.Tensor) or distances:
            if isinstance(distances, torch.Tensor):
                dmin = distances.detach().to(torch.float64).reshape(r)
            else:
                safe_positions = torch.where(finite[:, None, None], positions, torch.zeros_like(positions))
                dmin = min_distances(safe_positions.double(), cells.double())
            dmin = torch.where(finite, dmin, torch.full_like(dmin, float("nan")))
            self.last_min_distance = dmin
            too_close = finite & (dmin < self.min_distance_threshold)
        else:
            dmin = self.last_min_distance
            too_close = torch.zeros_like(finite)
        out_of_band = torch.zeros_like(finite)
        t_window = self.window_temperature()
        if step > self.criteria.equilibration_steps and self._n_window >= self.criteria.temperature_window:
            low = self.criteria.band_low * self.temperature
            high = self.criteria.band_high * self.temperature
            out_of_band = finite & ~too_close & ((t_window < low) | (t_window > high))
        failing = self.alive & (~finite | too_close | out_of_band)
        if bool(failing.any()):
            for i in torch.nonzero(failing).flatten().tolist():
                self.failed_step[i] = int(step)
                if not bool(finite[i]):
                    self.reason[i], self.failure_detail[i] = "non_finite", "non-finite energy, force or coordinate"
                elif bool(too_close[i]):
                    self.reason[i] = "min_distance"
                    self.failure_detail[i] = (f"distance {float(dmin[i]):.3f} A < {self.min_distance_threshold:.3f} A")
                else:
                    self.reason[i] = "temperature"
                    self.failure_detail[i] = (f"mean T {float(t_window[i]):.0f} K outside "
                                              f"[{self.criteria.band_low * self.temperature:.0f}, "
                                              f"{self.criteria.band_high * self.temperature:.0f}] K")
            self.alive = self.alive & ~failing
        return failing

    @property
    def all_failed(self) -> bool:
        return not bool(self.alive.any())

    def records(self, n_steps: int, timestep_fs: float) -> list[dict]:
        """One dict per replica: stable, steps and time (ps) to failure (or the run length), reason."""
        rows = []
        for i in range(self.n_replicas):
            step = n_steps if self.failed_step[i] is None else self.failed_step[i]
            rows.append({"replica": i, "stable": self.failed_step[i] is None,
                         "steps_to_failure": int(step), "time_to_failure_ps": step * timestep_fs / 1000.0,
                         "reason": self.reason[i], "detail": self.failure_detail[i]})
        return rows


def nearest_neighbour_distance(lattice_constant: float) -> float:
    """Ideal nearest-neighbour distance of cubic diamond, a·√3/4."""
    return float(lattice_constant) * np.sqrt(3.0) / 4.0
