"""Steered MD: the recorded work is the integral of the spring force over the anchor path,
it equals the energy given to the system in NVE (work theorem), and the activation energy
is the maximum of the work profile."""

import csv

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.emt import EMT

from potlab.md.protocol import parse_protocol
from potlab.md.runner import run_md
from potlab.md.steered import SteeredSpring, activation_energy, separation, tension


def chain(n=4):
    a = Atoms(f"Cu{n}", positions=[[2.4 * i, 0.1 * (i % 2), 0.0] for i in range(n)])
    a.center(vacuum=6.0)
    return a


def read(path):
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(r[k] or "nan") for r in rows]) for k in rows[0]}


def test_work_is_integral_of_force_and_equals_energy_gain(tmp_path):
    p = parse_protocol({"ensemble": "nve", "steps": 300, "timestep_fs": 1.0, "interval": 1,
                            "temperatures_K": [20.0], "monitors": {"enabled": False},
                            "steered": {"group_a": [0], "group_b": [3], "k_eV_A2": 5.0, "velocity_A_ps": 20.0}})
    res = run_md(chain(), EMT(), p, tmp_path)
    s = read(tmp_path / "steered_log.csv")
    assert list(s["step"]) == list(range(301))  # every step
    assert s["anchor_A"][-1] - s["anchor_A"][0] == pytest.approx(20.0 * 0.3)
    assert s["spring_length_A"][-1] > s["spring_length_A"][0] + 2.0  # the chain was pulled
    # W = integral of f dL over the anchor path (an independent quadrature: Simpson)
    from scipy.integrate import simpson

    assert s["work_eV"][-1] == pytest.approx(simpson(s["spring_force_eV_A"], x=s["anchor_A"]), rel=1e-3)
    # work theorem in NVE: W = change of (kinetic + potential incl. the spring)
    lg = read(tmp_path / "md_log.csv")
    gained = lg["etot_eV"] - lg["etot_eV"][0]
    np.testing.assert_allclose(gained, s["work_eV"], atol=2e-3 + 0.01 * np.abs(s["work_eV"]).max())
    assert res.activation_energy_eV == pytest.approx(s["work_eV"].max())
    assert res.activation_energy_eV > 0.5


def test_group_spring_forces_are_minus_gradient():
    atoms = chain(6)
    spring = SteeredSpring(EMT(), [0, 1], [4, 5], k=3.0, velocity_A_ps=1.0, rest_length_A=8.0)
    spring.time_fs = 500.0
    atoms.calc = spring
    f = atoms.get_forces()
    h = 1e-5
    for i, c in [(0, 0), (1, 1), (5, 0), (3, 2)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[i, c] += h
        minus.positions[i, c] -= h
        plus.calc = minus.calc = spring
        fd = -(plus.get_potential_energy() - minus.get_potential_energy()) / (2 * h)
        assert f[i, c] == pytest.approx(fd, abs=1e-5)
    assert spring.anchor_A() == pytest.approx(8.5)
    assert activation_energy([0.0, 1.0, 3.0, 2.0]) == 3.0


@pytest.mark.parametrize("group_a, group_b, spacing", [([0], [4], 2.9), ([0, 1], [3, 4], 2.9),
                                                       ([0], [4], 2.2)])
def test_tension_is_the_energy_slope_of_pulling_the_groups_apart(group_a, group_b, spacing):
    """The tension a potential holds against is the mean of dE/d(shift) when either group is
    moved rigidly away from the other along the line between their centres (EMT, many-body):
    positive for a stretched Cu chain, negative for a compressed one."""
    atoms = Atoms("Cu5", positions=[[spacing * i, 0.15 * (i % 2), 0.05 * i] for i in range(5)])
    atoms.center(vacuum=6.0)
    atoms.calc = EMT()
    forces = atoms.get_forces()
    d = separation(atoms, group_a, group_b)
    u = d / np.linalg.norm(d)
    h = 1e-4

    def energy_moved(group, step):
        moved = atoms.copy()
        moved.positions[group] += step * u
        moved.calc = EMT()
        return moved.get_potential_energy()

    slope_b = (energy_moved(group_b, h) - energy_moved(group_b, -h)) / (2 * h)
    slope_a = (energy_moved(group_a, -h) - energy_moved(group_a, h)) / (2 * h)
    expected = (slope_a + slope_b) / 2
    got = tension(atoms, forces, group_a, group_b)
    assert got == pytest.approx(expected, abs=1e-6)
    assert (got > 0) == (spacing > 2.6)  # EMT copper's nearest neighbours sit at 2.55 A
    # one value per model for stacked forces
    both = tension(atoms, np.stack([forces, 2 * forces]), group_a, group_b)
    assert both == pytest.approx([expected, 2 * expected], abs=2e-6)
