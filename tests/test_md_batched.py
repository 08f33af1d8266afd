"""The batched engine: replicas of different sizes advance together in one model call per
step and each follows its own physics: NVE equals ASE's velocity Verlet, Nose-Hoover
ASE's Nose-Hoover chain and Berendsen ASE's NVTBerendsen, Langevin and
Bussi reach each replica's own temperature, a replica with a planted fusion stops while the
others finish, a replica's trajectory does not depend on its neighbours in the batch, skin
neighbour lists give the fresh list's pairs and forces at every step, and a committee
evaluated every k steps logs (and can stop on) its spread. Steered MD in the batch pulls
every replica as the ASE engine's spring does, and its work is the energy it put in."""

import csv

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk
from conftest import tiny_params

from potlab.graph.skin import SkinNeighbourList, canonical_pairs
from potlab.md import parse_protocol, run_md
from potlab.md.batched import run_batched
from potlab.potential import Committee, Potential


def cu(n=(1, 1, 1)):
    return bulk("Cu", "fcc", a=3.61, cubic=True).repeat(n)


@pytest.fixture(scope="module")
def pot():
    torch.manual_seed(0)
    return Potential("schnet", tiny_params("schnet"), [29], e0={29: -1.0}).to(torch.float64).eval()


def proto(**kw):
    base = {"ensemble": "nve", "steps": 200, "timestep_fs": 1.0, "interval": 10,
            "temperatures_K": [300.0], "monitors": {"enabled": False}}
    base.update(kw)
    return parse_protocol(base)


def temperatures(path):
    with open(path) as fh:
        return np.array([float(r["temperature_K"]) for r in csv.DictReader(fh)])


def test_batched_nve_equals_ase_velocity_verlet(tmp_path, pot):
    """3 replicas of 4, 8 and 16 atoms, 200 steps in float64: the same positions as ASE's
    VelocityVerlet from the same initial velocities, to 1e-8 A."""
    structures = [cu(), cu((2, 1, 1)), cu((2, 2, 1))]
    p = proto(interval=20)
    reps = [(a, tmp_path / f"b{k}", 300.0 + 200 * k, k) for k, a in enumerate(structures)]
    results = run_batched(reps, pot, p)
    assert [r.steps for r in results] == [200] * 3
    for k, a in enumerate(structures):
        run_md(a, pot.calculator(), p, tmp_path / f"a{k}", temperature_K=300.0 + 200 * k, seed=k)
        fa = ase.io.read(tmp_path / f"a{k}" / "trajectory.traj", ":")
        fb = ase.io.read(tmp_path / f"b{k}" / "trajectory.traj", ":")
        assert [f.info["step"] for f in fb] == list(range(0, 201, 20))
        np.testing.assert_array_equal(fa[0].get_momenta(), fb[0].get_momenta())  # same start
        for x, y in zip(fa, fb):
            np.testing.assert_allclose(y.positions, x.positions, rtol=0, atol=1e-8)
            assert y.get_potential_energy() == pytest.approx(x.get_potential_energy(), abs=1e-9)
        assert np.abs(fb[-1].positions - fb[0].positions).max() > 0.01  # they moved
        assert fb[0].info["phase"] == "production"


