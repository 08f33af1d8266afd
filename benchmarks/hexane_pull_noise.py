"""How much one steered pull's barrier varies with the thermostat's random numbers alone:
the explorer's protocol of a learn run repeated with other MD seeds (initial velocities and
Langevin noise), with the reference method and with one iteration's best member, from the
run's own start structure. If the same potential's barrier scatters by more than the
target tolerance, a single pull cannot tell whether a model meets it.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hexane_pull_noise.py runs/hexane_bench/ani3_inherited
        [--iteration 8 [9 ...]] [--seeds 1 2 3 | --seeds 3-23] [--out DIR] [--no-reference]
        [--thermostat berendsen --tdamp 100] [--engine batched|ase] [--model NAME=PATH ...]
        [--reference-csv OTHER_RUN/pull_noise/pull_noise.csv]

A model's new pulls run together on the batched engine (one model call per step for all
its seeds; ``--engine ase`` pulls them one after another), the reference's one after
another on the ASE engine. Same seed, same start: with Berendsen both engines follow one
trajectory to rounding (tests/test_md_batched.py), and a float32 model's last bits
differ between a batch and a single graph, so over 6500 steps a batched pull and a
single pull of one seed are two draws of the same distribution, not one number.

``--reference-csv OTHER/pull_noise.csv`` takes the reference's pulls from another run that
started from the same structure with the same protocol (checked: this run's own reference
pulls must read the same barriers there), so a model is judged against many reference
pulls without pulling them again.

``--model NAME=PATH`` pulls other models too (one trained apart from the run, say), from
the same start with the same seeds; none of their pulls is the run's own.

``--thermostat`` (and ``--tdamp``, fs) pulls with another thermostat than the run's
(seed 002 used Berendsen, which is deterministic once the initial velocities are drawn);
then the protocol's own seed is pulled again too, into ``--out`` (default
``pull_noise_<thermostat>``), and nothing of the run's own pulls is read.

Reads the run's ``config.json`` (the protocol and the reference method),
``setup/start.extxyz`` and ``iter_k/committee/committee.json`` (the best member). The
run's own pulls (the protocol's seed, or with ``repeats: N`` seeds seed..seed+N-1 in
``T<T>K_r<r>``) are read from ``setup/reference_run`` and ``iter_k/explore`` (and the pulls
``measure.repeats`` adds, from ``iter_k/measure``), not rerun. Each new pull goes to ``--out/<reference|iter_k>/seed_<s>``
(resumable: a finished pull is read back). Writes ``pull_noise.csv`` (potential, seed,
barrier_eV, rupture force, anchor at the largest work, whether a bond broke and which, as
element and atom index pairs of the start structure's bonds) and prints
per potential the mean, the sample standard deviation and the range in kcal/mol. With the
reference pulled, ``pull_noise_errors.csv`` gives per iteration the error of the mean
barrier against the reference's mean with its standard error (both means' in quadrature)
and the mean of the same-seed differences with theirs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> int:
    import ase.io
    import numpy as np
    import torch

    import potlab
    from potlab.learn.config import LearnConfig
    from potlab.learn.explorers import SteeredExplorer, pulls_broken_bonds
    from potlab.learn.report import bond_counts, pull_peak
    from potlab.learn.selectors import KCAL_MOL_IN_EV
    from potlab.reference import get_method

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--iteration", type=int, nargs="*", default=None,
                    help="one or more; default: the last trained; given with none, only "
                         "the reference is pulled (while the run trains its first committee)")
    ap.add_argument("--seeds", nargs="+", default=["1", "2", "3"],
                    help="seeds, or ranges a-b (inclusive)")
    ap.add_argument("--engine", default="batched", choices=["batched", "ase"],
                    help="how a model's new pulls run (the reference's: ase)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--reference-csv", type=Path, default=None,
                    help="the reference's pulls from another run's pull_noise.csv (that run "
                         "started from the same structure with the same protocol: the run's "
                         "own reference pulls must equal its rows of their seeds to 1e-6 eV); "
                         "none are pulled")
    ap.add_argument("--thermostat", default=None,
                    choices=["langevin", "nose-hoover", "bussi", "berendsen"])
    ap.add_argument("--tdamp", type=float, default=None, help="fs (nose-hoover, bussi, berendsen)")
    ap.add_argument("--model", nargs="+", default=[], metavar="NAME=PATH",
                    help="other models to pull from the run's start (a model.pt each; all "
                         "their pulls are new, into --out/NAME)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    run = args.run_dir
    cfg = LearnConfig.model_validate({**json.loads((run / "config.json").read_text()),
                                      "base_dir": str(run)})
    protocol = cfg.protocol()
    changes = {k: v for k, v in (("thermostat", args.thermostat), ("tdamp_fs", args.tdamp))
               if v is not None}
    changed = any(getattr(protocol, k) != v for k, v in changes.items())
    protocol = protocol.model_validate({**protocol.model_dump(), **changes})
    out = args.out or run / (f"pull_noise_{protocol.thermostat}" if changed else "pull_noise")
    try:
        seeds_asked = _seeds(args.seeds)
    except ValueError as err:
        ap.error(f"--seeds: {err}")
    # the run's own pulls: the reference's (measure.repeats of them when the run's measure
    # adds pulls), a model's in its explore folder and the measure's in its measure folder
    own_ref = [(s, (None, sub)) for s, sub in _own_pulls(cfg.measure_protocol())]
    own_model = [(s, (None, sub)) for s, sub in _own_pulls(cfg.protocol())]
    if (extra := cfg.measure_extra()) is not None:
        own_model += [(s, ("measure", sub)) for s, sub in _own_pulls(extra)]
    protocol = protocol.model_copy(update={"repeats": 1})
    start = ase.io.read(run / "setup" / "start.extxyz")
    its = sorted(int(p.name[5:]) for p in run.glob("iter_*")
                 if (p / "committee" / "committee.json").exists())
    if args.iteration is None and not its and not args.model:
        ap.error(f"{run}: no trained committee yet (give --iteration with no number to pull "
                 "only the reference)")
    iterations = [its[-1]] if args.iteration is None and not args.model else (args.iteration or [])
    models = {}
    for given in args.model:
        name, sep, path = given.partition("=")
        if not sep or not name or name == "reference" or name.startswith("iter_"):
            ap.error(f"--model {given}: give NAME=PATH, NAME neither 'reference' nor iter_*")
        if not Path(path).is_file():
            ap.error(f"--model {given}: no file {path}")
        models[name] = Path(path)
    if not iterations and not models and args.no_reference:
        ap.error("nothing to pull: no iteration and --no-reference")
    if missing := [k for k in iterations if k not in its]:
        ap.error(f"{run}: no trained committee for iteration(s) {missing} "
                 f"(iter_k/committee/committee.json; trained: {its})")

    def best_model(it: int) -> Path:
        info = json.loads((run / f"iter_{it:03d}" / "committee" / "committee.json").read_text())
        best = info["members"][info["best_member"]]["member"]
        return run / f"iter_{it:03d}" / "committee" / f"member_{best}" / "model.pt"

    borrowed = []
    if args.reference_csv is not None:
        try:
            borrowed = _borrowed_reference(args.reference_csv, run / "setup" / "reference_run",
                                           own_ref, seeds_asked)
        except (OSError, ValueError) as err:  # exit 2, one line naming the file
            ap.error(str(err))
        args.no_reference = True

    def calculators():
        if not args.no_reference:
            method = get_method(cfg.reference.method, cfg.reference.settings)
            method.check()
            yield "reference", run / "setup" / "reference_run", method.calculator(start)
        for it in iterations:
            yield (f"iter_{it}", run / f"iter_{it:03d}" / "explore",
                   potlab.load(best_model(it)).calculator())
        for name, path in models.items():
            yield name, None, potlab.load(path).calculator()

    from potlab.md.batched import run_batched
    from potlab.md.engine import Replica

    rows, timings = [], []
    for name, own, calc in calculators():
        own_pulls = [] if own is None else own_ref if name == "reference" else own_model
        mine = [] if changed else [(s, (own.parent / up if up else own) / (sub or ""))
                                   for s, (up, sub) in own_pulls]
        taken = {s for s, _ in mine}
        new = [(s, out / name / f"seed_{s}") for s in dict.fromkeys(
            ([protocol.seed] if changed else []) + seeds_asked) if s not in taken]
        t0 = time.perf_counter()
        if new and name != "reference" and args.engine == "batched":
            T = protocol.temperatures_K[0]
            run_batched([Replica(start.copy(), d, T, s) for s, d in new], calc, protocol)
        else:
            for seed, d in new:
                SteeredExplorer(protocol.model_copy(update={"seed": seed})).run(
                    start.copy(), calc, d)
        timings.append((name, len(new), time.perf_counter() - t0))
        for seed, d in mine + new:
            peak = pull_peak(d)
            broke = pulls_broken_bonds(d, start, cfg.explore.break_factor)[0]
            rows.append({"potential": name, "seed": seed, "dir": str(d), "barrier_eV": peak["work"],
                         "rupture_force_eV_A": peak["force"], "anchor_at_max_work_A": peak["anchor"],
                         "bond_broke": bool(broke), "broken_bonds": broke})
    rows = borrowed + rows
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "pull_noise.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"{'potential':>10} {'seed':>5} {'barrier eV':>11} {'kcal/mol':>9} {'Fmax eV/A':>10} "
          f"{'anchor A':>9}")
    for r in rows:
        print(f"{r['potential']:>10} {r['seed']:>5} {r['barrier_eV']:>11.4f} "
              f"{r['barrier_eV'] / KCAL_MOL_IN_EV:>9.2f} {r['rupture_force_eV_A']:>10.3f} "
              f"{r['anchor_at_max_work_A']:>9.3f}")
    for name in dict.fromkeys(r["potential"] for r in rows):
        b = np.array([r["barrier_eV"] for r in rows if r["potential"] == name]) / KCAL_MOL_IN_EV
        print(f"{name}: {len(b)} pulls, barrier {b.mean():.2f} kcal/mol, sample std "
              f"{b.std(ddof=1):.2f}, range {b.max() - b.min():.2f} (max - min)")
        broke = [r["broken_bonds"] for r in rows if r["potential"] == name]
        print(f"{name}: bonds broken at the end (pulls): {bond_counts(broke)}")
    for name, n, sec in timings:
        how = "ase" if name == "reference" else args.engine
        print(f"{name}: {n} pulls beyond the run's own in {sec:.0f} s wall ({how} engine; "
              "pulls finished earlier are read back, not rerun)")
    _plot(rows, out / "pull_noise.png", KCAL_MOL_IN_EV, protocol.thermostat)
    print(f"written: {out / 'pull_noise.csv'}, {out / 'pull_noise.png'}")
    if (borrowed or not args.no_reference) and (iterations or models):
        errors = _errors(rows, KCAL_MOL_IN_EV)
        with open(out / "pull_noise_errors.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(errors[0]))
            w.writeheader()
            w.writerows(errors)
        for e in errors:
            print(f"{e['potential']}: error of the mean {e['error_of_means_kcal_mol']:+.2f} +- "
                  f"{e['error_of_means_se_kcal_mol']:.2f} kcal/mol; same-seed differences "
                  f"{e['paired_mean_kcal_mol']:+.2f} +- {e['paired_se_kcal_mol']:.2f} "
                  f"({e['pulls']} pulls); rupture force "
                  f"{e['rupture_force_eV_A_error']:+.3f} eV/A "
                  f"({100 * e['rupture_force_relative_error']:+.2f} %), anchor at the "
                  f"largest work {e['anchor_at_max_work_A_error']:+.3f} A")
        print(f"written: {out / 'pull_noise_errors.csv'}")
    return 0


def _borrowed_reference(path: Path, own_dir: Path, own_ref: list, seeds: list[int]) -> list[dict]:
    """The rows of ``path`` (another run's ``pull_noise.csv``) of the reference and the seeds
    asked, after checking that this run's own reference pulls read the same barriers there
    (the same start and protocol: with Berendsen a seed's pull is one trajectory)."""
    from potlab.learn.report import pull_peak

    need = ("potential", "seed", "barrier_eV", "rupture_force_eV_A", "anchor_at_max_work_A")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if missing := [k for k in need if k not in (reader.fieldnames or [])]:
            raise ValueError(f"--reference-csv {path}: no column {', '.join(missing)} "
                             "(not a pull_noise.csv)")
        ref = {int(r["seed"]): r for r in reader if r["potential"] == "reference"}
    for seed, (_, sub) in own_ref:
        mine = pull_peak(own_dir / (sub or ""))["work"]
        if seed not in ref or abs(float(ref[seed]["barrier_eV"]) - mine) > 1e-6:
            raise ValueError(f"--reference-csv {path}: the run's own reference pull of seed "
                             f"{seed} ({mine:.6f} eV) is not there: another start or protocol")
    if missing := [s for s in seeds if s not in ref]:
        raise ValueError(f"--reference-csv {path}: no reference pull of seeds {missing}")
    out = []
    for s in seeds:
        r = ref[s]
        out.append({"potential": "reference", "seed": s, "dir": r["dir"],
                    "barrier_eV": float(r["barrier_eV"]),
                    "rupture_force_eV_A": float(r["rupture_force_eV_A"]),
                    "anchor_at_max_work_A": float(r["anchor_at_max_work_A"]),
                    "bond_broke": r["bond_broke"] == "True",
                    "broken_bonds": r.get("broken_bonds", "not recorded")})
    return out


def _seeds(given: list[str]) -> list[int]:
    """``["1", "3-5"]`` -> [1, 3, 4, 5]."""
    out = []
    for g in given:
        a, sep, b = g.partition("-")
        lo, hi = int(a), int(b) if sep else int(a)
        if hi < lo:
            raise ValueError(f"empty range {g}")
        out += range(lo, hi + 1)
    return out


def _own_pulls(protocol) -> list[tuple[int, str | None]]:
    """The pulls a learn run made itself: (seed, subdirectory or None) - one pull in the run
    directory, or ``repeats`` pulls in T<T>K_r<r> with seeds seed + r."""
    from potlab.md.protocol import run_dir_name

    if protocol.repeats == 1 and len(protocol.temperatures_K) == 1:
        return [(protocol.seed, None)]
    if len(protocol.temperatures_K) > 1:
        raise SystemExit("pull noise: the run's protocol pulls at several temperatures")
    T = protocol.temperatures_K[0]
    return [(protocol.seed + r, run_dir_name(T, r)) for r in range(protocol.repeats)]


def _errors(rows: list[dict], kcal: float) -> list[dict]:
    """Per model: its mean barrier minus the reference's, with the standard error of the
    two means in quadrature, and the mean (and standard error) of the differences between
    pulls of the same seed, in kcal/mol; and its mean rupture force (eV/A, and relative)
    and anchor at the largest work (A) minus the reference's: where the bond gave way."""
    import numpy as np

    def by_seed(name):
        return {r["seed"]: r["barrier_eV"] / kcal for r in rows if r["potential"] == name}

    def mean_of(name, key):
        return float(np.mean([r[key] for r in rows if r["potential"] == name]))

    ref = by_seed("reference")
    r = np.array(list(ref.values()))
    out = []
    for name in dict.fromkeys(x["potential"] for x in rows if x["potential"] != "reference"):
        mine = by_seed(name)
        m = np.array(list(mine.values()))
        d = np.array([mine[s] - ref[s] for s in mine if s in ref])
        out.append({"potential": name, "pulls": len(m),
                    "mean_kcal_mol": m.mean(), "reference_mean_kcal_mol": r.mean(),
                    "error_of_means_kcal_mol": m.mean() - r.mean(),
                    "error_of_means_se_kcal_mol": float(np.hypot(m.std(ddof=1) / np.sqrt(len(m)),
                                                                 r.std(ddof=1) / np.sqrt(len(r)))),
                    "paired_mean_kcal_mol": d.mean(),
                    "paired_se_kcal_mol": d.std(ddof=1) / np.sqrt(len(d)),
                    **{f"{key}_error": mean_of(name, key) - mean_of("reference", key)
                       for key in ("rupture_force_eV_A", "anchor_at_max_work_A")},
                    "rupture_force_relative_error": mean_of(name, "rupture_force_eV_A")
                    / mean_of("reference", "rupture_force_eV_A") - 1.0})
    return out


def _plot(rows: list[dict], path: Path, kcal: float, thermostat: str) -> None:
    """Each pull's barrier by seed, one column per potential, the mean +- sample std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(dict.fromkeys(r["potential"] for r in rows))
    fig, ax = plt.subplots(figsize=(5, 4))
    for x, name in enumerate(names):
        b = np.array([r["barrier_eV"] for r in rows if r["potential"] == name]) / kcal
        seeds = [r["seed"] for r in rows if r["potential"] == name]
        ax.plot(np.full(len(b), x) + np.linspace(-0.15, 0.15, len(b)), b, "o", color=f"C{x}")
        for s, xs, y in zip(seeds, np.full(len(b), x) + np.linspace(-0.15, 0.15, len(b)), b):
            ax.annotate(str(s), (xs, y), textcoords="offset points", xytext=(4, 0), fontsize=7)
        ax.errorbar(x + 0.3, b.mean(), yerr=b.std(ddof=1), fmt="s", color="k", capsize=4)
    ax.set_xticks(range(len(names)), names)
    ax.set_xlim(-0.5, len(names) - 0.3)
    ax.set_ylabel("barrier: largest work of one pull (kcal/mol)")
    ax.set_title(f"one pull per seed ({thermostat}); black: mean +- sample std", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
