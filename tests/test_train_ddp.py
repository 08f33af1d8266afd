"""Training with several processes (gloo, 2 CPU processes of 1 thread, real processes):
the same global batches and seed give the one-process weights; a killed 2-process run
resumes to them; torchrun itself works; only rank 0 writes; bad input is one line."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from conftest import tiny_params

from potlab.data import write_extxyz

POTLAB = [sys.executable, "-m", "potlab.cli"]
ENV = {**os.environ, "POTLAB_QUIET": "1", "OMP_NUM_THREADS": "1"}


def _config(tmp_path, name, n_frames=12, **training):
    cfg = {
        "data": {"train": "train.xyz", "valid_fraction": 0.25},
        "model": {"name": "schnet", **tiny_params("schnet")},
        "training": {"max_epochs": 3, "batch_size": 3, "seed": 2, "lr": 5e-3, "device": "cpu",
                     "threads": 1, "max_time": None, **training},
        "out": f"runs/{name}",
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def data(tmp_path, li3ps4_frames):
    write_extxyz(tmp_path / "train.xyz", li3ps4_frames[:12])
    return tmp_path


def _train(tmp_path, config, *extra):
    done = subprocess.run(POTLAB + ["train", *extra, str(config)], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done


def _weights(run, name="checkpoints/last.pt"):
    state = torch.load(run / name, map_location="cpu", weights_only=True)
    return state["potential"]["state_dict"] if "potential" in state else state["state_dict"]


def _assert_same_weights(a, b, atol=1e-5):
    assert a.keys() == b.keys()
    worst = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    assert worst < atol, worst


def _rows(run):
    with open(run / "metrics.csv") as fh:
        return [{k: v for k, v in r.items() if k != "time_s"} for r in csv.DictReader(fh)]


def _assert_same_rows(a, b):
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b]
    for x, y in zip(a, b):
        for key in x:
            assert float(x[key]) == pytest.approx(float(y[key]), rel=1e-5, abs=1e-8), key


def test_two_processes_give_the_one_process_weights(data):
    """9 training frames in global batches of 3: each step rank 0 takes 2 frames, rank 1
    one, and their summed gradients are the one-process gradient of the batch."""
    _train(data, _config(data, "one"))
    done = _train(data, _config(data, "two"), "--nproc", "2")
    assert "model: runs/two/model.pt" in done.stdout  # printed once, by the launcher
    assert done.stdout.count("model: ") == 1
    one, two = data / "runs" / "one", data / "runs" / "two"
    _assert_same_weights(_weights(one), _weights(two))  # the last epoch's weights
    _assert_same_weights(_weights(one, "model.pt"), _weights(two, "model.pt"))  # best, EMA
    _assert_same_rows(_rows(one), _rows(two))
    assert len(_rows(two)) == 3  # one row per epoch: only rank 0 writes


def test_two_processes_take_rank_0s_cosine_rate(data):
    """The cosine rate over a time budget is set from rank 0's clock on every rank; with a
    budget of 1e6 s the step count sets it, and the weights are the one-process ones."""
    schedule = {"scheduler": "cosine", "scheduler_warmup_steps": 2, "max_time": 1e6,
                "min_lr": 1e-4}
    _train(data, _config(data, "one", **schedule))
    _train(data, _config(data, "two", **schedule), "--nproc", "2")
    one, two = data / "runs" / "one", data / "runs" / "two"
    _assert_same_weights(_weights(one), _weights(two))
    _assert_same_rows(_rows(one), _rows(two))
    assert float(_rows(two)[-1]["lr"]) < 1e-3  # 5e-3 falling along the cosine


def test_a_batch_smaller_than_the_number_of_processes(data):
    """Global batches of one frame: rank 1's shard is empty every step; it still joins the
    all-reduce with zeros, and the weights are the one-process ones."""
    _train(data, _config(data, "one", max_epochs=1, batch_size=1))
    _train(data, _config(data, "two", max_epochs=1, batch_size=1), "--nproc", "2")
    _assert_same_weights(_weights(data / "runs" / "one"), _weights(data / "runs" / "two"))


def test_a_killed_two_process_run_resumes_to_the_one_process_weights(data):
    params = {"max_epochs": 8, "batch_size": 2, "seed": 3}
    _train(data, _config(data, "straight", **params))
    killed = _config(data, "killed", **params)
    run = data / "runs" / "killed"
    # a process group of its own, killed as a whole (as Ctrl-C, a SLURM time limit would)
    proc = subprocess.Popen(POTLAB + ["train", "--nproc", "2", str(killed)], cwd=data, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (run / "metrics.csv").exists() and len(_rows(run)) >= 2:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 2 <= len(_rows(run)) < 8
    _train(data, killed, "--nproc", "2")
    _assert_same_rows(_rows(run), _rows(data / "runs" / "straight"))
    _assert_same_weights(_weights(run), _weights(data / "runs" / "straight"))
    _assert_same_weights(_weights(run, "model.pt"), _weights(data / "runs" / "straight", "model.pt"))


def test_torchrun_runs_the_same_training(data):
    """``torchrun --standalone --nproc_per_node 2 -m potlab.cli train``: the trainer reads
    RANK / WORLD_SIZE / LOCAL_RANK and joins the group itself."""
    _train(data, _config(data, "one"))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "potlab.cli", "train", str(_config(data, "torchrun"))]
    done = subprocess.run(cmd, cwd=data, env=ENV, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("model: runs/torchrun/model.pt") == 1  # rank 0 prints
    _assert_same_weights(_weights(data / "runs" / "one"), _weights(data / "runs" / "torchrun"))


def test_bad_input_in_the_processes_is_one_line(data):
    bad = _config(data, "bad")
    raw = yaml.safe_load(bad.read_text())
    raw["data"]["train"] = "missing.xyz"
    bad.write_text(yaml.safe_dump(raw))
    done = subprocess.run(POTLAB + ["train", "--nproc", "2", str(bad)], cwd=data, env=ENV,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "potlab train: error: missing.xyz: no such file"
    committee = _config(data, "committee")
    raw = yaml.safe_load(committee.read_text())
    raw["committee"] = 2
    committee.write_text(yaml.safe_dump(raw))
    done = subprocess.run(POTLAB + ["train", "--nproc", "2", str(committee)], cwd=data, env=ENV,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "committee.workers" in done.stderr