@pytest.mark.parametrize("thermostat", ["nose-hoover", "berendsen"])
def test_batched_deterministic_thermostats_equal_ase(tmp_path, pot, thermostat):
    """Seed 000's protocol (a velocity-scaling ramp, then Nose-Hoover NVT) for 3 replicas of
    different sizes and temperatures in float64: the positions, momenta and energies of ASE's
    NoseHooverChainNVT (the ASE engine) at every stored frame, to 1e-8; the same for
    Berendsen against ASE's NVTBerendsen."""
    structures = [cu(), cu((2, 1, 1)), cu((2, 2, 1))]
    p = proto(ensemble="nvt", thermostat=thermostat, tdamp_fs=20.0, steps=200, interval=20,
              ramp={"start_K": 100.0, "duration_ps": 0.05})
    temps = [300.0, 600.0, 900.0]
    reps = [(a, tmp_path / f"b{k}", temps[k], k) for k, a in enumerate(structures)]
    run_batched(reps, pot, p)
    for k, a in enumerate(structures):
        run_md(a, pot.calculator(), p, tmp_path / f"a{k}", temperature_K=temps[k], seed=k)
        fa = ase.io.read(tmp_path / f"a{k}" / "trajectory.traj", ":")
        fb = ase.io.read(tmp_path / f"b{k}" / "trajectory.traj", ":")
        assert len(fa) == len(fb) > 10 and "production" in {f.info["phase"] for f in fb}
        for x, y in zip(fa, fb):
            assert y.info["step"] == x.info["step"]
            np.testing.assert_allclose(y.positions, x.positions, rtol=0, atol=1e-8)
            np.testing.assert_allclose(y.get_momenta(), x.get_momenta(), rtol=0, atol=1e-8)
            assert y.get_potential_energy() == pytest.approx(x.get_potential_energy(), abs=1e-8)
        # the thermostat acted: production is not NVE (the kinetic energy is driven)
        assert np.abs(fb[-1].get_momenta() - fb[0].get_momenta()).max() > 1e-3


