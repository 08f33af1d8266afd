"""Is a learn run's barrier error its data or its model? Train the run's architecture on
"oracle" data: the run's initial data plus frames of the reference method's own steered
pulls (other seeds than the ones that measure the barrier), labelled by the reference. A
loop's selection can at best find data like this; if models trained on it still miss the
reference barrier, more active learning on the same model and training will not close the
gap, and if they do not, the loop's selection is what falls short.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hexane_oracle_data.py runs/hexane_bench/ani3_batched16_11
        [--seeds 100-115] [--every 16] [--members 2] [--max-epochs 300] [--max-time S]
        [--out runs/hexane_bench/oracle]

Reads the run's ``config.json`` (protocol, reference method, the ``train`` section),
``setup/start.extxyz``, ``iter_000/data.extxyz`` (the initial data) and
``setup/reference_frames.extxyz`` (the test set). Writes into ``--out``:

    pulls/             the reference's pulls with ``--seeds`` (side by side on the
                       run's reference workers; a finished pull is read back)
    oracle_frames.extxyz  every ``--every``-th frame of each pull, labelled through
                       ``labels.db`` (a rerun labels nothing twice)
    data.extxyz        the initial data, then those frames
    committee/         ``--members`` models trained from scratch on it with the run's
                       ``train`` section (fresh random splits, one thread each, side by
                       side), ``--max-epochs`` and ``--max-time`` (CPU-s) replacing its budget
    eval_member_<m>.json  each member's errors on the run's test set
    summary.json       all of the above in one file

and prints each member's test errors and the command that pulls them with the seeds that
measured the run (``hexane_pull_noise.py --model``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("POTLAB_QUIET", "1")


def main() -> int:
    import ase.io
    from hexane_pull_noise import _seeds  # this folder is the script's: sys.path[0]

    import potlab
    from potlab.analysis.parity import evaluate
    from potlab.data import read_frames
    from potlab.data.writers import write_extxyz
    from potlab.learn.config import LearnConfig
    from potlab.learn.explorers import SteeredExplorer, pulls_broken_bonds
    from potlab.learn.labelling import LabelStep
    from potlab.learn.report import bond_counts
    from potlab.learn.setup import reference_run
    from potlab.train import parse_config, train_committee

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--seeds", default="100-115",
                    help="a-b: consecutive seeds of the reference's pulls (not the measuring ones)")
    ap.add_argument("--every", type=int, default=16, help="every k-th frame of each pull")
    ap.add_argument("--members", type=int, default=2)
    ap.add_argument("--max-epochs", type=int, default=300, help="seed 002: 300")
    ap.add_argument("--max-time", type=float, default=None, help="CPU-s per member")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    run = args.run_dir
    out = (args.out or run.parent / "oracle").resolve()
    try:
        seeds = _seeds([args.seeds])
    except ValueError as err:
        ap.error(f"--seeds: {err}")
    for need in ("config.json", "setup/start.extxyz", "iter_000/data.extxyz",
                 "setup/reference_frames.extxyz"):
        if not (run / need).is_file():
            ap.error(f"{run}: no {need} (the run's setup has not finished)")
    cfg = LearnConfig.model_validate({**json.loads((run / "config.json").read_text()),
                                      "base_dir": str(run)})
    protocol = cfg.protocol().model_copy(update={"seed": seeds[0], "repeats": len(seeds)})
    measured = cfg.measure_protocol()
    # the seeds that measure the models (the run's own pulls, and the 64 of the pull
    # command printed at the end) must not be the oracle's
    n_measure = max(measured.repeats, 64)
    taken = set(range(measured.seed, measured.seed + n_measure))
    if clash := sorted(taken & set(seeds)):
        ap.error(f"--seeds {args.seeds}: seeds {clash[0]}-{clash[-1]} measure the barrier "
                 f"(seeds {measured.seed}-{measured.seed + n_measure - 1})")

    out.mkdir(parents=True, exist_ok=True)
    labeller = LabelStep(cfg.reference.method, cfg.reference.settings, str(out / "labels.db"),
                         None, cfg.reference.workers)
    start = ase.io.read(run / "setup" / "start.extxyz")
    t0 = time.perf_counter()
    pulled = reference_run(SteeredExplorer(protocol), start, labeller, out / "pulls",
                           args.every, out / "oracle_frames.extxyz")
    t_pull = time.perf_counter() - t0
    broke = pulls_broken_bonds(out / "pulls", start, cfg.explore.break_factor)
    initial = read_frames(run / "iter_000" / "data.extxyz")
    oracle = read_frames(out / "oracle_frames.extxyz")
    for f in oracle:
        f.info["config_type"] = "oracle_pull"
    write_extxyz(out / "data.extxyz", list(initial) + list(oracle))
    print(f"reference pulls {seeds[0]}-{seeds[-1]}: barrier {pulled['value_eV']:.4f} eV (mean), "
          f"{len(oracle)} frames labelled ({pulled.get('failed', 0)} failed) in {t_pull:.0f} s; "
          f"data: {len(initial)} initial + {len(oracle)} = {len(initial) + len(oracle)} frames; "
          f"bonds broken at the end (pulls): {bond_counts(broke)}")

    raw = json.loads(json.dumps(cfg.train))
    raw["data"] = {**(raw.get("data") or {}), "train": str(out / "data.extxyz")}
    raw["out"] = str(out / "committee")
    raw["training"] = {**raw["training"], "max_epochs": args.max_epochs,
                       "max_time": args.max_time, "init_model": None}
    raw["committee"] = {"size": args.members, "split": "fresh",
                        "workers": min(args.members, os.cpu_count() or 1)}
    t0 = time.perf_counter()
    res = train_committee(parse_config(raw, source="oracle train"))
    t_train = time.perf_counter() - t0
    test = read_frames(run / "setup" / "reference_frames.extxyz")
    members = []
    for m in res.members:
        metrics, _ = evaluate(potlab.load(Path(m["dir"]) / "model.pt"), test)
        overall = metrics.get("overall") or next(iter(metrics.values()))
        (out / f"eval_member_{m['member']}.json").write_text(json.dumps(overall, indent=1))
        members.append({"member": m["member"], "model": str(Path(m["dir"]) / "model.pt"),
                        "epochs": m["epochs"], "stop_reason": m["stop_reason"],
                        "train_s": m["train_s"], "test": overall})
        print(f"member {m['member']}: {m['epochs']} epochs ({m['stop_reason']}, "
              f"{m['train_s']:.0f} s); test F MAE {overall['forces_mae_mev_per_a']:.2f} meV/A, "
              f"E MAE {overall['energy_mae_mev_per_atom']:.3f} meV/atom "
              f"({len(test)} reference frames)")
    (out / "summary.json").write_text(json.dumps(
        {"run": str(run.resolve()), "seeds": seeds, "every": args.every,
         "reference_barrier_eV": pulled["value_eV"], "reference_barriers_eV": pulled.get("values_eV"),
         "broken_bonds": broke, "n_initial": len(initial), "n_oracle": len(oracle), "pull_s": t_pull,
         "train_wall_s": t_train, "members": members}, indent=1))
    models = " ".join(f"oracle_{m['member']}={m['model']}" for m in members)
    print(f"written: {out / 'summary.json'}\npull them: OMP_NUM_THREADS=1 .venv/bin/python "
          f"benchmarks/hexane_pull_noise.py {run} --seeds {measured.seed}-"
          f"{measured.seed + n_measure - 1} --model {models} "
          f"--out {out / 'pull_noise'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
