"""Training on data larger than memory: peak RSS of a streamed SchNet epoch and lazy vs
in-memory throughput (issue 14).

    python benchmarks/train_scale.py                 # 1,000,000 conformations (long)
    python benchmarks/train_scale.py --quick         # 10,000 conformations, a few minutes

1. Writes a synthetic SPICE-style HDF5 (``--n`` conformations; molecules of 10-40 atoms of
   H C N O S on a jittered grid, ``--per-mol`` rattled conformations each; energies and
   forces from a Morse pair model plus per-element atomic energies, vectorised numpy,
   one group written at a time; conformations and gradients stored as float32 as SPICE
   does). Kept and reused when it exists with the same settings.
2. (a) One epoch of SchNet (default hyper-parameters, batch ``--batch``) streaming through
   the whole file: E0 fitted by the streamed fit, shift/scale/neighbours streamed over
   the first ``--stats-frames`` frames, frames read and graphs built by ``--workers``
   DataLoader workers through ``potlab.data.iter_batches``; the peak RSS of this process
   plus its DataLoader children (psutil, sampled every 0.2 s; shared pages are counted
   once per process, so this over-states the real footprint) is printed. Target < 3 GB.
3. (b) frames/s of training steps on the first ``--subset`` frames in one shuffled order,
   in memory (graphs prebuilt; building them is not timed) against lazy (read per batch
   in the workers; worker start-up timed). Target lazy >= 80% of in-memory.

The model, loss and optimiser step are driven directly (``Potential`` + ``weighted_loss``
+ Adam), as the trainer does per batch. Last line:
``train_scale rss_gb=<x> pss_gb=<y> lazy_vs_memory=<r>``. ``--part a`` or ``b`` runs one of
the two (a 1,000,000-frame epoch is ~2.3 h on one core of this machine, the 20,000-frame
comparison ~15 min). The streamed epoch saves its model, optimiser and position every 500
batches beside the HDF5 file; rerunning the same command after a kill continues it, and
the peak memory is then given per process.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import psutil
import torch
from ase import units

from potlab import data as pdata
from potlab.potential import Potential
from potlab.train.loss import weighted_loss
from potlab.train.prepared import prepare, training_statistics

ELEMENTS = np.array([1, 6, 7, 8, 16])
ELEMENT_P = np.array([0.5, 0.3, 0.08, 0.1, 0.02])
ATOM_E = {1: -13.6, 6: -1029.0, 7: -1485.0, 8: -2042.0, 16: -10830.0}  # eV, rough
MORSE_D, MORSE_A, MORSE_R0 = 0.2, 1.5, 1.45  # eV, 1/A, A


def morse(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Morse pair energy [m] (eV) and forces [m, n, 3] (eV/A) of conformations [m, n, 3]."""
    d = pos[:, :, None, :] - pos[:, None, :, :]  # [m, n, n, 3] r_i - r_j
    r = np.linalg.norm(d, axis=-1)
    n = pos.shape[1]
    off = ~np.eye(n, dtype=bool)
    x = np.exp(-MORSE_A * (np.where(off, r, 10.0) - MORSE_R0))
    e_pair = MORSE_D * (x * x - 2 * x) * off
    de_dr = MORSE_D * (-2 * MORSE_A * x * x + 2 * MORSE_A * x) * off
    rs = np.where(off, r, 1.0)
    forces = -np.sum((de_dr / rs)[..., None] * d, axis=2)  # -dE/dr_i, both pair orders
    return 0.5 * e_pair.sum(axis=(1, 2)), forces