@pytest.mark.parametrize("thermostat", ["langevin", "bussi"])
def test_each_replica_reaches_its_own_temperature(tmp_path, pot, thermostat):
    targets = [300.0, 600.0, 900.0]
    p = proto(ensemble="nvt", thermostat=thermostat, steps=800, timestep_fs=2.0, interval=4,
              friction_per_fs=0.2, tdamp_fs=5.0, initial_temperature_K=100.0, skin_A=0.5)
    reps = [(cu((2, 2, 2)), tmp_path / f"T{T:g}", T, k) for k, T in enumerate(targets)]
    run_batched(reps, pot, p)
    for T in targets:
        t = temperatures(tmp_path / f"T{T:g}" / "md_log.csv")
        assert t[0] == pytest.approx(100.0)
        assert np.mean(t[len(t) // 2:]) == pytest.approx(T, rel=0.05)


def test_planted_fusion_stops_one_replica_the_others_finish(tmp_path, pot):
    fused = cu((2, 1, 1))
    fused.positions[1] = fused.positions[0] + [0.9, 0.0, 0.0]  # < 0.5 x (1.32 + 1.32) A
    p = proto(steps=100, monitors={"enabled": True, "bond_stretch_A": None})  # untrained model
    reps = [(cu((2, 1, 1)), tmp_path / "ok0", 300.0, 0), (fused, tmp_path / "fused", 300.0, 1),
            (cu((2, 2, 1)), tmp_path / "ok1", 300.0, 2)]
    ok0, bad, ok1 = run_batched(reps, pot, p)
    assert not bad.stability.stable and bad.stability.monitor == "fusion"
    assert bad.steps == 10 and bad.stability.t_stab_ps == pytest.approx(0.01)
    assert ok0.stability.stable and ok1.stability.stable and ok0.steps == ok1.steps == 100
    last = ase.io.read(tmp_path / "fused" / "trajectory.traj", -1)
    assert last.info["step"] == 10
    assert ase.io.read(tmp_path / "ok1" / "trajectory.traj", -1).info["step"] == 100
    # rerun: every replica is finished, nothing moves
    again = run_batched(reps, pot, p)
    assert [r.steps for r in again] == [100, 10, 100]


def test_a_replica_does_not_depend_on_its_neighbours(tmp_path, pot):
    """Langevin noise comes from each replica's own generator: the same replica alone and
    inside a batch of three gives the same trajectory (float64, to rounding)."""
    p = proto(ensemble="nvt", thermostat="langevin", steps=100, friction_per_fs=0.05)
    run_batched([(cu((2, 1, 1)), tmp_path / "alone", 500.0, 7)], pot, p)
    run_batched([(cu(), tmp_path / "x", 300.0, 1), (cu((2, 1, 1)), tmp_path / "inside", 500.0, 7),
                 (cu((2, 2, 1)), tmp_path / "y", 900.0, 2)], pot, p)
    a = ase.io.read(tmp_path / "alone" / "trajectory.traj", ":")
    b = ase.io.read(tmp_path / "inside" / "trajectory.traj", ":")
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.positions, y.positions, rtol=0, atol=1e-10)


def test_skin_list_equals_fresh_list_at_every_step(pot):
    """500 steps of hot copper with ASE: at every step the skin list gives the fresh list's
    pairs (same order) and the potential's forces on it equal its calculator's."""
    from ase import units
    from ase.md.langevin import Langevin

    from potlab.graph import GraphBatch

    atoms = cu((2, 2, 2))
    atoms.calc = pot.calculator()
    rng = np.random.default_rng(0)
    atoms.set_momenta(rng.normal(0, 1, (len(atoms), 3)) * np.sqrt(atoms.get_masses()[:, None]
                                                                     * units.kB * 1500.0))
    dyn = Langevin(atoms, 2.0 * units.fs, temperature_K=1500.0, friction=0.02 / units.fs,
                   rng=rng, fixcm=False)
    nl = SkinNeighbourList(pot.cutoff, skin=0.4)
    for _ in range(500):
        dyn.step()
        i, j, S = nl.pairs(atoms.positions, atoms.cell.array, atoms.pbc)
        fi, fj, fS = canonical_pairs(atoms.positions, atoms.cell.array, atoms.pbc, pot.cutoff)
        np.testing.assert_array_equal(np.stack([i, j]), np.stack([fi, fj]))
        np.testing.assert_array_equal(S, fS)
        cell = torch.tensor(atoms.cell.array)[None]
        us = torch.from_numpy(S)
        g = GraphBatch(species=torch.tensor(atoms.numbers), positions=torch.tensor(atoms.positions),
                       edge_index=torch.from_numpy(np.stack([i, j])), unit_shifts=us,
                       shifts=us.double() @ cell[0], batch=torch.zeros(len(atoms), dtype=torch.int64),
                       cell=cell, pbc=torch.tensor(atoms.pbc)[None],
                       n_atoms=torch.tensor([len(atoms)]))
        f = pot(g)["forces"].detach().numpy()
        np.testing.assert_allclose(f, atoms.get_forces(), rtol=0, atol=1e-12)
    assert 1 < nl.builds < 250  # it did rebuild, and it skipped most searches


def test_skin_does_not_change_the_trajectory(tmp_path, pot):
    p = proto(ensemble="nvt", thermostat="langevin", steps=200, timestep_fs=2.0)
    run_batched([(cu((2, 2, 1)), tmp_path / "fresh", 800.0, 3)], pot, p)
    run_batched([(cu((2, 2, 1)), tmp_path / "skin", 800.0, 3)], pot,
                proto(ensemble="nvt", thermostat="langevin", steps=200, timestep_fs=2.0, skin_A=0.5))
    a = ase.io.read(tmp_path / "fresh" / "trajectory.traj", ":")
    b = ase.io.read(tmp_path / "skin" / "trajectory.traj", ":")
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.positions, y.positions)


