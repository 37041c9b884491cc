"""RDF/ADF of an ideal diamond crystal and the distribution distances."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from mlp_transfer.structure import adf, rdf, tv_distance, w1_distance

A = 5.43


def _diamond():
    return bulk("Si", "diamond", a=A, cubic=True).repeat(2)


def test_rdf_of_ideal_diamond_has_shells_at_known_distances_and_coordinations():
    r, g, n = rdf([_diamond()], r_max=5.0, n_bins=500)
    peaks = r[g > 0]
    shells = [A * np.sqrt(3) / 4, A / np.sqrt(2), A * np.sqrt(11) / 4]  # the next one, a, is beyond 5 A
    # every non-empty bin lies on one of the shells, and every shell is present
    assert all(min(abs(p - s) for s in shells) < 0.01 for p in peaks)
    assert all(np.any(np.abs(peaks - s) < 0.01) for s in shells)
    first, second, third = (np.searchsorted(r, s) for s in shells[:3])
    assert n[first + 1] == pytest.approx(4)   # 4 nearest neighbours at a*sqrt(3)/4
    assert n[second + 1] == pytest.approx(16)  # + 12 second neighbours at a/sqrt(2)
    assert n[third + 1] == pytest.approx(28)  # + 12 third neighbours at a*sqrt(11)/4
    # normalisation: the integral of 4 pi r^2 rho g(r) dr is the coordination number
    rho = 64 / _diamond().get_volume()
    dr = r[1] - r[0]
    assert np.sum(4 * np.pi * r[: second + 2] ** 2 * rho * g[: second + 2] * dr) == pytest.approx(16, rel=0.02)


def test_rdf_allows_r_max_beyond_half_the_cell():
    one_cell = bulk("Si", "diamond", a=A, cubic=True)  # 8 atoms, half width 2.7 A
    _, _, n = rdf([one_cell], r_max=4.6, n_bins=92)
    assert n[-1] == pytest.approx(28)


def test_adf_of_ideal_diamond_is_all_tetrahedral():
    theta, p = adf([_diamond()], cutoff=1.3 * A * np.sqrt(3) / 4, n_bins=180)
    assert np.sum(p) * (theta[1] - theta[0]) == pytest.approx(1.0)
    tetrahedral = np.degrees(np.arccos(-1 / 3))
    assert np.all(np.abs(theta[p > 0] - tetrahedral) < 0.5)


def test_rattled_crystal_broadens_but_keeps_the_first_peak():
    atoms = _diamond()
    atoms.rattle(0.05, seed=0)
    r, g, _ = rdf([atoms], 4.0, 80)
    theta, p = adf([atoms], 1.3 * A * np.sqrt(3) / 4, 90)
    first = r < 3.0  # g(r) of the 12-atom second shell is higher than of the 4-atom first
    assert abs(r[first][np.argmax(g[first])] - A * np.sqrt(3) / 4) < 0.1
    assert abs(theta[np.argmax(p)] - 109.47) < 4
    assert np.count_nonzero(p) > 2


def test_distances_identical_disjoint_and_shifted():
    x = np.linspace(0.05, 9.95, 100)
    f = np.exp(-((x - 3) / 0.3) ** 2)
    g = np.exp(-((x - 7) / 0.3) ** 2)
    assert tv_distance(x, f, f) == pytest.approx(0.0)
    assert tv_distance(x, f, 5 * f) == pytest.approx(0.0)  # normalised: scale does not matter
    assert tv_distance(x, f, g) == pytest.approx(1.0, abs=1e-9)
    assert w1_distance(x, f, g) == pytest.approx(4.0, abs=0.01)
    half = 0.5 * (f / f.sum() + g / g.sum())
    assert tv_distance(x, f, half) == pytest.approx(0.5, abs=1e-9)
    with pytest.raises(ValueError):
        tv_distance(x, f, np.zeros_like(f))
