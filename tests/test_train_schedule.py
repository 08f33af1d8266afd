"""The learning rate over a run: the cosine schedule's analytic values, its warm-up, and
the trainer following it over epochs and over a time budget."""

import csv
import math

import pytest
from conftest import tiny_params

from potlab.data import write_extxyz
from potlab.train import ConfigError, parse_config
from potlab.train.schedule import cosine_lr


def test_cosine_rate_at_the_start_middle_and_end():
    assert cosine_lr(1e-3, 1e-5, 0.0) == pytest.approx(1e-3, rel=1e-12)
    assert cosine_lr(1e-3, 1e-5, 0.5) == pytest.approx(0.5 * (1e-3 + 1e-5), rel=1e-12)
    assert cosine_lr(1e-3, 1e-5, 1.0) == pytest.approx(1e-5, rel=1e-12)
    assert cosine_lr(1e-3, 1e-5, 0.25) == pytest.approx(1e-5 + 0.99e-3 * (2 + math.sqrt(2)) / 4,
                                                        rel=1e-12)
    assert cosine_lr(1e-3, 1e-5, 3.0) == cosine_lr(1e-3, 1e-5, 1.0)  # past the budget: the floor


def test_warm_up_rises_linearly_to_the_cosine():
    rates = [cosine_lr(1e-3, 0.0, 0.0, step, warmup=4) for step in range(5)]
    assert rates == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3], rel=1e-12)


def test_warm_up_without_cosine_is_a_config_error_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match="scheduler_warmup_steps"):
        parse_config({"data": {"train": "x.xyz"}, "model": {"name": "schnet"},
                      "training": {"scheduler_warmup_steps": 10}})


def _trainer(tmp_path, frames, **training):
    from potlab.train.trainer import Trainer

    path = tmp_path / "train.xyz"
    write_extxyz(path, frames)
    cfg = parse_config({
        "data": {"train": str(path), "valid_fraction": 0.25},
        "model": {"name": "schnet", **tiny_params("schnet")},
        "training": {"batch_size": 2, "seed": 0, "lr": 1e-3, "min_lr": 1e-5,
                     "scheduler": "cosine", **training},
        "out": str(tmp_path / "run"),
    })
    return Trainer(cfg)


def _lrs(run):
    with open(run / "metrics.csv") as fh:
        return [float(r["lr"]) for r in csv.DictReader(fh)]


def test_the_trainer_follows_the_cosine_over_its_epochs(tmp_path, li3ps4_frames):
    """12 frames, 9 to train in batches of 2: 5 steps an epoch, 4 epochs = 20 steps. The
    rate logged after epoch e is the one of its last step, 5e + 4 (from 0)."""
    tr = _trainer(tmp_path, li3ps4_frames[:12], max_epochs=4, max_time=None)
    tr.run()
    expected = [1e-5 + 0.5 * 0.99e-3 * (1 + math.cos(math.pi * (5 * e + 4) / 20)) for e in range(4)]
    assert _lrs(tmp_path / "run") == pytest.approx(expected, rel=1e-9)


def test_on_a_time_budget_the_rate_reaches_its_floor_when_the_time_runs_out(
        tmp_path, li3ps4_frames, monkeypatch):
    """A fake clock ticking 1 s a reading and a 30 s budget: the run stops on time, long
    before its 1000 epochs, and its last rate is near min_lr, not near lr."""
    from potlab.train import budget

    now = [0.0]

    def clock():
        now[0] += 1.0
        return now[0]

    monkeypatch.setitem(budget.CLOCKS, "wall", clock)
    tr = _trainer(tmp_path, li3ps4_frames[:12], max_epochs=1000, max_time=30.0)
    res = tr.run()
    assert res.stop_reason == "max_time" and res.epochs < 10
    lrs = _lrs(tmp_path / "run")
    assert lrs == sorted(lrs, reverse=True)
    # the last step ran with at most 3 fake seconds (of 30) left: within 1 % of the budget's
    # cosine of the floor, 1e-5 + 0.99e-3 (1 - cos(pi * 3/30)) / 2 = 3.4e-5
    assert lrs[-1] <= 1e-5 + 0.5 * 0.99e-3 * (1 - math.cos(math.pi * 3 / 30))
