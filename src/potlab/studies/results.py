"""The study's results: every number of the report gathered from the job records into
``results.json`` (per model, material and temperature: the value, its spread, and the
trajectories it came from), then ``report.md`` and a self-contained ``report.html``.

Aggregation: a model's value on a material is the mean over its seeds (errors, RDF MAE) or
over all its runs (seeds x repeats: D, sigma, ns/day); the spread is the sample standard
deviation of the same values (0 for a single value). The Arrhenius fit of a model uses, at
each temperature, the mean conductivity of all its stable runs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from potlab.studies import records
from potlab.studies.plan import STAGES, TEACHER, run_key

SYMMETRY = {"ani": "E(3)-invariant", "schnet": "E(3)-invariant", "dimenetpp": "E(3)-invariant",
            "painn": "E(3)-equivariant", "so3krates": "E(3)-equivariant (attention)",
            "mace": "E(3)-equivariant"}


def _ms(values: list[float | None]) -> dict[str, Any]:
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return {"mean": None, "spread": None, "n": 0}
    a = np.asarray(v)
    return {"mean": float(a.mean()), "spread": float(a.std(ddof=1)) if a.size > 1 else 0.0,
            "n": int(a.size)}


def _load(path: Path) -> Any:
    return records.read_json(path)


def collect(root: Path) -> dict[str, Any]:
    """results.json's content, from the records and outputs under the study directory."""
    saved = _load(root / "study.json")
    study = saved["study"]
    materials = list(study["materials"])
    md_mats = study.get("md_materials") or materials
    seeds = study["train"]["seeds"]
    temps = sorted(float(t) for t in study["md"].get("temperatures_K", [300.0]))
    ref_label = study["reference"].get("label") or (
        study["reference"]["method"] if study["reference"]["source"] == "teacher" else "reference")

    teacher: dict[str, Any] = {}
    for mat in md_mats:
        a = _load(root / "analyze" / TEACHER / mat / "analysis.json")
        if a is None:
            teacher[mat] = {"status": _status(root, f"analyze/{TEACHER}/{mat}")}
            continue
        teacher[mat] = {"status": "done", **_material_summary([a])}
    data = {mat: (_load(root / "data" / mat / "record.json") or {}).get("summary") for mat in materials}

    models: dict[str, Any] = {}
    for m in study["train"]["models"]:
        label = m.get("label") or m["name"]
        entry: dict[str, Any] = {"architecture": m["name"], "symmetry": SYMMETRY.get(m["name"], ""),
                                 "seeds": {}, "materials": {}}
        per_seed_eval: dict[str, dict] = {}
        per_seed_analysis: dict[str, list] = {mat: [] for mat in md_mats}
        for seed in seeds:
            rk = run_key(label, seed)
            tr = _load(root / "train" / rk / "record.json")
            ev = _load(root / "evaluate" / rk / "record.json")
            seed_entry = {"train_status": _status(root, f"train/{rk}"),
                          "train": tr.get("summary") if tr and tr["status"] == "done" else None,
                          "train_error": tr.get("error") if tr else None,
                          "model_file": f"train/{rk}/model.pt"}
            if ev and ev["status"] == "done":
                per_seed_eval[str(seed)] = ev["summary"]
            for mat in md_mats:
                a = _load(root / "analyze" / rk / mat / "analysis.json")
                if a is not None:
                    per_seed_analysis[mat].append(a)
            entry["seeds"][str(seed)] = seed_entry
        trains = [s["train"] for s in entry["seeds"].values() if s["train"]]
        entry["n_params"] = trains[0]["n_params"] if trains else None
        entry["epochs"] = _ms([t["epochs"] for t in trains])
        entry["train_time_s"] = _ms([t["train_time_s"] for t in trains])
        for mat in materials:
            me: dict[str, Any] = {}
            ev_vals = {s: e[mat] for s, e in per_seed_eval.items() if mat in e}
            for key, name in (("forces_mae_mev_per_a", "force_mae_meV_A"), ("forces_r2", "force_r2"),
                              ("energy_mae_mev_per_atom", "energy_mae_meV_atom")):
                me[name] = {**_ms([v.get(key) for v in ev_vals.values()]),
                            "values": {s: v.get(key) for s, v in ev_vals.items()},
                            "source": [f"evaluate/{run_key(label, int(s))}/metrics.json" for s in ev_vals]}
            if mat in md_mats:
                analyses = per_seed_analysis[mat]
                if analyses:
                    me.update(_material_summary(analyses, teacher.get(mat)))
                else:
                    me["status"] = "no MD analysis (training failed or not run)"
            entry["materials"][mat] = me
        models[label] = entry

    finding = _finding(models, teacher, md_mats)
    return {"study": study["name"], "preset": saved.get("preset"), "source": saved.get("source"),
            "reference": {"label": ref_label, **{k: study["reference"].get(k) for k in
                                                 ("source", "method", "settings", "surrogate_note",
                                                  "provenance")}},
            "protocol": study["md"], "analyze": study["analyze"], "data": data,
            "materials": materials, "md_materials": md_mats,
            "train_materials": study["data"]["train_materials"], "temperatures_K": temps,
            "teacher": teacher, "models": models, "finding": finding,
            "provenance": _provenance(root)}


