"""What a run directory's record says: one row per iteration (labels added and total, the
threshold used, frames scored, selected, augmented, failed, the tracked quantity and its
error) and the step in flight. ``potlab learn status DIR [--json]`` prints it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from potlab.errors import InputError
from potlab.learn.channels import bond_classes, channel_agreement
from potlab.learn.record import RECORD, Record


def learn_status(run_dir: str | Path) -> dict[str, Any]:
    """``{"dir", "setup", "iterations": [row, ...], "next": {"iteration", "step"} | None,
    "finished": reason | None}``."""
    run_dir = Path(run_dir)
    if not (run_dir / RECORD).exists():
        raise InputError(f"{run_dir}: no {RECORD} here (not a potlab learn run directory)")
    rec = Record(run_dir)
    ref_bonds = (rec.get(-1, "reference_run") or {}).get("broken_bonds")
    classes = _bond_classes(run_dir) if ref_bonds is not None else None
    rows = []
    total = rec.get(-1, "initial_data")
    n_total = total["n_frames"] if total else None
    for i in rec.iterations():
        tr, ex, ms, mb, sc, se, au, la, me = (rec.get(i, s) or {} for s in (
            "train", "explore", "measure", "members", "score", "select", "augment", "label",
            "merge"))
        rows.append({
            "iteration": i,
            "data_frames": n_total,
            "best_member": tr.get("best_member"),
            # each member's epochs this iteration (None in a record written before they were kept)
            "members_epochs": [m.get("epochs") for m in tr.get("members", [])] or None,
            "tracked_eV": ms.get("tracked_eV"), "error_eV": ms.get("error_eV"),
            "error_kcal_mol": ms.get("error_kcal_mol"),
            # rupture force (eV/A), anchor at the largest work (A), largest work (eV)
            "peak": ex.get("peak"),
            # per pull, the bonds broken at its end ("C4-C5"; "" none; None: not recorded)
            "broken_bonds": ex.get("broken_bonds"),
            # [k, n]: k of the n pulls took a channel a reference pull took, up to symmetry
            "channel": (None if classes is None or ex.get("broken_bonds") is None else
                        list(channel_agreement(ex["broken_bonds"], ref_bonds, classes))),
            # with several pulls per side: the error's standard error (None for one pull)
            "error_se_kcal_mol": ms.get("error_se_kcal_mol"),
            # pulls a side of the measure when it added pulls to the explorer's (None: its own)
            "pulls": ms.get("pulls"),
            "test_energy_mae_mev_per_atom": ms.get("test_energy_mae_mev_per_atom"),
            "test_forces_mae_mev_per_a": ms.get("test_forces_mae_mev_per_a"),
            "members_error_kcal_mol": mb.get("error_kcal_mol"),
            "members_spread_kcal_mol": mb.get("spread_kcal_mol"),
            # the uncertainty selected on (the threshold's unit: potlab.learn.uncertainty.UNITS)
            "measure": sc.get("measure"),
            "frames_scored": sc.get("frames_scored"), "threshold": se.get("threshold"),
            "mu": se.get("mu"), "sigma": se.get("sigma"), "selected": se.get("n_selected"),
            "augmented": au.get("augmented"), "labelled": la.get("labelled"),
            "failed": la.get("failed"), "computed": la.get("computed"),
            "cached": la.get("cached"), "added": me.get("added"), "total": me.get("total"),
        })
        if me:
            n_total = me["total"]
    fin = rec.finished()
    cfg = run_dir / "config.json"
    members = cfg.exists() and bool(json.loads(cfg.read_text()).get("assess", {}).get("members"))
    nxt = rec.next_step(members=members)
    assess = {kind: [dict(e.result) for e in rec.entries if e.step.startswith(f"{kind}:")]
              for kind in ("molecule", "architecture")}
    return {"dir": str(run_dir), "setup": {s: rec.get(-1, s) for s in
                                           ("structure", "initial_data", "reference_run")},
            "iterations": rows, "finished": fin,
            "molecules": assess["molecule"], "architectures": assess["architecture"],
            "next": None if nxt is None else {"iteration": nxt[0], "step": nxt[1]}}


def _bond_classes(run_dir: Path) -> dict[str, str] | None:
    """The start structure's bonds by symmetry class (None without ``setup/start.extxyz``)."""
    path = run_dir / "setup" / "start.extxyz"
    if not path.exists():
        return None
    import ase.io

    try:
        start = ase.io.read(path)
    except (OSError, ValueError, IndexError, KeyError, StopIteration) as err:  # a damaged file
        raise InputError(f"{path}: not a readable structure ({type(err).__name__}: {err})") from None
    return bond_classes(start)


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def error_text(row: dict[str, Any]) -> str:
    """``+11.50`` or, with a standard error from several pulls, ``+11.50+-2.31``."""
    se = row.get("error_se_kcal_mol")
    return _fmt(row.get("error_kcal_mol"), "+.2f") + ("" if se is None else f"+-{se:.2f}")