def test_ase_engine_skin_list_gives_the_fresh_forces(tmp_path, pot):
    """The ASE engine with a potlab calculator and a 0.5 A skin: 150 NVE steps of hot copper
    follow the fresh-list run to 1e-9 A (the pairs are the same; only their order, so the
    last bits of a sum, differ), every stored frame's forces equal a fresh calculator's at
    those positions to 1e-12 eV/A, and most steps reuse the list. ``skin_A`` in the
    protocol gives a plain calculator the same Verlet list (bit for bit)."""
    p = proto(steps=150, interval=10, temperatures_K=[1500.0])
    calc = pot.calculator(skin=0.5)
    run_md(cu((2, 2, 1)), calc, p, tmp_path / "skin", seed=4)
    run_md(cu((2, 2, 1)), pot.calculator(), p, tmp_path / "fresh", seed=4)
    run_md(cu((2, 2, 1)), pot.calculator(), proto(steps=150, interval=10, temperatures_K=[1500.0],
                                                  skin_A=0.5), tmp_path / "protocol", seed=4)
    a = ase.io.read(tmp_path / "skin" / "trajectory.traj", ":")
    b = ase.io.read(tmp_path / "fresh" / "trajectory.traj", ":")
    c = ase.io.read(tmp_path / "protocol" / "trajectory.traj", ":")
    fresh = pot.calculator()
    assert len(a) == len(b) == len(c) == 16
    for x, y, z in zip(a, b, c):
        np.testing.assert_allclose(x.positions, y.positions, rtol=0, atol=1e-9)
        np.testing.assert_array_equal(x.positions, z.positions)
        f = x.get_forces()
        x.calc = fresh
        np.testing.assert_allclose(f, x.get_forces(), rtol=0, atol=1e-12)
    assert np.abs(a[-1].positions - a[0].positions).max() > 0.3  # the atoms did move
    assert 1 <= calc._nl.builds < 40  # 151 force calls, few searches


@pytest.fixture(scope="module")
def committee_file(tmp_path_factory):
    members = []
    for s in range(3):
        torch.manual_seed(10 + s)
        members.append(Potential("schnet", tiny_params("schnet"), [29], e0={29: -1.0}).to(torch.float64))
    return str(Committee(members, group=False).save(tmp_path_factory.mktemp("com") / "com.pt"))


@pytest.mark.parametrize("engine", ["batched", "ase"])
def test_committee_uncertainty_every_k_steps(tmp_path, pot, committee_file, engine):
    import potlab

    p = proto(engine=engine, steps=40, interval=10,
              uncertainty={"committee": committee_file, "every_steps": 5})
    res = run_md(cu((2, 1, 1)), pot.calculator(), p, tmp_path / "run")
    with open(tmp_path / "run" / "uq_log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == list(range(5, 41, 5))
    com = potlab.load(committee_file)
    for frame in ase.io.read(tmp_path / "run" / "trajectory.traj", "1:"):
        row = next(r for r in rows if int(r["step"]) == frame.info["step"])
        frame.calc = com.calculator()
        assert float(row["max_forces_var_eV2_A2"]) == pytest.approx(frame.calc.get_property(
            "max_forces_var", frame), rel=1e-9)
        assert float(row["energy_std_eV"]) == pytest.approx(frame.calc.get_property("energy_std", frame),
                                                             rel=1e-9)
    assert res.extra["uncertainty"]["max_forces_var_eV2_A2"] == pytest.approx(
        max(float(r["max_forces_var_eV2_A2"]) for r in rows))
    # a threshold below the spread stops the run at the first evaluation
    p = proto(engine=engine, steps=40, uncertainty={"committee": committee_file, "every_steps": 5,
                                                    "max_forces_var": 1e-12, "stop": True})
    res = run_md(cu((2, 1, 1)), pot.calculator(), p, tmp_path / "stop")
    assert res.stability.monitor == "uncertainty" and res.steps == 5
    assert ase.io.read(tmp_path / "stop" / "trajectory.traj", -1).info["step"] == 5


def read_csv(path):
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(r[k] or "nan") for r in rows]) for k in rows[0]}


def cluster(n, pbc=False):
    """n Cu atoms on a zig-zag line (a molecule, or periodic in a large cell)."""
    from ase import Atoms

    a = Atoms(f"Cu{n}", positions=[[2.4 * i, 0.3 * (i % 2), 0.1 * (i % 3)] for i in range(n)])
    a.center(vacuum=6.0)
    a.pbc = pbc
    return a


