"""The active-learning loop end to end on a tiny system (a Cu4 chain pulled by steered MD,
EMT as the reference, a committee of two tiny SchNet members trained a few epochs):
the record, SIGKILL during labelling and during training then a rerun (final data equal an
uninterrupted run's, every structure labelled once), a labeller failing on some frames,
and ``potlab learn status``."""

import json
import os
import signal
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.emt import EMT

from potlab.data.writers import write_extxyz
from potlab.learn import learn_status, parse_learn_config, run_learning
from potlab.reference import LabelStore
from potlab.reference.hashing import structure_hash

HERE = Path(__file__).parent
LOG_ENV, KILL_ENV = "POTLAB_TEST_LABEL_LOG", "POTLAB_TEST_KILL_LABEL"


class CountingEMT(EMT):
    """EMT that appends the hash of every structure it labels to $POTLAB_TEST_LABEL_LOG
    and SIGKILLs its own process at the start of call number $POTLAB_TEST_KILL_LABEL."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        log = os.environ.get(LOG_ENV)
        kill = os.environ.get(KILL_ENV)
        if log and kill:
            done = len(Path(log).read_text().splitlines()) if Path(log).exists() else 0
            if done + 1 == int(kill):
                os.kill(os.getpid(), signal.SIGKILL)
        super().calculate(atoms, properties, system_changes or ["positions"])
        if log:
            with open(log, "a") as fh:
                fh.write(structure_hash(atoms) + "\n")


class FailingEMT(EMT):
    """EMT that refuses every structure whose first coordinate's 4th decimal is odd."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        if round(atoms.positions[0, 0] * 1e4) % 2:
            raise RuntimeError("SCF did not converge (planted)")
        super().calculate(atoms, properties, system_changes or ["positions"])


def chain():
    a = Atoms("Cu4", positions=[[2.5 * i, 0.1 * (i % 2), 0.0] for i in range(4)])
    a.center(vacuum=6.0)
    return a


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("learn_inputs")
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(24):
        a = chain()
        a.positions += rng.uniform(-0.15, 0.15, a.positions.shape)
        a.calc = EMT()
        a.info["REF_energy"] = a.get_potential_energy()
        a.arrays["REF_forces"] = a.get_forces()
        a.calc = None
        frames.append(a)
    write_extxyz(d / "init.xyz", frames)
    ase.io.write(d / "start.xyz", chain())
    return d


def raw_config(inputs, method="test_learn_loop:CountingEMT", iterations=2):
    return {
        "name": "tiny",
        "structure": {"file": str(inputs / "start.xyz")},
        "reference": {"method": method},
        "initial_data": {"file": str(inputs / "init.xyz")},
        "reference_run": {"value_eV": 4.0},
        "train": {"model": {"name": "schnet", "preset": "tiny", "cutoff": 4.0},
                  "training": {"max_epochs": 3, "batch_size": 8, "threads": 1, "ema_decay": None},
                  "committee": {"size": 2, "split": "inherited"}},
        "explore": {"kind": "steered", "protocol": {
            "ensemble": "nvt", "steps": 150, "interval": 5, "timestep_fs": 2.0,
            "temperatures_K": [20], "formats": ["extxyz"], "monitors": {"enabled": False},
            "steered": {"group_a": [0], "group_b": [3], "k_eV_A2": 5.0, "velocity_A_ps": 10.0}}},
        # an absolute threshold below every score: selection is decided by the screen and M
        "select": {"threshold": {"kind": "absolute", "value": 1e-6}, "max_new_labels": 12,
                   "similarity": {"min_cv_A": 0.05, "min_energy_kcal_mol": 0.0}},
        "augment": {"copies": 2, "amplitude_A": 0.05},
        "convergence": {"max_iterations": iterations, "tolerance_kcal_mol": None},
    }


def _child(raw, out, env, kill_epoch):
    """The loop in a forked child (imports already warm), optionally SIGKILLed after the
    n-th finished training epoch (counted over all trainings)."""
    os.environ.update(env)
    sys.path.insert(0, str(HERE))
    if kill_epoch:
        import potlab.train.trainer as tr

        real, calls = tr.append_metrics, [0]

        def append_metrics(*a, **k):
            calls[0] += 1
            if calls[0] == kill_epoch:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*a, **k)

        tr.append_metrics = append_metrics
    run_learning(parse_learn_config(raw), out)


def run_forked(raw, out, log, kill_label=None, kill_epoch=None):
    """Run the loop in a forked process; returns its exit code (-9 when SIGKILLed)."""
    import multiprocessing

    env = {LOG_ENV: str(log), KILL_ENV: str(kill_label or "")}
    p = multiprocessing.get_context("fork").Process(target=_child, args=(raw, out, env, kill_epoch))
    p.start()
    p.join(300)
    return p.exitcode


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    """The labelling method is ``test_learn_loop:CountingEMT`` (an import path)."""
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.delenv(KILL_ENV, raising=False)


