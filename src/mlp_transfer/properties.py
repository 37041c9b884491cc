"""Static out-of-target properties of a potential: equation of state, elastic constants, vacancy, phonons.

Every function takes an ASE calculator, so the reference (the Stillinger-Weber potential of the target
element, with the same matscipy implementation that labelled the data) and every trained model (a
``schnetpack.interfaces.SpkCalculator`` around the saved model, in float64) go through exactly the same
code. The models were trained only on energies and forces of bulk cells near the diamond structure; none of
these properties was a training target.

Definitions (all on the cubic diamond structure of one element):

``lattice_constant`` (Å), ``bulk_modulus`` (GPa)
    Birch-Murnaghan fit (``ase.eos.EquationOfState``) of E(V) of the 8-atom cubic cell, in two passes: a
    coarse scan of ±``2*span`` around the starting guess (the reference's lattice constant; moved until it
    brackets the lowest energy), then ±``span`` of lattice constant around the first fit (SJEOS if the
    Birch-Murnaghan fit fails). Hydrostatic strain leaves the diamond positions fixed by symmetry.
``cohesive_energy`` (eV/atom)
    E_atom − E0/N, with E0/N the fitted minimum energy per atom and E_atom the calculator's energy of one
    isolated atom (a lone atom in a 20 Å non-periodic box). For SW, E_atom = 0. For an ML model E_atom is
    the network's prediction for an atom without neighbours (embedding + offset), a configuration never seen
    in training: the cohesive energy therefore also tests the model's extrapolation to the isolated atom.
``C11``, ``C12``, ``C44``, ``C44_unrelaxed`` (GPa)
    Second derivatives of the energy density at the calculator's own a0 (zero pressure), from polynomial
    (degree 4) fits of E(e)/V0 over 2*``points``+1 finite strains e in [−``max_strain``, +``max_strain``]:
    uniaxial e_xx = e gives C11 (E/V0 = C11 e²/2), biaxial e_xx = e_yy = e gives C11 + C12
    (E/V0 = (C11 + C12) e²), the engineering shear e_yz + e_zy = e (Voigt e4) gives C44 (E/V0 = C44 e²/2).
    Normal strains along the cube axes leave the atoms at symmetric sites; under shear the two fcc
    sublattices shift (Kleinman internal relaxation), so ``C44`` relaxes the positions at fixed strained cell
    (L-BFGS to ``fmax``) and ``C44_unrelaxed`` (C44^0) does not.
``vacancy_formation`` and ``vacancy_formation_unrelaxed`` (eV)
    E_v = E(N−1) − (N−1)/N E(N) in a ``supercell``³ cubic cell (2 → 64 atoms) at the calculator's own a0,
    with and without relaxing the positions of the defective cell (volume fixed, L-BFGS to ``fmax``, at most
    ``max_steps``; the value after the last step counts and the row's note says when it did not converge).
    The relaxation starts from the four neighbours moved ``inward`` Å towards the vacant site and rattled by
    ``rattle`` Å (seeded): the ideal vacancy is itself a local minimum of SW (2 epsilon = 4.34 eV for Si,
    1.5 eV above the rebonded 2.84 eV in 64 atoms), so relaxing from it would miss the rebonding.
``phonon_gamma_optical`` (THz), ``phonon_max`` (THz), ``phonon_rms`` (THz)
    Phonopy (finite displacements of ``displacement`` Å, ± both ways) on a ``supercell``³ repetition of the
    cubic cell (2 → 64 atoms) at the calculator's own a0, fcc primitive cell. ``phonon_gamma_optical`` is the
    (threefold) optical frequency at Γ, ``phonon_max`` the highest frequency on the q-mesh and
    ``phonon_rms`` the root mean square frequency on a ``mesh``³ Γ-centred q-mesh, sqrt(<ω²>) weighted over
    q-points and branches. Band structures along Γ-X-U|K-Γ-L and the DOS are kept for plots. The scalar error
    of the whole spectrum, ``phonon_mesh_rmse`` (model − reference), is the RMS difference of the mesh
    frequencies branch by branch (ascending order at each q), weighted like ``phonon_rms``.

PaiNN caveat (measured): at the ideal diamond positions PaiNN's vector features vanish by symmetry and its
mixing layers use their norm sqrt(|v|² + 1e-8), so a trained model's energy can rise almost like |u| for a
small displacement u (a near-cusp: force/displacement far above the curvature seen at 0.1 Å). Finite
displacement phonons (0.01 Å) and C44 then come out much stiffer than the reference; this is a property of
the model, reported as such, and depends on ``phonons.displacement``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.eos import EquationOfState
from ase.optimize import LBFGS
from ase.units import GPa

log = logging.getLogger(__name__)

#: Property groups that can be switched on or off in ``config.properties.groups``.
GROUPS = ("eos", "elastic", "vacancy", "phonons")

#: Scalar properties: name -> (group, unit, description). Order is the order of tables and plots.
PROPERTIES = {
    "lattice_constant": ("eos", "Å", "cubic lattice constant a0"),
    "cohesive_energy": ("eos", "eV/atom", "E_atom - E0/N"),
    "bulk_modulus": ("eos", "GPa", "Birch-Murnaghan B0"),
    "C11": ("elastic", "GPa", "elastic constant C11"),
    "C12": ("elastic", "GPa", "elastic constant C12"),
    "C44": ("elastic", "GPa", "elastic constant C44, internal positions relaxed"),
    "C44_unrelaxed": ("elastic", "GPa", "elastic constant C44^0, no internal relaxation"),
    "vacancy_formation": ("vacancy", "eV", "relaxed vacancy formation energy"),
    "vacancy_formation_unrelaxed": ("vacancy", "eV", "unrelaxed vacancy formation energy"),
    "phonon_gamma_optical": ("phonons", "THz", "optical phonon frequency at Gamma"),
    "phonon_max": ("phonons", "THz", "highest phonon frequency on the q-mesh"),
    "phonon_rms": ("phonons", "THz", "RMS phonon frequency on the q-mesh"),
    "phonon_mesh_rmse": ("phonons", "THz", "RMS difference of mesh frequencies vs the reference"),
}

#: Properties whose error is not ``value - reference`` but a distance computed from full spectra.
SPECTRUM_ERRORS = ("phonon_mesh_rmse",)

#: Default settings (the schema's defaults; see config/README.md).
DEFAULT_SETTINGS = {
    "groups": list(GROUPS),
    "eos": {"points": 9, "span": 0.02},
    "elastic": {"max_strain": 0.01, "points": 3, "fmax": 1e-4, "max_steps": 100},
    "vacancy": {"supercell": 2, "fmax": 1e-3, "max_steps": 100, "inward": 0.6, "rattle": 0.02, "seed": 0,
                "starts": ["inward"]},
    "phonons": {"supercell": 2, "displacement": 0.01, "mesh": 8, "band_points": 41},
}

#: fcc primitive cell in units of the conventional cubic cell, and the band path (primitive reciprocal
#: coordinates): Γ-X-U | K-Γ-L.
FCC_PRIMITIVE = [[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]]
BAND_PATH = [[[0.0, 0.0, 0.0], [0.5, 0.0, 0.5], [0.625, 0.25, 0.625]],
             [[0.375, 0.375, 0.75], [0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]]
BAND_LABELS = ["Γ", "X", "U|K", "Γ", "L"]


def merge_settings(settings: dict | None) -> dict:
    """Defaults overlaid with ``settings`` one level deep (as the schema fills them)."""
    merged = {key: (dict(value) if isinstance(value, dict) else value) for key, value in DEFAULT_SETTINGS.items()}
    for key, value in (settings or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key].update(value)
        else:
            merged[key] = value
    unknown = set(merged["groups"]) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown property groups {sorted(unknown)}; choose from {GROUPS}")
    return merged


def diamond(element: str, a: float, supercell: int = 1) -> Atoms:
    atoms = bulk(element, "diamond", a=float(a), cubic=True)
    return atoms.repeat((int(supercell),) * 3) if supercell > 1 else atoms


def _energy(atoms: Atoms, calc) -> float:
    atoms = atoms.copy()
    atoms.calc = calc
    return float(atoms.get_potential_energy())


def _relax(atoms: Atoms, calc, fmax: float, max_steps: int) -> tuple[float, int, float]:
    """Relax positions at fixed cell; returns (energy, steps, final max force)."""
    atoms = atoms.copy()
    atoms.calc = calc
    optimizer = LBFGS(atoms, logfile=None)
    try:
        optimizer.run(fmax=fmax, steps=max_steps)
    except (np.linalg.LinAlgError, ValueError) as exc:  # optimiser on non-finite forces
        raise PropertyError(f"relaxation failed: {exc}") from exc
    if not np.isfinite(atoms.get_potential_energy()):
        raise PropertyError("relaxation reached a non-finite energy")
    fmax_final = float(np.sqrt((atoms.get_forces() ** 2).sum(axis=1).max()))
    if fmax_final > fmax:
        log.warning("relaxation stopped after %d steps at max force %.2e eV/A (target %.1e)",
                    optimizer.get_number_of_steps(), fmax_final, fmax)
    return float(atoms.get_potential_energy()), int(optimizer.get_number_of_steps()), fmax_final


def isolated_atom_energy(calc, element: str, box: float = 20.0) -> float:
    """Energy of one atom alone in a non-periodic box (eV)."""
    return _energy(Atoms(element, positions=[[box / 2] * 3], cell=[box] * 3, pbc=False), calc)


class PropertyError(RuntimeError):
    """A property cannot be computed for this potential (e.g. no energy minimum near the reference)."""


def _eos_scan(calc, element: str, a_centre: float, span: float, points: int):
    lattice = a_centre * (1.0 + np.linspace(-span, span, points))
    energies = np.array([_energy(diamond(element, a), calc) for a in lattice])
    return lattice, energies


def equation_of_state(calc, element: str, a_guess: float, points: int = 9, span: float = 0.02,
                      max_shifts: int = 4) -> dict:
    """Lattice constant (Å), minimum energy per atom (eV) and bulk modulus (GPa) of cubic diamond.

    A coarse scan of ±2*span around ``a_guess`` is moved (at most ``max_shifts`` times) until its lowest
    energy is inside it, then a fine scan of ±span around the coarse minimum is fitted (Birch-Murnaghan).
    """
    centre = a_guess
    for _ in range(max_shifts + 1):
        lattice, energies = _eos_scan(calc, element, centre, 2 * span, points)
        lowest = int(np.argmin(energies))
        if 0 < lowest < points - 1:
            break
        centre = lattice[lowest]
    else:
        raise PropertyError(f"no energy minimum of cubic diamond {element} within "
                            f"{(2 * span * (max_shifts + 1)):.0%} of a = {a_guess:.4f} Å")
    a1 = _fit_eos(lattice, energies)[0]
    lattice, energies = _eos_scan(calc, element, a1, span, points)
    a0, e0, b0 = _fit_eos(lattice, energies)
    n_atoms = len(diamond(element, a0))
    return {"lattice_constant": a0, "energy_per_atom": e0 / n_atoms, "bulk_modulus": b0 / GPa,
            "eos_lattice": lattice.tolist(), "eos_energy_per_atom": (energies / n_atoms).tolist()}


def _fit_eos(lattice: np.ndarray, energies: np.ndarray) -> tuple[float, float, float]:
    """(a0, E0 of the cell, B in eV/Å³) from a Birch-Murnaghan fit; PropertyError if V0 is outside the data."""
    volumes = lattice ** 3
    try:
        v0, e0, b0 = EquationOfState(volumes, energies, eos="birchmurnaghan").fit(warn=False)
    except RuntimeError as exc:  # scipy's curve_fit did not converge (rough E(V) of a poor model)
        log.warning("Birch-Murnaghan fit failed (%s); using the stabilised-jellium (SJEOS) fit", exc)
        try:
            v0, e0, b0 = EquationOfState(volumes, energies, eos="sjeos").fit(warn=False)
        except Exception as exc2:
            raise PropertyError(f"EOS fit failed: {exc}; SJEOS: {exc2}") from exc2
    if not (volumes.min() <= v0 <= volumes.max() and np.isfinite(b0) and b0 > 0):
        raise PropertyError(f"EOS fit gives V0 = {v0:.2f} Å^3, B = {b0 / GPa:.1f} GPa outside the scanned "
                            f"volumes [{volumes.min():.2f}, {volumes.max():.2f}]")
    return float(v0) ** (1.0 / 3.0), float(e0), float(b0)


def _strained(atoms: Atoms, strain: np.ndarray) -> Atoms:
    strained = atoms.copy()
    strained.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
    return strained


def _curvature(strains: np.ndarray, energy_density: np.ndarray) -> float:
    """d²(E/V0)/de² at e = 0 from a degree-4 polynomial fit (eV/Å³)."""
    coefficients = np.polynomial.polynomial.polyfit(strains, energy_density, deg=min(4, len(strains) - 1))
    return 2.0 * float(coefficients[2])


def elastic_constants(calc, element: str, a0: float, max_strain: float = 0.01, points: int = 3,
                      fmax: float = 1e-4, max_steps: int = 100) -> dict:
    """C11, C12, C44 (relaxed) and C44^0 (GPa) of cubic diamond at lattice constant ``a0``."""
    cell = diamond(element, a0)
    volume = cell.get_volume()
    strains = np.linspace(-max_strain, max_strain, 2 * points + 1)
    uniaxial, biaxial, shear, shear0 = [], [], [], []
    for e in strains:
        uniaxial.append(_energy(_strained(cell, np.diag([e, 0.0, 0.0])), calc))
        biaxial.append(_energy(_strained(cell, np.diag([e, e, 0.0])), calc))
        sheared = _strained(cell, np.array([[0.0, 0.0, 0.0], [0.0, 0.0, e / 2], [0.0, e / 2, 0.0]]))
        shear0.append(_energy(sheared, calc))
        # relaxed at e = 0 too, so that every point of the relaxed curve went through the same optimiser
        shear.append(_relax(sheared, calc, fmax, max_steps)[0])
    c11 = _curvature(strains, np.array(uniaxial) / volume)
    c11_plus_c12 = _curvature(strains, np.array(biaxial) / volume) / 2.0
    c44 = _curvature(strains, np.array(shear) / volume)
    c44_0 = _curvature(strains, np.array(shear0) / volume)
    return {"C11": c11 / GPa, "C12": (c11_plus_c12 - c11) / GPa, "C44": c44 / GPa, "C44_unrelaxed": c44_0 / GPa}


def vacancy_formation_energy(calc, element: str, a0: float, supercell: int = 2, fmax: float = 1e-3,
                             max_steps: int = 100, inward: float = 0.6, rattle: float = 0.02,
                             seed: int = 0, starts=("inward",)) -> dict:
    """Relaxed and unrelaxed E_v = E(N-1) - (N-1)/N E(N) (eV) at fixed volume (lattice constant ``a0``).

    The ideal vacancy is a stationary point, often a local minimum (for SW every remaining bond sits at the
    pair minimum and the tetrahedral angle, so it stays at 2 epsilon), while the relaxed vacancy has its four
    neighbours moved inwards to rebond. The relaxation at fixed cell therefore starts from the four
    neighbours moved ``inward`` Å towards the vacant site (``starts`` may add ``"ideal"``, the unmoved
    vacancy; the lowest result counts), rattled by ``rattle`` Å (seeded, the same for every calculator).
    """
    unknown = set(starts) - {"inward", "ideal"}
    if unknown or not starts:
        raise ValueError(f"vacancy starts must be a non-empty subset of ['inward', 'ideal'], got {starts}")
    perfect = diamond(element, a0, supercell)
    n = len(perfect)
    e_perfect = _energy(perfect, calc)
    site = perfect.positions[0].copy()
    defective = perfect.copy()
    del defective[0]
    e_unrelaxed = _energy(defective, calc)
    vectors = defective.positions - site
    vectors -= np.round(vectors @ np.linalg.inv(defective.cell.array)) @ defective.cell.array  # minimum image
    distances = np.linalg.norm(vectors, axis=1)
    neighbours = np.argsort(distances)[:4]
    noise = np.random.default_rng(seed).normal(0.0, rattle, defective.positions.shape)
    relaxed = {}
    for name in starts:
        atoms = defective.copy()
        if name == "inward":
            atoms.positions[neighbours] -= inward * vectors[neighbours] / distances[neighbours, None]
        atoms.positions += noise
        relaxed[name] = _relax(atoms, calc, fmax, max_steps)
    best = min(relaxed, key=lambda name: relaxed[name][0])
    e_relaxed, steps, final_fmax = relaxed[best]
    reference = (n - 1) / n * e_perfect
    return {"vacancy_formation": e_relaxed - reference, "vacancy_formation_unrelaxed": e_unrelaxed - reference,
            "vacancy_relaxed_from": best, "vacancy_relax_steps": steps, "vacancy_relax_fmax": final_fmax,
            "vacancy_relax_converged": final_fmax <= fmax, "vacancy_n_atoms": n}


def phonons(calc, element: str, a0: float, supercell: int = 2, displacement: float = 0.01, mesh: int = 8,
            band_points: int = 41) -> dict:
    """Phonopy phonons of cubic diamond at ``a0``: scalars, mesh frequencies, band structure and DOS (THz)."""
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    cell = diamond(element, a0)
    unit = PhonopyAtoms(symbols=cell.get_chemical_symbols(), cell=cell.cell.array,
                        scaled_positions=cell.get_scaled_positions())
    phonon = Phonopy(unit, supercell_matrix=np.eye(3, dtype=int) * int(supercell), primitive_matrix=FCC_PRIMITIVE)
    phonon.generate_displacements(distance=displacement, is_plusminus=True)
    forces = []
    for displaced in phonon.supercells_with_displacements:
        atoms = Atoms(displaced.symbols, cell=np.asarray(displaced.cell),
                      scaled_positions=np.asarray(displaced.scaled_positions), pbc=True)
        atoms.calc = calc
        forces.append(np.array(atoms.get_forces()))
        if not np.all(np.isfinite(forces[-1])):
            raise PropertyError("non-finite forces in a displaced phonon supercell")
    phonon.forces = forces
    phonon.produce_force_constants()
    phonon.symmetrize_force_constants()

    phonon.run_mesh([mesh] * 3, is_gamma_center=True, with_eigenvectors=False)
    frequencies = np.asarray(phonon.mesh.frequencies)  # (q, branches), ascending per q
    weights = np.asarray(phonon.mesh.weights, dtype=float)
    mesh_qpoints = np.asarray(phonon.mesh.qpoints)
    phonon.run_qpoints([[0.0, 0.0, 0.0]])
    gamma = np.asarray(phonon.qpoints.frequencies[0])
    rms = float(np.sqrt(np.sum(weights[:, None] * frequencies ** 2) / (weights.sum() * frequencies.shape[1])))

    from phonopy.phonon.band_structure import get_band_qpoints

    qpoints = get_band_qpoints(BAND_PATH, npoints=band_points)
    phonon.run_band_structure(qpoints, path_connections=[True, False, True, True], labels=BAND_LABELS)
    bands = phonon.band_structure
    phonon.run_total_dos(sigma=0.1, freq_pitch=0.05)
    dos = phonon.total_dos
    return {
        "phonon_gamma_optical": float(np.sort(gamma)[-1]),
        "phonon_max": float(frequencies.max()),
        "phonon_rms": rms,
        "phonon_min": float(frequencies.min()),
        "mesh": {"n": int(mesh), "qpoints": mesh_qpoints.tolist(), "weights": weights.tolist(),
                 "frequencies": frequencies.tolist()},
        "bands": {"distances": [np.asarray(d).tolist() for d in bands.distances],
                  "frequencies": [np.asarray(f).tolist() for f in bands.frequencies],
                  "labels": BAND_LABELS},
        "dos": {"frequency": np.asarray(dos.frequency_points).tolist(), "dos": np.asarray(dos.dos).tolist()},
    }


def mesh_rmse(model_mesh: dict, reference_mesh: dict) -> float:
    """RMS difference (THz) of mesh frequencies branch by branch, weighted by the q-point weights."""
    model_q, ref_q = np.asarray(model_mesh["qpoints"]), np.asarray(reference_mesh["qpoints"])
    if model_q.shape != ref_q.shape or not np.allclose(model_q, ref_q):
        raise ValueError("model and reference phonon meshes differ; use the same phonons.mesh for both")
    diff = np.asarray(model_mesh["frequencies"]) - np.asarray(reference_mesh["frequencies"])
    weights = np.asarray(reference_mesh["weights"], dtype=float)
    return float(np.sqrt(np.sum(weights[:, None] * diff ** 2) / (weights.sum() * diff.shape[1])))


def compute_properties(calc, element: str, a_guess: float, settings: dict | None = None) -> dict:
    """Every enabled property of ``calc`` for ``element`` (scalars at the top level, spectra under keys).

    ``a_guess`` only centres the first EOS scan; every other property uses the calculator's own a0. A
    property that cannot be computed (no EOS minimum, a failed fit) is a result, not an error: it is left
    out and ``notes[group]`` says why; without an EOS minimum nothing else is computed.
    """
    settings = merge_settings(settings)
    groups = settings["groups"]
    timings, notes = {}, {}
    result = {"element": element, "timings_s": timings, "notes": notes}
    start = time.perf_counter()
    try:
        eos = equation_of_state(calc, element, a_guess, **settings["eos"])
    except PropertyError as exc:
        log.warning("%s: %s; no property computed", element, exc)
        notes.update({group: f"eos: {exc}" for group in ("eos", *groups)})
        return result
    a0 = eos["lattice_constant"]
    result.update({"lattice_constant": a0, "bulk_modulus": eos["bulk_modulus"],
                   "energy_per_atom": eos["energy_per_atom"],
                   "isolated_atom_energy": isolated_atom_energy(calc, element),
                   "eos": {"lattice": eos["eos_lattice"], "energy_per_atom": eos["eos_energy_per_atom"]}})
    result["cohesive_energy"] = result["isolated_atom_energy"] - result["energy_per_atom"]
    timings["eos"] = time.perf_counter() - start
    steps = {"elastic": lambda: elastic_constants(calc, element, a0, **settings["elastic"]),
             "vacancy": lambda: vacancy_formation_energy(calc, element, a0, **settings["vacancy"]),
             "phonons": lambda: {"phonons": phonons(calc, element, a0, **settings["phonons"])}}
    for group in ("elastic", "vacancy", "phonons"):
        if group not in groups:
            continue
        start = time.perf_counter()
        try:
            result.update(steps[group]())
            if group == "vacancy" and not result["vacancy_relax_converged"]:
                notes[group] = (f"relaxation not converged: max force {result['vacancy_relax_fmax']:.2g} eV/Å "
                                f"after {result['vacancy_relax_steps']} steps")
        except PropertyError as exc:
            log.warning("%s %s: %s", element, group, exc)
            notes[group] = str(exc)
        timings[group] = time.perf_counter() - start
    if "phonons" in result:
        for key in ("phonon_gamma_optical", "phonon_max", "phonon_rms"):
            result[key] = result["phonons"][key]
    log.info("%s: a0 %.4f A, Ecoh %.4f eV/atom, B %.1f GPa; timings %s", element, a0, result["cohesive_energy"],
             result["bulk_modulus"], {k: round(v, 2) for k, v in timings.items()})
    return result


# --------------------------------------------------------------------------------------------------------
# Calculators: the reference (SW of the target element) and a trained model
# --------------------------------------------------------------------------------------------------------

def model_calculator(model, cutoff: float, device: str = "cpu"):
    """``SpkCalculator`` around a loaded model (or a path), evaluated in float64.

    float64 because the elastic constants are second differences of total energies (meV over eV) and the
    relaxations converge to 1e-3 eV/Å; the model was trained in float32 and is only cast, not changed.
    """
    import schnetpack as spk
    import torch
    from schnetpack.interfaces import SpkCalculator

    from mlp_transfer.models import load_model

    if isinstance(model, (str, Path)):
        model = load_model(model, device)
    return SpkCalculator(model=model, neighbor_list=spk.transform.MatScipyNeighborList(cutoff=cutoff),
                         energy_key="energy", force_key="forces", energy_unit="eV", position_unit="Ang",
                         device=device, dtype=torch.float64)


def reference_guess(element: str, reference: dict | None = None) -> float:
    """Starting lattice constant: the reference's, else ASE's tabulated one for the element."""
    import ase.data

    if reference and reference.get("lattice_constant") is not None:
        return float(reference["lattice_constant"])
    state = ase.data.reference_states[ase.data.atomic_numbers[element]]
    if not state or "a" not in state:
        raise ValueError(f"no starting lattice constant for {element}; give properties.reference_values")
    return float(state["a"])


# --------------------------------------------------------------------------------------------------------
# Workflow entry points: reference JSON, per-model table
# --------------------------------------------------------------------------------------------------------

def reference_properties(kind: str, element: str, settings: dict | None = None,
                         values: dict | None = None) -> dict:
    """Reference properties of ``element`` for a dataset of ``kind``.

    ``stillinger_weber``: computed with the generating SW potential (matscipy, :mod:`mlp_transfer.reference`)
    by :func:`compute_properties`, spectra included. Other kinds (DFT): the documented ``values`` from
    ``config.properties.reference_values`` (scalars only; a property without a value gets no error).
    """
    if kind == "stillinger_weber":
        from mlp_transfer.reference import sw_calculator, sw_lattice_constant

        result = compute_properties(sw_calculator(element), element, sw_lattice_constant(element), settings)
        result["source"] = "Stillinger-Weber potential of the dataset (matscipy), same procedure as the models"
        return result
    values = dict(values or {})
    unknown = set(values) - set(PROPERTIES) - {"citations"}
    if unknown:
        raise ValueError(f"unknown reference properties {sorted(unknown)}; known: {list(PROPERTIES)}")
    return {"element": element, "source": "config properties.reference_values", **values}


def write_reference(out_json: str | Path, kind: str, element: str, settings: dict | None = None,
                    values: dict | None = None) -> dict:
    from mlp_transfer.io import write_json

    result = reference_properties(kind, element, settings, values)
    write_json(out_json, result)
    return result


TABLE_COLUMNS = ["property", "unit", "value", "reference", "error", "rel_error", "note"]


def property_rows(model: dict, reference: dict, groups) -> list[dict]:
    """One row per enabled scalar property: value, reference, error (= value − reference, except
    ``phonon_mesh_rmse``: the RMS distance of the spectra) and relative error (error / |reference|)."""
    rows = []
    notes = model.get("notes", {})
    for name, (group, unit, _) in PROPERTIES.items():
        if group not in groups:
            continue
        if name == "phonon_mesh_rmse":
            ref_mesh = (reference.get("phonons") or {}).get("mesh")
            model_mesh = (model.get("phonons") or {}).get("mesh")
            error = mesh_rmse(model_mesh, ref_mesh) if ref_mesh and model_mesh else np.nan
            ref_rms = reference.get("phonon_rms", np.nan) if ref_mesh else np.nan
            rows.append({"property": name, "unit": unit, "value": error, "reference": 0.0 if ref_mesh else np.nan,
                         "error": error, "rel_error": error / ref_rms if ref_mesh else np.nan,
                         "note": notes.get(group, "" if ref_mesh else "no reference spectrum")})
            continue
        value = model.get(name, np.nan)
        ref = reference.get(name)
        ref = np.nan if ref is None else float(ref)
        error = value - ref
        rows.append({"property": name, "unit": unit, "value": value, "reference": ref, "error": error,
                     "rel_error": error / abs(ref) if np.isfinite(ref) and ref != 0 else np.nan,
                     "note": notes.get(group, "" if np.isfinite(ref) else "no reference value")})
    return rows


def run_model_properties(model_path: str | Path, reference_json: str | Path, out_csv: str | Path,
                         out_json: str | Path, element: str, cutoff: float, settings: dict | None = None,
                         metadata: dict | None = None, summary_path: str | Path | None = None,
                         threads: int = 1, device: str = "cpu"):
    """Properties of one trained model, its errors against the reference (CSV) and its spectra (JSON)."""
    import pandas as pd
    import torch

    from mlp_transfer.io import write_json, write_run_table

    torch.set_num_threads(threads)
    settings = merge_settings(settings)
    reference = json.loads(Path(reference_json).read_text())
    start = time.perf_counter()
    calc = model_calculator(model_path, cutoff, device)
    result = compute_properties(calc, element, reference_guess(element, reference), settings)
    result["wall_time_s"] = time.perf_counter() - start
    meta = dict(metadata or {})
    if summary_path is not None:
        meta["n_train"] = json.loads(Path(summary_path).read_text())["n_train"]
    table = pd.DataFrame(property_rows(result, reference, settings["groups"]), columns=TABLE_COLUMNS)
    write_json(out_json, {**meta, **result})
    table = write_run_table(table, out_csv, meta)
    log.info("properties of %s in %.1f s (%s)", model_path, result["wall_time_s"],
             {k: round(v, 2) for k, v in result["timings_s"].items()})
    return table


def cli(argv: list[str] | None = None) -> int:
    """``mlp-transfer properties``: reference properties (``--reference-out``) or a model's errors."""
    import argparse
    import logging
    import sys

    parser = argparse.ArgumentParser(prog="mlp-transfer properties", description=__doc__.splitlines()[0])
    parser.add_argument("--element", required=True)
    parser.add_argument("--reference-out", help="compute the SW reference of --element and write this JSON")
    parser.add_argument("--model", help="trained model (model.pt) whose properties to compute")
    parser.add_argument("--reference", help="reference JSON (from --reference-out) to compare the model with")
    parser.add_argument("--cutoff", type=float, help="model cutoff (Å)")
    parser.add_argument("--out-csv", help="model: property/error table")
    parser.add_argument("--out-json", help="model: all values and spectra")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.reference_out:
        write_reference(args.reference_out, "stillinger_weber", args.element)
        return 0
    missing = [name for name in ("model", "reference", "cutoff", "out_csv", "out_json") if getattr(args, name) is None]
    if missing:
        parser.error(f"a model run needs --{', --'.join(m.replace('_', '-') for m in missing)}")
    table = run_model_properties(args.model, args.reference, args.out_csv, args.out_json, args.element,
                                 args.cutoff)
    print(table.to_string(index=False), file=sys.stdout)
    return 0
