"""Seed 002's hexane rare-event study in full: the bundled ``hexane`` learn config (GFN2-xTB
reference, ANI-style committee, steered MD explorer, calibrated mu + 3 sigma selection,
similarity screen, 2 augmented copies, at most 150 labels per iteration) run as variants
side by side, as in seed 002 Fig. 5:

    ani3_berendsen   3 ANI members, inherited splits: the config as shipped (relaxed and
                     pulled with Berendsen, seed 002's thermostat, tau 100 fs)
    ani3_inherited   the same relaxed and pulled with Langevin (friction 0.01/fs), as the
                     config shipped before the Berendsen thermostat was added
    ani3_fresh       ani3_inherited with fresh random splits every iteration
    ani5_inherited   5 ANI members, inherited splits (Berendsen)
    schnet3          3 SchNet members (seed 002 Table 2, eq. 4 with rho = 0.1; Berendsen)
    ani3_pulls3      ani3_berendsen with every steered run pulled 3 times (protocol.repeats):
                     barriers are means of 3 pulls on both sides, errors carry a standard
                     error (one pull's barrier scatters with the MD seed alone; see
                     benchmarks/hexane_pull_noise.py)
    ani3_batched16   16 pulls a side, the model's 16 batched in one run (engine batched),
                     every 16th reference frame in the test set; no members' pulls
    ani3_batched16_11  the same with 11 iterations (max_iterations 11; ~2.4 h: ani3_batched16's
                       2.31 h, one iteration more, the reference's pulls now parallel)
    ani5_batched16_11  ani3_batched16_11 with 5 members (seed 002 Fig. 5c), the barrier
                       measured by the explorer's 16 pulls
    ani5_batched16_11_fresh  ani5_batched16_11 with fresh random splits every iteration
                       (seed 002 Fig. 5: inherited against fresh)
    ani5_cosine      ani5_batched16_11 with its members on a cosine learning rate with a
                     warm-up (training.scheduler), up to 14 committees (the label budget the
                     stop)
    ani5_cvforce     ani5_batched16_11 selecting by the committee's spread of the tension
                     along the pulled coordinate (score.measure cv_force_std), not energy
                     (2026-12-07: converged at committees 8-10, +0.75, -0.37, -0.10
                     kcal/mol, 3188 labels, 2.47 h; 11-12 min an iteration alone)
    ani5_measure64   ani3_batched16_11 with 5 members, the barrier measured with 64 pulls a
                     side (measure.repeats: the explorer's 16 and 48 more; only the 16 are
                     scored), every 64th reference frame in the test set. Estimate from
                     ani3_batched16_11's record and the 64-pull measurement of its
                     iterations 7-10 (48 batched pulls 4-5 min): ~17 min an iteration (5
                     members ~9 min), ~3.3 h with the setup's 64 reference pulls

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hexane_learn.py [--out runs/hexane_bench]
        [--variants ani3_berendsen ani3_fresh] [--preset quick] [--scheduler tcp://...]

Each variant is an ordinary ``potlab learn`` run directory (resumable: rerun the same command
after a kill; a finished one goes on from its last iteration when rerun with a larger
``--max-iterations`` or ``--label-budget``). Cost on this 2-core machine, measured on ani3_inherited's record
(docs/results/hexane-learn/record.jsonl) in the iterations it had the machine to itself: one
iteration is 11-13 min (7-10 min of committee training, 3 members x 180 CPU-s on 2 cores with
their start-up and evaluation; ~2 min of the best member's steered MD; ~2 min of the other
members' runs; labelling under a minute); after the relax, setup (2000 reference MD frames, the
reference SMD and its labels) ~4 min; a variant of 10 iterations ~2-2.5 h (ani3_berendsen
on 2026-12-02: 1.5 h, about 9 min an iteration, with a test run beside it), the assessments
another half hour to hour (SchNet and MACE 600 CPU-s each, two molecules; with 16 pulls a
side much more: on ani3_batched16_11, --workers 1 beside another run, butane took 11 min,
octane 35, SchNet 25 (record times), and MACE's 16 batched pulls had made a third of their
steps after 24 min). Prints per variant and iteration the labels, the barrier of the best member against GFN2-xTB's (kcal/mol) and the
test-set force MAE, then the variants side by side (``comparison.md`` and ``.png`` in
``--out``, as ``potlab learn compare`` writes them) and the total wall time.

Every variant runs each member's SMD (the committee's spread of barriers); ani3_berendsen
and ani3_inherited (:data:`ASSESSED`), and any variant given with ``--assess`` (on a
finished run only the assessments then run; ``--assess architectures`` only the
architectures, ``--assess molecules`` only the molecules), also run the config's ``assess``
section after the loop: the final
best member's SMD barrier on butane and octane against GFN2-xTB's, and SchNet and MACE
trained on the data the ANI loop selected, each with its barrier error.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("POTLAB_QUIET", "1")

# the thermostat the first two variants ran with (the shipped config's before Berendsen)
_LANGEVIN = {"relax": {"thermostat": "langevin"},
             "explore": {"protocol": {"thermostat": "langevin", "friction_per_fs": 0.01}}}
VARIANTS = {
    "ani3_berendsen": {},
    "ani3_inherited": _LANGEVIN,
    "ani3_fresh": {**_LANGEVIN, "train": {"committee": {"split": "fresh"}}},
    "ani5_inherited": {"train": {"committee": {"size": 5}}},
    # seed 002 eq. 4: rho MSE(E) + (1 - rho) MSE(F), rho = 0.1 (potlab's beta form, total energy)
    "schnet3": {"train": {"model": {"name": "schnet", "num_features": 128, "num_filters": 128,
                                    "num_rbf": 25, "num_interactions": 3, "cutoff": 5.0},
                          "training": {"beta": 0.9, "energy_loss": "total", "lr": 5e-4}}},
    "ani3_pulls3": {"explore": {"protocol": {"repeats": 3}}},
    # 16 pulls a side, the model's together (engine batched); every 16th reference frame is
    # labelled, so the test set stays ~1300 frames; the members' own pulls are not run
    # (16 more pulls per member would double an iteration)
    "ani3_batched16": {"explore": {"protocol": {"repeats": 16, "engine": "batched"}},
                       "reference_run": {"label_every": 16},
                       "assess": {"members": False}},
}
# ani3_batched16 given one more iteration: three in a row can be judged at iterations 8-10
VARIANTS["ani3_batched16_11"] = {**VARIANTS["ani3_batched16"],
                                 "convergence": {"max_iterations": 11}}
# 64 pulls a side resolve the error to ~0.6 kcal/mol (ani3_batched16_11's iterations 7-10,
# docs/results/hexane-learn/ani3_batched16_11/pull_noise.txt); 5 members, as seed 002 also ran
VARIANTS["ani5_measure64"] = {**VARIANTS["ani3_batched16_11"],
                              "train": {"committee": {"size": 5}},
                              "measure": {"repeats": 64},
                              "reference_run": {"label_every": 64}}
# seed 002 Fig. 5c: five members, with the 16 batched pulls a side and 11 iterations of
# ani3_batched16_11 (ani5_measure64 without its 48 extra measuring pulls, which doubled an
# iteration; ~12 min an iteration on an idle machine, 5 members x 180 CPU-s ~9 of them)
VARIANTS["ani5_batched16_11"] = {**VARIANTS["ani3_batched16_11"],
                                 "train": {"committee": {"size": 5}}}
# seed 002 Fig. 5: the same with fresh random 80/20 splits every iteration, beside the
# inherited ones (ani3_fresh was that comparison with one pull a side)
VARIANTS["ani5_batched16_11_fresh"] = {**VARIANTS["ani5_batched16_11"],
                                       "train": {"committee": {"size": 5, "split": "fresh"}}}
# the five-member run with its members trained on a cosine rate with a warm-up (the rate
# rises over 100 steps, then falls to min_lr as the 180 CPU-s run out): each warm-started
# member at a constant 1e-3 was first thrown off its minimum (valid force MAE 53 -> 77
# meV/A in the first epoch) and ended its budget at the starting rate
# (benchmarks/hexane_retrain.py on ani5_batched16_11's committee 10); up to 14 committees,
# the label budget (3350 in all) the stop
VARIANTS["ani5_cosine"] = {**VARIANTS["ani5_batched16_11"],
                           "train": {"committee": {"size": 5},
                                     "training": {"scheduler": "cosine",
                                                  "scheduler_warmup_steps": 100}},
                           "convergence": {"max_iterations": 14}}
# the five-member run selecting by the committee's spread of the tension along the pulled
# coordinate (score.measure cv_force_std) instead of seed 002's energy spread: the barrier
# error follows the restoring force's error where the bond is about to break, and energy
# spread selected 6 of 188 frames there in ani5_batched16_11's iterations 5-10
# (docs/results/hexane-learn/ani5_batched16_11/tension)
VARIANTS["ani5_cvforce"] = {**VARIANTS["ani5_batched16_11"],
                            "score": {"measure": "cv_force_std"}}
# the variants that also run the config's assess section (transfer molecules, SchNet and
# MACE on the loop's data); the others judge their members only
ASSESSED = ("ani3_berendsen", "ani3_inherited")


def main() -> int:
    import yaml

    from potlab.learn import learn_status, parse_learn_config, run_learning
    from potlab.learn.compare import compare_runs
    from potlab.learn.config import BUNDLED, merge
    from potlab.learn.status import status_table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/hexane_bench")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--preset", default=None, help="e.g. quick, to check the benchmark itself")
    ap.add_argument("--scheduler", default=None)
    ap.add_argument("--workers", type=int, default=None,
                    help="committee, scoring and labelling workers per variant (1 to run two variants "
                         "side by side on 2 cores)")
    ap.add_argument("--assess", nargs="*", default=None, choices=("molecules", "architectures"),
                    help="run the config's assess section (or only the parts named) for every "
                         "variant given, not only for those in ASSESSED (added to a finished "
                         "run, only the assessments run)")
    ap.add_argument("--max-iterations", type=int, default=None,
                    help="override the variant's convergence.max_iterations (a finished run "
                         "goes on from its last iteration)")
    ap.add_argument("--label-budget", type=int, default=None,
                    help="override the variant's convergence.label_budget (new labels)")
    args = ap.parse_args()

    path = BUNDLED / "hexane.yaml"
    base = yaml.safe_load(path.read_text())
    presets = base.pop("presets", {})
    if args.preset:
        base = merge(base, presets[args.preset])
    start = time.perf_counter()
    for name in args.variants:
        raw = merge(base, VARIANTS[name])
        if args.assess is not None:  # the parts named (all without names)
            raw["assess"] = {**raw.get("assess", {}), **{
                part: [] for part in ("molecules", "architectures")
                if args.assess and part not in args.assess}}
        elif name not in ASSESSED:
            raw["assess"] = {**raw.get("assess", {}), "molecules": [], "architectures": []}
        if args.workers is not None:
            raw = merge(raw, {"reference": {"workers": args.workers},
                              "train": {"committee": {"workers": args.workers}},
                              "score": {"workers": args.workers}})
        for key, value in (("max_iterations", args.max_iterations),
                           ("label_budget", args.label_budget)):
            if value is not None:
                raw = merge(raw, {"convergence": {key: value}})
        if name == "schnet3":  # the SchNet section replaces the ANI one, not merged into it
            raw["train"]["model"] = dict(VARIANTS[name]["train"]["model"])
        cfg = parse_learn_config(raw, source=f"{path} [{name}]", base_dir=path.parent)
        out = Path(args.out) / name
        t0 = time.perf_counter()
        res = run_learning(cfg, out, scheduler=args.scheduler)
        st = learn_status(out)
        print(f"\n== {name}: {res.stop_reason} ({(time.perf_counter() - t0) / 3600:.2f} h)")
        print(status_table(st))
    md = compare_runs({name: Path(args.out) / name for name in args.variants}, args.out)
    print(f"\n{md.read_text()}\ncomparison: {md}")
    print(f"\ntotal wall time {(time.perf_counter() - start) / 3600:.2f} h")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
