"""``potlab analyze ...``: RDF, diffusion/conductivity, Arrhenius, stability, drift, density,
diffusion paths of MD trajectories and logs.

Thin: parses arguments, calls :mod:`potlab.analysis`, formats results. JSON goes to stdout only
with ``--json``; otherwise a short human-readable summary.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from potlab.cli._output import emit
from potlab.data.errors import DataError
from potlab.errors import InputError


def _rdf(args) -> int:
    from potlab.analysis.rdf import rdf, rdf_error
    from potlab.analysis.trajio import read_trajectory_frames

    res = rdf(read_trajectory_frames(args.traj)[args.skip:], rmax=args.rmax, bins=args.bins, pair=args.pair)
    out = res.as_dict()
    lines = [(f"g(r) of {args.traj} ({args.pair or 'total'}, {res.n_frames} frames): "
             f"first peak at {res.r[int(np.argmax(res.g))]:.3f} A, g = {res.g.max():.3f}")]
    ref = None
    if args.reference:
        ref = rdf(read_trajectory_frames(args.reference)[args.skip:], rmax=args.rmax, bins=args.bins,
                  pair=args.pair)
        err = rdf_error(res.r, res.g, ref.g)
        out["reference"] = str(args.reference)
        out["g_reference"] = ref.g.tolist()
        out["error"] = err
        out["stable"] = err["mean_abs"] < 0.02
        lines.append(f"vs {args.reference}: mean |dg| = {err['mean_abs']:.4f} "
                     f"({'< 0.02, stable' if out['stable'] else '>= 0.02'}), "
                     f"integral |dg| dr = {err['integral']:.4f} A")
    if args.plot:
        from potlab.report.md_plots import rdf_plot

        out["plot"] = str(rdf_plot({Path(args.traj).name: res}, args.plot, reference=ref,
                                   title=args.pair or "total g(r)"))
        lines.append(f"plot: {out['plot']}")
    return emit(args, out, lines)


def _diffusion(args) -> int:
    from potlab.analysis.diffusion import compute_msd, fit_diffusivity
    from potlab.analysis.trajio import read_trajectory

    traj = read_trajectory(args.traj, timestep_fs=args.timestep)
    temp = args.temperature if args.temperature is not None else traj.temperature_K
    msd = compute_msd(traj, args.species, skip_ps=args.skip_ps, drift=args.drift)
    fits = {}
    for method in (args.method, *({"pymatgen", "potlab"} - {args.method})):
        try:
            fits[method] = fit_diffusivity(
                msd, temp, method=method, fit_start_ps=args.fit_start, fit_end_ps=args.fit_end,
                haven_ratio=args.haven, charge=args.charge, skip_ps=args.skip_ps)
        except DataError:
            if method == args.method:
                raise  # the fit asked for must work; the one beside it may not
    res = fits[args.method]
    out = res.as_dict(with_msd=args.with_msd)
    out["trajectory"] = str(args.traj)
    lines = [(f"{args.species} in {args.traj} ({args.method} fit, "
             f"{res.fit_start_ps:g}-{res.fit_end_ps:g} ps lags, first {args.skip_ps:g} ps skipped)"),
             f"D = {res.diffusivity_cm2_s:.4e} +- {res.diffusivity_err_cm2_s:.1e} cm2/s"]
    if res.conductivity_mS_cm is not None:
        lines.append(f"sigma = {res.conductivity_mS_cm:.4g} mS/cm at {temp:g} K "
                     f"(Nernst-Einstein, Haven ratio {args.haven:g})")
    for method, other in fits.items():
        if method != args.method:  # the other fit of the same MSD, for comparison
            out["other_fit"] = {k: v for k, v in other.as_dict().items()
                                if k in ("method", "diffusivity_cm2_s", "diffusivity_err_cm2_s",
                                         "conductivity_mS_cm", "fit_start_ps", "fit_end_ps")}
            lines.append(f"  beside it, the {method} fit ({other.fit_start_ps:g}-"
                         f"{other.fit_end_ps:g} ps): D = {other.diffusivity_cm2_s:.4e} cm2/s")
    if args.plot:
        from potlab.report.md_plots import msd_plot

        out["plot"] = str(msd_plot({args.species: res}, args.plot, title=str(args.traj)))
        lines.append(f"plot: {out['plot']}")
    return emit(args, out, lines)


def _arrhenius(args) -> int:
    from potlab.analysis.conductivity import arrhenius_fit, extrapolate_conductivity

    temps, sigmas, items = list(args.temperatures or []), list(args.conductivities or []), []
    if args.traj:
        from potlab.analysis.diffusion import diffusivity
        from potlab.analysis.trajio import read_trajectory

        if args.temperatures and len(args.temperatures) != len(args.traj):
            raise InputError("give one --temperatures value per trajectory")
        temps, sigmas = [], []
        for k, path in enumerate(args.traj):
            traj = read_trajectory(path, timestep_fs=args.timestep)
            t = args.temperatures[k] if args.temperatures else traj.temperature_K
            if t is None:
                raise InputError(f"{path}: no temperature; give --temperatures")
            res = diffusivity(traj, args.species, t, skip_ps=args.skip_ps, method=args.method,
                              haven_ratio=args.haven)
            temps.append(t)
            sigmas.append(res.conductivity_mS_cm)
            items.append({"trajectory": str(path), **res.as_dict()})
    if len(temps) != len(sigmas) or len(temps) < 2:
        raise InputError("need matching --temperatures and --conductivities (>= 2), or --traj")
    out = extrapolate_conductivity(temps, sigmas, args.target)
    out.update({"temperatures_K": temps, "conductivities_mS_cm": sigmas, "runs": items})
    ea_err = out["ea_err_eV"]
    lines = [f"Ea = {out['ea_eV']:.3f}" + (f" +- {ea_err:.3f}" if ea_err else "") + " eV",
             (f"sigma({args.target:g} K) = {out['sigma_mS_cm']:.4g} mS/cm; "
             f"-log10 sigma(S/cm) = {out['neg_log10_sigma_S_cm']:.2f}, "
             f"-log10 sigma(mS/cm) = {out['neg_log10_sigma_mS_cm']:.2f}")]
    if args.plot:
        from potlab.report.md_plots import arrhenius_plot

        fit = arrhenius_fit(temps, sigmas)
        out["plot"] = str(arrhenius_plot(temps, sigmas, args.plot, fit=fit, target_K=args.target))
        lines.append(f"plot: {out['plot']}")
    return emit(args, out, lines)


def _stability(args) -> int:
    from potlab.analysis.trajio import read_trajectory_frames
    from potlab.md import monitors as md_monitors

    ref = read_trajectory_frames(args.reference) if args.reference else None
    mons = md_monitors.default_monitors(target_K=args.temperature)
    if args.density_range is not None:  # e.g. a solid: the liquid window [0.2, 2.0] is wrong
        rng = args.density_range
        if len(rng) not in (0, 2) or (len(rng) == 2 and not 0 <= rng[0] < rng[1]):
            raise InputError(f"--density-range takes two values LOW HIGH in g/cm3 with "
                             f"0 <= LOW < HIGH (or none, to switch the density monitor off); "
                             f"got {' '.join(f'{x:g}' for x in rng)}")
        mons = [m for m in mons if not isinstance(m, md_monitors.DensityMonitor)]
        if rng:
            mons.append(md_monitors.DensityMonitor(*rng))
    runs = []
    for path in args.traj:
        res = md_monitors.check_trajectory(read_trajectory_frames(path), timestep_fs=args.timestep,
                                           monitors=[_fresh(m) for m in mons],
                                           reference_frames=ref)
        runs.append({"trajectory": str(path), "t_stab_ps": res.t_stab_ps, "reason": res.reason,
                     "frame": res.frame, "stable": res.stable})
    lines = [f"{r['trajectory']}: " + ("stable" if r["stable"] else "unstable")
             + f", t_stab = {r['t_stab_ps']:g} ps"
             + (f" ({r['reason']}, frame {r['frame']})" if r["reason"] else "") for r in runs]
    # one trajectory: its fields at the top level; several: the shortest-lived one on top
    out = dict(min(runs, key=lambda r: r["t_stab_ps"]))
    if len(runs) > 1:
        out["runs"] = runs
    if args.plot:
        from potlab.report.md_plots import stability_timeline

        names = [Path(r["trajectory"]).name for r in runs]
        out["plot"] = str(stability_timeline(
            {n: r["t_stab_ps"] for n, r in zip(names, runs, strict=True)}, args.plot,
            reasons={n: r["reason"] or "" for n, r in zip(names, runs, strict=True)}))
        lines.append(f"plot: {out['plot']}")
    return emit(args, out, lines)


def _fresh(monitor):
    """A new monitor of the same kind and settings (monitors keep state from ``start``)."""
    import copy

    return copy.deepcopy(monitor)


def _drift(args) -> int:
    from potlab.analysis.drift import drift_from_log

    out = drift_from_log(args.log, n_atoms=args.atoms, trajectory=args.trajectory)
    speed = out["ns_per_day"]
    lines = [f"drift = {out['drift_mev_per_atom_ps']:.4g} +- "
             f"{out['drift_err_mev_per_atom_ps']:.2g} meV/atom/ps over {out['duration_ps']:g} ps "
             f"({out['n_atoms']} atoms)"
             + (f"; speed {speed:.3g} ns/day" if speed is not None else "")]
    return emit(args, out, lines)


def _density(args) -> int:
    from potlab.analysis.density import densities_from_frames, densities_from_log, kl_divergence

    def load(path):
        if str(path).endswith(".csv"):
            return densities_from_log(path, skip_ps=args.skip_ps)
        from potlab.analysis.trajio import read_trajectory_frames

        return densities_from_frames(read_trajectory_frames(path))

    rho = load(args.source)
    out = {"source": str(args.source), "mean_g_cm3": float(rho.mean()),
           "std_g_cm3": float(rho.std()), "n": int(rho.size)}
    lines = [f"{args.source}: density {rho.mean():.4f} +- {rho.std():.4f} g/cm3 ({rho.size} samples)"]
    samples = {Path(args.source).name: rho}
    if args.reference:
        ref = load(args.reference)
        out["reference_mean_g_cm3"] = float(ref.mean())
        out["kl_divergence"] = kl_divergence(rho, ref, bins=args.bins)
        lines.append(f"D_KL(this || {args.reference}) = {out['kl_divergence']:.4f} nats")
        samples[f"reference {Path(args.reference).name}"] = ref
    if args.plot:
        from potlab.report.md_plots import density_histogram

        out["plot"] = str(density_histogram(samples, args.plot, bins=args.bins))
        lines.append(f"plot: {out['plot']}")
    return emit(args, out, lines)


def _paths(args) -> int:
    from potlab.analysis.paths import occupancy, overlap, write_cube
    from potlab.analysis.trajio import read_trajectory_frames

    occ = occupancy(read_trajectory_frames(args.traj)[args.skip:], args.species, spacing=args.spacing,
                    smooth=args.smooth)
    out = {"trajectory": str(args.traj), "species": args.species,
           "grid": list(occ.density.shape), "n_frames": occ.n_frames,
           "max_density_per_A3": float(occ.density.max())}
    lines = [(f"{args.species} occupancy of {args.traj}: grid {occ.density.shape}, "
             f"{occ.n_frames} frames")]
    if args.cube:
        write_cube(occ, args.cube)
        out["cube"] = str(args.cube)
        lines.append(f"cube: {args.cube}")
    if args.compare:
        other = occupancy(read_trajectory_frames(args.compare)[args.skip:], args.species,
                          shape=occ.density.shape, smooth=args.smooth)
        out["overlap"] = overlap(occ, other)
        lines.append(f"overlap (Bhattacharyya) with {args.compare}: {out['overlap']:.4f}")
    if args.plot:
        from potlab.report.md_plots import occupancy_projections

        out["plot"] = str(occupancy_projections(occ.density, args.plot,
                                                title=f"{args.species} occupancy"))
        lines.append(f"plot: {out['plot']}")
    return emit(args, out, lines)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``analyze`` and its sub-commands to an argparse subparsers object."""
    top = subparsers.add_parser("analyze", help="analyse MD trajectories and logs")
    sub = top.add_subparsers(dest="analyze_command", required=True)

    def cmd(name, func, help_):
        p = sub.add_parser(name, help=help_)
        p.set_defaults(func=func)
        return p

    p = cmd("rdf", _rdf, "radial distribution function (and error against a reference)")
    p.add_argument("traj")
    p.add_argument("--pair", default=None, help="element pair, e.g. Li-S (default: total)")
    p.add_argument("--rmax", type=float, default=6.0, help="A (default 6)")
    p.add_argument("--bins", type=int, default=200)
    p.add_argument("--skip", type=int, default=0, help="frames to drop from the start")
    p.add_argument("--reference", default=None, help="reference trajectory (e.g. AIMD)")
    p.add_argument("--plot", default=None, help="PNG path")
    p.add_argument("--json", action="store_true")

    def diff_args(p):
        p.add_argument("--species", default="Li")
        p.add_argument("--timestep", type=float, default=None,
                       help="fs between stored frames (info['time_fs'] in the file overrides)")
        p.add_argument("--skip-ps", type=float, default=0.0, help="equilibration to drop (ps)")
        p.add_argument("--method", choices=["pymatgen", "potlab"], default="pymatgen",
                       help="pymatgen: DiffusionAnalyzer's default fit (default); potlab: OLS "
                            "over the --fit-start/--fit-end lag window")
        p.add_argument("--haven", type=float, default=1.0, help="Haven ratio (default 1)")

    p = cmd("diffusion", _diffusion, "MSD, diffusivity and Nernst-Einstein conductivity")
    p.add_argument("traj", help="extxyz, ASE .traj or pymatgen DiffusionAnalyzer .json")
    diff_args(p)
    p.add_argument("--temperature", type=float, default=None, help="K (for the conductivity)")
    p.add_argument("--fit-start", type=float, default=None, help="ps (default 10%% of span)")
    p.add_argument("--fit-end", type=float, default=None, help="ps (default 50%% of span)")
    p.add_argument("--drift", choices=["framework", "com", "none"], default="framework")
    p.add_argument("--charge", type=float, default=None, help="ion charge (default: Li/Na... 1)")
    p.add_argument("--with-msd", action="store_true", help="include t_ps and msd_A2 in JSON")
    p.add_argument("--plot", default=None, help="PNG path")
    p.add_argument("--json", action="store_true")

    p = cmd("arrhenius", _arrhenius, "Ea and conductivity extrapolated to 300 K")
    p.add_argument("--temperatures", type=float, nargs="+", help="K")
    p.add_argument("--conductivities", type=float, nargs="+", help="mS/cm")
    p.add_argument("--traj", nargs="+", help="one trajectory per temperature instead")
    diff_args(p)
    p.add_argument("--target", type=float, default=300.0, help="K (default 300)")
    p.add_argument("--plot", default=None, help="PNG path")
    p.add_argument("--json", action="store_true")

    p = cmd("stability", _stability, "t_stab of trajectories (potlab.md monitors)")
    p.add_argument("traj", nargs="+", help="one or more trajectories (runs of a committee)")
    p.add_argument("--timestep", type=float, default=None, help="fs between stored frames")
    p.add_argument("--reference", default=None, help="reference frames for the RDF monitor")
    p.add_argument("--temperature", type=float, default=None,
                   help="target K: adds the temperature blow-up monitor")
    p.add_argument("--density-range", type=float, nargs="*", default=None, metavar="G_CM3",
                   help="LOW HIGH g/cm3 for the density monitor (default 0.2 2.0, liquids); "
                        "give no values to switch it off")
    p.add_argument("--plot", default=None, help="PNG path")
    p.add_argument("--json", action="store_true")

    p = cmd("drift", _drift, "NVE energy drift (meV/atom/ps) and ns/day from an MD log")
    p.add_argument("log", help="md_log.csv")
    p.add_argument("--atoms", type=int, default=None, help="number of atoms")
    p.add_argument("--trajectory", default=None,
                   help="trajectory giving the atom count (default: the one beside the log)")
    p.add_argument("--json", action="store_true")

    p = cmd("density", _density, "density distribution (and KL divergence to a reference)")
    p.add_argument("source", help="md_log.csv or a trajectory")
    p.add_argument("--reference", default=None, help="reference log or trajectory")
    p.add_argument("--skip-ps", type=float, default=0.0, help="equilibration to drop (logs)")
    p.add_argument("--bins", type=int, default=40)
    p.add_argument("--plot", default=None, help="PNG path")
    p.add_argument("--json", action="store_true")

    p = cmd("paths", _paths, "occupancy density of a species (cube file, 2-D maps, overlap)")
    p.add_argument("traj")
    p.add_argument("--species", default="Li")
    p.add_argument("--spacing", type=float, default=0.25, help="voxel size, A")
    p.add_argument("--smooth", type=float, default=1.0, help="Gaussian sigma, voxels")
    p.add_argument("--skip", type=int, default=0, help="frames to drop from the start")
    p.add_argument("--cube", default=None, help="Gaussian cube output")
    p.add_argument("--compare", default=None, help="second trajectory: overlap score")
    p.add_argument("--plot", default=None, help="PNG path")
    p.add_argument("--json", action="store_true")
    return top


def main(argv: list[str] | None = None) -> int:
    """Run ``analyze`` alone (tests): ``main(["rdf", "traj.xyz", "--json"])``."""
    from potlab.cli import main as potlab_main

    return potlab_main(["analyze", *(argv or sys.argv[1:])])
