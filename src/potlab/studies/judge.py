"""Judge one potential on one material by the dynamics it made (seed 000's criteria).

For every MD run (temperature x repeat) of a potential (or of the reference) on a material:
t_stab and the monitor that stopped it; Li self-diffusivity and Nernst-Einstein conductivity
(pymatgen's DiffusionAnalyzer fit by default, as seed 000 used) with their statistical error.
Per temperature, over the repeats: the total g(r) of the production frames and its mean
absolute difference from the reference's g(r) at the same temperature (seed 000: < 0.02 is
stable), the Li occupancy density and its overlap with the reference's (Bhattacharyya, 0-1),
the mean and spread of D and sigma. Over temperatures: the Arrhenius fit of sigma and its
extrapolation to 300 K as -log10 sigma (seed 000 Table 2).

Stable/unstable call (seed 000's two failure modes): a potential is *unstable* on a material
when any run was stopped by a monitor or the RDF error at any temperature is >= the
threshold. The failure mode is ``atom fusion`` when the fusion monitor fired, ``lattice
mismatch`` when every run survived but the RDF differs, else the monitor's name.

Frames used: production frames (``info['phase']``) from ``skip_ps`` after the production
start; a run that stopped early contributes the frames it has.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from potlab.studies.records import write_json


def _production(frames: list, skip_ps: float) -> list:
    prod = [a for a in frames if a.info.get("phase", "production") == "production"]
    if not prod:
        return []
    t0 = float(prod[0].info.get("time_fs", 0.0))
    return [a for a in prod if float(a.info.get("time_fs", 0.0)) - t0 >= skip_ps * 1000.0 - 1e-6]


def _mean_spread(values: list[float]) -> dict[str, Any]:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return {"mean": None, "spread": None, "n": 0}
    return {"mean": float(v.mean()), "spread": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "n": int(v.size)}


def judge_runs(p: dict[str, Any], job_dir: Path, root: Path) -> dict[str, Any]:
    from potlab.analysis.conductivity import extrapolate_conductivity
    from potlab.analysis.diffusion import diffusivity
    from potlab.analysis.paths import occupancy, overlap
    from potlab.analysis.rdf import rdf, rdf_error
    from potlab.analysis.trajio import read_frames, trajectory_arrays

    a = p["analyze"]
    species = a["species"]
    runs_by_t: dict[float, list[dict[str, Any]]] = {}
    for key in p["runs"]:
        run_dir = root / key
        result = json.loads((run_dir / "result.json").read_text())
        traj_path = run_dir / "trajectory.extxyz"
        frames = read_frames(traj_path)
        t = float(result["temperature_K"])
        use = _production(frames, a["skip_ps"])
        stab = result["stability"]
        run = {"run": key, "trajectory": str(traj_path.relative_to(root)),
               "temperature_K": t, "stable": bool(stab["stable"]), "t_stab_ps": stab["t_stab_ps"],
               "reason": stab.get("reason"), "monitor": stab.get("monitor"),
               "ns_per_day": result.get("ns_per_day"), "steps_per_s": result.get("steps_per_s"),
               "n_frames_analysed": len(use), "frames": use or frames[-1:]}
        run["diffusion"] = None
        if run["stable"] and len(use) >= 3:
            try:
                traj = trajectory_arrays(use, source=str(traj_path))
                d = diffusivity(traj, species, t, method=a["diffusion_method"],
                                min_obs=a["min_obs"])
                run["diffusion"] = {k: v for k, v in d.as_dict().items()}
                run["msd"] = {"t_ps": d.msd.t_ps.tolist(), "msd_A2": d.msd.msd_A2.tolist()}
            except ValueError as err:
                run["diffusion_error"] = str(err)
        runs_by_t.setdefault(t, []).append(run)

    teacher = None
    if p.get("teacher"):
        teacher_dir = root / p["teacher"]
        teacher = {"rdf": dict(np.load(teacher_dir / "rdf.npz")),
                   "occ": dict(np.load(teacher_dir / "occupancy.npz")),
                   "analysis": json.loads((teacher_dir / "analysis.json").read_text())}

    per_t: dict[str, Any] = {}
    rdf_arrays: dict[str, np.ndarray] = {}
    occ_arrays: dict[str, np.ndarray] = {}
    for t in sorted(runs_by_t):
        runs = runs_by_t[t]
        tag = f"{t:g}"
        frames = [f for r in runs for f in r["frames"]]
        g = rdf(frames, rmax=a["rdf_rmax_A"], bins=a["rdf_bins"])
        rdf_arrays["r"] = g.r
        rdf_arrays[f"T{tag}"] = g.g
        entry: dict[str, Any] = {"temperature_K": t, "trajectories": [r["trajectory"] for r in runs]}
        if teacher is None and len(runs) > 1:
            # the reference against itself: g(r) of repeat 0 vs the rest (the noise floor)
            g0 = rdf(runs[0]["frames"], rmax=a["rdf_rmax_A"], bins=a["rdf_bins"])
            g1 = rdf([f for r in runs[1:] for f in r["frames"]], rmax=a["rdf_rmax_A"],
                     bins=a["rdf_bins"])
            entry["rdf_mae_between_repeats"] = rdf_error(g0.r, g0.g, g1.g)["mean_abs"]
        if teacher is not None and f"T{tag}" in teacher["rdf"]:
            entry["rdf_mae"] = rdf_error(g.r, g.g, teacher["rdf"][f"T{tag}"])["mean_abs"]
            entry["rdf_integral_A"] = rdf_error(g.r, g.g, teacher["rdf"][f"T{tag}"])["integral"]
        occ_frames = [f for r in runs for f in r["frames"]]
        shape = None
        if teacher is not None and f"T{tag}" in teacher["occ"]:
            shape = tuple(teacher["occ"][f"T{tag}"].shape)
        try:
            occ = occupancy(occ_frames, species, spacing=a["paths_spacing_A"], shape=shape,
                            smooth=a["paths_smooth"])
            occ_arrays[f"T{tag}"] = occ.density
            if teacher is not None and f"T{tag}" in teacher["occ"]:
                entry["path_overlap"] = overlap(occ.density, teacher["occ"][f"T{tag}"])
        except ValueError as err:
            entry["path_error"] = str(err)
        diff = [r["diffusion"] for r in runs if r["diffusion"]]
        entry["diffusivity_cm2_s"] = _mean_spread([d["diffusivity_cm2_s"] for d in diff])
        entry["diffusivity_cm2_s"]["fit_err"] = [d["diffusivity_err_cm2_s"] for d in diff]
        entry["conductivity_mS_cm"] = _mean_spread([d["conductivity_mS_cm"] for d in diff])
        entry["conductivity_mS_cm"]["fit_err"] = [d["conductivity_err_mS_cm"] for d in diff]
        entry["runs"] = [{k: v for k, v in r.items() if k != "frames"} for r in runs]
        per_t[tag] = entry

    all_runs = [r for runs in runs_by_t.values() for r in runs]
    md_stable = all(r["stable"] for r in all_runs)
    rdf_maes = [e["rdf_mae"] for e in per_t.values() if "rdf_mae" in e]
    rdf_ok = all(m < a["rdf_stable_below"] for m in rdf_maes)
    mode = None
    if any(r["monitor"] == "fusion" for r in all_runs):
        mode = "atom fusion"
    elif md_stable and not rdf_ok:
        mode = "lattice mismatch"
    elif not md_stable:
        mode = next(r["monitor"] for r in all_runs if not r["stable"]) or "stopped"
    call = "stable" if md_stable and rdf_ok else "unstable"

    arrhenius = None
    temps = sorted(runs_by_t)
    sig = [per_t[f"{t:g}"]["conductivity_mS_cm"]["mean"] for t in temps]
    if len(temps) >= 2 and all(s is not None and s > 0 for s in sig):
        arrhenius = extrapolate_conductivity(temps, sig, target_K=a["target_K"])
        arrhenius["temperatures_K"] = temps
        arrhenius["conductivities_mS_cm"] = sig
    summary = {
        "run": p["run"], "material": p["material"], "species": species,
        "call": call, "failure_mode": mode, "md_stable": md_stable,
        "rdf_mae": _mean_spread(rdf_maes),
        "rdf_stable_below": a["rdf_stable_below"],
        "t_stab_ps": {"min": float(min(r["t_stab_ps"] for r in all_runs)),
                      **_mean_spread([r["t_stab_ps"] for r in all_runs])},
        "t_max_ps": float(max(r["t_stab_ps"] for r in all_runs)),
        "ns_per_day": _mean_spread([r["ns_per_day"] for r in all_runs]),
        "path_overlap": _mean_spread([e.get("path_overlap") for e in per_t.values()]),
        "arrhenius": arrhenius,
        "temperatures": per_t,
    }
    np.savez_compressed(job_dir / "rdf.npz", **rdf_arrays)
    np.savez_compressed(job_dir / "occupancy.npz", **occ_arrays)
    write_json(summary, job_dir / "analysis.json")
    return {"call": call, "failure_mode": mode,
            "rdf_mae": summary["rdf_mae"]["mean"], "arrhenius_ea_eV":
            None if arrhenius is None else arrhenius["ea_eV"]}
