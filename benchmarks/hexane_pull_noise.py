"""How much one steered pull's barrier varies with the thermostat's random numbers alone:
the explorer's protocol of a learn run repeated with other MD seeds (initial velocities and
Langevin noise), with the reference method and with one iteration's best member, from the
run's own start structure. If the same potential's barrier scatters by more than the
target tolerance, a single pull cannot tell whether a model meets it.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hexane_pull_noise.py runs/hexane_bench/ani3_inherited
        [--iteration 8 [9 ...]] [--seeds 1 2 3] [--out DIR] [--no-reference]
        [--thermostat berendsen --tdamp 100]

``--thermostat`` (and ``--tdamp``, fs) pulls with another thermostat than the run's
(seed 002 used Berendsen, which is deterministic once the initial velocities are drawn);
then the protocol's own seed is pulled again too, into ``--out`` (default
``pull_noise_<thermostat>``), and nothing of the run's own pulls is read.

Reads the run's ``config.json`` (the protocol and the reference method),
``setup/start.extxyz`` and ``iter_k/committee/committee.json`` (the best member). The
run's own pulls (seed = the protocol's) are read from ``setup/reference_run`` and
``iter_k/explore``, not rerun. Each new pull goes to ``--out/<reference|iter_k>/seed_<s>``
(resumable: a finished pull is read back). Writes ``pull_noise.csv`` (potential, seed,
barrier_eV, rupture force, anchor at the largest work, whether a bond broke) and prints
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
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> int:
    import ase.io
    import numpy as np
    import torch

    import potlab
    from potlab.learn.config import LearnConfig
    from potlab.learn.explorers import SteeredExplorer, broken_bonds, read_frames_of
    from potlab.learn.report import pull_peak
    from potlab.learn.selectors import KCAL_MOL_IN_EV
    from potlab.reference import get_method

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--iteration", type=int, nargs="+", default=None,
                    help="one or more; default: the last trained")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--thermostat", default=None,
                    choices=["langevin", "nose-hoover", "bussi", "berendsen"])
    ap.add_argument("--tdamp", type=float, default=None, help="fs (nose-hoover, bussi, berendsen)")
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
    if protocol.repeats > 1:
        raise SystemExit(f"{run}: its protocol already pulls {protocol.repeats} times "
                         "(repeats); its record has each pull's barrier")
    start = ase.io.read(run / "setup" / "start.extxyz")
    its = sorted(int(p.name[5:]) for p in run.glob("iter_*")
                 if (p / "committee" / "committee.json").exists())
    iterations = [its[-1]] if args.iteration is None else args.iteration
    if missing := [k for k in iterations if k not in its]:
        ap.error(f"{run}: no trained committee for iteration(s) {missing} "
                 f"(iter_k/committee/committee.json; trained: {its})")

    def best_model(it: int) -> Path:
        info = json.loads((run / f"iter_{it:03d}" / "committee" / "committee.json").read_text())
        best = info["members"][info["best_member"]]["member"]
        return run / f"iter_{it:03d}" / "committee" / f"member_{best}" / "model.pt"

    def calculators():
        if not args.no_reference:
            method = get_method(cfg.reference.method, cfg.reference.settings)
            method.check()
            yield "reference", run / "setup" / "reference_run", method.calculator(start)
        for it in iterations:
            yield (f"iter_{it}", run / f"iter_{it:03d}" / "explore",
                   potlab.load(best_model(it)).calculator())

    rows = []
    for name, own, calc in calculators():
        seeds = [protocol.seed, *args.seeds] if changed else args.seeds
        runs = ([] if changed else [(protocol.seed, own)]) + [
            (s, out / name / f"seed_{s}") for s in dict.fromkeys(seeds)]
        for seed, d in runs:
            if d != own:
                p = protocol.model_copy(update={"seed": seed})
                SteeredExplorer(p).run(start.copy(), calc, d)
            peak = pull_peak(d)
            broke = bool(broken_bonds(read_frames_of(d)[-1:], start, cfg.explore.break_factor)[0])
            rows.append({"potential": name, "seed": seed, "dir": str(d), "barrier_eV": peak["work"],
                         "rupture_force_eV_A": peak["force"], "anchor_at_max_work_A": peak["anchor"],
                         "bond_broke": broke})
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
    _plot(rows, out / "pull_noise.png", KCAL_MOL_IN_EV, protocol.thermostat)
    print(f"written: {out / 'pull_noise.csv'}, {out / 'pull_noise.png'}")
    if not args.no_reference:
        errors = _errors(rows, KCAL_MOL_IN_EV)
        with open(out / "pull_noise_errors.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(errors[0]))
            w.writeheader()
            w.writerows(errors)
        for e in errors:
            print(f"{e['potential']}: error of the mean {e['error_of_means_kcal_mol']:+.2f} +- "
                  f"{e['error_of_means_se_kcal_mol']:.2f} kcal/mol; same-seed differences "
                  f"{e['paired_mean_kcal_mol']:+.2f} +- {e['paired_se_kcal_mol']:.2f} "
                  f"({e['pulls']} pulls)")
        print(f"written: {out / 'pull_noise_errors.csv'}")
    return 0


def _errors(rows: list[dict], kcal: float) -> list[dict]:
    """Per model: its mean barrier minus the reference's, with the standard error of the
    two means in quadrature, and the mean (and standard error) of the differences between
    pulls of the same seed, in kcal/mol."""
    import numpy as np

    def by_seed(name):
        return {r["seed"]: r["barrier_eV"] / kcal for r in rows if r["potential"] == name}

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
                    "paired_se_kcal_mol": d.std(ddof=1) / np.sqrt(len(d))})
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