def channel_text(row: dict[str, Any]) -> str:
    """``14/16``: pulls that took one of the reference's channels, of all (``-``: not known)."""
    ch = row.get("channel")
    return "-" if ch is None else f"{ch[0]}/{ch[1]}"


def _broke_note(r: dict[str, Any]) -> str:
    """What a transfer row says when a reference pull broke no bond (it measured the work
    of straightening the molecule, not a barrier)."""
    if r.get("reference_broke") is not False:
        return ""
    k = r.get("reference_broke_pulls")
    if k is None:
        return " (no bond broke in the reference pull)"
    return f" (a bond broke in {k} of {len(r['values_eV'])} reference pulls)"


def status_table(status: dict[str, Any]) -> str:
    """The status as a text table (what the CLI prints)."""
    from potlab.learn.uncertainty import UNITS

    ref = status["setup"].get("reference_run") or {}
    measure = next((r["measure"] for r in status["iterations"] if r.get("measure")), None)
    lines = [(f"{status['dir']}: reference value "
              f"{_fmt(ref.get('value_eV'), '.4f')} eV, {ref.get('test_frames', 0)} test frames"
              + (f"; thresh: {measure} ({UNITS[measure]})" if measure in UNITS else ""))]
    head = (f"{'iter':>4}{'data':>7}{'added':>7}{'total':>7}{'thresh':>10}{'scored':>8}"
            f"{'select':>7}{'augm':>6}{'failed':>7}{'tracked eV':>12}{'err kcal/mol':>14}"
            f"{'F MAE test':>11}{'spread kcal':>12}{'ref channel':>12}")
    lines.append(head)
    for r in status["iterations"]:
        lines.append(f"{r['iteration']:>4}{_fmt(r['data_frames'], 'd'):>7}{_fmt(r['added'], 'd'):>7}"
                     f"{_fmt(r['total'], 'd'):>7}{_fmt(r['threshold'], '.3g'):>10}"
                     f"{_fmt(r['frames_scored'], 'd'):>8}{_fmt(r['selected'], 'd'):>7}"
                     f"{_fmt(r['augmented'], 'd'):>6}{_fmt(r['failed'], 'd'):>7}"
                     f"{_fmt(r['tracked_eV'], '.4f'):>12}{error_text(r):>14}"
                     f"{_fmt(r['test_forces_mae_mev_per_a'], '.1f'):>11}"
                     f"{_fmt(r['members_spread_kcal_mol'], '.2f'):>12}"
                     f"{channel_text(r):>12}")
    for r in status["molecules"]:
        lines.append(f"transfer {r['name']} ({r['formula']}): barrier {_fmt(r['tracked_eV'], '.4f')}"
                     f" eV vs reference {_fmt(r['reference_eV'], '.4f')} eV, error "
                     f"{error_text(r)} kcal/mol"
                     + _broke_note(r))
    for r in status["architectures"]:
        lines.append(f"architecture {r['name']} on the final data: barrier "
                     f"{_fmt(r['tracked_eV'], '.4f')} eV, error {error_text(r)}"
                     f" kcal/mol, F MAE test {_fmt(r['test_forces_mae_mev_per_a'], '.1f')} meV/A")
    if status["finished"]:
        lines.append(f"finished: {status['finished']}")
    elif status["next"]:
        lines.append(f"next (or in flight): iteration {status['next']['iteration']} "
                     f"step {status['next']['step']}")
    return "\n".join(lines)