@pytest.mark.parametrize("pbc", [False, True])
def test_batched_steered_md_equals_ase_spring(tmp_path, pot, pbc):
    """Seed 002's pull (moving spring, Berendsen NVT) on 3 replicas of 5, 6 and 8 atoms with
    groups of one and two atoms, batched in float64: every stored frame's positions,
    momenta and energy (spring included) and every steered_log row (anchor, length, tension,
    work) equal the ASE engine's SteeredSpring run to 1e-8, molecule and periodic cell."""
    structures = [cluster(5, pbc), cluster(6, pbc), cluster(8, pbc)]
    p = proto(ensemble="nvt", thermostat="berendsen", tdamp_fs=50.0, steps=200, interval=20,
              steered={"group_a": [0, 1], "group_b": [4], "k_eV_A2": 5.0, "velocity_A_ps": 20.0})
    temps = [20.0, 50.0, 100.0]
    reps = [(a, tmp_path / f"b{k}", temps[k], k) for k, a in enumerate(structures)]
    results = run_batched(reps, pot, p)
    for k, a in enumerate(structures):
        ref = run_md(a, pot.calculator(), p, tmp_path / f"a{k}", temperature_K=temps[k], seed=k)
        fa = ase.io.read(tmp_path / f"a{k}" / "trajectory.traj", ":")
        fb = ase.io.read(tmp_path / f"b{k}" / "trajectory.traj", ":")
        assert len(fa) == len(fb) == 11
        for x, y in zip(fa, fb):
            np.testing.assert_allclose(y.positions, x.positions, rtol=0, atol=1e-8)
            np.testing.assert_allclose(y.get_momenta(), x.get_momenta(), rtol=0, atol=1e-8)
            np.testing.assert_allclose(y.get_forces(), x.get_forces(), rtol=0, atol=1e-8)
            assert y.get_potential_energy() == pytest.approx(x.get_potential_energy(), abs=1e-8)
        sa, sb = read_csv(tmp_path / f"a{k}" / "steered_log.csv"), read_csv(tmp_path / f"b{k}" / "steered_log.csv")
        assert list(sb["step"]) == list(range(201))
        for col in ("anchor_A", "spring_length_A", "spring_force_eV_A", "work_eV"):
            np.testing.assert_allclose(sb[col], sa[col], rtol=0, atol=1e-8)
        assert sb["anchor_A"][-1] - sb["anchor_A"][0] == pytest.approx(20.0 * 0.2)  # 4 A in 200 fs
        assert sb["work_eV"].max() > 0.1  # the spring did pull
        assert results[k].activation_energy_eV == pytest.approx(ref.activation_energy_eV, abs=1e-8)


def test_batched_pull_work_is_the_energy_put_in(tmp_path, pot):
    """NVE pulls of two replicas in one batch: the work the log integrates equals the gain of
    kinetic + potential energy (spring included), the work theorem, for each replica."""
    p = proto(ensemble="nve", steps=300, interval=1, temperatures_K=[20.0],
              steered={"group_a": [0], "group_b": [3], "k_eV_A2": 5.0, "velocity_A_ps": 20.0})
    reps = [(cluster(4), tmp_path / "r0", 20.0, 0), (cluster(5), tmp_path / "r1", 40.0, 1)]
    run_batched(reps, pot, p)
    for r in ("r0", "r1"):
        s, lg = read_csv(tmp_path / r / "steered_log.csv"), read_csv(tmp_path / r / "md_log.csv")
        assert s["work_eV"][-1] > 0.2  # the spring did pull
        np.testing.assert_allclose(lg["etot_eV"] - lg["etot_eV"][0], s["work_eV"],
                                   atol=2e-3 + 0.01 * np.abs(s["work_eV"]).max())


def test_batched_refuses_what_it_cannot_do(pot):
    from potlab.md.protocol import ProtocolError

    with pytest.raises(ProtocolError, match="npt"):
        proto(engine="batched", ensemble="npt", pressure_GPa=0.0)
    from ase.calculators.emt import EMT

    with pytest.raises(ValueError, match="potlab potential"):
        run_md(cu(), EMT(), proto(engine="batched"), "/nonexistent/never")
    with pytest.raises(ProtocolError, match="share atoms"):
        proto(steered={"group_a": [0, 1], "group_b": [1]})
    with pytest.raises(ValueError, match="atom index 7"):
        run_batched([(cu(), "/nonexistent/never", 300.0, 0)], pot,
                    proto(steered={"group_a": [0], "group_b": [7]}))