def write_spice(path: Path, n: int, per_mol: int, seed: int = 0) -> None:
    """The synthetic SPICE-style file: ceil(n / per_mol) molecules, n conformations."""
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp.h5")
    done, mol = 0, 0
    t0 = time.monotonic()
    with h5py.File(tmp, "w") as f:
        f.attrs["n"], f.attrs["per_mol"] = n, per_mol
        while done < n:
            m = min(per_mol, n - done)
            k = int(rng.integers(10, 41))
            z = rng.choice(ELEMENTS, size=k, p=ELEMENT_P)
            side = int(np.ceil(k ** (1 / 3)))
            grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)
            base = grid[rng.permutation(len(grid))[:k]] * 1.5 + rng.normal(scale=0.08, size=(k, 3))
            pos = base[None] + rng.normal(scale=0.06, size=(m, k, 3))  # rattled, A
            e, forces = morse(pos)
            e = e + sum(ATOM_E[int(zz)] for zz in z)
            g = f.create_group(f"mol{mol:07d}")
            g["atomic_numbers"] = z.astype(np.int16)
            g["conformations"] = (pos / units.Bohr).astype(np.float32)
            g["dft_total_energy"] = e / units.Hartree
            g["dft_total_gradient"] = (-forces / (units.Hartree / units.Bohr)).astype(np.float32)
            g["subset"] = np.array([b"synthetic"])
            done, mol = done + m, mol + 1
            if mol % 2000 == 0:
                print(f"  wrote {done} conformations ({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    tmp.rename(path)


def ensure_file(path: Path, n: int, per_mol: int) -> None:
    if path.exists():
        with h5py.File(path, "r") as f:
            if f.attrs.get("n") == n and f.attrs.get("per_mol") == per_mol:
                return
    t = time.monotonic()
    write_spice(path, n, per_mol)
    print(f"wrote {path} ({n} conformations, {path.stat().st_size / 1e9:.2f} GB) in "
          f"{time.monotonic() - t:.0f} s")


class PeakRSS:
    """Peaks of memory summed over this process and its children, sampled in a thread.

    ``peak`` sums RSS (pages shared between the processes, such as torch's libraries,
    are counted once per process: an upper bound, the figure the target is checked
    on); ``peak_pss`` sums PSS (each shared page split between its sharers: the real
    footprint), read from /proc/PID/smaps every ``pss_every`` samples.
    """

    def __init__(self, every: float = 0.2, pss_every: int = 10) -> None:
        self.peak, self.peak_pss, self.every, self.pss_every = 0, 0, every, pss_every
        self._n, self._stop, self._procs = 0, threading.Event(), []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        if self._n % 25 == 0:  # listing children scans /proc: every 25 samples
            me = psutil.Process()
            self._procs = [me, *me.children(recursive=True)]
        procs = self._procs
        total = pss = 0
        with_pss = self._n % self.pss_every == 0
        self._n += 1
        for p in procs:
            try:
                total += p.memory_info().rss
                if with_pss:
                    pss += p.memory_full_info().pss
            except psutil.Error:
                pass
        self.peak = max(self.peak, total)
        self.peak_pss = max(self.peak_pss, pss)
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self):
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def model_for(frames, e0, stats, dtype=torch.float32) -> tuple[Potential, torch.optim.Optimizer]:
    torch.manual_seed(0)
    pot = Potential("schnet", {}, sorted(e0), e0=e0, shift=stats.shift, scale=stats.scale,
                    avg_num_neighbors=stats.avg_num_neighbors).to(dtype)
    return pot, torch.optim.Adam(pot.parameters(), lr=1e-3)


