"""potlab.learn's small units on constructed inputs with known answers: thresholds,
the similarity screen, max M, never a frame already in the data, seed 003's first frame,
the augmenter, the record, convergence, and config errors that name their key."""

import json

import numpy as np
import pytest
import yaml
from ase import Atoms

from potlab.learn import (
    AboveThreshold,
    AbsoluteThreshold,
    CalibratedThreshold,
    Convergence,
    FirstAbove,
    MaxCount,
    NotInData,
    Pool,
    Record,
    SimilarityScreen,
    UniformNoise,
    parse_learn_config,
    select_frames,
)
from potlab.learn.config import BUNDLED, LearnConfigError, load_learn_config
from potlab.learn.selectors import KCAL_MOL_IN_EV


def pool(unc, step=None, cv=None, energy=None, broken=None, hashes=None, run=None):
    n = len(unc)
    return Pool(np.asarray(unc, float), np.arange(n) * 10 if step is None else np.asarray(step),
                None if cv is None else np.asarray(cv, float),
                None if energy is None else np.asarray(energy, float),
                None if broken is None else np.asarray(broken, bool),
                hashes or [f"h{k}" for k in range(n)],
                None if run is None else np.asarray(run))


def test_calibrated_threshold_is_mean_plus_three_sigma_of_the_first_steps():
    rng = np.random.default_rng(1)
    early = rng.normal(2.0, 0.5, 100)
    late = np.full(50, 100.0)  # after step 1000: must not enter the calibration
    p = pool(np.r_[early, late], step=np.r_[np.arange(100) * 10, 1010 + np.arange(50) * 10])
    cal = CalibratedThreshold(first_steps=1000, n_sigma=3).calibrate(p)
    assert cal.n_frames == 100
    assert cal.mu == pytest.approx(early.mean())
    assert cal.sigma == pytest.approx(early.std())
    assert cal.threshold == pytest.approx(early.mean() + 3 * early.std())
    with pytest.raises(ValueError, match="first 5 steps"):
        CalibratedThreshold(first_steps=5).calibrate(pool([1.0], step=[10]))


def test_absolute_threshold_keeps_strictly_above():
    p = pool([0.1, 0.5, 0.50001, 2.0])
    cal = AbsoluteThreshold(0.5).calibrate(p)
    assert cal.threshold == 0.5 and np.isnan(cal.mu)
    assert AboveThreshold(cal.threshold)(p, np.arange(4)).tolist() == [2, 3]


def test_similarity_screen_cv_and_energy():
    kcal = KCAL_MOL_IN_EV
    # cv steps of 0.0075 A: only every second frame is >= 0.01 A from the last kept one
    cv = 6.0 + 0.0075 * np.arange(5)
    energy = [0.0, 2 * kcal, 4 * kcal, 6 * kcal, 8 * kcal]
    p = pool(np.ones(5), cv=cv, energy=energy)
    assert SimilarityScreen(0.01, 1 * kcal)(p, np.arange(5)).tolist() == [0, 2, 4]
    # energy within 1 kcal/mol of a kept frame: dropped even though the cv is far
    p = pool(np.ones(4), cv=[6.0, 6.1, 6.2, 6.3], energy=[0.0, 0.5 * kcal, 1.5 * kcal, 0.99 * kcal])
    assert SimilarityScreen(0.01, 1 * kcal)(p, np.arange(4)).tolist() == [0, 2]
    # compared with every kept frame, not only the last: frame 2 returns near frame 0
    p = pool(np.ones(3), cv=[6.0, 6.5, 6.004], energy=[0.0, 5 * kcal, 10 * kcal])
    assert SimilarityScreen(0.01, 1 * kcal)(p, np.arange(3)).tolist() == [0, 1]


def test_similarity_screen_caps_frames_after_the_break():
    n = 10
    p = pool(np.ones(n), cv=6.0 + 0.1 * np.arange(n), energy=np.arange(n) * 1.0,
             broken=[False] * 4 + [True] * 6)
    assert SimilarityScreen(0.01, 0.0, max_after_break=2)(p, np.arange(n)).tolist() == [0, 1, 2, 3, 4, 5]
    assert len(SimilarityScreen(0.01, 0.0, max_after_break=None)(p, np.arange(n))) == n