def final_data(out):
    rec = learn_status(out)
    last = max(r["iteration"] for r in rec["iterations"])
    return ase.io.read(Path(out) / f"iter_{last:03d}" / "data.extxyz", ":")


def assert_same_frames(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.positions, y.positions)
        assert x.info["REF_energy"] == y.info["REF_energy"]
        np.testing.assert_array_equal(x.arrays["REF_forces"], y.arrays["REF_forces"])
        assert x.info.get("config_type") == y.info.get("config_type")


def labelled_once(out, log):
    hashes = Path(log).read_text().split()
    assert len(hashes) == len(set(hashes)), "a structure was labelled twice"
    store = {rec["structure_hash"] for _, rec in LabelStore(Path(out) / "labels.db").records()}
    assert store == set(hashes)
    return len(hashes)


@pytest.fixture(scope="module")
def uninterrupted(inputs, tmp_path_factory):
    d = tmp_path_factory.mktemp("learn_ref")
    log = d / "labels.log"
    assert run_forked(raw_config(inputs), d / "run", log) == 0
    return d / "run", log


def test_tiny_loop_end_to_end(uninterrupted):
    out, log = uninterrupted
    st = learn_status(out)
    assert st["finished"] == "max_iterations (2) reached"
    it0, it1 = st["iterations"]
    assert it0["frames_scored"] == 31  # 150 steps / interval 5, plus step 0
    assert 0 < it0["selected"] <= 4  # max_new_labels 12 // (1 + 2 copies)
    assert it0["augmented"] == 2 * it0["selected"]
    assert it0["labelled"] == 3 * it0["selected"] and it0["failed"] == 0
    assert it0["total"] == 24 + it0["labelled"]
    assert it1["data_frames"] == it0["total"] and it1["tracked_eV"] is not None
    assert it0["error_eV"] == pytest.approx(it0["tracked_eV"] - 4.0)
    # per-iteration folder: data, committee, explorer trajectory, scores, selection
    d = out / "iter_000"
    for name in ("data.extxyz", "committee/committee.pt", "explore/trajectory.extxyz",
                 "explore/steered_log.csv", "scores.csv", "selected.json", "candidates.extxyz",
                 "labelled.extxyz", "failures.json"):
        assert (d / name).exists(), name
    # which bond each pull broke: the chain's bonds are its neighbours (i, i+1) by
    # construction, broken when longer than break_factor (1.6) x their start length
    start = chain()
    for i, row in enumerate((it0, it1)):
        last = ase.io.read(out / f"iter_{i:03d}" / "explore" / "trajectory.extxyz", -1)
        expect = " ".join(f"Cu{k}-Cu{k + 1}" for k in range(3) if last.get_distance(k, k + 1)
                          > 1.6 * start.get_distance(k, k + 1))
        assert row["broken_bonds"] == [expect]
    # inherited split: iteration 1's members keep the best member's split of iteration 0
    info0 = json.loads((d / "committee" / "committee.json").read_text())
    best = info0["members"][info0["best_member"]]["member"]
    old = json.loads((d / "committee" / f"member_{best}" / "split.json").read_text())
    new = json.loads((out / "iter_001" / "committee" / "member_0" / "split.json").read_text())
    assert set(old["train"]) <= set(new["train"]) and set(old["valid"]) <= set(new["valid"])
    # each member's epochs as its own per-epoch log counts them (one metrics.csv row each)
    for i, row in enumerate((it0, it1)):
        logged = [len((out / f"iter_{i:03d}" / "committee" / f"member_{m}" / "metrics.csv")
                      .read_text().splitlines()) - 1 for m in range(len(row["members_epochs"]))]
        assert row["members_epochs"] == logged and min(logged) > 0
    # never a frame already in the data; nothing labelled twice
    sel = json.loads((d / "selected.json").read_text())["selected"]
    assert len(set(sel)) == len(sel)
    assert labelled_once(out, log) == it0["labelled"]
    assert (out / "report.md").exists() and (out / "work_curves.png").exists()
    steps = [(e["iteration"], e["step"]) for e in map(json.loads, (out / "record.jsonl").read_text().splitlines())]
    assert steps[:4] == [(-1, "structure"), (-1, "initial_data"), (-1, "reference_run"), (0, "train")]
    assert steps[-1] == (1, "finished") and len(steps) == len(set(steps))