def train_steps(pot, opt, data, batches, workers: int, report_every: int = 0,
                rss: PeakRSS | None = None, ckpt: Path | None = None,
                key: dict | None = None) -> tuple[int, float, list[dict]]:
    """Training steps over ``batches``; returns (frames, seconds, segments). With
    ``report_every``, a progress line every so many steps (with ``rss``: the memory now and
    the peaks). With ``ckpt``, the model, optimiser and position are saved there every
    ``report_every`` steps and a rerun continues from them (``key`` must match); each
    process's stretch is a segment with its own memory peaks."""
    start, frames, seconds, segments = 0, 0, 0.0, []
    if ckpt is not None and ckpt.exists():
        st = torch.load(ckpt, weights_only=False)
        if st["key"] != key:
            raise SystemExit(f"{ckpt}: made with {st['key']}, not {key}; delete it to start over")
        pot.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        start, frames, seconds, segments = st["next"], st["frames"], st["seconds"], st["segments"]
        print(f"  resumed at batch {start} of {len(batches)} ({frames} frames, {seconds:.0f} s "
              f"in {len(segments)} earlier process(es))", file=sys.stderr, flush=True)
    pot.train()
    t0 = time.monotonic()

    def segment(upto: int) -> dict:
        return {"batches": [start, upto], "peak_rss": rss.peak if rss else None,
                "peak_pss": rss.peak_pss if rss else None}

    for step, (g, ref) in enumerate(pdata.iter_batches(data, batches[start:], workers), start):
        out = pot(g, forces=True, training=True)
        loss, _ = weighted_loss(out, ref, energy_weight=1.0, forces_weight=100.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(pot.parameters(), 10.0)
        opt.step()
        frames += int(ref["energy"].shape[0])
        if report_every and step % report_every == 0:
            dt = seconds + time.monotonic() - t0
            mem = "" if rss is None else (
                f", RSS now {rss.sample() / 1e9:.2f} GB, peaks RSS {rss.peak / 1e9:.2f} "
                f"PSS {rss.peak_pss / 1e9:.2f} GB")
            print(f"  step {step}: {frames} frames, {frames / max(dt, 1e-9):.0f} frames/s, "
                  f"loss {float(loss.detach()):.3g}{mem}", file=sys.stderr, flush=True)
        if ckpt is not None and report_every and (step + 1) % report_every == 0:
            tmp = ckpt.with_suffix(".tmp")
            torch.save({"key": key, "model": pot.state_dict(), "opt": opt.state_dict(),
                        "next": step + 1, "frames": frames,
                        "seconds": seconds + time.monotonic() - t0,
                        "segments": [*segments, segment(step + 1)]}, tmp)
            tmp.replace(ckpt)
    return frames, seconds + time.monotonic() - t0, [*segments, segment(len(batches))]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="conformations in the file")
    ap.add_argument("--subset", type=int, default=20_000, help="frames of the throughput test")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--per-mol", type=int, default=50, help="conformations per molecule")
    ap.add_argument("--stats-frames", type=int, default=20_000,
                    help="frames the shift/scale/neighbour statistics stream over (0: all)")
    ap.add_argument("--file", type=Path, default=None, help="where the HDF5 goes")
    ap.add_argument("--max-steps", type=int, default=None,
                    help="stop the streamed epoch (a) after this many batches (default: all)")
    ap.add_argument("--part", choices=("a", "b", "both"), default="both",
                    help="a: the streamed epoch only; b: the subset throughput only")
    ap.add_argument("--quick", action="store_true", help="--n 10000 --subset 1000")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.subset = 10_000, 1_000
    args.subset = min(args.subset, args.n)
    torch.set_num_threads(1)
    path = args.file or Path(f"/tmp/potlab_train_scale_{args.n}.h5")
    ensure_file(path, args.n, args.per_mol)

    # (a) one epoch streaming through the whole file (statistics and E0 are needed by (b))
    with PeakRSS() as rss:
        t = time.monotonic()
        frames = pdata.open_frames(path, lazy=True)
        fit = pdata.fit_e0(frames)
        print(f"index + streamed E0 fit of {len(frames)} frames: {time.monotonic() - t:.1f} s "
              f"(E0 { {k: round(v, 2) for k, v in fit.energies.items()} })")
        data = prepare(frames, 5.0, torch.float32, np.ones(len(frames)))
        t = time.monotonic()
        head_frames = frames.view(np.arange(min(len(frames), args.stats_frames or len(frames))))
        head = prepare(head_frames, 5.0, torch.float32, np.ones(len(head_frames)))
        stats = training_statistics(head, fit.energies, num_workers=args.workers)
        print(f"statistics over {len(head)} frames: {time.monotonic() - t:.1f} s ({stats})")
        pot, opt = model_for(frames, fit.energies, stats)
        order = np.random.default_rng(0).permutation(len(frames))
        batches = [order[k:k + args.batch].tolist() for k in range(0, len(order), args.batch)]
        part = "" if args.max_steps is None or args.max_steps >= len(batches) else (
            f" (first {args.max_steps} of {len(batches)} batches)")
        batches = batches[: args.max_steps]
        if args.part != "b":
            ckpt = path.with_suffix(f".epoch_b{args.batch}_{len(batches)}.pt")
            key = {"n": args.n, "batch": args.batch, "batches": len(batches),
                   "workers": args.workers}
            n_done, dt, segs = train_steps(pot, opt, data, batches, args.workers,
                                           report_every=500, rss=rss, ckpt=ckpt, key=key)
    rss_gb, pss_gb = rss.peak / 1e9, rss.peak_pss / 1e9
    if args.part != "b":
        rss_gb = max(rss_gb, *(sg["peak_rss"] / 1e9 for sg in segs))
        pss_gb = max(pss_gb, *(sg["peak_pss"] / 1e9 for sg in segs))
        where = "" if len(segs) == 1 else (
            f" in {len(segs)} processes (batches " +
            ", ".join(f"{a}-{b}: RSS {sg['peak_rss'] / 1e9:.2f} GB"
                      for sg in segs for a, b in [sg["batches"]]) + ")")
        print(f"(a) one streamed SchNet epoch{part}: {n_done} frames in {dt:.0f} s "
              f"({n_done / dt:.0f} frames/s), peak RSS (this process + DataLoader workers) "
              f"{rss_gb:.2f} GB (PSS {pss_gb:.2f} GB){where}")
    if args.part == "a":
        print(f"train_scale rss_gb={rss_gb:.2f} pss_gb={pss_gb:.2f}")
        return

    # (b) throughput lazy vs in memory on a subset
    sub = np.arange(args.subset)
    lazy_sub = frames.view(sub)
    t = time.monotonic()
    mem = prepare(pdata.read_frames(path, index=sub.tolist()), 5.0, torch.float32, np.ones(len(sub)))
    print(f"in-memory subset: {len(sub)} frames read and graphs built in {time.monotonic() - t:.1f} s")
    lz = prepare(lazy_sub, 5.0, torch.float32, np.ones(len(sub)))
    order = np.random.default_rng(1).permutation(len(sub))
    batches = [order[k:k + args.batch].tolist() for k in range(0, len(order), args.batch)]
    rates = {"memory": [], "lazy": []}
    for _ in range(2):  # alternate, so a busy machine hurts both alike
        for name, d, w in (("memory", mem, 0), ("lazy", lz, args.workers)):
            pot, opt = model_for(frames, fit.energies, stats)
            n_done, dt, _ = train_steps(pot, opt, d, batches, w)
            rates[name].append(n_done / dt)
    r_mem, r_lazy = max(rates["memory"]), max(rates["lazy"])
    ratio = r_lazy / r_mem
    print(f"(b) training throughput on {len(sub)} frames (best of 2): in memory {r_mem:.0f} "
          f"frames/s, lazy with {args.workers} workers {r_lazy:.0f} frames/s")
    if args.part == "b":
        print(f"train_scale lazy_vs_memory={ratio:.2f}")
    else:
        print(f"train_scale rss_gb={rss_gb:.2f} pss_gb={pss_gb:.2f} "
              f"lazy_vs_memory={ratio:.2f}")


if __name__ == "__main__":
    main()
