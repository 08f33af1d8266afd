"""The study report: tables in seed 000's layout (Table 1: models; Table 2: -log10 sigma at
300 K) with the errors, RDF, stability, diffusion and path tables beside them, figures at a
glance, and a provenance block. Every number printed here is read from ``results.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from potlab.report import study_plots
from potlab.report.document import Document
from potlab.studies.plan import TEACHER, run_key


def _f(x: Any, spec: str = ".3g", na: str = "–") -> str:
    if x is None:
        return na
    try:
        if not np.isfinite(float(x)):
            return na
    except (TypeError, ValueError):
        return str(x)
    return format(float(x), spec)


def _pm(d: dict | None, spec: str = ".3g") -> str:
    if not d or d.get("mean") is None:
        return "–"
    s = _f(d["mean"], spec)
    if d.get("n", 0) > 1 and d.get("spread") is not None:
        s += f" ± {_f(d['spread'], spec)}"
    return s


def write_report(res: dict[str, Any], root: Path, job_dir: Path) -> tuple[Path, Path]:
    figs = job_dir
    doc = Document(f"potlab study: {res['study']}" + (f" (preset {res['preset']})" if res["preset"] else ""))
    ref = res["reference"]
    ref_label = ref["label"]
    prot = res["protocol"]
    mats, md_mats = res["materials"], res["md_materials"]
    models = res["models"]
    a = res["analyze"]

    ramp = prot.get("ramp")
    ramp_txt = (f"ramp {ramp.get('start_K', 100):g} K -> T over {ramp.get('duration_ps', 5):g} ps "
                "by velocity scaling, then " if ramp else "")
    prod_ps = prot.get("steps", 0) * prot.get("timestep_fs", 1) / 1000
    doc.para(
        f"Every potential below was trained by the same trainer on the same split of "
        f"**{ref_label}** frames of {', '.join(res['train_materials'])}, "
        f"then run through the reference's own MD protocol on {', '.join(md_mats)}: "
        f"{ramp_txt}{prot.get('ensemble', 'nvt').upper()} ({prot.get('thermostat', '')}), "
        f"{prot.get('timestep_fs', 1):g} fs, {prod_ps:g} ps of production at "
        f"{', '.join(f'{t:g}' for t in res['temperatures_K'])} K, {prot.get('repeats', 1)} repeats. "
        f"Diffusion of {a['species']} is fitted after discarding the first {a['skip_ps']:g} ps of "
        f"production ({a['diffusion_method']} method). Values are means over seeds (errors, RDF) "
        f"or over all runs (D, sigma, ns/day); ± is the sample standard deviation.")
    if ref.get("surrogate_note"):
        doc.para(f"**Reference.** {ref['surrogate_note']}")
    if ref.get("provenance"):
        doc.para(f"**Reference trajectories.** {ref['provenance']}")

    # --- Table 1
    doc.heading("Models (seed 000 Table 1 layout)")
    first = md_mats[0]
    rows = [[ref_label, "–", "–", "–", "–", _pm(res["teacher"].get(first, {}).get("ns_per_day"))]]
    for lab, e in models.items():
        ns = e["materials"].get(first, {}).get("ns_per_day")
        rows.append([lab, e["symmetry"], _f(e["n_params"], ",.0f"), _pm(e["epochs"], ".0f"),
                     _pm(e["train_time_s"], ".0f"), _pm(ns)])
    doc.table(["model", "symmetry", "parameters", "epochs", "training (s)", f"MD ns/day ({first})"],
              rows, "llrrrr")
    fails = [(lab, s, d["train_error"]) for lab, e in models.items() for s, d in e["seeds"].items()
             if d["train_status"] != "done"]
    if fails:
        doc.bullets([f"`{lab}` seed {s}: training {err or 'not run'}" for lab, s, err in fails])

    # --- errors
    doc.heading("Force and energy errors on held-out reference frames")
    rows = []
    for lab, e in models.items():
        for mat in mats:
            me = e["materials"].get(mat, {})
            rows.append([lab, mat, _pm(me.get("force_mae_meV_A"), ".1f"), _pm(me.get("force_r2"), ".3f"),
                         _pm(me.get("energy_mae_meV_atom"), ".1f")])
    doc.table(["model", "material", "F MAE (meV/Å)", "F R²", "E MAE (meV/atom)"], rows, "llrrr")
    others = [m for m in mats if m not in res["train_materials"]]
    if others:
        doc.para(f"Energies on {', '.join(others)} (not in training) are not comparable: the "
                 "per-element reference energies are fitted on the training compositions, and "
                 "one composition does not determine them (seed 000 ignored transfer energies "
                 "for the same reason). Forces do not depend on them.")

    # --- RDF and stability
    doc.heading("Structure and stability")
    doc.para(f"RDF MAE: mean over r of |g(r) - g_ref(r)| (total g(r), 0-{a['rdf_rmax_A']:g} Å), "
             f"averaged over temperatures; seed 000 calls < {a['rdf_stable_below']:g} stable. The "
             f"reference row gives the same number between its own repeats: the noise floor at "
             f"this run length. t_stab: the shortest run (monitors: NaN, temperature blow-up, "
             f"fusion, bond breaking, density); failure mode as seed 000: atom fusion or lattice "
             f"mismatch.")
    rows = []
    for mat in md_mats:
        t = res["teacher"].get(mat, {})
        floor = [v.get("rdf_mae_between_repeats", {}).get("mean") for v in t.get("temperatures", {}).values()]
        floor = [x for x in floor if x is not None]
        rows.append([ref_label, mat, (_f(np.mean(floor), ".4f") + " (between repeats)") if floor else "–",
                     t.get("call", t.get("status", "–")), ", ".join(t.get("failure_modes", [])) or "–",
                     _stab(t.get("t_stab_ps"))])
    for lab, e in models.items():
        for mat in md_mats:
            me = e["materials"].get(mat, {})
            if "call" not in me:
                rows.append([lab, mat, "–", me.get("status", "–"), "–", "–"])
                continue
            rows.append([lab, mat, _pm(me["rdf_mae"], ".4f"), me["call"],
                         ", ".join(me["failure_modes"]) or "–", _stab(me["t_stab_ps"])])
    doc.table(["potential", "material", "RDF MAE", "call", "failure mode", "t_stab min / run (ps)"],
              rows, "llrlll")
    noisy = []
    for mat in md_mats:
        temps = res["teacher"].get(mat, {}).get("temperatures", {})
        floor = [v.get("rdf_mae_between_repeats", {}).get("mean") for v in temps.values()]
        floor = [x for x in floor if x is not None]
        if floor and np.mean(floor) >= a["rdf_stable_below"]:
            noisy.append(f"{mat} ({np.mean(floor):.4f})")
    if noisy:
        doc.para(f"**Caution.** The reference's own repeats differ by at least seed 000's "
                 f"{a['rdf_stable_below']:g} line on {', '.join(noisy)}: at this run length the "
                 "line is inside the sampling noise, so a 'lattice mismatch' call here is not "
                 "evidence on its own (seed 000 averaged 35 ps per run). Longer presets "
                 "(standard, full) bring the noise floor down; compare each RDF MAE with it.")

    # --- Table 2
    doc.heading("Ionic conductivity extrapolated to 300 K (seed 000 Table 2 layout)")
    doc.para("-log10 of sigma(300 K) in mS/cm (seed 000's convention: its AIMD LGPS value -1.41 "
             "is about 26 mS/cm) from an Arrhenius fit of the Nernst-Einstein conductivity (Haven "
             "ratio 1) at the simulated temperatures; N/A where the potential is unstable on the "
             "material (as in seed 000) or no fit was possible. Ea in eV in brackets; ± over seeds.")
    rows = []
    for lab, per_mat in _potentials(res):
        cells = [lab]
        for mat in md_mats:
            me = per_mat.get(mat, {})
            arr = me.get("arrhenius")
            if arr is None or (lab != ref_label and me.get("call") != "stable"):
                cells.append("N/A")
                continue
            nl = me.get("neg_log10_sigma_300K_mS_cm", {})
            s = _f(arr["neg_log10_sigma_mS_cm"], ".2f")
            if nl.get("n", 0) > 1:
                s += f" ± {_f(nl['spread'], '.2f')}"
            cells.append(f"{s} ({_f(arr['ea_eV'], '.2f')} eV)")
        rows.append(cells)
    doc.table(["potential", *md_mats], rows, "l" + "r" * len(md_mats))
    hidden = [(lab, mat) for lab, per_mat in _potentials(res) for mat in md_mats
              if lab != ref_label and per_mat.get(mat, {}).get("arrhenius") is not None
              and per_mat.get(mat, {}).get("call") != "stable"]
    if hidden:
        doc.para("The same fit for every potential that has one, whatever its call (the call in "
                 "brackets; the fit uses the runs no monitor stopped). Where the call is "
                 "'lattice mismatch' at an RDF error near the reference's own noise floor, this "
                 "is the number to compare; where atoms fused, it is not a prediction.")
        rows = []
        for lab, per_mat in _potentials(res):
            if lab == ref_label:
                continue
            cells = [lab]
            for mat in md_mats:
                me = per_mat.get(mat, {})
                arr = me.get("arrhenius")
                if arr is None:
                    cells.append("no fit")
                    continue
                call = me.get("call")
                if call != "stable":
                    call = ", ".join(me.get("failure_modes") or []) or call
                v = _f(arr["neg_log10_sigma_mS_cm"], ".2f")
                nl = me.get("neg_log10_sigma_300K_mS_cm", {})
                if nl.get("n", 0) > 1:
                    v += f" ± {_f(nl['spread'], '.2f')}"
                cells.append(f"{v} ({_f(arr['ea_eV'], '.2f')} eV; {call})")
            rows.append(cells)
        doc.table(["potential", *md_mats], rows, "l" + "r" * len(md_mats))

    doc.heading("Diffusivity and conductivity per temperature")
    rows = []
    for lab, per_mat in _potentials(res):
        for mat in md_mats:
            me = per_mat.get(mat, {})
            for t, pt in (me.get("temperatures") or {}).items():
                d, s = pt["diffusivity_cm2_s"], pt["conductivity_mS_cm"]
                fit = [v["fit_err"] for v in d.get("values", [])]
                rows.append([lab, mat, t, _pm(d), _f(np.mean(fit)) if fit else "–", _pm(s),
                             f"{pt['n_stable_runs']}/{pt['n_runs']}"])
    doc.table(["potential", "material", "T (K)", f"D_{a['species']} (cm²/s)", "fit error",
               "σ (mS/cm)", "stable runs"], rows, "lllrrrr")

    doc.heading("Diffusion paths")
    doc.para(f"Overlap of each potential's {a['species']} occupancy density with the reference's "
             f"at the same temperature (Bhattacharyya coefficient: 1 = the same sites and "
             f"channels, 0 = disjoint), averaged over temperatures.")
    rows = []
    for lab, e in models.items():
        rows.append([lab, *[_pm(e["materials"].get(m, {}).get("path_overlap"), ".3f") for m in md_mats]])
    doc.table(["model", *md_mats], rows, "l" + "r" * len(md_mats))

    # --- finding
    doc.heading("Finding: does force MAE rank the models the way their dynamics do?")
    rows, sentences = [], []
    for scope, res_scope in res["finding"].items():
        for metric, v in res_scope.items():
            rows.append([scope, metric, _f(v["rho"], ".2f"), str(v["n"])])
    doc.table(["materials", "dynamics metric", "Spearman ρ with force MAE", "n (model x material)"],
              rows, "llrr")
    for metric, v in res["finding"].get("all materials", {}).items():
        rho = v["rho"]
        if rho is None:
            sentences.append(f"{metric}: undefined (fewer than 3 values or no spread; e.g. every "
                             "run reached the end).")
        elif rho >= 0.9:
            sentences.append(f"{metric}: force MAE orders the models almost as this does (ρ = {rho:.2f}).")
        elif rho > 0.3:
            sentences.append(f"{metric}: force MAE orders them only partly as this does (ρ = {rho:.2f}).")
        else:
            sentences.append(f"{metric}: force MAE does not predict this ranking (ρ = {rho:.2f}).")
    doc.para("Pooled over materials (positive ρ: a lower force MAE goes with a better dynamics "
             "metric). " + " ".join(sentences) + " With few models these ρ are coarse; the "
             "points are in `results.json` under `finding`.")

    # --- figures
    doc.heading("Figures")
    fig_paths = _figures(res, root, figs)
    for path, caption in fig_paths:
        doc.figure(path, caption)

    # --- provenance
    doc.heading("Provenance")
    prov = res["provenance"]
    doc.bullets([f"study `{res['source']}`, preset `{res['preset'] or 'none'}`",
                 "versions: " + ", ".join(f"{k} {v}" for k, v in prov["versions"].items()),
                 f"python {prov['python']} on {prov['machine']}",
                 f"reference: {ref['source']} `{ref.get('method')}` {ref.get('settings') or ''}"])
    rows = [[s, str(v["jobs"]), _f(v["cpu_s"], ".0f"), _f(v["wall_s"], ".0f"), str(v["failed"])]
            for s, v in prov["stages"].items()]
    doc.table(["stage", "jobs", "job time (s, summed)", "wall (s)", "failed"], rows, "lrrrr")
    doc.para("Every number above is in `results.json` with the trajectories it came from; each "
             "stage's folder holds its inputs' hash in `record.json`.")

    md_path = root / "report.md"
    html_path = root / "report.html"
    from potlab.atomic import write_text_atomic

    write_text_atomic(doc.markdown(root), md_path)
    write_text_atomic(doc.html(), html_path)
    return md_path, html_path


def _potentials(res: dict) -> list[tuple[str, dict]]:
    """(label, {material: summary}) of the reference, then of every model."""
    out = [(res["reference"]["label"], res["teacher"])]
    return out + [(k, e["materials"]) for k, e in res["models"].items()]


def _stab(t: dict | None) -> str:
    if not t or t.get("min") is None:
        return "–"
    return f"{t['min']:.2f} / {t['t_max_ps']:.2f}"


def _figures(res: dict, root: Path, figs: Path) -> list[tuple[Path, str]]:
    out: list[tuple[Path, str]] = []
    mats, md_mats = res["materials"], res["md_materials"]
    models = res["models"]
    ref_label = res["reference"]["label"]
    seeds = list(next(iter(models.values()))["seeds"]) if models else []
    s0 = int(seeds[0]) if seeds else 0

    parity, metrics = {}, {}
    for lab in models:
        d = root / "evaluate" / run_key(lab, s0)
        parity[lab] = {m: dict(np.load(d / f"parity_{m}.npz")) for m in mats
                       if (d / f"parity_{m}.npz").exists()}
        metrics[lab] = {m: {"forces_mae_mev_per_a": models[lab]["materials"][m]["force_mae_meV_A"]["values"].get(str(s0)),
                            "forces_r2": models[lab]["materials"][m]["force_r2"]["values"].get(str(s0))}
                        for m in mats if parity[lab].get(m) is not None}
    if any(parity.values()):
        out.append((study_plots.parity_grid(parity, mats, figs / "parity.png", metrics),
                    f"Force parity on held-out {ref_label} frames (seed {s0})."))

    for mat in md_mats:
        tdir = root / "analyze" / TEACHER / mat
        if not (tdir / "rdf.npz").exists():
            continue
        t_rdf = dict(np.load(tdir / "rdf.npz"))
        r = t_rdf.pop("r")
        ref_curves = {k[1:]: v for k, v in t_rdf.items()}
        curves = {}
        for lab in models:
            f = root / "analyze" / run_key(lab, s0) / mat / "rdf.npz"
            if f.exists():
                z = dict(np.load(f))
                curves[lab] = {k[1:]: v for k, v in z.items() if k != "r"}
        out.append((study_plots.rdf_overlays(r, ref_curves, curves, figs / f"rdf_{mat}.png", mat,
                                             ref_label=ref_label),
                    f"g(r) on {mat}: {ref_label} dashed, each model (seed {s0}) over it."))

    arr: dict[str, dict] = {ref_label: {}}
    for mat in md_mats:
        t = res["teacher"].get(mat, {})
        arr[ref_label][mat] = _arr_points(t)
    for lab, e in models.items():
        arr[lab] = {mat: _arr_points(e["materials"].get(mat, {})) for mat in md_mats}
    out.append((study_plots.arrhenius_all(arr, md_mats, figs / "arrhenius.png", ref_label,
                                          res["analyze"]["target_K"]),
                "Arrhenius: log10 σ against 1000/T, fits extended to 300 K (grey line)."))

    rows = []
    t_max = 0.0
    for mat in md_mats:
        t = res["teacher"].get(mat, {}).get("t_stab_ps")
        if t:
            t_max = max(t_max, t["t_max_ps"])
            rows += [(f"{ref_label} / {mat}", r["t_stab_ps"], r["stable"], r["monitor"]) for r in t["runs"]]
    for lab, e in models.items():
        for mat in md_mats:
            t = e["materials"].get(mat, {}).get("t_stab_ps")
            if t:
                t_max = max(t_max, t["t_max_ps"])
                rows += [(f"{lab} / {mat}", r["t_stab_ps"], r["stable"], r["monitor"]) for r in t["runs"]]
    if rows:
        out.append((study_plots.stability_runs(rows, t_max or 1.0, figs / "stability.png"),
                    "Stability timeline: every MD run (all seeds, temperatures, repeats)."))

    t_hi = f"{max(res['temperatures_K']):g}"
    maps: dict[str, dict] = {ref_label: {}}
    for mat in md_mats:
        f = root / "analyze" / TEACHER / mat / "occupancy.npz"
        if f.exists() and f"T{t_hi}" in np.load(f):
            maps[ref_label][mat] = np.load(f)[f"T{t_hi}"]
    for lab in models:
        maps[lab] = {}
        for mat in md_mats:
            f = root / "analyze" / run_key(lab, s0) / mat / "occupancy.npz"
            if f.exists() and f"T{t_hi}" in np.load(f):
                maps[lab][mat] = np.load(f)[f"T{t_hi}"]
    if any(maps.values()):
        out.append((study_plots.density_maps(maps, md_mats, figs / "li_density.png"),
                    (f"{res['analyze']['species']} occupancy at {t_hi} K summed along a "
                     "(rows: potentials, columns: materials).")))

    curves = {}
    for lab, e in models.items():
        for s in e["seeds"]:
            p = root / "train" / run_key(lab, int(s)) / "metrics.csv"
            if p.exists():
                curves[f"{lab} s{s}"] = p
    if curves:
        out.append((study_plots.training_curves(curves, figs / "training.png"),
                    "Training: validation force MAE against time (equal budgets)."))
    return out


def _arr_points(me: dict) -> dict:
    temps = me.get("temperatures") or {}
    ts, ss = [], []
    for t, pt in temps.items():
        s = pt["conductivity_mS_cm"]["mean"]
        if s is not None:
            ts.append(float(t))
            ss.append(s)
    return {"T": ts, "sigma": ss, "fit": me.get("arrhenius")}