def test_cli_status(uninterrupted, capsys):
    from potlab.cli import main

    out, _ = uninterrupted
    assert main(["learn", "status", str(out), "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert [r["iteration"] for r in st["iterations"]] == [0, 1]
    # the default measure; the last committee is judged, not scored
    assert [r["measure"] for r in st["iterations"]] == ["energy_std", None]
    assert main(["learn", "status", str(out)]) == 0
    text = capsys.readouterr().out
    assert "finished: max_iterations (2) reached" in text
    assert text.splitlines()[0].endswith("; thresh: energy_std (eV)")  # the column's unit


@pytest.mark.parametrize("where", ["labelling", "training"])
def test_sigkill_then_rerun_equals_uninterrupted(where, inputs, uninterrupted, tmp_path):
    ref_out, _ = uninterrupted
    out, log = tmp_path / "run", tmp_path / "labels.log"
    # labelling: killed at the start of the 5th label call (iteration 0 makes 12);
    # training: killed after the 2nd epoch of iteration 1 (iteration 0 has 2 x 3 epochs)
    kill = {"kill_label": 5} if where == "labelling" else {"kill_epoch": 8}
    assert run_forked(raw_config(inputs), out, log, **kill) == -signal.SIGKILL
    st = learn_status(out)
    in_flight = st["next"]
    assert in_flight == ({"iteration": 0, "step": "label"} if where == "labelling"
                         else {"iteration": 1, "step": "train"})
    if where == "labelling":
        assert len(Path(log).read_text().split()) == 4
    assert run_forked(raw_config(inputs), out, log) == 0
    assert learn_status(out)["finished"] == "max_iterations (2) reached"
    assert_same_frames(final_data(out), final_data(ref_out))
    n = labelled_once(out, log)
    assert n == learn_status(ref_out)["iterations"][0]["labelled"]
    if where == "labelling":
        lab = learn_status(out)["iterations"][0]
        assert lab["cached"] == 4 and lab["computed"] == n - 4


def test_a_finished_run_extended_equals_the_longer_run(inputs, uninterrupted, tmp_path):
    """A run stopped by max_iterations 1, rerun with 2: it goes on from its last iteration
    and ends with the uninterrupted 2-iteration run's data, nothing labelled twice; status
    and the record's next step follow the last stop, not the superseded one."""
    ref_out, _ = uninterrupted
    out, log = tmp_path / "run", tmp_path / "labels.log"
    assert run_forked(raw_config(inputs, iterations=1), out, log) == 0
    st = learn_status(out)
    assert st["finished"] == "max_iterations (1) reached" and st["next"] is None
    assert [r["iteration"] for r in st["iterations"]] == [0]
    assert st["iterations"][0]["selected"] is None  # it stopped before selecting
    assert run_forked(raw_config(inputs, iterations=2), out, log) == 0
    st = learn_status(out)
    assert st["finished"] == "max_iterations (2) reached" and st["next"] is None
    assert [r["iteration"] for r in st["iterations"]] == [0, 1]
    assert_same_frames(final_data(out), final_data(ref_out))
    assert labelled_once(out, log) == learn_status(ref_out)["iterations"][0]["labelled"]
    steps = [(e["iteration"], e["step"])
             for e in map(json.loads, (out / "record.jsonl").read_text().splitlines())]
    assert steps.count((0, "finished")) == 1 and steps[-1] == (1, "finished")
    assert steps.index((0, "finished")) < steps.index((0, "select"))
    # rerun with the same limits: nothing added; rerun with 1 again: the loop does not
    # take back iteration 1 (its continuation from iteration 0 is on record)
    n = len(steps)
    assert run_forked(raw_config(inputs, iterations=2), out, log) == 0
    assert len((out / "record.jsonl").read_text().splitlines()) == n
    assert run_forked(raw_config(inputs, iterations=1), out, log) == 0
    assert learn_status(out)["finished"] == "max_iterations (1) reached"
    assert [r["iteration"] for r in learn_status(out)["iterations"]] == [0, 1]
    assert labelled_once(out, log) == learn_status(ref_out)["iterations"][0]["labelled"]


def test_failing_labeller_is_recorded_and_the_loop_goes_on(inputs, tmp_path):
    cfg = parse_learn_config(raw_config(inputs, method="test_learn_loop:FailingEMT", iterations=2))
    res = run_learning(cfg, tmp_path / "run")
    assert res.stop_reason == "max_iterations (2) reached"
    it0 = learn_status(tmp_path / "run")["iterations"][0]
    assert it0["failed"] > 0 and it0["labelled"] > 0
    assert it0["labelled"] + it0["failed"] == 3 * it0["selected"]
    assert it0["total"] == 24 + it0["labelled"]
    fails = json.loads((tmp_path / "run" / "iter_000" / "failures.json").read_text())
    assert len(fails) == it0["failed"] and "planted" in fails[0]["reason"]
    stored = [rec for _, rec in LabelStore(tmp_path / "run" / "labels.db").records()]
    assert sum(not r["ok"] for r in stored) == it0["failed"]


def test_md_explorer_stops_at_the_first_uncertain_frame(uninterrupted, tmp_path):
    """Seed 003's explorer: the committee runs inside the MD every k steps and stops the run
    at the first frame above the threshold; FirstAbove then takes that frame."""
    import potlab
    from potlab.learn import FirstAbove, MDExplorer, Pool, committee_scores
    from potlab.md import parse_protocol
    from potlab.potential.loading import load_committee

    out, _ = uninterrupted
    com_path = out / "iter_000" / "committee" / "committee.pt"
    best = json.loads((out / "iter_000" / "committee" / "committee.json").read_text())["best_member"]
    pot = potlab.load(out / "iter_000" / "committee" / f"member_{best}" / "model.pt")
    com = load_committee(com_path, group=False)
    start = ase.io.read(out / "setup" / "start.extxyz")
    level = committee_scores(com, [start]).max_forces_var[0]
    p = parse_protocol({"ensemble": "nvt", "steps": 100, "interval": 5, "timestep_fs": 2.0,
                        "temperatures_K": [300], "repeats": 2, "formats": ["extxyz"],
                        "monitors": {"enabled": False}})
    threshold = 0.5 * float(level)  # the start is already above: the first check stops it
    exp = MDExplorer(p, str(com_path), stop_max_forces_var=threshold, uq_every=5).run(
        start, pot.calculator(), tmp_path / "explore")
    assert len(exp.run_dirs) == 2 and set(exp.run_index.tolist()) == {0, 1}
    for k, reason in enumerate(exp.stopped):
        assert "committee max force variance" in reason
        assert exp.steps[exp.run_index == k].max() == 5  # stopped at the first check (k = 5)
    s = committee_scores(com, exp.frames)
    pool = Pool(s.max_forces_var, exp.steps, run=exp.run_index)
    picked = FirstAbove(threshold)(pool, np.arange(len(exp.frames)))
    assert sorted(exp.run_index[picked].tolist()) == [0, 1]


def test_scores_on_several_processes_equal_one_process_s(uninterrupted):
    """``score.workers`` cuts the frames at whole batches: the scores of 2 and 3 worker
    processes are those of one process evaluating every batch, number for number, in the
    frames' order (37 frames: batches of 16, 16 and 5)."""
    import torch

    from potlab.learn import committee_scores, score_frames
    from potlab.potential.loading import load_committee

    out, _ = uninterrupted
    com_path = out / "iter_000" / "committee" / "committee.pt"
    frames = [a for f in sorted(out.glob("iter_*/explore/trajectory.extxyz"))
              for a in ase.io.read(f, ":")][:37]  # 31 frames a pull
    assert len(frames) == 37
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = committee_scores(load_committee(com_path, group=False), frames,
                               groups=([0], [3]))
    finally:
        torch.set_num_threads(threads)
    for workers in (2, 3):
        several = score_frames(str(com_path), frames, workers=workers, groups=([0], [3]))
        for name in ("energy_std", "max_forces_var", "mean_forces_var", "energy_mean",
                     "cv_force_std"):
            assert np.array_equal(getattr(several, name), getattr(one, name)), (workers, name)
    assert len(set(np.round(one.energy_mean, 6))) > 30  # distinct frames, kept in order


def test_cv_force_std_is_the_spread_of_the_members_pulling_slopes(uninterrupted):
    """scores.csv's cv_force_std (the loop scores along its explorer's groups, atoms 0 and 3)
    is the standard deviation over the members of each member's tension, taken here from
    its energies alone: the mean slope of E when either end atom is moved away from the
    other (finite differences in float64, no forces)."""
    import csv

    from potlab.graph import build_graph
    from potlab.md.steered import separation
    from potlab.potential.loading import load_committee

    out, _ = uninterrupted
    com = load_committee(out / "iter_000" / "committee" / "committee.pt", group=False,
                         dtype="float64")
    rows = list(csv.DictReader((out / "iter_000" / "scores.csv").open()))
    frames = ase.io.read(out / "iter_000" / "explore" / "trajectory.extxyz", ":")
    h = 1e-4
    for k in (0, len(frames) // 2, len(frames) - 1):
        a = frames[k]
        u = separation(a, [0], [3])
        u /= np.linalg.norm(u)
        moved = []
        for atom, sign in ((3, 1), (3, -1), (0, -1), (0, 1)):  # away, back; away, back
            m = Atoms(a.numbers, a.positions.copy(), cell=a.cell, pbc=a.pbc)
            m.positions[atom] += sign * h * u
            moved.append(m)
        e = com(build_graph(moved, com.cutoff, dtype=com.dtype))["energy"].detach().numpy()
        slopes = ((e[:, 0] - e[:, 1]) + (e[:, 2] - e[:, 3])) / (4 * h)  # one per member
        assert int(rows[k]["frame"]) == k
        assert float(rows[k]["cv_force_std_eV_A"]) == pytest.approx(slopes.std(), rel=1e-3,
                                                                     abs=1e-6)
    assert max(float(r["cv_force_std_eV_A"]) for r in rows) > 1e-3  # the members differ


def test_assessments_added_to_a_finished_run(inputs, tmp_path):
    """``assess`` may be added to a run: the loop's record stays as it was, then every
    member's SMD, the transfer test on another molecule and another architecture on the
    final data are recorded, each against an independent expectation."""
    from potlab.learn import LearnConfigError
    from potlab.learn.explorers import read_steered_log
    from potlab.learn.selectors import KCAL_MOL_IN_EV
    from potlab.md import parse_protocol
    from potlab.md.runner import run_md

    out = tmp_path / "run"
    raw = raw_config(inputs, iterations=1)
    run_learning(parse_learn_config(raw), out)
    before = (out / "record.jsonl").read_text()
    a = Atoms("Cu5", positions=[[2.5 * i, 0.1 * (i % 2), 0.0] for i in range(5)])
    a.center(vacuum=6.0)
    ase.io.write(inputs / "chain5.xyz", a)
    raw["assess"] = {
        "members": True,
        "molecules": [{"name": "chain5", "file": str(inputs / "chain5.xyz"),
                       "group_a": [0], "group_b": [4]},
                      {"name": "chain5_short", "file": str(inputs / "chain5.xyz"),
                       "group_a": [0], "group_b": [4], "steps": 40}],
        "architectures": [{"name": "schnet_b", "train": {
            "model": {"name": "schnet", "preset": "tiny", "cutoff": 4.0},
            "training": {"max_epochs": 2, "batch_size": 8, "threads": 1, "seed": 7}}}]}
    run_learning(parse_learn_config(raw), out)
    after = (out / "record.jsonl").read_text()
    assert after.startswith(before)  # nothing of the loop was redone
    steps = [(e["iteration"], e["step"]) for e in map(json.loads, after[len(before):].splitlines())]
    assert steps == [(0, "members"), (0, "molecule:chain5"), (0, "molecule:chain5_short"),
                     (0, "architecture:schnet_b")]
    st = learn_status(out)
    it0 = st["iterations"][0]
    members = next(json.loads(line)["result"] for line in after.splitlines()
                   if json.loads(line)["step"] == "members")
    best = json.loads((out / "iter_000" / "committee" / "committee.json").read_text())["best_member"]
    other = 1 - best
    # every member's barrier: the best member's is the iteration's own run, the other's the
    # maximum work its own steered log holds
    assert members["tracked_eV"][best] == it0["tracked_eV"]
    log = read_steered_log(out / "iter_000" / "explore_members" / f"member_{other}")
    assert members["tracked_eV"][other] == pytest.approx(log["work_eV"].max(), abs=1e-9)
    assert members["error_kcal_mol"][other] == pytest.approx(
        (members["tracked_eV"][other] - 4.0) / KCAL_MOL_IN_EV)
    assert members["spread_kcal_mol"] == pytest.approx(
        abs(members["tracked_eV"][0] - members["tracked_eV"][1]) / KCAL_MOL_IN_EV)
    # the transfer test's reference barrier: the same steered protocol with EMT, run here
    mol = st["molecules"][0]
    p = dict(raw["explore"]["protocol"])
    p["steered"] = {**p["steered"], "group_b": [4]}
    ref = run_md(ase.io.read(inputs / "chain5.xyz"), EMT(), parse_protocol(p), tmp_path / "emt")
    assert mol["reference_eV"] == pytest.approx(ref.activation_energy_eV, rel=1e-9)
    assert mol["n_atoms"] == 5 and mol["test_frames"] == 31
    # "a bond broke": a neighbour distance of the start chain beyond 1.6x at the last frame
    # of the test's own EMT pull
    start = ase.io.read(out / "assess" / "molecules" / "chain5" / "start.extxyz")
    last = ase.io.read(tmp_path / "emt" / "trajectory.extxyz", -1)
    d0, d1 = (np.linalg.norm(np.diff(x.positions, axis=0), axis=1) for x in (start, last))
    assert mol["reference_broke"] is bool((d1 > 1.6 * d0).any())
    # a molecule's own pull length
    short = st["molecules"][1]
    saved = json.loads((out / "assess" / "molecules" / "chain5_short" / "reference_run" /
                        "protocol.json").read_text())
    assert saved["settings"]["steps"] == 40 and short["test_frames"] < mol["test_frames"]
    assert len(read_steered_log(out / "assess" / "molecules" / "chain5_short" / "model_run")
               ["step"]) < len(read_steered_log(out / "iter_000" / "explore")["step"])
    assert mol["error_kcal_mol"] == pytest.approx(
        (mol["tracked_eV"] - mol["reference_eV"]) / KCAL_MOL_IN_EV)
    # the other architecture trained on the final data: all of its frames, split 80/20
    arch = st["architectures"][0]
    split = json.loads((out / "assess" / "architectures" / "schnet_b" / "model" / "split.json")
                       .read_text())
    assert len(split["train"]) + len(split["valid"]) == len(final_data(out)) == 24
    assert arch["epochs"] == 2 and arch["error_kcal_mol"] == pytest.approx(
        (arch["tracked_eV"] - 4.0) / KCAL_MOL_IN_EV)
    report = (out / "report.md").read_text()
    assert "chain5" in report and "schnet_b" in report and (out / "barrier_errors.png").exists()
    # a rerun is free; a changed setting under a recorded name is refused, naming it
    run_learning(parse_learn_config(raw), out)
    assert (out / "record.jsonl").read_text() == after
    raw["assess"]["molecules"][0]["group_b"] = [3]
    with pytest.raises(LearnConfigError, match="chain5"):
        run_learning(parse_learn_config(raw), out)


def test_warm_start_continues_each_member_from_the_previous_iteration(inputs, uninterrupted,
                                                                      tmp_path):
    """Iteration 0 and so iteration 1's data and splits are those of the run from scratch
    (``uninterrupted``, the same config without warm_start): iteration 1's members then
    start from iteration 0's, so their first epoch's validation loss is below that of the
    members trained from scratch on the same frames."""
    import csv

    import yaml

    raw = raw_config(inputs, iterations=2)
    raw["warm_start"] = True
    out = tmp_path / "run"
    run_learning(parse_learn_config(raw), out)
    scratch, _ = uninterrupted
    assert_same_frames(final_data(out), final_data(scratch))

    def first_valid_loss(run, m):
        path = run / "iter_001" / "committee" / f"member_{m}" / "metrics.csv"
        with open(path) as fh:
            return float(next(csv.DictReader(fh))["valid_loss"])

    for m in range(2):
        member = out / "iter_001" / "committee" / f"member_{m}"
        cfg = yaml.safe_load((member / "config.yaml").read_text())
        assert cfg["training"]["init_model"] == str(
            out / "iter_000" / "committee" / f"member_{m}" / "model.pt")
        # it starts where iteration 0's member ended, not from scratch
        assert first_valid_loss(out, m) < first_valid_loss(scratch, m)
    raw["train"]["committee"]["init_from"] = "x"
    with pytest.raises(Exception, match="committee.init_from: set by potlab learn"):
        parse_learn_config(raw)


def test_measure_adds_pulls_with_the_next_seeds(inputs, tmp_path):
    """``measure.repeats: 4`` beside the explorer's ``repeats: 2``: the reference pulls 4
    times; the iteration's barrier is the mean of the explorer's 2 pulls and 2 more whose
    seeds follow them (each equal to a single pull of that seed with the best member, run
    here), the error's standard error is over all 4 a side, and only the explorer's 2 pulls
    are scored."""
    import potlab
    from potlab.learn import LearnConfigError
    from potlab.learn.explorers import read_steered_log
    from potlab.learn.selectors import KCAL_MOL_IN_EV
    from potlab.md import parse_protocol
    from potlab.md.runner import run_md

    raw = raw_config(inputs, iterations=2)
    raw["reference_run"] = {"enabled": True, "label_every": 5}
    raw["explore"]["protocol"]["repeats"] = 2
    raw["measure"] = {"repeats": 4}
    out = tmp_path / "run"
    run_learning(parse_learn_config(raw), out)

    def max_work(run):
        return float(read_steered_log(run)["work_eV"].max())

    ref_each = [max_work(out / "setup" / "reference_run" / f"T20K_r{r}") for r in range(4)]
    it = out / "iter_000"
    mine = [max_work(it / "explore" / f"T20K_r{r}") for r in (0, 1)]
    more = [max_work(it / "measure" / f"T20K_r{r}") for r in (0, 1)]
    assert not (it / "explore" / "T20K_r2").exists()
    single = dict(raw["explore"]["protocol"], seed=3)
    single.pop("repeats")
    best = json.loads((it / "committee" / "committee.json").read_text())
    model = it / "committee" / f"member_{best['members'][best['best_member']]['member']}" / "model.pt"
    one = run_md(ase.io.read(inputs / "start.xyz"), potlab.load(model).calculator(),
                 parse_protocol(single), tmp_path / "seed3")
    assert one.activation_energy_eV == pytest.approx(more[1], rel=1e-9)  # seed 2 + 1
    st = learn_status(out)
    assert st["setup"]["reference_run"]["values_eV"] == pytest.approx(ref_each, rel=1e-12)
    row = st["iterations"][0]
    each = mine + more
    assert row["tracked_eV"] == pytest.approx(np.mean(each), rel=1e-12)
    assert row["error_kcal_mol"] == pytest.approx(
        (np.mean(each) - np.mean(ref_each)) / KCAL_MOL_IN_EV, rel=1e-9)
    se = np.hypot(np.std(each, ddof=1), np.std(ref_each, ddof=1)) / np.sqrt(4)
    assert row["error_se_kcal_mol"] == pytest.approx(se / KCAL_MOL_IN_EV, rel=1e-9)
    assert row["frames_scored"] == 2 * 31
    assert row["pulls"] == 4
    assert "mean of 4 pulls of its best member" in (out / "report.md").read_text()
    for bad, key in (({"repeats": 1}, "measure.repeats: 1 is fewer"),
                     ({"repeats": 0}, "measure.repeats")):
        with pytest.raises(LearnConfigError, match=key):
            parse_learn_config({**raw, "measure": bad})


def test_assessments_with_repeated_pulls(inputs, tmp_path):
    """With ``repeats: 2`` the transfer test and the other architecture pull twice a side,
    as the loop does: each pull's barrier is the largest work of its own steered log, the
    barrier is their mean, the error carries the standard error of both means, and a bond
    counts as broken pull by pull (read here from each pull's last frame: the chain's
    neighbours are its bonds)."""
    from potlab.learn.explorers import read_steered_log
    from potlab.learn.selectors import KCAL_MOL_IN_EV

    raw = raw_config(inputs, iterations=1)
    raw["reference_run"] = {"enabled": True, "label_every": 5}
    raw["explore"]["protocol"] |= {"repeats": 2, "engine": "batched"}
    a = Atoms("Cu5", positions=[[2.5 * i, 0.1 * (i % 2), 0.0] for i in range(5)])
    a.center(vacuum=6.0)
    ase.io.write(tmp_path / "chain5.xyz", a)
    raw["assess"] = {
        "molecules": [{"name": "chain5", "file": str(tmp_path / "chain5.xyz"),
                       "group_a": [0], "group_b": [4]}],
        "architectures": [{"name": "schnet_b", "train": {
            "model": {"name": "schnet", "preset": "tiny", "cutoff": 4.0},
            "training": {"max_epochs": 2, "batch_size": 8, "threads": 1, "seed": 7}}}]}
    out = tmp_path / "run"
    run_learning(parse_learn_config(raw), out)
    st = learn_status(out)

    def max_works(run):
        return [float(read_steered_log(run / f"T20K_r{r}")["work_eV"].max()) for r in (0, 1)]

    def se_kcal(model, ref):
        return np.hypot(np.std(model, ddof=1), np.std(ref, ddof=1)) / np.sqrt(2) / KCAL_MOL_IN_EV

    mol_dir = out / "assess" / "molecules" / "chain5"
    mol = st["molecules"][0]
    ref_each, model_each = max_works(mol_dir / "reference_run"), max_works(mol_dir / "model_run")
    assert mol["values_eV"] == pytest.approx(model_each, rel=1e-12)
    assert mol["tracked_eV"] == pytest.approx(np.mean(model_each), rel=1e-12)
    assert mol["reference_eV"] == pytest.approx(np.mean(ref_each), rel=1e-12)
    assert mol["error_se_kcal_mol"] == pytest.approx(se_kcal(model_each, ref_each), rel=1e-9)
    start = ase.io.read(mol_dir / "start.extxyz")
    d0 = np.linalg.norm(np.diff(start.positions, axis=0), axis=1)

    def broke(run):
        last = [ase.io.read(run / f"T20K_r{r}" / "trajectory.extxyz", -1) for r in (0, 1)]
        return [bool((np.linalg.norm(np.diff(f.positions, axis=0), axis=1) > 1.6 * d0).any())
                for f in last]

    for who in ("reference", "model"):
        each = broke(mol_dir / f"{who}_run")
        assert mol[f"{who}_broke_pulls"] == sum(each)
        assert mol[f"{who}_broke"] == all(each)

    arch = st["architectures"][0]
    arch_each = max_works(out / "assess" / "architectures" / "schnet_b" / "explore")
    setup_ref = max_works(out / "setup" / "reference_run")
    assert arch["values_eV"] == pytest.approx(arch_each, rel=1e-12)
    assert arch["error_se_kcal_mol"] == pytest.approx(se_kcal(arch_each, setup_ref), rel=1e-9)
    report = (out / "report.md").read_text()
    assert f"{mol['error_kcal_mol']:+.2f}+-{mol['error_se_kcal_mol']:.2f}" in report
    assert f"{arch['error_kcal_mol']:+.2f}+-{arch['error_se_kcal_mol']:.2f}" in report
    assert f"| {mol['reference_broke_pulls']}/2 / {mol['model_broke_pulls']}/2 |" in report


@pytest.mark.parametrize("engine", ["ase", "batched"])
def test_repeated_pulls_are_averaged_on_both_sides(inputs, tmp_path, engine):
    """``repeats: 2`` on the steered protocol: the reference run and every explorer run pull
    twice with their own seeds; the tracked value is the mean of the two pulls' largest
    work (read here from each pull's own steered log), the first pull is the single pull
    of the protocol's seed (run here with EMT), the frames of both pulls are scored, and
    the error carries the standard error of both means. With engine batched the model's
    pulls run together and EMT's (the reference) on engine ase; the reference's two pulls
    run on two worker processes and equal the single pull made here in this one."""
    from potlab.learn.explorers import read_steered_log
    from potlab.learn.selectors import KCAL_MOL_IN_EV
    from potlab.md import parse_protocol
    from potlab.md.runner import run_md

    raw = raw_config(inputs, iterations=2)
    raw["reference_run"] = {"enabled": True, "label_every": 3}
    raw["explore"]["protocol"]["repeats"] = 2
    raw["explore"]["protocol"]["engine"] = engine
    raw["reference"]["workers"] = 2  # the reference's two pulls side by side
    out = tmp_path / "run"
    run_learning(parse_learn_config(raw), out)

    def engine_of(run):
        return json.loads((run / "protocol.json").read_text())["settings"]["engine"]

    assert engine_of(out / "setup" / "reference_run" / "T20K_r1") == "ase"
    assert engine_of(out / "iter_000" / "explore" / "T20K_r1") == engine

    def max_works(run):
        return [float(read_steered_log(run / f"T20K_r{r}")["work_eV"].max()) for r in (0, 1)]

    ref = learn_status(out)["setup"]["reference_run"]
    ref_each = max_works(out / "setup" / "reference_run")
    assert ref["values_eV"] == pytest.approx(ref_each, rel=1e-12)
    assert ref["value_eV"] == pytest.approx(np.mean(ref_each), rel=1e-12)
    assert ref_each[0] != pytest.approx(ref_each[1], rel=1e-6)  # other seed, other pull
    single = dict(raw["explore"]["protocol"])
    single.pop("repeats")
    single["engine"] = "ase"
    one = run_md(ase.io.read(inputs / "start.xyz"), EMT(), parse_protocol(single), tmp_path / "one")
    assert one.activation_energy_eV == pytest.approx(ref_each[0], rel=1e-9)
    assert ref["test_frames"] == len(range(0, 31, 3)) * 2  # every 3rd of 31 frames, per pull

    it0 = learn_status(out)["iterations"][0]
    model_each = max_works(out / "iter_000" / "explore")
    assert it0["tracked_eV"] == pytest.approx(np.mean(model_each), rel=1e-12)
    assert it0["frames_scored"] == 2 * 31
    se = np.hypot(np.std(model_each, ddof=1), np.std(ref_each, ddof=1)) / np.sqrt(2)
    assert it0["error_se_kcal_mol"] == pytest.approx(se / KCAL_MOL_IN_EV, rel=1e-9)
    report = (out / "report.md").read_text()
    assert "mean of 2 pulls" in report and "+-" in report
    # the record keeps where each side's first pull peaked (a report from the record alone)
    first = read_steered_log(out / "iter_000" / "explore" / "T20K_r0")
    assert it0["peak"]["work"] == pytest.approx(model_each[0], rel=1e-12)
    assert it0["peak"]["force"] == pytest.approx(first["spring_force_eV_A"].max(), rel=1e-12)
    assert ref["peak"]["work"] == pytest.approx(ref_each[0], rel=1e-12)
    # which bond each side's pulls broke (the chain's bonds are its neighbours by
    # construction; broken when longer than 1.6 x their start length), and the report's table
    start = chain()

    def broken(run):
        last = ase.io.read(run / "trajectory.extxyz", -1)
        return " ".join(f"Cu{k}-Cu{k + 1}" for k in range(3)
                        if last.get_distance(k, k + 1) > 1.6 * start.get_distance(k, k + 1))

    for side, run in ((ref, out / "setup" / "reference_run"), (it0, out / "iter_000" / "explore")):
        assert side["broken_bonds"] == [broken(run / f"T20K_r{r}") for r in (0, 1)]
    assert "bonds broken at the end (pulls) |" in report
    # pulls in a reference channel: the chain's two end bonds are one by its symmetry
    kind = {"Cu0-Cu1": "end", "Cu2-Cu3": "end", "Cu1-Cu2": "middle"}

    def channel(names):
        return sorted(kind[b] for b in names.split())

    ref_channels = [channel(b) for b in ref["broken_bonds"]]
    assert it0["channel"] == [sum(channel(b) in ref_channels for b in it0["broken_bonds"]), 2]
    assert "pulls in a reference channel |" in report


def test_the_test_set_is_never_selected(inputs, tmp_path):
    """Every pull starts from the structure the reference run starts from, so the explorer's
    first frame is a test-set structure: the selection leaves it out (here the same selection
    with only the data's structures excluded would take it), and no labelled structure is
    one of the test set's."""
    from potlab.learn.scores import read_pool
    from potlab.learn.selectors import select_frames, selectors_of

    raw = raw_config(inputs, iterations=2)  # iteration 0 selects; 1 is trained and judged
    raw["reference_run"] = {"enabled": True, "label_every": 1}
    out = tmp_path / "run"
    cfg = parse_learn_config(raw)
    run_learning(cfg, out)
    test = {structure_hash(a) for a in ase.io.read(out / "setup" / "reference_frames.extxyz", ":")}
    it = out / "iter_000"
    pool = read_pool(it / "scores.csv", cfg.score.measure)
    shared = {k for k, h in enumerate(pool.hashes) if h in test}
    assert 0 in shared
    sel = json.loads((it / "selected.json").read_text())
    assert sel["selected"] and not shared & set(sel["selected"])
    data = {structure_hash(a) for a in ase.io.read(it / "data.extxyz", ":")}
    threshold, screen = selectors_of(cfg.select)
    without, _, _ = select_frames(pool, threshold, frozenset(data), screen, sel["max_frames"])
    assert shared & set(without.tolist())
    labelled = {structure_hash(a) for a in ase.io.read(it / "labelled.extxyz", ":")}
    assert labelled and not labelled & test
