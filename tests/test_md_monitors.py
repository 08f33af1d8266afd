"""Each stability monitor fires on a trajectory built to trip it, at the right frame and time,
and stays silent on a stable one."""

import numpy as np
import pytest
from ase.build import bulk, molecule

from potlab.md.monitors import (
    BondMonitor,
    DensityMonitor,
    FiniteMonitor,
    FusionMonitor,
    TemperatureMonitor,
    check_trajectory,
    density_g_cm3,
)


def _frames(base, n=10, dt_fs=2.0, edit=None):
    """n copies of base with small thermal noise; ``edit(i, atoms)`` distorts frame i."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        a = base.copy()
        a.positions += rng.normal(0, 0.02, a.positions.shape)
        a.info["time_fs"] = i * dt_fs
        a.info["step"] = i
        if edit is not None:
            edit(i, a)
        out.append(a)
    return out


@pytest.fixture
def ethane():
    m = molecule("C2H6")
    m.center(vacuum=5.0)
    m.pbc = True
    return m


def test_stable_trajectory_is_stable(ethane):
    res = check_trajectory(_frames(ethane), monitors=[BondMonitor(), FusionMonitor(), FiniteMonitor()])
    assert res.stable and res.reason is None and res.frame is None
    assert res.t_stab_ps == pytest.approx(0.018)  # time of the last frame


def test_bond_monitor_fires_on_stretched_bond(ethane):
    def stretch(i, a):
        if i >= 6:  # pull the two carbons apart by 0.3 A per frame from frame 6 on
            a.positions[1] += (a.positions[1] - a.positions[0]) / 1.53 * 0.3 * (i - 4)
    res = check_trajectory(_frames(ethane, edit=stretch), monitors=[BondMonitor()])
    assert not res.stable and res.frame == 6 and res.monitor == "bond"
    assert res.t_stab_ps == pytest.approx(0.012)
    assert "C-C" in res.reason


def test_bond_monitor_factor_fires_beyond_twice_the_initial_length(ethane):
    """Seed 003's explorer criterion: a bond 100 % longer than at the start. The C-C bond
    (1.53 A) at 1.9x passes and at 2.1x fires; a C-H bond (1.09 A) stretched by 1.2 A
    (2.1x) fires the factor test but not a +1.5 A absolute one."""
    cc = np.linalg.norm(ethane.positions[1] - ethane.positions[0])

    def pull(factor):
        def edit(i, a):
            if i >= 5:
                a.positions[1] = a.positions[0] + (ethane.positions[1] - ethane.positions[0]) * factor
        return edit

    mon = BondMonitor(max_stretch=None, max_factor=2.0)
    frames = _frames(ethane, edit=pull(1.9))
    frames[0].positions[:] = ethane.positions  # the initial lengths, exactly
    assert check_trajectory(frames, monitors=[mon]).stable
    frames = _frames(ethane, edit=pull(2.1))
    frames[0].positions[:] = ethane.positions
    res = check_trajectory(frames, monitors=[BondMonitor(max_stretch=None, max_factor=2.0)])
    assert not res.stable and res.frame == 5 and "C-C" in res.reason and "x" in res.reason
    assert f"{cc:.2f} A" in res.reason  # the initial length

    def pull_h(i, a):
        if i >= 5:
            d = ethane.positions[2] - ethane.positions[0]
            a.positions[2] = ethane.positions[0] + d / np.linalg.norm(d) * (np.linalg.norm(d) + 1.2)
    frames = _frames(ethane, edit=pull_h)
    frames[0].positions[:] = ethane.positions
    assert check_trajectory(frames, monitors=[BondMonitor(max_stretch=1.5)]).stable
    res = check_trajectory(frames, monitors=[BondMonitor(max_stretch=1.5, max_factor=2.0)])
    assert not res.stable and "C-H" in res.reason
    with pytest.raises(ValueError):
        BondMonitor(max_stretch=None, max_factor=None)


def test_bond_monitor_follows_bonds_across_the_cell_boundary():
    m = molecule("CO")
    m.cell = [6.0, 6.0, 6.0]
    m.pbc = True
    m.positions += [0.0, 0.0, -0.3]  # the C-O bond straddles z=0
    frames = _frames(m, n=4)
    frames[-1].wrap()  # wrapping moves one atom by a cell vector: not a broken bond
    assert check_trajectory(frames, monitors=[BondMonitor()]).stable


def test_fusion_monitor(ethane):
    def fuse(i, a):
        if i >= 3:
            a.positions[2] = a.positions[3] + [0.1, 0.0, 0.0]  # two H on top of each other
    res = check_trajectory(_frames(ethane, edit=fuse), monitors=[FusionMonitor()])
    assert res.frame == 3 and res.monitor == "fusion"


def test_density_monitor():
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    assert density_g_cm3(cu) == pytest.approx(9.0, abs=0.1)

    def expand(i, a):
        a.set_cell(a.cell * (1 + 0.4 * i), scale_atoms=True)
    res = check_trajectory(_frames(cu, edit=expand), monitors=[DensityMonitor(low=2.0, high=12.0)])
    rho = [density_g_cm3(f) for f in _frames(cu, edit=expand)]
    first_bad = next(k for k, r in enumerate(rho) if r < 2.0)
    assert res.frame == first_bad and "density" in res.reason
    # a cell that starts outside the window is not judged by it
    assert check_trajectory(_frames(cu, edit=expand), monitors=[DensityMonitor()]).stable
    # a non-periodic molecule is never judged by density
    assert check_trajectory(_frames(molecule("H2O")), monitors=[DensityMonitor()]).stable


def test_temperature_and_nan_monitors(ethane):
    def heat(i, a):
        v = np.full((len(a), 3), 0.01 * (1 + i) ** 2)  # grows with i
        a.set_momenta(v * a.get_masses()[:, None])
    frames = _frames(ethane, edit=heat)
    temps = [f.get_temperature() for f in frames]
    res = check_trajectory(frames, monitors=[TemperatureMonitor(target_K=temps[0], factor=5)])
    assert res.frame == next(k for k, t in enumerate(temps) if t > 5 * temps[0])

    def poison(i, a):
        if i == 7:
            a.positions[0, 0] = np.nan
    m = molecule("C2H6")  # not periodic: the default density monitor stays silent
    res = check_trajectory(_frames(m, edit=poison))  # default monitors
    assert res.frame == 7 and res.monitor == "nan"


def test_time_from_timestep_when_info_missing(ethane):
    frames = _frames(ethane)
    for f in frames:
        del f.info["time_fs"]
    with pytest.raises(ValueError, match="time_fs"):
        check_trajectory(frames, monitors=[FusionMonitor()])
    assert check_trajectory(frames, timestep_fs=0.5, monitors=[FusionMonitor()]).t_stab_ps == pytest.approx(0.0045)


def test_bond_monitor_ignores_hopping_ions_by_default():
    """A Li ion leaving its sulfur neighbours (a hop in a superionic conductor) is not a
    broken bond unless the user asks for every pair to be judged."""
    from ase import Atoms

    a = Atoms("LiS", positions=[[0, 0, 0], [2.4, 0, 0]], cell=[12, 12, 12], pbc=True)
    frames = [a.copy() for _ in range(3)]
    for k, f in enumerate(frames):
        f.positions[0, 0] -= 0.6 * k
        f.info["time_fs"] = float(k)
    assert check_trajectory(frames, monitors=[BondMonitor()]).stable
    res = check_trajectory(frames, monitors=[BondMonitor(exclude_elements=())])
    assert not res.stable and "Li-S" in res.reason
