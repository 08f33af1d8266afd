"""Runs side by side (seed 002 Fig. 5: the best member's absolute barrier error per
iteration, random against inherited splits, three against five members): ``comparison.md``
and ``comparison.png`` from the runs' records. ``potlab learn compare DIR DIR ... --out D``.

Per run: the labels and the best member's error of every iteration, every member's errors,
and a summary (smallest |error|, the last error, the longest stretch of iterations within
the run's own convergence tolerance, and whether the run met its target: within tolerance
for the configured number of iterations in a row)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from potlab.atomic import write_text_atomic
from potlab.learn.report import _f, _save, convergence_target, pull_peak
from potlab.learn.status import channel_text, learn_status


def run_summary(run_dir: str | Path) -> dict:
    """One run's rows (iteration, labels after it, error, |error|, members' errors) and its
    summary figures, from its record and config."""
    run_dir = Path(run_dir)
    st = learn_status(run_dir)
    tol, k = convergence_target(run_dir)
    ref_peak = ((st["setup"].get("reference_run") or {}).get("peak")
                or pull_peak(run_dir / "setup" / "reference_run"))
    rows = []
    for r in st["iterations"]:
        if r["error_kcal_mol"] is None:
            continue
        rows.append({"iteration": r["iteration"], "labels": r["data_frames"],
                     "error_kcal_mol": r["error_kcal_mol"],
                     "abs_error_kcal_mol": abs(r["error_kcal_mol"]),
                     "members_error_kcal_mol": r["members_error_kcal_mol"],
                     "test_forces_mae_mev_per_a": r["test_forces_mae_mev_per_a"],
                     "channel": r.get("channel"),
                     "rupture_force_minus_reference_eV_A": _peak_diff(
                         r["peak"], run_dir / f"iter_{r['iteration']:03d}" / "explore", ref_peak)})
    run, longest, met_at = 0, 0, None
    for r in rows:
        run = run + 1 if tol is not None and r["abs_error_kcal_mol"] < tol else 0
        longest = max(longest, run)
        if met_at is None and run >= k:
            met_at = r["iteration"]
    best = min(rows, key=lambda r: r["abs_error_kcal_mol"]) if rows else None
    return {"dir": str(run_dir), "rows": rows, "tolerance_kcal_mol": tol, "consecutive": k,
            "longest_within_tolerance": longest, "target_met_at_iteration": met_at,
            "best": best, "last": rows[-1] if rows else None, "finished": st["finished"]}


def _peak_diff(recorded: dict | None, explore_dir: Path, ref_peak: dict | None) -> float | None:
    """Rupture force minus the reference's: from the record, else the run's steered log."""
    pk = recorded or pull_peak(explore_dir)
    return None if pk is None or ref_peak is None else pk["force"] - ref_peak["force"]


def compare_runs(runs: Mapping[str, str | Path], out_dir: str | Path) -> Path:
    """Write ``comparison.md`` (and ``comparison.png``) for ``{name: run_dir}`` into
    ``out_dir``; returns the Markdown's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summ = {name: run_summary(d) for name, d in runs.items()}
    names = list(summ)
    lines = ["# potlab learn: runs side by side", "",
             ("Error: the best member's tracked quantity minus the reference's (kcal/mol); "
              "labels: frames in the data the iteration's committee was trained on; dF: "
              "steered runs' largest spring force (the rupture force) minus the "
              "reference's (eV/A); ref channel: the best member's pulls that broke the bonds "
              "a reference pull broke, up to symmetry, of all."), "",
             ("| run | iterations | labels at the end | last error | smallest abs. error "
              "(iteration) | longest run within tolerance | target met |"), "|" + "---|" * 7]
    for name, s in summ.items():
        last, best = s["last"] or {}, s["best"] or {}
        target = ("-" if s["tolerance_kcal_mol"] is None else
                  f"{s['consecutive']} in a row below {s['tolerance_kcal_mol']} kcal/mol: " +
                  ("no" if s["target_met_at_iteration"] is None
                   else f"yes, at iteration {s['target_met_at_iteration']}"))
        lines.append(f"| {name} | {len(s['rows'])} | {_f(last.get('labels'), 'd')} | "
                     f"{_f(last.get('error_kcal_mol'), '+.2f')} | "
                     f"{_f(best.get('abs_error_kcal_mol'), '.2f')} ({best.get('iteration', '-')}) | "
                     f"{s['longest_within_tolerance']} | {target} |")
    lines += ["", "## Per iteration", "",
              "| iter | " + " | ".join(f"{n}: labels | {n}: error | {n}: members | {n}: dF | "
                                       f"{n}: ref channel" for n in names) + " |",
              "|" + "---|" * (1 + 5 * len(names))]
    by_iter = {n: {r["iteration"]: r for r in s["rows"]} for n, s in summ.items()}
    for i in sorted({i for d in by_iter.values() for i in d}):
        cells = []
        for n in names:
            r = by_iter[n].get(i, {})
            members = r.get("members_error_kcal_mol")
            cells += [_f(r.get("labels"), "d"), _f(r.get("error_kcal_mol"), "+.2f"),
                      " / ".join(_f(e, "+.1f") for e in members) if members else "-",
                      _f(r.get("rupture_force_minus_reference_eV_A"), "+.3f"),
                      channel_text(r)]
        lines.append(f"| {i} | " + " | ".join(cells) + " |")
    lines.append("")
    png = _plot(summ, out_dir / "comparison.png")
    if png is not None:
        lines += [f"![absolute barrier errors]({png.name})", ""]
    write_text_atomic(json.dumps(summ, indent=1), out_dir / "comparison.json")
    return write_text_atomic("\n".join(lines), out_dir / "comparison.md")


def _plot(summ: dict, path: Path) -> Path | None:
    if not any(s["rows"] for s in summ.values()):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4))
    tol = next((s["tolerance_kcal_mol"] for s in summ.values() if s["tolerance_kcal_mol"]), None)
    if tol:
        ax.axhline(tol, color="0.5", ls=":", label=f"{tol} kcal/mol")
    for k, (name, s) in enumerate(summ.items()):
        xs = [r["iteration"] for r in s["rows"]]
        ax.plot(xs, [max(r["abs_error_kcal_mol"], 1e-3) for r in s["rows"]], "-o",
                color=f"C{k}", ms=4, label=f"{name}: best member")
        for r in s["rows"]:
            ys = [abs(e) for e in r["members_error_kcal_mol"] or [] if e is not None]
            ax.plot([r["iteration"]] * len(ys), [max(y, 1e-3) for y in ys], ".",
                    color=f"C{k}", alpha=0.4)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(fig, ax, "iteration", "|barrier error| (kcal/mol); dots: members", path)