def test_max_count_keeps_the_most_uncertain_in_frame_order():
    p = pool([0.1, 0.9, 0.3, 0.9, 0.7, 0.2])
    assert MaxCount(3)(p, np.arange(6)).tolist() == [1, 3, 4]
    assert MaxCount(10)(p, np.arange(6)).tolist() == list(range(6))
    assert MaxCount(1)(p, np.array([0, 2, 5])).tolist() == [2]


def test_never_a_frame_already_in_the_data():
    p = pool([5.0, 5.0, 5.0, 5.0], hashes=["a", "b", "c", "d"])
    assert NotInData(frozenset({"b", "d"}))(p, np.arange(4)).tolist() == [0, 2]
    idx, _, counts = select_frames(p, AbsoluteThreshold(1.0), frozenset({"a", "b", "c"}),
                                     None, max_frames=10)
    assert idx.tolist() == [3]
    assert counts == {"scored": 4, "unfused": 1, "above_threshold": 1, "selected": 1}


def test_a_fused_frame_is_never_selected():
    """Two atoms closer than half their covalent radii sum (H-H: 0.5 x 0.62 = 0.31 A) are
    fused: such a frame of a poor model crashes xTB (AtomsTooClose) and is never labelled."""
    from potlab.learn.explorers import fused_frames

    frames = [Atoms("H2O", positions=[[0, 0, 0], [d, 0, 0], [0, 2.0, 0]]) for d in (0.74, 0.30, 0.32)]
    assert fused_frames(frames, 0.5).tolist() == [False, True, False]
    assert fused_frames(frames, None).tolist() == [False, False, False]
    p = Pool(np.array([5.0, 9.0, 6.0]), np.arange(3), hashes=["a", "b", "c"],
             fused=fused_frames(frames, 0.5))
    idx, _, counts = select_frames(p, AbsoluteThreshold(1.0), frozenset(), None, max_frames=10)
    assert idx.tolist() == [0, 2] and counts["unfused"] == 2


def test_a_frame_whose_augmented_copies_could_be_refused_is_not_selected():
    """The labeller refuses pairs under 0.5 A; seed 002's +-0.05 A noise moves a pair by at
    most 2 sqrt(3) 0.05 = 0.173 A, so a selected frame needs every pair >= 0.673 A."""
    from potlab.learn.explorers import fused_frames, labellable_distance

    assert labellable_distance(0.05, 2) == pytest.approx(0.5 + 0.1 * np.sqrt(3))
    assert labellable_distance(0.05, 0) == 0.5
    frames = [Atoms("H2O", positions=[[0, 0, 0], [d, 0, 0], [0, 2.0, 0]]) for d in (0.74, 0.60, 0.45)]
    assert fused_frames(frames, 0.5).tolist() == [False, False, False]  # none fused
    assert fused_frames(frames, 0.5, labellable_distance(0.05, 2)).tolist() == [False, True, True]
    assert fused_frames(frames, None, 0.5).tolist() == [False, False, True]


def test_select_frames_chain_with_max_m():
    kcal = KCAL_MOL_IN_EV
    n = 40
    unc = np.r_[np.full(10, 1.0), np.linspace(2, 5, 30)]  # calibration frames flat at 1.0
    p = pool(unc, step=np.arange(n) * 100, cv=6.0 + 0.02 * np.arange(n),
             energy=np.arange(n) * 2 * kcal)
    idx, cal, counts = select_frames(p, CalibratedThreshold(first_steps=900, n_sigma=3),
                                     frozenset(), SimilarityScreen(0.01, kcal), max_frames=5)
    assert cal.threshold == pytest.approx(1.0)  # sigma 0
    assert counts["above_threshold"] == 30 and counts["after_screen"] == 30
    assert idx.tolist() == [35, 36, 37, 38, 39]  # the 5 most uncertain


