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
    """The issue's config, with a 3 s budget instead of 120 s."""
    cfg = _write_cfg(tmp_path, training={"max_time": 3})
    r = _run(["train", str(cfg)], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    run = tmp_path / "runs" / "example"
    for name in ("config.yaml", "split.json", "metrics.csv", "model.pt", "e0.json", "checkpoints/last.pt"):
        assert (run / name).exists(), name
    summary = json.loads((run / "summary.json").read_text())
    # the budget is checked before every step, so the run stops once it is spent (how far
    # past it depends on the machine's load: no upper bound; tests/test_train.py checks the
    # budget logic itself with fake clocks)
    assert summary["stop_reason"] == "max_time" and summary["elapsed_s"] >= 3.0
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


@pytest.mark.parametrize("schedule", [{}, {"scheduler": "cosine", "scheduler_warmup_steps": 15}],
                         ids=["plateau", "cosine"])
def test_resume_after_kill_matches_uninterrupted_run(tmp_path, train_xyz, schedule):
    params = {"max_epochs": 14, "batch_size": 2, "seed": 3, "max_time": None, **schedule}
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


# --- errors a user meets -----------------------------------------------------------------


def _main(capsys, *argv):
    """``potlab ARGV`` in this process: (exit status, stderr lines)."""
    from potlab.cli import main

    code = main([str(x) for x in argv])
    return code, capsys.readouterr().err.strip().splitlines()


def test_empty_training_file_names_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.xyz").write_text("")
    code, err = _main(capsys, "train", _write_cfg(tmp_path, training={"max_time": 5}))
    assert code == 2 and len(err) == 1 and "train.xyz" in err[0] and "no frames" in err[0]


def test_unwritable_out_and_a_diverging_loss_are_clear_errors(tmp_path, train_xyz, capsys,
                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("")
    code, err = _main(capsys, "train", _write_cfg(tmp_path, training={"max_epochs": 1},
                                                  out="a_file/run"))
    assert code == 2 and len(err) == 1
    assert "cannot write the run directory a_file/run" in err[0]
    cfg = _write_cfg(tmp_path, model={"name": "schnet", **tiny_params("schnet")},
                     training={"max_epochs": 3, "max_time": None, "lr": 1e12, "clip_grad": None,
                               "ema_decay": None, "batch_size": 2})
    code, err = _main(capsys, "train", cfg)
    assert code == 2 and len(err) == 1
    assert "training diverged" in err[0] and "lower training.lr" in err[0]
    code, err = _main(capsys, "-v", "train", cfg)  # -v: the traceback as well
    assert code == 2 and err[0].startswith("Traceback") and "TrainingDiverged" in "\n".join(err)


def test_eval_on_a_file_that_is_not_a_potlab_potential(tmp_path, train_xyz, capsys):
    (tmp_path / "notes.pt").write_text("not a model\n")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "other.model")  # a pickled module (mace-style)
    for name in ("notes.pt", "other.model"):
        code, err = _main(capsys, "eval", tmp_path / name, train_xyz)
        assert code == 2 and len(err) == 1 and name in err[0] and "not a potlab potential" in err[0]


def test_an_internal_bug_keeps_its_traceback(monkeypatch, capsys):
    """Only bad input becomes a one-line error; a KeyError from a bug propagates."""
    from potlab.cli import main

    def broken(args):
        return {}["missing"]

    monkeypatch.setattr("potlab.cli._cmd_models", broken)
    with pytest.raises(KeyError, match="missing"):
        main(["models"])


def test_output_into_a_closed_pipe_ends_quietly():
    """``potlab models | head -0``: the reader is gone before potlab writes; the command
    ends with exit 1 and no traceback (Python's own default is a BrokenPipeError traceback
    and a second one at interpreter exit)."""
    import subprocess
    import sys

    code = "import sys; from potlab.cli import main; sys.exit(main(['models']))"
    p = subprocess.Popen([sys.executable, "-c", code],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdout.close()  # before the child has imported potlab, let alone printed
    err = p.stderr.read()
    assert p.wait(timeout=120) == 1, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err


# --- what the trainer does, each checked against an independent expectation ---------


def _trainer(tmp_path, data, **training):
    from potlab.train.trainer import Trainer

    cfg = parse_config({
        "data": {"train": str(data), "valid_fraction": 0.25},
        "model": {"name": "schnet", **tiny_params("schnet")},
        "training": {"max_epochs": 2, "batch_size": 4, "seed": 0, "ema_decay": None, **training},
        "out": str(tmp_path / "run"),
    })
    return Trainer(cfg)


def test_stress_enters_the_loss(tmp_path, li3ps4_frames):
    """Stress labels from a file reach the loss: w_S times the mean squared stress error
    (over the 9 components) of the student's stress against a teacher's."""
    from ase.stress import voigt_6_to_full_3x3_stress

    from potlab.potential import Potential, predict

    teacher = Potential("schnet", tiny_params("schnet"), [3, 15, 16]).double()
    frames = []
    for a in li3ps4_frames[:8]:
        b = a.copy()
        b.calc = teacher.calculator()
        b.info["REF_energy"] = b.get_potential_energy()
        b.arrays["REF_forces"] = b.get_forces()
        b.info["REF_stress"] = b.get_stress()
        b.calc = None
        frames.append(b)
    write_extxyz(tmp_path / "s.xyz", frames)
    weights = {"energy_weight": 1.0, "forces_weight": 10.0, "stress_weight": 1000.0}
    tr = _trainer(tmp_path, tmp_path / "s.xyz", dtype="float64", valid_batch_size=16, **weights)
    tr.out.mkdir(parents=True)
    tr._setup_data()
    tr._setup_model()
    used = [frames[a.info["source_index"]] for a in tr.train_data.frames]
    p = predict(tr.potential, used, stress=True)
    n = np.array([len(a) for a in used])
    de = (p["energy"] - [a.info["REF_energy"] for a in used]) / n
    df = p["forces"] - np.concatenate([a.arrays["REF_forces"] for a in used])
    ds = p["stress"] - np.stack([voigt_6_to_full_3x3_stress(a.info["REF_stress"]) for a in used])
    expected = (weights["energy_weight"] * np.mean(de**2)
                + weights["forces_weight"] * np.sum(df**2) / (3 * n.sum())
                + weights["stress_weight"] * np.sum(ds**2) / (9 * len(used)))
    assert np.sum(ds**2) > 0
    assert tr.evaluate(tr.train_data)["loss"] == pytest.approx(expected, rel=1e-9)


def _ticking(step):
    now = [0.0]

    def clock():
        now[0] += step
        return now[0]

    return clock


@pytest.mark.parametrize("budget_clock", ["wall", "cpu"])
def test_the_budget_counts_on_the_configured_clock(tmp_path, train_xyz, monkeypatch, budget_clock):
    """Fake clocks, one frozen and one ticking 1 s per reading: the budget runs out only on
    the clock the config names."""
    from potlab.train import budget

    frozen = "cpu" if budget_clock == "wall" else "wall"
    monkeypatch.setitem(budget.CLOCKS, budget_clock, _ticking(1.0))
    monkeypatch.setitem(budget.CLOCKS, frozen, _ticking(0.0))
    tr = _trainer(tmp_path, train_xyz, max_time=4.0, max_epochs=3, budget_clock=budget_clock)
    res = tr.run()
    assert res.stop_reason == "max_time" and res.epochs < 3
    assert res.metrics["elapsed_s"] >= 4.0
    # the same run with the other clock: never out of time
    monkeypatch.setitem(budget.CLOCKS, budget_clock, _ticking(0.0))
    other = _trainer(tmp_path / "b", train_xyz, max_time=4.0, max_epochs=3, budget_clock=budget_clock)
    assert other.run().stop_reason == "max_epochs"


def test_outlier_drop_trains_on_the_rest(tmp_path, li3ps4_frames):
    frames = [a.copy() for a in li3ps4_frames[:16]]
    frames[9].info["REF_energy"] += 50.0 * len(frames[9])  # an SCF failure, 50 eV/atom off
    write_extxyz(tmp_path / "o.xyz", frames)
    tr = _trainer(tmp_path, tmp_path / "o.xyz", max_epochs=1,)
    tr.cfg.data.outliers = type(tr.cfg.data).model_fields["outliers"].annotation.__args__[0](
        threshold=8, drop=True)
    res = tr.run()
    report = json.loads((res.out / "outliers.json").read_text())
    assert report["indices"] == [9] and report["reasons"]["9"] == ["energy_per_atom"]
    split = json.loads((res.out / "split.json").read_text())
    assert sorted(split["train"] + split["valid"]) == [i for i in range(16) if i != 9]
    assert 9 not in [a.info["source_index"] for a in tr.train_data.frames]


def test_subset_fractions_set_the_share_of_sampled_frames(tmp_path, li3ps4_frames, monkeypatch):
    """3 of 12 training frames are subset "rare"; with fractions 50:50 half of the frames
    drawn for the steps are "rare" (a quarter without fractions)."""
    from potlab.train.prepared import Prepared

    frames = [a.copy() for a in li3ps4_frames[:16]]
    for k, a in enumerate(frames):
        a.info["config_type"] = "rare" if k % 4 == 0 else "bulk"
    write_extxyz(tmp_path / "f.xyz", frames)
    drawn = []
    original = Prepared.batch

    def spy(self, idx):
        if self is tr.train_data and tr.potential.training:  # a training step, not evaluation
            drawn.extend(self.frames[i].info["config_type"] for i in idx)
        return original(self, idx)

    monkeypatch.setattr(Prepared, "batch", spy)
    tr = _trainer(tmp_path, tmp_path / "f.xyz", max_epochs=12, batch_size=12, lr=0.0)
    tr.cfg.data.subset_fractions = {"rare": 0.5, "bulk": 0.5}
    tr.cfg.data.valid_fraction = 0.0
    tr.run()
    p = tr.sampling
    kinds = np.array([a.info["config_type"] for a in tr.train_data.frames])
    assert p[kinds == "rare"].sum() == pytest.approx(0.5) and np.ptp(p[kinds == "rare"]) == 0
    share = drawn.count("rare") / len(drawn)
    assert len(drawn) == 12 * 16 and 0.4 < share < 0.6  # 192 draws; 0.25 without fractions


def test_adamw_decays_weights_adam_adds_l2_to_the_gradient(tmp_path, train_xyz):
    """With zero gradients one AdamW step multiplies every weight by (1 - lr * wd); Adam's
    weight_decay instead adds wd * w to the gradient, a step of about lr against sign(w)."""
    lr, wd = 1e-2, 0.5
    for name in ("adamw", "adam"):
        tr = _trainer(tmp_path / name, train_xyz, optimizer=name, lr=lr, weight_decay=wd)
        tr.out.mkdir(parents=True)
        tr._setup_data()
        tr._setup_model()
        params = [q for q in tr.potential.parameters() if q.abs().max() > 0.1]
        before = [q.detach().clone() for q in params]
        for q in tr.potential.parameters():
            q.grad = torch.zeros_like(q)
        tr.opt.step()
        w, w0 = params[0].detach(), before[0]
        if name == "adamw":
            assert isinstance(tr.opt, torch.optim.AdamW)
            torch.testing.assert_close(w, w0 * (1 - lr * wd))
        else:
            big = w0.abs() > 0.1
            torch.testing.assert_close(w[big], w0[big] - lr * torch.sign(w0[big]), atol=1e-5, rtol=0)


def test_early_stopping_after_patience_epochs_without_improvement(tmp_path, train_xyz):
    """lr = 0: the validation loss never improves after epoch 0, so with patience 2 the
    run stops after epoch 2, keeping epoch 0's model."""
    tr = _trainer(tmp_path, train_xyz, lr=0.0, max_epochs=20, early_stopping_patience=2)
    res = tr.run()
    assert res.stop_reason == "early_stopping" and res.epochs == 3 and res.best_epoch == 0
    assert [int(r["best"]) for r in _rows(res.out)] == [1, 0, 0]


def test_init_model_continues_from_a_trained_model(tmp_path, train_xyz, li3ps4_frames):
    """``training.init_model``: the run starts as that model (weights, E0, shift, scale),
    so with a zero learning rate it stays that model, and with one its first epoch starts
    from the first run's loss, not from scratch; another architecture is refused."""
    import potlab

    def cfg(out, **training):
        return parse_config({
            "data": {"train": str(train_xyz), "valid_fraction": 0.25},
            "model": {"name": "schnet", **tiny_params("schnet")},
            "training": {"max_epochs": 6, "batch_size": 4, "lr": 1e-2, "seed": 0,
                         "ema_decay": None, **training},
            "out": str(tmp_path / out)})

    first = train(cfg("first")).out / "model.pt"
    train(cfg("same", init_model=str(first), lr=0.0, max_epochs=1, refit_e0=False))
    frames = li3ps4_frames[24:28]
    a, b = potlab.load(first), potlab.load(tmp_path / "same" / "model.pt")
    assert a.e0 == b.e0 and float(a.shift) == float(b.shift) and float(a.scale) == float(b.scale)
    ea, eb = (p(p.graph(frames))["energy"].detach().numpy() for p in (a, b))
    np.testing.assert_array_equal(ea, eb)
    train(cfg("continued", init_model=str(first), max_epochs=1))
    fresh0 = float(_rows(tmp_path / "first")[0]["valid_loss"])
    best = min(float(r["valid_loss"]) for r in _rows(tmp_path / "first"))
    cont0 = float(_rows(tmp_path / "continued")[0]["valid_loss"])
    assert cont0 < fresh0 and cont0 < 2 * best
    bad = cfg("bad", init_model=str(first))
    bad.model = type(bad.model)(name="painn", **tiny_params("painn"))
    with pytest.raises(ConfigError, match="training.init_model"):
        train(bad)


def test_a_run_directory_resumes_only_with_its_data_and_model(tmp_path, train_xyz, monkeypatch):
    """A rerun naming the same training file by another path (absolute when saved,
    relative now) resumes; another file or another model is refused naming the section."""
    from potlab.train.checkpoint import check_resume_config

    raw = yaml.safe_load(_write_cfg(tmp_path).read_text())
    out = tmp_path / "run"
    out.mkdir()
    saved = parse_config({**raw, "data": {**raw["data"], "train": str(train_xyz.resolve())}})
    (out / "config.yaml").write_text(yaml.safe_dump(saved.model_dump(mode="json")))
    monkeypatch.chdir(tmp_path)
    check_resume_config(out, parse_config(raw))  # "train.xyz", the same file
    other = tmp_path / "other.xyz"
    other.write_bytes(train_xyz.read_bytes())
    with pytest.raises(ConfigError, match="different 'data' section"):
        check_resume_config(out, parse_config({**raw, "data": {**raw["data"], "train": "other.xyz"}}))
    with pytest.raises(ConfigError, match="different 'model' section"):
        check_resume_config(out, parse_config({**raw, "model": {"name": "schnet", "cutoff": 4.0}}))
