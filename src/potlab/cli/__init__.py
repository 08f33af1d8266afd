"""The ``potlab`` command: thin argument parsing over the library. The small commands live
here; a command group is one module of this package with ``add_parser(subparsers)``
(``space.py``), found automatically."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
import warnings
from pathlib import Path


def _cmd_train(args) -> int:
    from potlab.train import load_config, train, train_committee
    from potlab.train.distributed import is_main_process, launch

    cfg = load_config(args.config)
    if args.out:
        cfg.out = args.out
    if args.nproc is not None:
        res = launch(cfg, args.nproc, source=str(args.config))
        _print_train_result(res)
        return 0
    if cfg.committee is not None:
        com = train_committee(cfg)
        print(f"{'member':>6}{'seed':>6}{'train':>7}{'valid':>7}{'F MAE all (meV/A)':>19}{'E MAE all (meV/at)':>20}")
        for r in com.members:
            f = r["forces_mae_all"]
            print(f"{r['member']:>6}{r['seed']:>6}{r['n_train']:>7}{r['n_valid']:>7}"
                  f"{(f if f is not None else float('nan')):>19.2f}{r['energy_mae_all']:>20.3f}")
        print(f"best member: {com.best_member}  committee: {com.path}")
        return 0
    res = train(cfg)  # under torchrun: one rank of several; rank 0 prints
    if is_main_process():
        _print_train_result(res)
    return 0


def _print_train_result(res) -> None:
    from potlab.data import e0_from_dict

    print(e0_from_dict(json.loads((res.out / "e0.json").read_text())).table())
    print(json.dumps(res.metrics, indent=1))
    print(f"model: {res.out / 'model.pt'}  (stopped: {res.stop_reason}, best epoch {res.best_epoch})")


def _cmd_eval(args) -> int:
    import potlab
    from potlab.analysis.parity import evaluate
    from potlab.data import read_frames
    from potlab.report.plots import parity_plot

    pot = potlab.load(args.model, dtype=args.dtype)
    frames = read_frames(args.data, energy_key=args.energy_key, forces_key=args.forces_key)
    metrics, arrays = evaluate(pot, frames, batch_size=args.batch_size)
    out = Path(args.out) if args.out else Path(args.model).parent
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(args.data).stem
    png = parity_plot(arrays, out / f"parity_{stem}.png", title=f"{Path(args.model)} on {stem}",
                      metrics=metrics["overall"])
    result = {**metrics["overall"], "subsets": {k: v for k, v in metrics.items() if k != "overall"},
              "model": str(args.model), "data": str(args.data), "parity_plot": str(png)}
    (out / f"eval_{stem}.json").write_text(json.dumps(result, indent=1))
    if args.json:
        print(json.dumps(result))
    else:
        print(_metrics_table(metrics))
        print(f"parity plot: {png}")
    return 0


def _metrics_table(metrics: dict) -> str:
    head = f"{'subset':<20}{'frames':>7}{'E MAE':>10}{'E RMSE':>10}{'F MAE':>10}{'F RMSE':>10}{'F R2':>9}"
    lines = [head, f"{'':<20}{'':>7}{'meV/at':>10}{'meV/at':>10}{'meV/A':>10}{'meV/A':>10}{'':>9}"]
    for name, m in metrics.items():
        lines.append(
            f"{name:<20}{m['n_frames']:>7}{m['energy_mae_mev_per_atom']:>10.2f}"
            f"{m['energy_rmse_mev_per_atom']:>10.2f}{m.get('forces_mae_mev_per_a', float('nan')):>10.1f}"
            f"{m.get('forces_rmse_mev_per_a', float('nan')):>10.1f}{m.get('forces_r2', float('nan')):>9.4f}"
        )
    return "\n".join(lines)


def _cmd_models(args) -> int:
    from potlab.models import available

    for name, cls in available().items():
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"{name}\t{doc}")
    return 0


def _cmd_demo(args) -> int:
    """The bundled Li-conductor study (seed 000), quick preset: `make demo`."""
    from potlab.studies import load_study, run_study
    from potlab.studies.config import resolve_study_path

    path = resolve_study_path("li_conductors")
    study = load_study(path, preset=args.preset)
    res = run_study(study, args.out, workers=args.workers, source=str(path))
    for key, why in res.failed.items():
        print(f"failed  {key}: {why}")
    md = Path(args.out) / "report.md"
    if md.exists():
        text = md.read_text()
        print(text.split("## Figures")[0].rstrip())
    if res.report is None:
        print(f"the report was not written; see `potlab study status {args.out}`")
        return 1
    print(f"\nreport: {Path(res.report).resolve()}  (open it in a browser; report.md beside it)")
    return 1 if res.failed else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="potlab", description="Train MLIPs and judge them by their MD.")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="log progress messages and show the traceback of an error (-vv: debug, "
                        "including third-party warnings)")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train (or resume) a potential from a YAML config")
    t.add_argument("config")
    t.add_argument("--out", help="run directory (overrides 'out' in the config)")
    t.add_argument("--nproc", type=int, default=None,
                   help="train with N local processes (data parallel, as PyTorch DDP: gloo on "
                        "the CPU, one GPU each with nccl); under torchrun leave it out")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("eval", help="errors of a trained potential on labelled frames")
    e.add_argument("model")
    e.add_argument("data")
    e.add_argument("--energy-key", default="REF_energy")
    e.add_argument("--forces-key", default="REF_forces")
    e.add_argument("--batch-size", type=int, default=16)
    e.add_argument("--dtype", choices=["float32", "float64"], default=None)
    e.add_argument("--out", help="where to write the JSON and parity plot (default: model's dir)")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=_cmd_eval)

    m = sub.add_parser("models", help="list registered architectures")
    m.set_defaults(func=_cmd_models)

    d = sub.add_parser("demo", help="run the bundled Li-conductor study (seed 000), quick preset")
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--preset", default="quick", help="preset of the li_conductors study")
    d.add_argument("--workers", type=int, default=None, help="local worker processes")
    d.set_defaults(func=_cmd_demo)

    _add_command_modules(sub)
    return p


def _add_command_modules(sub) -> None:
    """Attach every module of this package that defines ``add_parser(subparsers)``
    (``space.py`` gives ``potlab space ...``): a new command group is one new module."""
    import importlib
    import pkgutil

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "add_parser"):
            module.add_parser(sub)


def main(argv: list[str] | None = None) -> int:
    """Run the ``potlab`` command. Bad input (see :func:`input_error_message`) exits 2 with
    one line naming the file, frame, key or field; ``-v`` adds its traceback. Any other
    exception is a bug in potlab and propagates with its traceback. Output into a pipe whose
    reader has gone (``potlab learn status DIR | head``) ends the command quietly (exit 1)."""
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:  # `potlab ... | head`: the reader has gone, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as err:
        message = input_error_message(err)
        if message is None:
            raise
        if args.verbose:
            traceback.print_exception(err)
        print(f"potlab {args.command}: error: {message}", file=sys.stderr)
        return 2


def configure_logging(verbose: int) -> None:
    """WARNING by default, INFO with ``-v``, DEBUG with ``-vv``; third-party warnings are
    logged at DEBUG (:mod:`potlab.quiet`), not printed."""
    from potlab.quiet import log_warning

    level = logging.WARNING if not verbose else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    warnings.showwarning = log_warning


def input_error_message(err: BaseException) -> str | None:
    """The one-line message of an exception that means bad input, or None for a bug.

    Bad input is a :class:`potlab.errors.InputError` (DataError, ConfigError, SpaceError,
    MethodUnavailable, ...), an MD protocol error, a pydantic validation error of a
    command's parameters, an operating-system error about a named file (missing,
    unwritable, a directory), or a ValueError raised by the command-line layer itself
    (argument checks in ``potlab.cli``). A KeyError, IndexError or a ValueError from deep
    inside the library is a bug and returns None.
    """
    from pydantic import ValidationError

    from potlab.errors import InputError

    if isinstance(err, InputError) or _is_protocol_error(err):
        return str(err)
    if isinstance(err, ValidationError):
        from potlab.strict import format_validation_error

        return format_validation_error(err, "arguments").replace("\n", "; ")
    if isinstance(err, OSError) and err.filename is not None:
        return f"{err.filename}: {err.strerror or err}"
    if isinstance(err, FileNotFoundError):
        return str(err)
    if isinstance(err, ValueError) and _raised_in_cli(err):
        return str(err)
    if isinstance(err, ModuleNotFoundError) and (extra := _extra_of(err.name)):
        return (f"this command needs the package {err.name!r}, which is not installed: "
                f"pip install 'potlab[{extra}]' (or 'potlab[all]')")
    return None


def _extra_of(module: str | None) -> str | None:
    """The potlab extra (``md``, ``space``, ``reference``) that installs ``module``."""
    from potlab.errors import EXTRAS

    top = (module or "").split(".")[0].lower()
    for extra, packages in EXTRAS.items():
        if top in {p.lower() for p in packages}:
            return extra
    return None


def _is_protocol_error(err: BaseException) -> bool:
    protocol = sys.modules.get("potlab.md.protocol")
    return protocol is not None and isinstance(err, getattr(protocol, "ProtocolError", ()))


def _raised_in_cli(err: BaseException) -> bool:
    """True when the innermost frame of the traceback is in a ``potlab.cli`` module."""
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_globals.get("__name__", "").startswith("potlab.cli")


if __name__ == "__main__":
    sys.exit(main())
