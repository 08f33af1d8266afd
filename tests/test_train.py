"""Trainer and CLI: the issue's minimal config trains as written, bad data and bad config
fail with messages that name what is wrong, and a killed run resumes to the same numbers."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import tiny_params

from potlab.data import write_extxyz
from potlab.models import available
from potlab.train import ConfigError, parse_config, train
from potlab.train.loss import weighted_loss

POTLAB = [sys.executable, "-m", "potlab.cli"]


@pytest.fixture
def train_xyz(tmp_path, li3ps4_frames):
    path = tmp_path / "train.xyz"
    write_extxyz(path, li3ps4_frames[:24])
    return path


def _write_cfg(tmp_path, **over):
    cfg = {
        "data": {"train": "train.xyz", "energy_key": "REF_energy", "forces_key": "REF_forces",
                 "valid_fraction": 0.1},
        "model": {"name": "schnet", "cutoff": 5.0},
        "training": {"max_time": 120, "energy_weight": 1.0, "forces_weight": 100.0, "seed": 1},
        "out": "runs/example",
    }
    for section, values in over.items():
        if isinstance(values, dict):
            cfg[section].update(values)
        else:
            cfg[section] = values
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(args, cwd, **kw):
    env = {**os.environ, "POTLAB_QUIET": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(POTLAB + args, cwd=cwd, capture_output=True, text=True, env=env,
                          check=False, **kw)


def test_minimal_config_trains_and_evaluates(tmp_path, train_xyz):
    """The issue's config, with a 10 s budget instead of 120 s."""
    cfg = _write_cfg(tmp_path, training={"max_time": 10})
    r = _run(["train", str(cfg)], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    run = tmp_path / "runs" / "example"
    for name in ("config.yaml", "split.json", "metrics.csv", "model.pt", "e0.json", "checkpoints/last.pt"):
        assert (run / name).exists(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "max_time" and 9.0 <= summary["elapsed_s"] < 20
    split = json.loads((run / "split.json").read_text())
    assert len(split["valid"]) >= 2 and not set(split["train"]) & set(split["valid"])
    r = _run(["eval", str(run / "model.pt"), str(train_xyz), "--energy-key", "REF_energy",
              "--forces-key", "REF_forces", "--json"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)  # stdout is exactly one JSON object
    for key in ("energy_mae_mev_per_atom", "forces_mae_mev_per_a", "forces_r2", "subsets"):
        assert key in m
    assert np.isfinite(m["forces_mae_mev_per_a"]) and m["forces_r2"] <= 1.0
    assert Path(m["parity_plot"]).exists()
    from ase.calculators.calculator import Calculator

    import potlab

    assert isinstance(potlab.load(run / "model.pt").calculator(), Calculator)


@pytest.mark.parametrize("field,frame", [("REF_forces", 2), ("missing_forces", 3), ("REF_energy", 4)])
def test_bad_training_data_exits_nonzero_naming_file_frame_field(tmp_path, li3ps4_frames, field, frame):
    frames = [a.copy() for a in li3ps4_frames[:6]]
    path = tmp_path / "train.xyz"
    write_extxyz(path, frames)
    text = path.read_text().splitlines()
    # edit the file as text so that the error comes from reading a real bad file
    starts = [i for i, line in enumerate(text) if line.strip().isdigit()]
    header = starts[frame] + 1
    if field == "REF_forces":
        parts = text[header + 2].split()
        parts[-1] = "nan"
        text[header + 2] = " ".join(parts)
    elif field == "REF_energy":
        import re

        text[header] = re.sub(r"REF_energy=\S+", "REF_energy=inf", text[header])
    else:
        frames[frame].arrays.pop("REF_forces")
        write_extxyz(path, frames)
        text = path.read_text().splitlines()
    path.write_text("\n".join(text) + "\n")
    cfg = _write_cfg(tmp_path, training={"max_time": 5})
    r = _run(["train", str(cfg)], cwd=tmp_path)
    assert r.returncode != 0
    assert "train.xyz" in r.stderr and f"frame {frame}" in r.stderr
    assert ("REF_forces" if field != "REF_energy" else "REF_energy") in r.stderr
    assert not (tmp_path / "runs" / "example" / "model.pt").exists()


def test_config_errors_name_the_key(tmp_path):
    base = {"data": {"train": "x.xyz"}, "model": {"name": "schnet"}}
    with pytest.raises(ConfigError, match="training.lerning_rate"):
        parse_config({**base, "training": {"lerning_rate": 1e-3}})
    with pytest.raises(ConfigError, match="model.num_featurs"):
        parse_config({**base, "model": {"name": "schnet", "num_featurs": 8}})
    with pytest.raises(ConfigError, match="model.name"):
        parse_config({**base, "model": {"name": "transformer9000"}})
    cfg = _write_cfg(tmp_path, training={"max_tme": 3})
    r = _run(["train", str(cfg)], cwd=tmp_path)
    assert r.returncode == 2 and "training.max_tme" in r.stderr


def test_beta_form_of_seed_004():
    cfg = parse_config({"data": {"train": "x.xyz"}, "model": {"name": "schnet"},
                        "training": {"beta": 0.99, "energy_loss": "total"}})
    assert cfg.training.energy_weight == pytest.approx(0.01)
    assert cfg.training.forces_weight == pytest.approx(0.99)


def test_subset_weights_in_the_loss():
    ref = {"energy": torch.tensor([1.0, 2.0]), "n_atoms": torch.tensor([1, 1]),
           "forces": torch.zeros(2, 3), "batch": torch.tensor([0, 1]),
           "weight": torch.tensor([1.0, 0.0]), "stress": torch.zeros(2, 3, 3),
           "has_stress": torch.tensor([False, False])}
    pred = {"energy": torch.tensor([1.5, 100.0]), "forces": torch.tensor([[0.0, 0, 0], [9.0, 9, 9]])}
    _, terms = weighted_loss(pred, ref, energy_weight=1.0, forces_weight=1.0)
    assert terms["energy"].item() == pytest.approx(0.25)  # the zero-weight frame is ignored
    assert terms["forces"].item() == 0.0


@pytest.mark.parametrize("name", sorted(available()))
def test_training_lowers_the_loss(name, tmp_path, train_xyz):
    cfg = parse_config({
        "data": {"train": str(train_xyz), "valid_fraction": 0.25},
        "model": {"name": name, **tiny_params(name)},
        "training": {"max_epochs": 6, "batch_size": 4, "lr": 1e-2, "seed": 0, "ema_decay": None},
        "out": str(tmp_path / name),
    })
    res = train(cfg)
    with open(res.out / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and res.stop_reason == "max_epochs"
    first, last = float(rows[0]["train_loss"]), min(float(r["train_loss"]) for r in rows[1:])
    assert last < 0.85 * first


def _rows(run):
    with open(run / "metrics.csv") as fh:
        return [{k: v for k, v in r.items() if k != "time_s"} for r in csv.DictReader(fh)]


def test_resume_after_kill_matches_uninterrupted_run(tmp_path, train_xyz):
    params = {"max_epochs": 14, "batch_size": 2, "seed": 3, "max_time": None}
    straight = _write_cfg(tmp_path, training=params, out="runs/straight")
    r = _run(["train", str(straight)], cwd=tmp_path)
    assert r.returncode == 0, r.stderr

    killed = _write_cfg(tmp_path, training=params, out="runs/killed")
    run = tmp_path / "runs" / "killed"
    env = {**os.environ, "POTLAB_QUIET": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(POTLAB + ["train", str(killed)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if (run / "metrics.csv").exists() and len(_rows(run)) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = len(_rows(run))
    assert 3 <= n_before < 14
    r = _run(["train", str(killed)], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert _rows(run) == _rows(tmp_path / "runs" / "straight")
    a = torch.load(run / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "runs" / "straight" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # running again on a finished run changes nothing
    r = _run(["train", str(killed)], cwd=tmp_path)
    assert r.returncode == 0 and _rows(run) == _rows(tmp_path / "runs" / "straight")


def test_a_larger_budget_continues_a_finished_run(tmp_path, train_xyz):
    cfg = _write_cfg(tmp_path, training={"max_epochs": 2, "max_time": None, "batch_size": 8},
                     model={"name": "schnet", **tiny_params("schnet")})
    assert _run(["train", str(cfg)], cwd=tmp_path).returncode == 0
    run = tmp_path / "runs" / "example"
    assert len(_rows(run)) == 2
    cfg = _write_cfg(tmp_path, training={"max_epochs": 4, "max_time": None, "batch_size": 8},
                     model={"name": "schnet", **tiny_params("schnet")})
    r = _run(["train", str(cfg)], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert [int(row["epoch"]) for row in _rows(run)] == [0, 1, 2, 3]
    # changing the data or the model of an existing run is refused, naming the section
    cfg = _write_cfg(tmp_path, training={"max_epochs": 4, "max_time": None},
                     model={"name": "schnet", "cutoff": 4.5})
    r = _run(["train", str(cfg)], cwd=tmp_path)
    assert r.returncode == 2 and "'model'" in r.stderr


def test_e0_refit_removes_the_energy_offset(tmp_path, train_xyz):
    """Forces weighted 1000:1 leave an energy offset no force sees; the least-squares E0
    correction at the end (seed 004) removes it: afterwards the training residuals have no
    part left that is linear in the element counts."""
    import potlab
    from potlab.data import read_frames
    from potlab.potential import predict

    cfg = parse_config({
        "data": {"train": str(train_xyz), "valid_fraction": 0.2},
        "model": {"name": "schnet", **tiny_params("schnet")},
        "training": {"max_epochs": 2, "batch_size": 8, "energy_weight": 1.0, "forces_weight": 1000.0},
        "out": str(tmp_path / "run"),
    })
    res = train(cfg)
    info = res.metrics["e0_refit"]
    assert info["train_energy_rmse_ev_after"] < info["train_energy_rmse_ev_before"]
    pot = potlab.load(res.out / "model.pt")
    assert pot.metadata["e0_refit"] == info
    split = json.loads((res.out / "split.json").read_text())
    frames = [read_frames(train_xyz)[i] for i in split["train"]]
    p = predict(pot, frames)
    resid = np.array([a.info["REF_energy"] for a in frames]) - p["energy"]
    counts = np.array([[np.sum(a.numbers == z) for z in pot.elements] for a in frames], float)
    delta = np.linalg.lstsq(counts, resid, rcond=None)[0]
    assert np.abs(delta).max() < 1e-5  # nothing left to correct
    assert np.sqrt((resid**2).mean()) == pytest.approx(info["train_energy_rmse_ev_after"], rel=1e-3)
    # resuming a finished run does not apply the correction twice
    again = train(cfg)
    assert again.metrics["e0_refit"] == info
    assert potlab.load(res.out / "model.pt").e0 == pot.e0
