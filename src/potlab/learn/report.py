"""The run's report: ``report.md`` (one row per iteration from the record: labels so far,
the best member's tracked quantity against the reference in kcal/mol, force and energy MAE
on the reference run's frames, the calibration mu and sigma, frames selected) and
``work_curves.png`` (the work curve of every iteration's steered explorer over the
reference's). For steered runs it adds where each pull peaked: the largest spring force
(the rupture force, eV/A) and the anchor position at the largest work, read from each run's
``steered_log.csv``. The maximum work is very sensitive to the rupture force: past the
reference's rupture the work still rises at about the spring force times the pull per A."""

from __future__ import annotations

import json
from pathlib import Path

from potlab.atomic import write_text_atomic
from potlab.learn.status import channel_text, error_text, learn_status


def bond_counts(names: list[str]) -> str:
    """Pulls by the bonds they broke, most first: ``"C4-C5 10, C0-C1 6"`` (``none``: no
    bond broke)."""
    from collections import Counter

    return ", ".join(f"{k or 'none'} {n}" for k, n in Counter(names).most_common())


def _f(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def write_report(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    st = learn_status(run_dir)
    ref = st["setup"].get("reference_run") or {}
    ref_peak = ref.get("peak") or pull_peak(run_dir / "setup" / "reference_run")
    lines = [f"# potlab learn: {run_dir.name}", "",
             (f"Reference value of the tracked quantity: {_f(ref.get('value_eV'), '.4f')} eV "
              f"({ref.get('test_frames', 0)} labelled reference frames as the test set)."), ""]
    if ref.get("values_eV"):
        from potlab.learn.explorers import mean_and_sem

        v = ref["values_eV"]
        lines += [(f"It is the mean of {len(v)} pulls with their own seeds "
                   f"({', '.join(f'{x:.4f}' for x in v)} eV; standard error "
                   f"{mean_and_sem(v)[1]:.4f} eV). Errors carry the standard error of both "
                   "sides' means as +-; the rupture forces below are each run's first pull's."), ""]
    pulls = [r["pulls"] for r in st["iterations"] if r.get("pulls")]
    if pulls:
        lines += [(f"Each iteration's barrier is the mean of {max(pulls)} pulls of its best "
                   "member: the explorer's own (their frames are scored) and more with the "
                   "seeds after them (`measure.repeats`, in `iter_NNN/measure`)."), ""]
    if ref_peak:
        broke = (f" Bonds broken at the end of its pulls: {bond_counts(ref['broken_bonds'])}."
                 if ref.get("broken_bonds") else "")
        lines += [(f"Reference pull: rupture force {ref_peak['force']:.3f} eV/A, largest work "
                   f"at anchor {ref_peak['anchor']:.3f} A.{broke}"), ""]
    lines += [
             ("| iter | labels (data) | added | tracked (eV) | error (kcal/mol) | members' "
              "errors (kcal/mol) | members' spread (kcal/mol) | E MAE test "
              "(meV/atom) | F MAE test (meV/A) | mu | sigma | threshold | scored | selected | "
              "augmented | failed | members' epochs |"),
             "|" + "---|" * 17]
    peaks = []
    for r in st["iterations"]:
        members = r["members_error_kcal_mol"]
        pk = r["peak"] or pull_peak(run_dir / f"iter_{r['iteration']:03d}" / "explore")
        if pk:
            peaks.append((r["iteration"], pk, r.get("broken_bonds"), channel_text(r)))
        lines.append(
            f"| {r['iteration']} | {_f(r['data_frames'], 'd')} | {_f(r['added'], 'd')} | "
            f"{_f(r['tracked_eV'], '.4f')} | {error_text(r)} | "
            f"{' / '.join(_f(e, '+.2f') for e in members) if members else '-'} | "
            f"{_f(r['members_spread_kcal_mol'], '.2f')} | "
            f"{_f(r['test_energy_mae_mev_per_atom'], '.2f')} | "
            f"{_f(r['test_forces_mae_mev_per_a'], '.1f')} | {_f(r['mu'], '.3g')} | "
            f"{_f(r['sigma'], '.3g')} | {_f(r['threshold'], '.3g')} | "
            f"{_f(r['frames_scored'], 'd')} | {_f(r['selected'], 'd')} | "
            f"{_f(r['augmented'], 'd')} | {_f(r['failed'], 'd')} | "
            f"{' / '.join(_f(e, 'd') for e in r['members_epochs'] or []) or '-'} |")
    if peaks and ref_peak:
        lines += ["", "Where the best member's pull peaked, against the reference's:", "",
                  ("| iter | rupture force (eV/A) | minus reference | anchor at largest work "
                   "(A) | minus reference | bonds broken at the end (pulls) | pulls in a "
                   "reference channel |"), "|" + "---|" * 7]
        lines += [f"| {i} | {pk['force']:.3f} | {pk['force'] - ref_peak['force']:+.3f} | "
                  f"{pk['anchor']:.3f} | {pk['anchor'] - ref_peak['anchor']:+.3f} | "
                  f"{bond_counts(broke) if broke else '-'} | {ch} |"
                  for i, pk, broke, ch in peaks]
        lines += ["", ("A reference channel: the bonds a reference pull broke, up to the "
                       "start structure's symmetry (bonds that colour refinement of its bond "
                       "graph cannot tell apart are one: `potlab.learn.channels`). A barrier "
                       "near the reference's from another channel is another reaction's.")]
    lines += ["", f"Stopped: {st['finished'] or 'not finished'}", ""]
    png = _work_plot(run_dir, [r["iteration"] for r in st["iterations"]])
    if png is not None:
        lines += [f"![work curves]({png.name})", ""]
    png = _error_plot(run_dir, st["iterations"])
    if png is not None:
        lines += [f"![barrier errors]({png.name})", ""]
    if st["molecules"]:
        broke = [molecule_broke(run_dir, r) for r in st["molecules"]]
        lines += ["## Transfer: the final best member on other molecules", "",
                  ("| molecule | atoms | barrier (eV) | reference (eV) | error (kcal/mol) | "
                  "F MAE (meV/A) on its reference frames | a bond broke: reference / model |"),
                  "|" + "---|" * 7]
        lines += [f"| {r['name']} ({r['formula']}) | {r['n_atoms']} | {_f(r['tracked_eV'], '.4f')} | "
                  f"{_f(r['reference_eV'], '.4f')} | {error_text(r)} | "
                  f"{_f(r['test_forces_mae_mev_per_a'], '.1f')} | "
                  f"{_broke(r, b, 'reference')} / {_broke(r, b, 'model')} |"
                  for r, b in zip(st["molecules"], broke)]
        if any(b["reference"] is False for b in broke):
            lines += ["", ("A pull in which no bond broke with the reference measures the work of "
                           "straightening the molecule, not a barrier to breaking it; give that "
                           "molecule more `steps`.")]
        lines.append("")
    if st["architectures"]:
        last = next((r for r in reversed(st["iterations"]) if r["tracked_eV"] is not None), {})
        lines += ["## Data transfer: other architectures on the loop's final data", "",
                  ("| model | epochs | barrier (eV) | error (kcal/mol) | E MAE test (meV/atom) | "
                  "F MAE test (meV/A) |"), "|" + "---|" * 6]
        if last:
            lines.append(f"| committee's best member (iteration {last['iteration']}) | - | "
                         f"{_f(last['tracked_eV'], '.4f')} | {error_text(last)} | "
                         f"{_f(last['test_energy_mae_mev_per_atom'], '.2f')} | "
                         f"{_f(last['test_forces_mae_mev_per_a'], '.1f')} |")
        lines += [f"| {r['name']} ({r['model']}) | {r['epochs']} | {_f(r['tracked_eV'], '.4f')} | "
                  f"{error_text(r)} | {_f(r['test_energy_mae_mev_per_atom'], '.2f')} | "
                  f"{_f(r['test_forces_mae_mev_per_a'], '.1f')} |" for r in st["architectures"]]
        lines.append("")
    return write_text_atomic("\n".join(lines), run_dir / "report.md")


def molecule_broke(run_dir: Path, r: dict) -> dict[str, bool | None]:
    """Whether a bond of the molecule's start structure broke by the end of its reference
    and model pulls: from its record, else from the runs' last frames (a record written
    before the flags were kept)."""
    from potlab.learn.assess import pulls_broke

    out = {"reference": r.get("reference_broke"), "model": r.get("model_broke")}
    d = run_dir / "assess" / "molecules" / r["name"]
    cfg = run_dir / "config.json"
    if None in out.values() and (d / "start.extxyz").exists() and cfg.exists():
        import json

        import ase.io

        factor = json.loads(cfg.read_text()).get("explore", {}).get("break_factor", 1.6)
        start = ase.io.read(d / "start.extxyz")
        for who, run in (("reference", "reference_run"), ("model", "model_run")):
            if out[who] is None and (each := pulls_broke(d / run, start, factor)):
                out[who] = all(each)
    return out


def _broke(r: dict, b: dict, who: str) -> str:
    """``yes``/``no`` for one pull, ``k/N`` pulls in which a bond broke for several."""
    k = r.get(f"{who}_broke_pulls")
    return _yn(b[who]) if k is None else f"{k}/{len(r['values_eV'])}"


def _yn(v) -> str:
    return "-" if v is None else ("yes" if v else "no")


def pull_peak(run_dir: Path) -> dict[str, float] | None:
    """``{"force": largest spring force (eV/A), "anchor": anchor at the largest work (A),
    "work": largest work (eV)}`` of a steered run directory (of its first pull when it
    pulled several times), or None."""
    from potlab.learn.explorers import pull_dirs, read_steered_log

    pulls = pull_dirs(run_dir)
    if not pulls:
        return None
    log = read_steered_log(pulls[0])
    if not log:
        return None
    k = int(log["work_eV"].argmax())
    return {"force": float(log["spring_force_eV_A"].max()), "anchor": float(log["anchor_A"][k]),
            "work": float(log["work_eV"][k])}


def _work_plot(run_dir: Path, iterations: list[int]) -> Path | None:
    from potlab.learn.explorers import pull_dirs, read_steered_log

    curves = []
    for i in iterations:
        pulls = pull_dirs(run_dir / f"iter_{i:03d}" / "explore")
        if pulls:
            log = read_steered_log(pulls[0])
            if log:
                curves.append((f"iteration {i}", log))
    ref = next(iter(pull_dirs(run_dir / "setup" / "reference_run")), None)
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    cmap = plt.get_cmap("viridis")
    for k, (label, log) in enumerate(curves):
        ax.plot(log["anchor_A"], log["work_eV"], color=cmap(k / max(len(curves) - 1, 1)),
                lw=1, label=label)
    if ref is not None:
        log = read_steered_log(ref)
        if log:
            ax.plot(log["anchor_A"], log["work_eV"], color="k", lw=2, ls="--", label="reference")
    return _save(fig, ax, "spring rest length (A)", "work (eV)", run_dir / "work_curves.png")


def convergence_target(run_dir: Path) -> tuple[float | None, int]:
    """The run's target from its ``config.json``: tolerance (kcal/mol) and how many
    iterations in a row must be within it (1.0 and 3, the defaults, without a config)."""
    cfg = run_dir / "config.json"
    conv = json.loads(cfg.read_text()).get("convergence", {}) if cfg.exists() else {}
    return conv.get("tolerance_kcal_mol", 1.0), int(conv.get("consecutive", 3))


def _error_plot(run_dir: Path, rows: list[dict]) -> Path | None:
    """The best member's barrier error per iteration (with its standard error when the
    barrier is a mean of pulls; crossed where some of its pulls took a channel no reference
    pull took), every member's beside it, and the run's tolerance band, on
    an axis linear within +-2 kcal/mol and logarithmic beyond, so the first iterations'
    -100 kcal/mol and the last ones' +-1 show on one plot."""
    pts = [(r["iteration"], r["error_kcal_mol"], r.get("error_se_kcal_mol"),
            [m for m in r["members_error_kcal_mol"] or [] if m is not None])
           for r in rows if r["error_kcal_mol"] is not None]
    other = [(r["iteration"], r["error_kcal_mol"]) for r in rows
             if r["error_kcal_mol"] is not None and r.get("channel")
             and r["channel"][0] < r["channel"][1]]
    if not pts:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator, NullLocator

    tol, _ = convergence_target(run_dir)
    fig, ax = plt.subplots(figsize=(6, 4))
    if tol:
        ax.axhspan(-tol, tol, color="0.85", label=f"+-{tol:g} kcal/mol")
    ax.axhline(0, color="k", lw=0.5)
    if any(members for *_, members in pts):
        for i, *_, members in pts:
            ax.plot([i] * len(members), members, "o", color="C1", ms=4, alpha=0.7)
        ax.plot([], [], "o", color="C1", ms=4, label="members")
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    se = [p[2] or 0.0 for p in pts]
    ax.errorbar(xs, ys, yerr=se if any(se) else None, fmt="-o", color="C0", capsize=3,
                label="best member" + (" (+- standard error)" if any(se) else ""))
    if other:
        ax.plot([p[0] for p in other], [p[1] for p in other], "x", color="C3", ms=9, mew=2,
                label="some pulls broke another bond than the reference's")
    ax.set_yscale("symlog", linthresh=2.0, linscale=1.0)
    lo, hi = ax.get_ylim()
    ax.set_yticks([t for t in (-1000, -100, -10, -2, -1, 0, 1, 2, 10, 100, 1000)
                   if lo <= t <= hi])
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(fig, ax, "iteration", "barrier error (kcal/mol)", run_dir / "barrier_errors.png")


def _save(fig, ax, xlabel: str, ylabel: str, path: Path) -> Path:
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