def _status(root: Path, key: str) -> str:
    rec = _load(root / key / "record.json")
    if rec is None:
        return "not run"
    return rec["status"] if rec["status"] == "done" else f"{rec['status']}: {rec.get('error')}"


def _material_summary(analyses: list[dict], teacher: dict | None = None) -> dict[str, Any]:
    """One potential on one material, over its seeds' analyses (one per seed)."""
    out: dict[str, Any] = {}
    calls = [a["call"] for a in analyses]
    out["call"] = "stable" if all(c == "stable" for c in calls) else "unstable"
    out["calls"] = calls
    out["failure_modes"] = sorted({a["failure_mode"] for a in analyses if a["failure_mode"]})
    out["rdf_mae"] = {**_ms([a["rdf_mae"]["mean"] for a in analyses]),
                      "per_temperature": {}}
    runs = [r for a in analyses for e in a["temperatures"].values() for r in e["runs"]]
    out["t_stab_ps"] = {"min": min(r["t_stab_ps"] for r in runs), **_ms([r["t_stab_ps"] for r in runs]),
                        "t_max_ps": max(a["t_max_ps"] for a in analyses),
                        "runs": [{"trajectory": r["trajectory"], "t_stab_ps": r["t_stab_ps"],
                                  "stable": r["stable"], "reason": r["reason"],
                                  "monitor": r["monitor"]} for r in runs]}
    out["ns_per_day"] = _ms([r["ns_per_day"] for r in runs])
    out["path_overlap"] = {**_ms([a["path_overlap"]["mean"] for a in analyses]), "per_temperature": {}}
    per_t: dict[str, Any] = {}
    temps = sorted({t for a in analyses for t in a["temperatures"]}, key=float)
    for t in temps:
        entries = [a["temperatures"][t] for a in analyses if t in a["temperatures"]]
        t_runs = [r for e in entries for r in e["runs"]]
        diff = [(r["trajectory"], r["diffusion"]) for r in t_runs if r.get("diffusion")]
        pt = {
            "trajectories": [r["trajectory"] for r in t_runs],
            "diffusivity_cm2_s": {**_ms([d["diffusivity_cm2_s"] for _, d in diff]),
                                  "values": [{"trajectory": p, "value": d["diffusivity_cm2_s"],
                                              "fit_err": d["diffusivity_err_cm2_s"]} for p, d in diff]},
            "conductivity_mS_cm": {**_ms([d["conductivity_mS_cm"] for _, d in diff]),
                                   "values": [{"trajectory": p, "value": d["conductivity_mS_cm"],
                                               "fit_err": d["conductivity_err_mS_cm"]} for p, d in diff]},
            "n_stable_runs": sum(1 for r in t_runs if r["stable"]),
            "n_runs": len(t_runs),
        }
        if any("rdf_mae" in e for e in entries):
            pt["rdf_mae"] = _ms([e.get("rdf_mae") for e in entries])
            out["rdf_mae"]["per_temperature"][t] = pt["rdf_mae"]
        if any("rdf_mae_between_repeats" in e for e in entries):
            pt["rdf_mae_between_repeats"] = _ms([e.get("rdf_mae_between_repeats") for e in entries])
        if any("path_overlap" in e for e in entries):
            pt["path_overlap"] = _ms([e.get("path_overlap") for e in entries])
            out["path_overlap"]["per_temperature"][t] = pt["path_overlap"]
        per_t[t] = pt
    out["temperatures"] = per_t
    # Arrhenius over all stable runs of all seeds
    from potlab.analysis.conductivity import arrhenius_fit, extrapolate_conductivity

    ts = [float(t) for t in temps]
    sig = [per_t[t]["conductivity_mS_cm"]["mean"] for t in temps]
    arr = None
    if len(ts) >= 2 and all(s is not None and s > 0 for s in sig):
        arr = extrapolate_conductivity(ts, sig)
        fit = arrhenius_fit(ts, sig, quantity="conductivity")
        arr["ln_prefactor"] = fit.ln_prefactor
        arr["temperatures_K"] = ts
        arr["conductivities_mS_cm"] = sig
    out["arrhenius"] = arr
    seed_vals = [a["arrhenius"]["neg_log10_sigma_mS_cm"] for a in analyses if a.get("arrhenius")]
    out["neg_log10_sigma_300K_mS_cm"] = {
        "value": None if arr is None else arr["neg_log10_sigma_mS_cm"],
        **{k: v for k, v in _ms(seed_vals).items() if k != "mean"},
        "per_seed": seed_vals,
    }
    if teacher is not None and teacher.get("temperatures"):
        errs = []
        for t in temps:
            m = per_t[t]["conductivity_mS_cm"]["mean"]
            ref = teacher["temperatures"].get(t, {}).get("conductivity_mS_cm", {}).get("mean")
            if m and ref and m > 0 and ref > 0:
                errs.append(abs(math.log10(m) - math.log10(ref)))
        out["log10_sigma_error"] = {**_ms(errs), "what": "mean over temperatures of "
                                    "|log10 sigma_model - log10 sigma_reference|"}
    return out


