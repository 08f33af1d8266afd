"""Devices: train -> load -> MD on a device named explicitly (``cpu`` here; a CUDA GPU when
one is present), files written on one device load on another, and a device that is not
there is a one-line error naming the setting."""

import csv
import json
import os
import subprocess
import sys

import ase.io
import numpy as np
import pytest
import torch
from conftest import tiny_params

import potlab
from potlab.data import write_extxyz
from potlab.devices import DeviceError, resolve_device
from potlab.train import ConfigError, parse_config, train

POTLAB = [sys.executable, "-m", "potlab.cli"]
ENV = {**os.environ, "POTLAB_QUIET": "1", "OMP_NUM_THREADS": "1"}


def _train_load_md(tmp_path, frames, device: str):
    """The whole path with ``device`` named in the training config, in potlab.load and in
    ``potlab md --device``; returns the trained run directory."""
    data = tmp_path / "train.xyz"
    write_extxyz(data, frames[:10])
    cfg = parse_config({
        "data": {"train": str(data), "valid_fraction": 0.2},
        "model": {"name": "schnet", **tiny_params("schnet")},
        "training": {"max_epochs": 2, "batch_size": 4, "seed": 0, "device": device, "threads": 1},
        "out": str(tmp_path / "run"),
    })
    res = train(cfg)
    assert res.stop_reason == "max_epochs"
    summary = json.loads((res.out / "summary.json").read_text())
    assert torch.device(summary["device"]).type == torch.device(device).type

    pot = potlab.load(res.out / "model.pt", device=device)
    assert all(p.device.type == torch.device(device).type for p in pot.parameters())
    assert pot.e0_table.device.type == torch.device(device).type
    atoms = frames[0].copy()
    atoms.calc = pot.calculator()
    e, f = atoms.get_potential_energy(), atoms.get_forces()
    assert np.isfinite(e) and f.shape == (len(atoms), 3) and isinstance(f, np.ndarray)

    # the same file on the CPU gives the same numbers (read with map_location, then moved)
    cpu = potlab.load(res.out / "model.pt", device="cpu")
    atoms.calc = cpu.calculator()
    assert atoms.get_potential_energy() == pytest.approx(e, abs=1e-4)
    np.testing.assert_allclose(atoms.get_forces(), f, atol=1e-4)
    # a training checkpoint loads on the device too
    assert potlab.load(res.out / "checkpoints" / "last.pt", device=device).device.type == pot.device.type

    structure = tmp_path / "start.extxyz"
    ase.io.write(structure, frames[0])
    out = tmp_path / "md"
    done = subprocess.run(POTLAB + ["md", "--model", str(res.out / "model.pt"), "--device", device,
                                    "--structure", str(structure), "--ensemble", "nve",
                                    "--timestep", "0.5", "--steps", "20", "--interval", "5",
                                    "--temperature", "300", "--out", str(out)],
                          capture_output=True, text=True, env=ENV, check=False)
    assert done.returncode == 0, done.stderr
    with open(out / "T300K_r0" / "md_log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [0, 5, 10, 15, 20]
    etot = np.array([float(r["etot_eV"]) for r in rows])
    assert np.all(np.isfinite(etot))
    return res.out


def test_train_load_md_on_the_cpu_named_explicitly(tmp_path, li3ps4_frames):
    _train_load_md(tmp_path, li3ps4_frames, "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_train_load_md_on_a_cuda_gpu(tmp_path, li3ps4_frames):
    run = _train_load_md(tmp_path, li3ps4_frames, "cuda")
    # a file trained on the GPU resumes and loads on the CPU
    ck = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert all(v.device.type == "cpu" for v in ck["potential"]["state_dict"].values())


def test_auto_is_a_gpu_when_present_else_the_cpu():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_bad_devices_are_errors_naming_the_setting(tmp_path, li3ps4_frames):
    raw = {"data": {"train": "x.xyz"}, "model": {"name": "schnet"}, "training": {"device": "gpu"}}
    with pytest.raises(ConfigError, match=r"c.yaml: training.device: device 'gpu'"):
        parse_config(raw, source="c.yaml")
    with pytest.raises(DeviceError, match="device"):
        potlab.load(tmp_path / "none.pt", device="tpu")
    if torch.cuda.is_available():
        return  # the rest is about a machine without a GPU
    with pytest.raises(DeviceError, match=r"training.device: 'cuda' requested but torch finds no CUDA"):
        resolve_device("cuda", "training.device")
    data = tmp_path / "train.xyz"
    write_extxyz(data, li3ps4_frames[:4])
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{train: {data}}}\nmodel: {{name: schnet}}\n"
                   f"training: {{device: 'cuda:0', max_epochs: 1}}\nout: {tmp_path / 'run'}\n")
    done = subprocess.run(POTLAB + ["train", str(cfg)], capture_output=True, text=True, env=ENV,
                          check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("potlab train: error: training.device: 'cuda:0'")
    structure = tmp_path / "s.extxyz"
    ase.io.write(structure, li3ps4_frames[0])
    done = subprocess.run(POTLAB + ["md", "--model", "ase.calculators.emt:EMT", "--device", "cpu",
                                    "--structure", str(structure), "--steps", "1", "--out",
                                    str(tmp_path / "md")], capture_output=True, text=True, env=ENV,
                          check=False)
    assert done.returncode == 2 and "device applies to potlab potentials only" in done.stderr


def test_a_committee_loads_on_the_device_named(tmp_path, li3ps4_frames):
    from potlab.potential import Committee, Potential, load_committee

    members = [Potential("schnet", tiny_params("schnet"), [3, 15, 16]) for _ in range(2)]
    path = Committee(members).save(tmp_path / "committee.pt")
    com = load_committee(path, device="cpu")
    assert com.device == torch.device("cpu")
    calc = com.calculator()
    atoms = li3ps4_frames[0].copy()
    atoms.calc = calc
    assert atoms.get_forces().shape == (len(atoms), 3)
    assert calc.results["member_forces"].shape == (2, len(atoms), 3)
