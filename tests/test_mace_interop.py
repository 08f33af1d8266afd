"""MACE interop both ways: ``potlab export --format mace`` gives a mace-torch ScaleShiftMACE
that mace-torch's own MACECalculator evaluates to potlab's energies and forces, and
``model: {name: mace, init_from: FILE.model}`` starts potlab from a model that
mace-torch's own ``mace_run_train`` trained (weights, E0, shift and scale from the file)."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase.build import molecule
from conftest import tiny_params

import potlab
from potlab.potential import Potential

RMD17 = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "rmd17" / "rmd17_ethanol_train_01.npz"
MACE_RUN_TRAIN = Path(sys.executable).parent / "mace_run_train"
TOL = 1e-6  # eV and eV/A, float64


def mace_calculator(path):
    from potlab.models.e3nn_import import import_mace_and_e3nn

    import_mace_and_e3nn()
    from mace.calculators import MACECalculator

    return MACECalculator(model_paths=str(path), device="cpu", default_dtype="float64")


def max_differences(calc_a, calc_b, atoms) -> tuple[float, float]:
    """|E_a - E_b| (eV) and max |F_a - F_b| (eV/A) on one structure."""
    a, b = atoms.copy(), atoms.copy()
    a.calc, b.calc = calc_a, calc_b
    return (abs(a.get_potential_energy() - b.get_potential_energy()),
            float(np.abs(a.get_forces() - b.get_forces()).max()))


def potlab_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "potlab.cli", *args], cwd=cwd,
                          capture_output=True, text=True, check=False)


# ---- potlab -> mace-torch -------------------------------------------------------------


@pytest.fixture
def mace_potential(li3ps4_frames):
    """A MACE potential on Li, P, S and H with E0, shift and scale far from 0 and 1."""
    elements = sorted({int(z) for z in li3ps4_frames[2].numbers} | {1})
    torch.manual_seed(3)
    pot = Potential("mace", tiny_params("mace"), elements,
                    e0={z: -10.0 - 3.0 * z for z in elements}, shift=0.37, scale=1.9,
                    avg_num_neighbors=14.0).double().eval()
    with torch.no_grad():  # readouts start near zero: make the model's energies count
        for p in pot.model.mace.readouts.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return pot


def test_export_mace_reproduces_potlab_periodic_and_molecular(mace_potential, li3ps4_frames, tmp_path):
    mace_potential.save(tmp_path / "model.pt")
    r = potlab_cli("export", "--format", "mace", "model.pt", "out.model", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    calc = mace_calculator(tmp_path / "out.model")
    model = calc.models[0]
    assert type(model).__name__ == "ScaleShiftMACE"
    assert float(model.scale_shift.scale) == pytest.approx(1.9)
    assert float(model.scale_shift.shift) == pytest.approx(0.37)
    np.testing.assert_allclose(model.atomic_energies_fn.atomic_energies.numpy().ravel(),
                               [-10.0 - 3.0 * z for z in mace_potential.elements])
    crystal = li3ps4_frames[2].copy()  # periodic, Li P S
    mol = molecule("SH2")
    mol.rattle(0.05, seed=1)
    cluster = crystal[:12].copy()  # non-periodic, with a hydrogen in it
    cluster.pbc = False
    cluster.cell = None
    cluster.numbers[0] = 1
    ref = potlab.load(tmp_path / "model.pt", dtype="float64").calculator()
    for atoms in (crystal, mol, cluster):
        de, df = max_differences(calc, ref, atoms)
        assert de < TOL and df < TOL, (atoms.get_chemical_formula(), de, df)
    a, b = crystal.copy(), crystal.copy()
    a.calc, b.calc = calc, ref
    np.testing.assert_allclose(a.get_stress(), b.get_stress(), atol=1e-8)


def test_export_mace_of_float32_potential_and_library_call(mace_potential, tmp_path):
    from potlab.potential.export import export_mace

    pot32 = mace_potential.float()
    path = export_mace(pot32, tmp_path / "m.model")
    mol = molecule("SH2")
    de, df = max_differences(mace_calculator(path), pot32.double().calculator(), mol)
    assert de < TOL and df < TOL


def test_export_mace_of_non_mace_is_input_error(tmp_path):
    from potlab.errors import InputError
    from potlab.potential.export import export_mace

    pot = Potential("schnet", tiny_params("schnet"), [1, 8])
    with pytest.raises(InputError, match="needs a MACE potential"):
        export_mace(pot, tmp_path / "x.model")
    pot.save(tmp_path / "schnet.pt")
    r = potlab_cli("export", "--format", "mace", "schnet.pt", "x.model", cwd=tmp_path)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "schnet" in r.stderr, r.stderr
    assert not (tmp_path / "x.model").exists()


def test_export_pt2_of_mace_points_to_format_mace(tmp_path):
    pot = Potential("mace", tiny_params("mace"), [1, 8]).double()
    pot.save(tmp_path / "mace.pt")
    r = potlab_cli("export", "mace.pt", "m.pt2", cwd=tmp_path)
    assert r.returncode == 3 and "--format mace" in r.stderr, r.stderr


# ---- mace-torch -> potlab -------------------------------------------------------------


def _frames(n: int):
    from potlab.data import read_frames

    return read_frames(RMD17)[:n]


@pytest.fixture(scope="module")
def mace_torch_model(tmp_path_factory):
    """A tiny ScaleShiftMACE that mace-torch's own mace_run_train trains (2 epochs, 30
    ethanol frames, 8 channels), with its training file."""
    if not MACE_RUN_TRAIN.exists():
        pytest.skip(f"mace_run_train not found next to {sys.executable}")
    d = tmp_path_factory.mktemp("mace_torch")
    ase.io.write(d / "train.xyz", _frames(30), format="extxyz")
    cmd = [str(MACE_RUN_TRAIN), "--name", "tiny", "--train_file", "train.xyz",
           "--valid_fraction", "0.2", "--energy_key", "REF_energy", "--forces_key", "REF_forces",
           "--E0s", "average", "--model", "ScaleShiftMACE", "--num_channels", "8", "--max_L", "1",
           "--correlation", "2", "--num_interactions", "2", "--r_max", "4.0",
           "--radial_MLP", "[16,16]", "--MLP_irreps", "8x0e", "--max_num_epochs", "2",
           "--batch_size", "5", "--device", "cpu", "--default_dtype", "float64", "--seed", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, cwd=d, capture_output=True, text=True, env=env, check=False)
    assert r.returncode == 0 and (d / "tiny.model").exists(), r.stderr[-2000:]
    return d / "tiny.model", d / "train.xyz"


def test_init_from_hyperparameters_and_energies_equal_mace_torch(mace_torch_model):
    from potlab.models.mace import potential_from_mace_file

    path, train = mace_torch_model
    pot = potential_from_mace_file(path)
    c = pot.model.config
    assert (c.num_channels, c.max_L, c.correlation, c.cutoff, c.radial_mlp, c.mlp_irreps,
            c.use_reduced_cg, c.init_from) == (8, 1, 2, 4.0, [16, 16], "8x0e", False, None)
    calc = mace_calculator(path)
    assert pot.e0 == pytest.approx({z: float(e) for z, e in zip(
        calc.models[0].atomic_numbers.tolist(),
        calc.models[0].atomic_energies_fn.atomic_energies.numpy().ravel())})
    for k in (0, 7, 29):
        de, df = max_differences(calc, pot.calculator(), ase.io.read(train, k))
        assert de < TOL and df < TOL, (k, de, df)
    # elements of the file the data lacks are dropped (as mace-torch's fine-tuning does)
    from potlab.models.mace import mace_output, read_mace_file

    out = mace_output(read_mace_file(path), [1, 6])
    sub = Potential("mace", {"init_from": str(path)}, [1, 6], **out).double().eval()
    methane = molecule("CH4")
    methane.rattle(0.05, seed=2)
    de, df = max_differences(calc, sub.calculator(), methane)
    assert de < TOL and df < TOL


def test_mace_torch_to_potlab_to_mace_torch_round_trip(mace_torch_model, tmp_path):
    from potlab.models.mace import potential_from_mace_file
    from potlab.potential.export import export_mace

    path, train = mace_torch_model
    back = export_mace(potential_from_mace_file(path), tmp_path / "back.model")
    de, df = max_differences(mace_calculator(path), mace_calculator(back), ase.io.read(train, 3))
    assert de < 1e-9 and df < 1e-9


def test_init_from_config_errors(mace_torch_model, tmp_path):
    from potlab.models.mace import MaceFileError
    from potlab.train import ConfigError, parse_config

    path, train = mace_torch_model
    base = {"data": {"train": str(train)}, "out": str(tmp_path / "run")}
    with pytest.raises(ConfigError, match="num_channels"):
        parse_config({**base, "model": {"name": "mace", "init_from": str(path), "num_channels": 16}})
    with pytest.raises(ConfigError, match="no such mace-torch model file"):
        parse_config({**base, "model": {"name": "mace", "init_from": str(tmp_path / "none.model")}})
    cfg = parse_config({**base, "model": {"name": "mace", "init_from": str(path), "cutoff": 4.0}})
    assert cfg.model.name == "mace"
    with pytest.raises(MaceFileError, match="no element"):
        Potential("mace", {"init_from": str(path)}, [1, 6, 16])
    torch.save(torch.nn.Linear(2, 2), tmp_path / "other.model")
    with pytest.raises(ValueError, match="not a mace-torch ScaleShiftMACE"):  # model config
        Potential("mace", {"init_from": str(tmp_path / "other.model")}, [1])


def _train(tmp_path, name, mace_file, train, **training):
    from potlab.train import parse_config
    from potlab.train import train as run_training

    cfg = parse_config({
        "data": {"train": str(train), "valid_fraction": 0.2},
        "model": {"name": "mace", "init_from": str(mace_file)},
        "training": {"batch_size": 5, "seed": 1, "dtype": "float64", "device": "cpu",
                     "threads": 1, "refit_e0": False, **training},
        "out": str(tmp_path / name),
    }, source=name)
    res = run_training(cfg)
    with open(res.out / "metrics.csv", newline="") as fh:
        return res.out, list(csv.DictReader(fh))


def test_init_from_starts_training_from_the_file_and_lowers_the_loss(mace_torch_model, tmp_path):
    from potlab.models.mace import potential_from_mace_file

    path, train = mace_torch_model
    frames = ase.io.read(train, ":")
    # lr ~ 0 for one epoch: the trained model's network is the file's
    out, _ = _train(tmp_path, "still", path, train, lr=1e-14, min_lr=1e-15, max_epochs=1,
                    ema_decay=None)
    still = potlab.load(out / "model.pt", dtype="float64")
    ref = potential_from_mace_file(path)
    g = still.graph(frames[:5])
    np.testing.assert_allclose(still.model(g).detach().numpy(), ref.model(g).detach().numpy(),
                               atol=1e-8)
    # ... with the file's E0, shift and scale: mace-torch's own energies and forces
    from mace.calculators import MACECalculator

    calc = MACECalculator(model_paths=str(path), device="cpu", default_dtype="float64")
    for a in frames[:3]:
        b = a.copy()
        b.calc = calc
        a.calc = still.calculator()
        assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-6)
        np.testing.assert_allclose(a.get_forces(), b.get_forces(), rtol=0, atol=1e-6)
    # ... and training continues from there, lowering the validation loss
    out, rows = _train(tmp_path, "tuned", path, train, lr=5e-3, max_epochs=4)
    losses = [float(r["valid_loss"]) for r in rows]
    assert len(losses) == 4 and losses[-1] < losses[0], losses
    # the saved potential needs neither the mace-torch file nor mace-torch's format
    moved = shutil.move(path, path.with_suffix(".moved"))
    try:
        tuned = potlab.load(out / "model.pt", dtype="float64")
        assert tuned.model.config.init_from is None
        tuned.calculator().get_potential_energy(frames[0])
    finally:
        shutil.move(moved, path)