def _finding(models: dict, teacher: dict, md_mats: list[str]) -> dict[str, Any]:
    """Does force MAE rank the models the way the dynamics do? Spearman rho over models (mean
    over seeds), per material and pooled over materials."""
    from scipy.stats import spearmanr

    metrics = {"rdf_mae": lambda me: me.get("rdf_mae", {}).get("mean"),
               "t_stab_ps (negated: shorter is worse)":
                   lambda me: None if "t_stab_ps" not in me else -me["t_stab_ps"]["mean"],
               "log10_sigma_error": lambda me: me.get("log10_sigma_error", {}).get("mean")}
    out: dict[str, Any] = {}
    for scope in [*md_mats, "all materials"]:
        mats = md_mats if scope == "all materials" else [scope]
        res = {}
        for name, get in metrics.items():
            xs, ys, pts = [], [], []
            for label, e in models.items():
                for mat in mats:
                    me = e["materials"].get(mat, {})
                    x = me.get("force_mae_meV_A", {}).get("mean")
                    y = get(me)
                    if x is not None and y is not None:
                        xs.append(x)
                        ys.append(y)
                        pts.append({"model": label, "material": mat, "force_mae_meV_A": x,
                                    "value": y})
            rho = None
            if len(xs) >= 3 and np.ptp(xs) > 0 and np.ptp(ys) > 0:
                rho = float(spearmanr(xs, ys).statistic)
            res[name] = {"rho": rho, "n": len(xs), "points": pts}
        out[scope] = res
    return out


def _provenance(root: Path) -> dict[str, Any]:
    import importlib.metadata
    import platform

    def ver(p: str) -> str:
        try:
            return importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    stages = {}
    for stage in STAGES[:-1]:
        recs = [records.read_json(p) for p in (root / stage).rglob("record.json")]
        recs = [r for r in recs if r]
        if recs:
            stages[stage] = {"jobs": len(recs), "cpu_s": sum(r.get("elapsed_s", 0) for r in recs),
                             "wall_s": max(r["finished"] for r in recs) - min(r["started"] for r in recs),
                             "failed": sum(1 for r in recs if r["status"] != "done")}
    return {"versions": {p: ver(p) for p in ("potlab", "torch", "ase", "numpy", "pymatgen",
                                             "pymatgen-analysis-diffusion", "chgnet", "sevenn",
                                             "mace-torch", "vesin")},
            "python": platform.python_version(), "machine": platform.machine(),
            "stages": stages}


def write_results(p: dict[str, Any], job_dir: Path, root: Path) -> dict[str, Any]:
    """The report job: results.json, figures in ``report/``, report.md, report.html."""
    from potlab.studies.report import write_report

    res = collect(root)
    records.write_json(res, root / "results.json")
    md, html = write_report(res, root, job_dir)
    return {"results": "results.json", "report_md": str(md.relative_to(root)),
            "report_html": str(html.relative_to(root))}
