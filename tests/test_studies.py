"""The study engine end to end on a tiny Li-conductor study with a real teacher (CHGNet).

One uninterrupted run (module fixture) is the yardstick; the other tests copy it and check
that a kill mid-stage, a changed setting, a Dask cluster and an exploding model each end as
the engine promises.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
import yaml

import potlab
from potlab.studies import StudyError, load_study, parse_study, run_study, study_status
from potlab.studies.config import bundled_studies
from potlab.studies.records import read_record

STRUCT = Path(potlab.__file__).parent / "studies" / "data" / "li_conductors" / "structures"

TINY = {
    "name": "tiny",
    "materials": {"Li3PS4": {"structure": str(STRUCT / "Li3PS4.extxyz")}},
    "reference": {"source": "teacher", "method": "chgnet", "label": "CHGNet"},
    "data": {"every": 1, "train_materials": ["Li3PS4"], "n_train": 24, "n_valid": 6, "n_test": 6},
    "train": {"seeds": [0], "training": {"max_epochs": 3, "max_time": None, "batch_size": 4,
                                         "lr": 0.002, "early_stopping_patience": None},
              "models": [{"name": "ani", "preset": "tiny"}, {"name": "schnet", "preset": "tiny"}]},
    "md": {"ensemble": "nvt", "thermostat": "langevin", "timestep_fs": 1.0, "steps": 50,
           "interval": 2, "block": 5, "temperatures_K": [1000.0], "repeats": 2,
           "formats": ["extxyz"], "friction_per_fs": 0.02,
           "monitors": {"bond_stretch_A": 1.0, "density_g_cm3": [0.5, 5.0]}},
    "analyze": {"skip_ps": 0.0, "min_obs": 1, "rdf_bins": 40, "paths_spacing_A": 0.8},
    "execution": {"threads_per_job": 1},
}
# the teacher (CHGNet) and each model run the same protocol: 50 steps at 1000 K, 2 repeats


def tiny_study(**changes) -> dict:
    raw = copy.deepcopy(TINY)
    for path, value in changes.items():
        node = raw
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return raw


def numbers(results: dict) -> dict[str, float]:
    """The report's numbers, flattened (path -> value) for comparison."""
    out: dict[str, float] = {}

    def walk(x, prefix):
        if isinstance(x, dict):
            for k, v in x.items():
                if k in ("provenance", "source", "trajectories", "runs", "points"):
                    continue
                walk(v, f"{prefix}.{k}")
        elif isinstance(x, list):
            for i, v in enumerate(x):
                walk(v, f"{prefix}[{i}]")
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            if "time_s" in prefix or "ns_per_day" in prefix or "steps_per_s" in prefix:
                return  # speeds are measurements of the machine, not results
            out[prefix] = float(x)

    walk({k: results[k] for k in ("teacher", "models", "finding")}, "")
    return out


def assert_same_numbers(a: dict, b: dict, rtol: float = 1e-6) -> None:
    na, nb = numbers(a), numbers(b)
    assert set(na) == set(nb)
    for k in na:
        assert na[k] == pytest.approx(nb[k], rel=rtol, abs=1e-12), k


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> Path:
    """The tiny study run once, uninterrupted, in this process."""
    out = tmp_path_factory.mktemp("study") / "tiny"
    study = parse_study(tiny_study(), source="tiny.yaml")
    res = run_study(study, out, workers=1, source="tiny.yaml")
    assert not res.failed, res.failed
    assert res.report == out / "report.html"
    return out


