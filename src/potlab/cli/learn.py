"""``potlab learn CONFIG.yaml --out DIR [--preset quick] [--scheduler ADDR]`` runs (or
resumes) an active-learning loop; ``potlab learn status DIR [--json]`` reads its record;
``potlab learn compare DIR DIR ... [--out D]`` puts runs side by side (seed 002 Fig. 5).
Thin over :mod:`potlab.learn`."""

from __future__ import annotations

import sys
from pathlib import Path

from potlab.cli._output import emit


def add_parser(subparsers):
    p = subparsers.add_parser(
        "learn", help="active learning: train committee -> explore -> select -> label -> merge, "
        "resumable; 'potlab learn status DIR' reads a run, 'potlab learn compare DIR DIR' "
        "puts runs side by side",
        description="potlab learn CONFIG.yaml --out DIR [--preset quick] [--scheduler ADDR]\n"
                    "potlab learn status DIR [--json]\n"
                    "potlab learn compare DIR DIR ... [--out D]")
    p.add_argument("config", help="a learn YAML or a bundled config's name (hexane); or "
                   "'status' or 'compare'")
    p.add_argument("dir", nargs="*", help="with 'status': the run directory; with 'compare': "
                   "run directories (NAME=DIR to name one)")
    p.add_argument("--out", help="run directory (default runs/<name>[-<preset>]); with "
                   "'compare': where comparison.md goes (default: the first run's parent)")
    p.add_argument("--preset", help="a preset of the config (quick)")
    p.add_argument("--scheduler", help="Dask scheduler address for labelling (tcp://host:8786)")
    p.add_argument("--json", action="store_true", help="status: one JSON object")
    p.set_defaults(func=run)
    return p


def _print_step(iteration: int, step: str, result: dict) -> None:
    where = "setup" if iteration < 0 else f"iteration {iteration}"
    keys = {"structure": ("formula", "relax_steps"), "initial_data": ("n_frames",),
            "reference_run": ("value_eV", "test_frames"),
            "train": ("best_member",), "explore": ("frames", "tracked_eV"),
            "measure": ("tracked_eV", "error_kcal_mol", "test_forces_mae_mev_per_a", "stop"),
            "score": ("frames_scored", "max_uncertainty"),
            "select": ("threshold", "mu", "sigma", "n_selected"),
            "augment": ("selected", "augmented"),
            "label": ("labelled", "failed", "computed", "cached"),
            "merge": ("added", "total"), "finished": ("reason",),
            "members": ("error_kcal_mol", "spread_kcal_mol")}.get(step.split(":")[0], ())
    if ":" in step:  # molecule:<name>, architecture:<name>
        keys = ("tracked_eV", "reference_eV", "error_kcal_mol", "test_forces_mae_mev_per_a")

    def fmt(v):
        if isinstance(v, list):
            return "/".join(fmt(x) for x in v)
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    parts = " ".join(f"{k}={fmt(result.get(k))}" for k in keys if result.get(k) is not None)
    print(f"[{where}] {step:<13} {parts}", flush=True)


def run(args) -> int:
    if args.config == "status":
        if len(args.dir) != 1:
            raise ValueError("usage: potlab learn status DIR [--json]")
        from potlab.learn.status import learn_status, status_table

        st = learn_status(args.dir[0])
        return emit(args, st, [status_table(st)], indent=1)
    if args.config == "compare":
        return _compare(args)
    if args.dir:
        raise ValueError(f"unexpected argument {args.dir[0]!r} (the run directory is --out DIR)")
    from potlab.learn import load_learn_config, run_learning
    from potlab.learn.status import learn_status, status_table

    cfg = load_learn_config(args.config, preset=args.preset)
    out = Path(args.out or f"runs/{cfg.name}" + (f"-{args.preset}" if args.preset else ""))
    run_learning(cfg, out, scheduler=args.scheduler, on_step=_print_step)
    print(status_table(learn_status(out)))
    print(f"report: {out / 'report.md'}")
    sys.stdout.flush()
    return 0


def _compare(args) -> int:
    if not args.dir:
        raise ValueError("usage: potlab learn compare DIR DIR ... [--out D]")
    from potlab.learn.compare import compare_runs

    runs = {}
    for a in args.dir:
        name, _, d = a.rpartition("=") if "=" in a else (Path(a).name, "", a)
        if name in runs:
            raise ValueError(f"two runs named {name!r}: name them, NAME=DIR")
        runs[name] = Path(d)
    out = Path(args.out) if args.out else next(iter(runs.values())).parent
    md = compare_runs(runs, out)
    print(md.read_text())
    print(f"comparison: {md}")
    return 0