def test_first_above_per_run_or_the_most_uncertain():
    p = pool([0.1, 0.6, 0.9, 0.2, 0.3, 0.25], run=[0, 0, 0, 1, 1, 1])
    assert FirstAbove(0.5)(p, np.arange(6)).tolist() == [1, 4]  # run 1: none above -> its max
    idx, _, _ = select_frames(p, AbsoluteThreshold(0.5), frozenset(), None, 10, first_only=True)
    assert idx.tolist() == [1, 4]


def test_uniform_noise_two_copies_within_amplitude():
    a = Atoms("C2H2", positions=[[0, 0, 0], [1.2, 0, 0], [-1.0, 0, 0], [2.2, 0, 0]])
    a.info["charge"] = 0
    frames = [a, a.copy()]
    out = UniformNoise(copies=2, amplitude=0.05, seed=3)(frames)
    assert len(out) == 6
    assert [f.info["config_type"] for f in out] == ["selected", "augmented", "augmented"] * 2
    for k, base in enumerate(frames):
        np.testing.assert_array_equal(out[3 * k].positions, base.positions)
        for c in out[3 * k + 1:3 * k + 3]:
            d = c.positions - base.positions
            assert np.abs(d).max() <= 0.05 and np.abs(d).max() > 0.02
            assert c.info["charge"] == 0
    # uniform on [-0.05, 0.05]: variance a^2/3
    many = UniformNoise(copies=200, amplitude=0.05, seed=0)([a])[1:]
    d = np.concatenate([c.positions - a.positions for c in many]).ravel()
    assert d.var() == pytest.approx(0.05**2 / 3, rel=0.1)
    assert UniformNoise(copies=2, seed=3)(frames)[1].positions.tolist() == out[1].positions.tolist()