def _copy(done: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "tiny"
    shutil.copytree(done, dst)
    return dst


def test_tiny_study_end_to_end(done):
    res = json.loads((done / "results.json").read_text())
    # the reference stage ran the real teacher: CHGNet energies and forces in the frames
    rec = read_record(done / "reference" / "Li3PS4" / "T1000K_r0")
    assert rec["status"] == "done" and rec["summary"]["steps"] == 50
    split = read_record(done / "data" / "Li3PS4")["summary"]
    assert (split["train"], split["valid"], split["test"]) == (24, 6, 6)
    for label in ("ani", "schnet"):
        me = res["models"][label]["materials"]["Li3PS4"]
        assert me["force_mae_meV_A"]["mean"] > 0
        assert me["call"] in ("stable", "unstable")
        assert 0.0 <= me["path_overlap"]["mean"] <= 1.0 + 1e-9
        # every number is traceable to the trajectories that made it
        assert all((done / r["trajectory"]).exists() for r in me["t_stab_ps"]["runs"])
    # the report says what the table says, recomputably
    mae = res["models"]["ani"]["materials"]["Li3PS4"]["rdf_mae"]["mean"]
    assert f"{mae:.4f}" in (done / "report.md").read_text()
    html = (done / "report.html").read_text()
    assert "data:image/png;base64," in html and "<img" in html and "src=\"http" not in html
    assert all(state == "done" for _, state, _ in study_status(done))


def test_rdf_mae_recomputed_from_trajectories(done):
    """The RDF error in results.json equals one recomputed here from the trajectory files."""
    import ase.io

    from potlab.analysis.rdf import rdf, rdf_error

    res = json.loads((done / "results.json").read_text())

    def frames(run):
        return [a for r in range(2) for a in ase.io.read(
            done / run / f"T1000K_r{r}" / "trajectory.extxyz", ":")
            if a.info["phase"] == "production"]

    g_ref = rdf(frames("reference/Li3PS4"), rmax=6.0, bins=40)
    g_mod = rdf(frames("md/schnet_s0/Li3PS4"), rmax=6.0, bins=40)
    expect = rdf_error(g_ref.r, g_mod.g, g_ref.g)["mean_abs"]
    got = res["models"]["schnet"]["materials"]["Li3PS4"]["rdf_mae"]["mean"]
    assert got == pytest.approx(expect, rel=1e-12)


def test_rerun_does_nothing(done, tmp_path):
    out = _copy(done, tmp_path)
    res = run_study(load_saved_study(out), out, workers=1)
    assert res.ran == [] and not res.failed


def load_saved_study(out):
    from potlab.studies.engine import load_saved

    return load_saved(out)


def test_changed_model_setting_reruns_only_that_model(done, tmp_path):
    out = _copy(done, tmp_path)
    raw = tiny_study()
    raw["train"]["models"][1]["training"] = {"lr": 0.003}  # schnet only
    res = run_study(parse_study(raw, source="tiny.yaml"), out, workers=1)
    ran = set(res.ran)
    expected = {"train/schnet_s0", "evaluate/schnet_s0", "analyze/schnet_s0/Li3PS4", "report",
                "md/schnet_s0/Li3PS4/T1000K_r0", "md/schnet_s0/Li3PS4/T1000K_r1"}
    assert ran == expected
    # and the stage records say so: ani's jobs kept their old records
    for key in ("train/ani_s0", "md/ani_s0/Li3PS4/T1000K_r0", "reference/Li3PS4/T1000K_r0"):
        assert read_record(out / key)["finished"] == read_record(done / key)["finished"]
    for key in expected:
        assert read_record(out / key)["finished"] > read_record(done / key)["finished"]


def test_batched_engine_runs_each_model_material_as_one_job(done, tmp_path):
    """md.engine batched: one MD job per model and material runs both repeats as replicas
    (one model call per step), in the same run folders; the teacher keeps the ASE engine,
    so its runs and their analysis, the data and the trainings stay current."""
    out = _copy(done, tmp_path)
    raw = tiny_study()
    raw["md"]["engine"] = "batched"
    res = run_study(parse_study(raw, source="tiny.yaml"), out, workers=1)
    assert not res.failed, res.failed
    assert set(res.ran) == {"md/ani_s0/Li3PS4", "md/schnet_s0/Li3PS4", "analyze/ani_s0/Li3PS4",
                            "analyze/schnet_s0/Li3PS4", "report"}
    summary = read_record(out / "md/ani_s0/Li3PS4")["summary"]
    assert set(summary) == {"T1000K_r0", "T1000K_r1"}
    starts = []
    for r in (0, 1):
        run = out / "md/ani_s0/Li3PS4" / f"T1000K_r{r}"
        result = json.loads((run / "result.json").read_text())
        assert result["extra"]["engine"] == "batched" and result["steps"] == summary[f"T1000K_r{r}"]["steps"]
        starts.append(ase.io.read(run / "trajectory.extxyz", index=1).get_velocities())
    assert not np.allclose(starts[0], starts[1])  # each replica its own seed
    results = json.loads((out / "results.json").read_text())
    for model in ("ani", "schnet"):
        rdf = results["models"][model]["materials"]["Li3PS4"]["rdf_mae"]
        assert rdf["mean"] is not None and np.isfinite(rdf["mean"])


def test_added_temperature_adds_jobs_and_keeps_the_others(tmp_path):
    """Appending a temperature (with the training frames held to the old ones) plans new
    reference and MD jobs; every other reference, data, training and MD job keeps its hash,
    so only the new runs, the analyses that read them and the report run again."""
    from potlab.studies.plan import build_plan

    before = {j.key: j.hash for j in build_plan(parse_study(tiny_study(), "tiny.yaml"), tmp_path)}
    raw = tiny_study(**{"md.temperatures_K": [1000.0, 800.0], "data.temperatures_K": [1000.0]})
    after = {j.key: j.hash for j in build_plan(parse_study(raw, "tiny.yaml"), tmp_path)}
    added = set(after) - set(before)
    assert added == {f"{stage}/{run}Li3PS4/T800K_r{r}" for r in (0, 1)
                     for stage, run in (("reference", ""), ("md", "ani_s0/"), ("md", "schnet_s0/"))}
    changed = {k for k in before if after[k] != before[k]}
    assert changed == {"analyze/teacher/Li3PS4", "analyze/ani_s0/Li3PS4",
                       "analyze/schnet_s0/Li3PS4", "report"}
    # without the filter the new teacher frames join the training data: everything retrains
    raw["data"]["temperatures_K"] = None
    again = {j.key: j.hash for j in build_plan(parse_study(raw, "tiny.yaml"), tmp_path)}
    assert again["train/ani_s0"] != before["train/ani_s0"]
    assert again["md/ani_s0/Li3PS4/T1000K_r0"] != before["md/ani_s0/Li3PS4/T1000K_r0"]


def test_moved_input_files_keep_the_hashes(tmp_path):
    """The same structure content at another path (a package installed elsewhere, a study
    copied to another machine) plans the same jobs with the same hashes."""
    from potlab.studies.plan import build_plan

    moved = tmp_path / "elsewhere" / "Li3PS4.extxyz"
    moved.parent.mkdir()
    shutil.copy(STRUCT / "Li3PS4.extxyz", moved)
    before = {j.key: j.hash for j in build_plan(parse_study(tiny_study(), "tiny.yaml"), tmp_path)}
    raw = tiny_study(**{"materials.Li3PS4.structure": str(moved)})
    after = {j.key: j.hash for j in build_plan(parse_study(raw, "tiny.yaml"), tmp_path)}
    assert set(before) == set(after)
    assert {k for k in before if before[k] != after[k]} == {"report"}  # it prints the path


def test_data_temperature_without_a_reference_run_is_named(tmp_path, capsys):
    from potlab.cli import main

    raw = tiny_study(**{"data.temperatures_K": [700.0]})
    with pytest.raises(ValueError, match=r"^tiny\.yaml: data\.temperatures_K: Li3PS4"):
        parse_study(raw, "tiny.yaml")
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(raw))
    assert main(["study", "run", str(tmp_path / "t.yaml"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "t.yaml: data.temperatures_K: Li3PS4" in err[0]


def test_kill_mid_stage_then_rerun_gives_the_same_numbers(done, tmp_path):
    out = _copy(done, tmp_path)
    for d in ("md", "analyze", "report"):
        shutil.rmtree(out / d)
    (out / "results.json").unlink()
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_study()))
    env = {**os.environ, "POTLAB_QUIET": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "potlab.cli", "study", "run",
                             str(tmp_path / "tiny.yaml"), "--out", str(out), "--workers", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # kill as soon as an MD run has flushed its first block (mid-stage, mid-run)
    probe = out / "md" / "ani_s0" / "Li3PS4" / "T1000K_r0" / "md_log.csv"
    while proc.poll() is None:
        if probe.exists() and len(probe.read_text().splitlines()) > 3:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the study finished before it could be killed"
    assert read_record(probe.parent) is None  # that run was in flight
    res = run_study(load_saved_study(out), out, workers=1)
    assert not res.failed
    assert_same_numbers(json.loads((out / "results.json").read_text()),
                        json.loads((done / "results.json").read_text()))


@pytest.mark.parametrize("engine", ["ase", "batched"])
def test_exploding_model_is_a_result_not_a_crash(done, tmp_path, engine):
    out = _copy(done, tmp_path)
    pot = potlab.load(out / "train" / "ani_s0" / "model.pt")
    pot.scale.mul_(300.0)  # forces x 300: the MD cannot survive
    pot.save(out / "train" / "ani_s0" / "model.pt")
    for key in ("md/ani_s0", "analyze/ani_s0", "report"):
        shutil.rmtree(out / key)
    raw = tiny_study()
    raw["md"]["engine"] = engine
    res = run_study(parse_study(raw, source="tiny.yaml"), out, workers=1)
    assert not res.failed, res.failed
    me = json.loads((out / "results.json").read_text())["models"]["ani"]["materials"]["Li3PS4"]
    assert me["call"] == "unstable"
    assert me["t_stab_ps"]["min"] < 0.05
    assert any(not r["stable"] for r in me["t_stab_ps"]["runs"])
    assert "| ani | Li3PS4 |" in (out / "report.md").read_text()


def test_dask_cluster_gives_the_same_results(done, tmp_path):
    distributed = pytest.importorskip("distributed")  # part of requirements-space.txt
    out = _copy(done, tmp_path)
    for d in ("train", "evaluate", "md", "analyze", "report"):
        shutil.rmtree(out / d)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        res = run_study(load_saved_study(out), out, scheduler=cluster.scheduler_address)
    assert not res.failed, res.failed
    assert_same_numbers(json.loads((out / "results.json").read_text()),
                        json.loads((done / "results.json").read_text()))


# ---- errors that name the file and key --------------------------------------------------------

def test_unknown_key_is_named():
    raw = tiny_study()
    raw["train"]["trainig"] = {}
    with pytest.raises(StudyError, match=r"tiny.yaml: train.trainig: unknown key"):
        parse_study(raw, source="tiny.yaml")
    raw = tiny_study()
    del raw["data"]
    with pytest.raises(StudyError, match=r"tiny.yaml: data: missing"):
        parse_study(raw, source="tiny.yaml")
    raw = tiny_study()
    raw["train"]["training"]["lerning_rate"] = 1
    with pytest.raises(StudyError, match=r"training.lerning_rate"):
        parse_study(raw, source="tiny.yaml")


def test_missing_structure_is_named(tmp_path):
    raw = tiny_study()
    raw["materials"]["Li3PS4"]["structure"] = "nowhere/Li3PS4.cif"
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(StudyError, match=r"s.yaml: materials.Li3PS4.structure: no such file .*nowhere/Li3PS4.cif"):
        load_study(tmp_path / "s.yaml")


def test_reference_trajectory_without_forces_is_named(tmp_path):
    import ase.io

    atoms = ase.io.read(STRUCT / "Li3PS4.extxyz")
    frames = []
    for k in range(5):
        a = atoms.copy()
        a.rattle(0.01, seed=k)
        a.info["REF_energy"] = -100.0 - k
        frames.append(a)
    ase.io.write(tmp_path / "aimd.extxyz", frames)
    raw = tiny_study()
    raw["reference"] = {"source": "files", "frame_interval_fs": 2.0, "energy_key": "REF_energy",
                        "trajectories": {"Li3PS4": [{"temperature_K": 1000,
                                                     "files": [str(tmp_path / "aimd.extxyz")]}]}}
    raw["md"]["repeats"] = 1
    res = run_study(parse_study(raw, source="s.yaml"), tmp_path / "out", workers=1)
    err = res.failed["reference/Li3PS4/T1000K_r0"]
    assert "aimd.extxyz: frame 1: field 'forces'" in err
    assert "reference.forces_key" in err
    assert all(k != "report" for k in res.failed)  # the report still ran, from what exists
    states = {k: s for k, s, _ in study_status(tmp_path / "out")}
    assert states["reference/Li3PS4/T1000K_r0"] == "failed"
    assert states["train/ani_s0"] == "blocked"


# ---- the bundled study ---------------------------------------------------------------------

def test_bundled_quick_preset_imports_its_shipped_reference(tmp_path):
    """The quick preset (make demo) reads CHGNet trajectories that ship with potlab: its
    reference and data stages run on them here (the rest is `make demo`)."""
    path = bundled_studies()["li_conductors"]
    for preset in ("quick", "quick-teacher", "standard", "large", "full"):
        load_study(path, preset=preset)  # every preset validates
    study = load_study(path, preset="quick")
    assert len(study.train.models) >= 3 and "so3krates" in [m.name for m in study.train.models]
    res = run_study(study, tmp_path / "q", workers=1, stages=["reference", "data"])
    assert not res.failed, res.failed
    split = read_record(tmp_path / "q" / "data" / "LGPS")["summary"]
    assert split["train"] == study.data.n_train and split["test"] == study.data.n_test
    from potlab.data import read_frames

    frames = read_frames(tmp_path / "q" / "data" / "Li3PS4" / "test.extxyz")
    assert len(frames) == study.data.n_test
    forces = np.concatenate([a.arrays["REF_forces"] for a in frames])
    assert np.isfinite(forces).all() and np.abs(forces).max() > 0.1
