"""Lazy data (frames read from HDF5 / ASE db per batch) equals the in-memory path; streamed
E0, outlier screen and statistics equal the in-memory ones; a corrupt frame in the middle
of a file is named by file, frame and field."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator

from potlab import data as pdata
from potlab.data.lazy import LazyFrames
from potlab.train.prepared import (
    LazyPrepared,
    Prepared,
    energy_residuals,
    prepare,
    training_statistics,
)

h5py = pytest.importorskip("h5py")
CUTOFF = 3.5


def _molecules(rng, n_groups=4, m=5):
    """(name, numbers, conformations bohr [m,n,3], energies Ha [m], gradients Ha/bohr)."""
    out = []
    for g in range(n_groups):
        n = int(rng.integers(3, 8))
        z = rng.choice([1, 6, 7, 8, 16], size=n)
        base = rng.normal(scale=1.6, size=(n, 3))
        conf = base[None] + rng.normal(scale=0.1, size=(m, n, 3))
        e = -0.5 * len(z) - 0.01 * rng.normal(size=m) + 0.02 * np.sum(z == 6)
        grad = rng.normal(scale=0.02, size=(m, n, 3))
        out.append((f"mol{g:02d}", z, conf, e, grad))
    return out


def _write_h5(path, mols, subset_of=None):
    with h5py.File(path, "w") as f:
        for name, z, conf, e, grad in mols:
            g = f.create_group(name)
            g["atomic_numbers"] = z
            g["conformations"] = conf
            g["dft_total_energy"] = e
            g["dft_total_gradient"] = grad
            if subset_of and name in subset_of:
                g["subset"] = np.array([subset_of[name].encode()])
    return path


def _expected_from_arrays(mols, subset_of=None):
    """Frames built with ASE straight from the arrays written (the independent path)."""
    frames = []
    for name, z, conf, e, grad in mols:
        for j in range(len(e)):
            a = Atoms(numbers=z, positions=conf[j] * units.Bohr, pbc=False)
            a.info["REF_energy"] = float(e[j] * units.Hartree)
            a.arrays["REF_forces"] = -grad[j] * (units.Hartree / units.Bohr)
            a.info["config_type"] = (subset_of or {}).get(name, name)
            frames.append(a)
    return frames


def _assert_batches_equal(a, b):
    ga, ra = a
    gb, rb = b
    for f in fields(ga):
        ta, tb = getattr(ga, f.name), getattr(gb, f.name)
        assert ta.dtype == tb.dtype and torch.equal(ta, tb), f.name
    assert ra.keys() == rb.keys()
    for k in ra:
        assert torch.equal(ra[k], rb[k]), k


def _assert_frames_equal(lazy_frames, expected):
    assert len(lazy_frames) == len(expected)
    for a, b in zip(lazy_frames, expected, strict=True):
        assert np.array_equal(a.numbers, b.numbers)
        assert np.array_equal(a.positions, b.positions)
        assert np.array_equal(a.pbc, b.pbc)
        assert np.array_equal(a.cell.array, b.cell.array)
        assert a.info["REF_energy"] == b.info["REF_energy"]
        assert np.array_equal(a.arrays["REF_forces"], b.arrays["REF_forces"])
        assert a.info["config_type"] == b.info["config_type"]
        if "REF_stress" in b.info:
            assert np.array_equal(a.info["REF_stress"], b.info["REF_stress"])


@pytest.fixture
def h5file(tmp_path, rng):
    mols = _molecules(rng)
    subset_of = {"mol01": "special"}
    return _write_h5(tmp_path / "spice.h5", mols, subset_of), mols, subset_of


def _db_frames(rng, n=14):
    frames = []
    for k in range(n):
        if k % 5 == 4:  # isolated atoms define E0 directly
            a = Atoms("O" if k % 2 else "H", positions=[[0, 0, 0]], pbc=False)
            a.info["config_type"] = "IsolatedAtom"
        else:
            a = Atoms("LiPS" if k % 3 else "Li2S", positions=rng.uniform(0, 4, size=(3, 3)),
                      cell=np.diag([4.0, 4.2, 4.4]) + 0.1 * rng.normal(size=(3, 3)), pbc=True)
            a.info["config_type"] = "bulk" if k % 2 else "surface"
        e = float(-3.0 * len(a) + rng.normal())
        f = rng.normal(size=(len(a), 3))
        s = rng.normal(size=6) * 0.01 if a.pbc.any() else None
        a.calc = SinglePointCalculator(a, energy=e, forces=f, **({} if s is None else {"stress": s}))
        frames.append(a)
    return frames


@pytest.fixture
def dbfile(tmp_path, rng):
    import ase.db

    frames = _db_frames(rng)
    path = tmp_path / "frames.db"
    with ase.db.connect(str(path)) as db:
        for a in frames:
            db.write(a, config_type=a.info["config_type"])
    expected = []
    for a in frames:
        b = Atoms(a.numbers, positions=a.positions, cell=a.cell, pbc=a.pbc)
        b.info["REF_energy"] = a.calc.results["energy"]
        b.arrays["REF_forces"] = a.calc.results["forces"]
        if "stress" in a.calc.results:
            b.info["REF_stress"] = a.calc.results["stress"]
        b.info["config_type"] = a.info["config_type"]
        expected.append(b)
    return path, expected


def _both(path, expected):
    lazy = pdata.open_frames(path, lazy=True)
    assert isinstance(lazy, LazyFrames)
    weights = np.linspace(0.5, 2.0, len(expected))
    mem = prepare(expected, CUTOFF, torch.float64, weights)
    lz = prepare(lazy, CUTOFF, torch.float64, weights)
    assert isinstance(mem, Prepared) and isinstance(lz, LazyPrepared)
    return lazy, mem, lz


@pytest.mark.parametrize("kind", ["h5", "db"])
def test_lazy_frames_graphs_and_batches_equal_in_memory(kind, h5file, dbfile, rng):
    if kind == "h5":
        path, mols, subset_of = h5file
        expected = _expected_from_arrays(mols, subset_of)
    else:
        path, expected = dbfile
    lazy, mem, lz = _both(path, expected)
    _assert_frames_equal(lazy, expected)
    _assert_frames_equal(lazy, pdata.read_frames(path))  # and the eager reader
    assert len(lz) == len(mem) == len(expected)
    batches = [rng.integers(0, len(expected), size=4).tolist() for _ in range(6)]
    batches.append(list(range(len(expected))))
    for idx in batches:  # repeats and any order, as sampling with replacement draws
        _assert_batches_equal(lz.batch(idx), mem.batch(idx))
    got = list(pdata.iter_batches(lz, batches, num_workers=2))  # DataLoader workers
    want = list(pdata.iter_batches(mem, batches, num_workers=2))  # directly
    assert len(got) == len(want) == len(batches)
    for a, b in zip(got, want):
        _assert_batches_equal(a, b)


@pytest.mark.parametrize("kind", ["h5", "db"])
def test_index_subsets_fingerprint_and_split_as_in_memory(kind, h5file, dbfile):
    path = h5file[0] if kind == "h5" else dbfile[0]
    eager = pdata.read_frames(path)
    lazy = pdata.open_frames(path, lazy=True)
    assert pdata.fingerprint(lazy) == pdata.fingerprint(eager)
    assert pdata.fingerprint(lazy, 3) == pdata.fingerprint(eager, 3)
    assert pdata.subsets(lazy) == pdata.subsets(eager)
    assert lazy.n_atoms.tolist() == [len(a) for a in eager]
    assert lazy.elements == pdata.elements_of(eager) == pdata.elements_of(lazy)
    split = pdata.random_split(len(eager), valid_fraction=0.3, seed=1).describing(lazy)
    assert split.fingerprint == pdata.fingerprint(eager)
    pdata.check_split(split, lazy, "split.json")
    view = pdata.take(lazy, split.valid)
    _assert_frames_equal(view, pdata.take(eager, split.valid))
    assert pdata.fingerprint(view) == pdata.fingerprint(pdata.take(eager, split.valid))
    names = next(iter(pdata.subsets(eager)))
    w_lazy = pdata.frame_weights(lazy, {names: 3.0})
    assert np.array_equal(w_lazy, pdata.frame_weights(eager, {names: 3.0}))


@pytest.mark.parametrize("kind", ["h5", "db"])
def test_streaming_e0_outliers_and_statistics_equal_in_memory(kind, h5file, dbfile):
    path = h5file[0] if kind == "h5" else dbfile[0]
    eager = pdata.read_frames(path)
    lazy = pdata.open_frames(path, lazy=True)
    want, got = pdata.fit_e0(eager), pdata.fit_e0(lazy)
    assert got.method == want.method and got.n_frames == want.n_frames
    assert got.rank_deficient == want.rank_deficient
    assert got.energies.keys() == want.energies.keys()
    for z in want.energies:
        assert got.energies[z] == pytest.approx(want.energies[z], rel=1e-10, abs=1e-10)
    assert got.rmse_per_atom == pytest.approx(want.rmse_per_atom, rel=1e-8)
    if kind == "db":
        assert "isolated" in want.method
    # outlier screen over the file in chunks
    r_want = pdata.screen_outliers(eager, threshold=1.0)
    r_got = pdata.screen_outliers(lazy, threshold=1.0)
    assert r_got.indices == r_want.indices and r_want.indices
    for key in ("max_force", "energy_per_atom", "z_max_force", "z_energy_per_atom"):
        np.testing.assert_allclose(r_got.stats[key], r_want.stats[key], rtol=1e-9, atol=1e-12)
    # shift, scale, average neighbours of the training data
    mem = prepare(eager, CUTOFF, torch.float64, np.ones(len(eager)))
    lz = prepare(lazy, CUTOFF, torch.float64, np.ones(len(eager)))
    s_mem = training_statistics(mem, want.energies)
    for workers in (0, 2):
        s_lz = training_statistics(lz, want.energies, num_workers=workers, batch_size=4)
        assert s_lz.shift == pytest.approx(s_mem.shift, rel=1e-10, abs=1e-12)
        assert s_lz.scale == pytest.approx(s_mem.scale, rel=1e-12)
        assert s_lz.avg_num_neighbors == s_mem.avg_num_neighbors


def test_energy_residuals_equal_for_both_kinds(h5file):
    from conftest import tiny_params

    from potlab.potential import Potential

    path = h5file[0]
    eager = pdata.read_frames(path)
    lazy = pdata.open_frames(path, lazy=True)
    fit = pdata.fit_e0(eager)
    pot = Potential("schnet", tiny_params("schnet", CUTOFF), pdata.elements_of(eager),
                    e0=fit.energies).double()
    mem = prepare(eager, CUTOFF, torch.float64, np.ones(len(eager)))
    lz = prepare(lazy, CUTOFF, torch.float64, np.ones(len(eager)))
    r_mem, c_mem = energy_residuals(pot, mem, batch_size=4)
    r_lz, c_lz = energy_residuals(pot, lz, batch_size=4, num_workers=2)
    np.testing.assert_allclose(r_lz, r_mem, rtol=1e-10, atol=1e-9)
    assert np.array_equal(c_lz, c_mem)


def test_auto_choice_by_size(h5file, monkeypatch):
    from potlab.data import lazy as lazy_mod

    path = h5file[0]
    assert isinstance(pdata.open_frames(path), list)  # small: in memory
    monkeypatch.setattr(lazy_mod, "LAZY_MIN_FRAMES", 10)
    assert isinstance(pdata.open_frames(path), LazyFrames)
    assert isinstance(pdata.open_frames(path, lazy=False), list)
    monkeypatch.setattr(lazy_mod, "LAZY_MIN_FRAMES", 10**9)
    monkeypatch.setattr(lazy_mod, "LAZY_MIN_BYTES", 1)
    assert isinstance(pdata.open_frames(path), LazyFrames)


# ---- corrupt frames in the middle of a file ----------------------------------------------


def _corrupt(tmp_path, rng, how):
    mols = _molecules(rng, n_groups=6, m=8)
    name, z, conf, e, grad = mols[3]
    if how == "nan_force":
        grad = grad.copy()
        grad[5, 1, 2] = np.nan
    elif how == "nan_energy":
        e = e.copy()
        e[2] = np.nan
    mols[3] = (name, z, conf, e, grad)
    path = _write_h5(tmp_path / f"{how}.h5", mols)
    if how == "missing_key":
        with h5py.File(path, "a") as f:
            del f[name]["dft_total_gradient"]
    if how == "wrong_shape":
        with h5py.File(path, "a") as f:
            del f[name]["conformations"]
            f[name]["conformations"] = conf[:, :-1]
    return path, name, 3 * 8


def test_nan_force_in_the_middle_named_when_first_read(tmp_path, rng):
    path, group, start = _corrupt(tmp_path, rng, "nan_force")
    lazy = pdata.open_frames(path, lazy=True)  # the index does not read labels
    lz = prepare(lazy, CUTOFF, torch.float32, np.ones(len(lazy)))
    lz.batch([0, 1, 47])  # other frames read fine
    with pytest.raises(pdata.DataError) as info:
        lz.batch([2, start + 5])
    err = info.value
    assert (err.file, err.frame, err.field, err.group) == (str(path), start + 5, "REF_forces", group)
    assert "NaN" in str(err)
    # the same error, not a torch RuntimeError, from a DataLoader worker
    with pytest.raises(pdata.DataError) as info:
        list(pdata.iter_batches(lz, [[0], [1], [start + 5], [2]], num_workers=2))
    assert (info.value.file, info.value.frame, info.value.field) == (str(path), start + 5, "REF_forces")
    with pytest.raises(pdata.DataError, match="REF_forces"):  # the streaming screen stops too
        pdata.screen_outliers(lazy)
    from potlab.errors import InputError

    assert isinstance(info.value, InputError)  # the CLI's exit 2


def test_nan_energy_named_by_the_streaming_e0_fit(tmp_path, rng):
    path, group, start = _corrupt(tmp_path, rng, "nan_energy")
    with pytest.raises(pdata.DataError) as info:
        pdata.fit_e0(pdata.open_frames(path, lazy=True))
    assert (info.value.frame, info.value.field, info.value.group) == (start + 2, "REF_energy", group)


@pytest.mark.parametrize(("how", "field"), [("missing_key", "dft_total_gradient"),
                                             ("wrong_shape", "conformations")])
def test_bad_group_layout_named_at_open(tmp_path, rng, how, field):
    path, group, start = _corrupt(tmp_path, rng, how)
    with pytest.raises(pdata.DataError) as info:
        pdata.open_frames(path, lazy=True)
    err = info.value
    assert (err.file, err.frame, err.field, err.group) == (str(path), start, field, group)
    with pytest.raises(pdata.DataError) as eager:  # as the eager reader says it
        pdata.read_frames(path)
    assert (eager.value.frame, eager.value.field) == (start, field)


def test_db_row_with_wrong_forces_named(tmp_path, rng):
    import ase.db

    path = tmp_path / "bad.db"
    frames = _db_frames(rng, n=9)
    with ase.db.connect(str(path)) as db:
        for k, a in enumerate(frames):
            data = {"REF_forces": np.zeros((len(a) + 1, 3))} if k == 6 else {}
            db.write(a, data=data)
    lazy = pdata.open_frames(path, lazy=True)
    lazy.read([0, 5, 7])
    with pytest.raises(pdata.DataError) as info:
        lazy.read([6])
    assert (info.value.file, info.value.frame, info.value.field) == (str(path), 6, "REF_forces")


# ---- the trainer on lazy data -------------------------------------------------------------

def _train_cfg(path, out, lazy, workers=2):
    from potlab.train import parse_config

    return parse_config({
        "data": {"train": str(path), "energy_key": "REF_energy", "forces_key": "REF_forces",
                 "valid_fraction": 0.2, "lazy": lazy},
        "model": {"name": "schnet", "preset": "tiny", "cutoff": CUTOFF},
        "training": {"max_epochs": 2, "batch_size": 4, "seed": 3, "dtype": "float64",
                     "device": "cpu", "num_workers": workers, "ema_decay": None},
        "out": str(out)})


def test_training_on_lazy_data_gives_the_in_memory_weights(tmp_path, h5file):
    """The trainer with data.lazy (batches made by 2 DataLoader workers) follows the
    in-memory run step for step: the same weights after 2 epochs."""
    from potlab.potential import load
    from potlab.train import train

    path, _, _ = h5file
    train(_train_cfg(path, tmp_path / "mem", lazy=False))
    train(_train_cfg(path, tmp_path / "lazy", lazy=True))
    a = load(tmp_path / "mem" / "model.pt").state_dict()
    b = load(tmp_path / "lazy" / "model.pt").state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-12, msg=k)


def test_cli_training_on_a_corrupt_lazy_file_exits_2_naming_the_frame(tmp_path, rng, capsys):
    """A NaN force in the middle of the file stops `potlab train` with exit 2 and one line
    naming the file, the frame and the field (the streamed statistics read it first)."""
    import yaml

    from potlab.cli import main

    path, _group, start = _corrupt(tmp_path, rng, "nan_force")
    cfg = {"data": {"train": str(path), "energy_key": "REF_energy", "forces_key": "REF_forces",
                    "lazy": True},
           "model": {"name": "schnet", "preset": "tiny", "cutoff": CUTOFF},
           "training": {"max_epochs": 1, "device": "cpu"}, "out": str(tmp_path / "run")}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp_path / "c.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "REF_forces" in err[0]
    assert str(start + 5) in err[0]