def test_record_is_append_only_and_ignores_a_torn_line(tmp_path):
    r = Record(tmp_path)
    r.append(-1, "structure", {"n": 1})
    r.append(0, "train", {"best_member": 2})
    with pytest.raises(RuntimeError):
        r.append(0, "train", {"best_member": 3})
    with open(tmp_path / "record.jsonl", "a") as fh:
        fh.write('{"iteration": 0, "step": "explo')  # a kill mid-write
    again = Record(tmp_path)
    assert again.get(0, "train") == {"best_member": 2}
    assert not again.done(0, "explore")
    assert again.next_step() == (-1, "initial_data")
    lines = (tmp_path / "record.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["step"] == "structure"
    # a step recorded after the torn line is read back, and so is every one after it
    again.append(-1, "initial_data", {"n": 2})
    again.append(-1, "reference_run", {})
    assert [(e.iteration, e.step) for e in Record(tmp_path).entries] == [
        (-1, "structure"), (0, "train"), (-1, "initial_data"), (-1, "reference_run")]


def test_record_last_stop_is_superseded_by_steps_after_it(tmp_path):
    """An extended run: iteration 0 stopped, then went on; the run's stop is the last
    ``finished`` line no iteration step follows (assessments after it do not count)."""
    r = Record(tmp_path)
    for it, step in [(-1, "structure"), (-1, "initial_data"), (-1, "reference_run"),
                     (0, "train"), (0, "explore"), (0, "measure")]:
        r.append(it, step, {})
    r.append(0, "finished", {"reason": "max_iterations (1) reached"})
    assert r.finished() == "max_iterations (1) reached" and r.next_step() is None
    r.append(0, "score", {})
    assert r.finished() is None and r.next_step() == (0, "select")
    r.append(0, "finished", {"reason": "converged"})  # stopped there again, another reason
    r.append(0, "molecule:butane", {})
    assert r.finished() == "converged" and r.get(0, "finished") == {"reason": "converged"}
    with pytest.raises(RuntimeError):
        r.append(0, "score", {})


def test_convergence_needs_k_consecutive_iterations_below_tolerance():
    c = Convergence(tolerance_kcal_mol=1.0, consecutive=3, max_iterations=20)
    k = KCAL_MOL_IN_EV
    assert c.after_measure([0.5 * k, 0.2 * k], 1, 0) is None
    assert c.after_measure([0.5 * k, 2 * k, 0.2 * k], 2, 0) is None  # oscillation
    assert "converged" in c.after_measure([2 * k, 0.5 * k, -0.2 * k, 0.9 * k], 3, 0)
    assert "max_iterations" in Convergence(max_iterations=2).after_measure([None, None], 1, 0)
    assert "label budget" in Convergence(label_budget=100).after_measure([None], 0, 120)
    assert Convergence(uncertainty_below=0.1).after_score(0.05) is not None
    assert Convergence(uncertainty_below=0.1).after_score(0.2) is None


def _hexane_raw():
    return yaml.safe_load((BUNDLED / "hexane.yaml").read_text())


def test_bundled_hexane_config_and_quick_preset():
    full = load_learn_config("hexane")
    quick = load_learn_config("hexane", preset="quick")
    assert full.explore.protocol["steps"] == 6500 and full.select.max_new_labels == 150
    assert full.select.threshold.kind == "calibrated" and full.select.threshold.first_steps == 1000
    assert full.initial_data.md.steps // full.initial_data.md.every == 2000
    assert quick.convergence.max_iterations < full.convergence.max_iterations
    assert quick.protocol().steered.group_b == [5]


@pytest.mark.parametrize("edit, key", [
    (lambda r: r["select"].update(max_new_label=3), "select.max_new_label"),
    (lambda r: r["train"]["training"].update(lerning_rate=1), "training.lerning_rate"),
    (lambda r: r["explore"]["protocol"].update(stepz=3), "stepz"),
    (lambda r: r.update(convergance={}), "convergance"),
    (lambda r: r["augment"].update(copies=-1), "augment.copies"),
    (lambda r: r["relax"].update(thermostat="andersen"), "relax.thermostat"),
])
def test_config_error_names_the_key(edit, key):
    raw = _hexane_raw()
    edit(raw)
    with pytest.raises(LearnConfigError, match=key.replace(".", r"\.")):
        parse_learn_config(raw, source="h.yaml")


def test_cli_config_error_is_one_line_exit_2(tmp_path, capsys):
    from potlab.cli import main

    raw = _hexane_raw()
    raw["select"]["max_new_label"] = 3
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["learn", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "select.max_new_label" in err[0]
    assert not (tmp_path / "run").exists()
    assert main(["learn", "status", str(tmp_path)]) == 2
    assert "record.jsonl" in capsys.readouterr().err


def test_a_finished_assessment_is_reused_only_with_its_settings():
    """A record written before a field existed matches the field's default (the behaviour
    that run had), and nothing else; a changed setting is refused naming the molecule."""
    from potlab.learn.assess import check_unchanged, same_spec, spec_of
    from potlab.learn.config import MoleculeSpec

    mol = MoleculeSpec(name="butane", smiles="CCCC", group_a=[0], group_b=[3])
    older = {k: v for k, v in spec_of(mol).items() if k != "steps"}  # before `steps` existed
    assert same_spec(spec_of(mol), mol)
    assert same_spec(older, mol)
    longer = mol.model_copy(update={"steps": 13000})
    assert not same_spec(older, longer)
    assert not same_spec({**older, "group_b": [2]}, mol)
    assert not same_spec({}, mol)
    with pytest.raises(LearnConfigError, match="assess.molecules: 'butane'"):
        check_unchanged({"spec": older}, longer, "molecules")


def test_a_rerun_needs_the_config_the_run_was_started_with(tmp_path):
    """config.json refuses a changed loop setting, naming it; worker counts may change; a
    config.json written before a field existed stands for that field's default."""
    from potlab.learn.resume import check_run_config

    cfg = load_learn_config("hexane", preset="quick")
    check_run_config(cfg, tmp_path)  # a new run writes its config
    written = json.loads((tmp_path / "config.json").read_text())
    check_run_config(cfg, tmp_path)
    more = cfg.model_copy(update={"reference": cfg.reference.model_copy(update={"workers": 7})})
    check_run_config(more, tmp_path)
    scored = cfg.model_copy(update={"score": cfg.score.model_copy(
        update={"workers": cfg.score.workers + 1})})
    check_run_config(scored, tmp_path)  # where the frames are scored, not what
    measured = cfg.model_copy(update={"score": cfg.score.model_copy(
        update={"measure": "max_forces_var"})})
    with pytest.raises(LearnConfigError, match=r"\(score.measure differ\)"):
        check_run_config(measured, tmp_path)
    other = cfg.model_copy(update={"seed": cfg.seed + 1})
    with pytest.raises(LearnConfigError, match=r"\(seed differ\)"):
        check_run_config(other, tmp_path)

    older = {k: v for k, v in written.items() if k != "warm_start"}
    (tmp_path / "config.json").write_text(json.dumps(older))
    at_default = cfg.model_copy(update={"warm_start": False})
    check_run_config(at_default, tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(older))
    with pytest.raises(LearnConfigError, match=r"\(warm_start differ\)"):
        check_run_config(cfg.model_copy(update={"warm_start": True}), tmp_path)

    # the explorer's protocol is compared with its defaults filled: naming a key at its
    # default is the same protocol, another value is refused naming it
    (tmp_path / "config.json").write_text(json.dumps(older))
    def with_protocol(**kw):
        return at_default.model_copy(update={"explore": cfg.explore.model_copy(
            update={"protocol": {**cfg.explore.protocol, **kw}})})
    assert "pdamp_fs" not in cfg.explore.protocol
    check_run_config(with_protocol(pdamp_fs=1000.0), tmp_path)
    with pytest.raises(LearnConfigError, match=r"pdamp_fs"):
        check_run_config(with_protocol(pdamp_fs=500.0), tmp_path)


def test_relax_runs_with_the_thermostat_it_names(tmp_path):
    """Seed 002 relaxed with Berendsen: ``relax.thermostat: berendsen`` runs ASE's
    NVTBerendsen (deterministic, so a rerun from the same velocities gives the same
    structure), and the atoms take the run's last frame."""
    import ase.io
    from ase.build import molecule
    from ase.calculators.emt import EMT

    from potlab.learn.config import RelaxSpec
    from potlab.learn.setup import relax

    spec = RelaxSpec(steps=40, temperature_K=10.0, timestep_fs=0.5, thermostat="berendsen",
                     tdamp_fs=50.0)
    runs = []
    for name in ("a", "b"):
        atoms = molecule("CH4")
        atoms.calc = EMT()
        runs.append(relax(atoms, EMT(), spec, tmp_path / name).positions.copy())
        saved = json.loads((tmp_path / name / "protocol.json").read_text())["settings"]
        assert saved["thermostat"] == "berendsen" and saved["tdamp_fs"] == 50.0
        np.testing.assert_array_equal(
            runs[-1], ase.io.read(tmp_path / name / "trajectory.extxyz", -1).positions)
    np.testing.assert_array_equal(runs[0], runs[1])
    assert np.abs(runs[0] - molecule("CH4").positions).max() > 1e-4  # it moved


def test_broken_bond_pairs_names_the_stretched_bond():
    from ase.build import molecule

    from potlab.learn.explorers import broken_bond_pairs, broken_bonds

    start = molecule("C2H6")
    carbons = [i for i, z in enumerate(start.numbers) if z == 6]
    pulled = start.copy()
    # move one methyl group (its carbon and the three hydrogens bonded to it) 2 A away
    # along the C-C axis: only the C-C bond (1.5 A -> 3.5 A) is beyond 2x its length
    axis = pulled.positions[carbons[1]] - pulled.positions[carbons[0]]
    axis /= np.linalg.norm(axis)
    d = pulled.get_distances(carbons[1], range(len(pulled)))
    group = [i for i in range(len(pulled)) if i == carbons[1] or (pulled.numbers[i] == 1 and d[i] < 1.3)]
    assert len(group) == 4
    pulled.positions[group] += 2.0 * axis
    assert broken_bond_pairs(pulled, start, 2.0) == [tuple(sorted(carbons))]
    assert broken_bond_pairs(start, start, 2.0) == []
    assert broken_bonds([start, pulled], start, 2.0).tolist() == [False, True]


def _terminal_carbons(atoms):
    """Carbons with three hydrogens within 1.2 A: the methyl groups."""
    d = atoms.get_all_distances()
    return {i for i, z in enumerate(atoms.numbers) if z == 6
            and sum(1 for j, zj in enumerate(atoms.numbers) if zj == 1 and d[i, j] < 1.2) == 3}


def test_bond_classes_follow_the_molecules_symmetry():
    from ase.build import molecule

    from potlab.learn.channels import bond_classes

    butane = molecule("trans-butane")
    classes = bond_classes(butane)
    ends = _terminal_carbons(butane)
    cc = {b: c for b, c in classes.items() if b.count("C") == 2}
    assert len(cc) == 3
    by_kind = {}
    for b, c in cc.items():
        i, j = (int(x[1:]) for x in b.split("-"))
        by_kind.setdefault(bool({i, j} & ends), set()).add(c)
    # the two methyl-CH2 bonds are one class, the middle bond another
    assert len(by_kind[True]) == 1 and len(by_kind[False]) == 1
    assert by_kind[True] != by_kind[False]
    # C-H: methyl hydrogens and CH2 hydrogens; 3 + 10 bonds in 4 classes
    assert len(classes) == 13 and len(set(classes.values())) == 4
    # isobutane: its three C-C bonds are one
    iso = bond_classes(molecule("isobutane"))
    assert len({c for b, c in iso.items() if b.count("C") == 2}) == 1


def test_channel_agreement_counts_pulls_up_to_symmetry():
    from potlab.learn.channels import channel, channel_agreement

    classes = {"C0-C1": "C0-C1", "C4-C5": "C0-C1", "C1-C2": "C1-C2", "C3-C4": "C1-C2",
               "C2-C3": "C2-C3"}
    assert channel("C4-C5 C0-C1", classes) == "C0-C1 C0-C1"
    assert channel("", classes) == ""
    # the reference broke one terminal bond: a model breaking the other one took its
    # channel; an inner bond, both terminal bonds, or none did not
    model = ["C0-C1", "C4-C5", "C3-C4", "C0-C1 C4-C5", ""]
    assert channel_agreement(model, ["C4-C5"], classes) == (2, 5)
    assert channel_agreement(model, ["C4-C5", ""], classes) == (3, 5)


def test_status_names_a_damaged_start_structure(tmp_path, capsys):
    """The channel column reads setup/start.extxyz: a damaged one is one line naming it
    (exit 2), and the record beside it is left as it was."""
    import json

    from potlab.cli import main

    run = tmp_path / "run"
    (run / "setup").mkdir(parents=True)
    record = json.dumps({"finished": "2026-12-07T00:00:00", "iteration": -1, "step": "reference_run",
                         "result": {"value_eV": 1.0, "broken_bonds": ["C0-C1"]}}) + "\n"
    (run / "record.jsonl").write_text(record)
    (run / "setup" / "start.extxyz").write_text("20\nnot an extxyz frame\nC 0 0\n")
    assert main(["learn", "status", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "start.extxyz" in err[0] and "Traceback" not in err[0]
    assert (run / "record.jsonl").read_text() == record


def test_cv_force_std_needs_a_steered_explorer():
    """The tension's spread is taken along the pulled coordinate: without a pull the config
    names score.measure (and with the bundled steered explorer it parses)."""
    raw = _hexane_raw()
    raw["score"]["measure"] = "cv_force_std"
    assert parse_learn_config(raw, source="h.yaml").score.measure == "cv_force_std"
    raw["explore"]["kind"] = "md"
    del raw["explore"]["protocol"]["steered"]
    raw["assess"] = {"members": False, "molecules": [], "architectures": []}
    with pytest.raises(LearnConfigError, match=r"score\.measure: cv_force_std .* not steered"):
        parse_learn_config(raw, source="h.yaml")
