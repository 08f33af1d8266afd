"""Mean square displacement (all time origins, FFT) and self-diffusivity from its slope.

Two fitting methods, both on the drift-corrected MSD of one species; pymatgen's is the
default (seed 000's numbers came from pymatgen's DiffusionAnalyzer, and the two differ by
several per cent on pymatgen's own LGPS test run):

``method="pymatgen"`` (default)
    pymatgen-analysis-diffusion's ``DiffusionAnalyzer`` default (``smoothed="max"``): lags from
    ``int(1000 fs / dt_frame)`` to ``min(N_species * T // min_obs, T)`` frames in about 200 evenly
    spaced steps, least squares weighted by 1/t, its slope error formula. Agrees with pymatgen to
    rounding error (``tests/test_analysis_diffusion.py`` runs pymatgen itself).
``method="potlab"``
    MSD at every lag from all time origins (FFT, O(T log T)); ordinary least squares of
    MSD(t) = 6 D t + c over a lag window ``[fit_start_ps, fit_end_ps]`` (defaults: 10% and 50%
    of the analysed span: skips the ballistic part and the noisy long lags). The error is the
    OLS standard error of the slope (lags are correlated, so it is a lower bound).

Drift: by default the mean displacement of the framework (all atoms not of ``species``,
unweighted, as pymatgen does) is subtracted from every atom; ``drift="com"`` subtracts the
mass-weighted centre of mass of all atoms, ``drift="none"`` nothing.

Units: positions Angstrom, times fs in, ps in results; D in cm^2/s (1 A^2/fs = 0.1 cm^2/s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft

from potlab.analysis.trajio import Trajectory
from potlab.analysis.unwrap import unwrap_positions
from potlab.data.errors import DataError

A2_PER_FS_TO_CM2_PER_S = 0.1  # 1e-16 cm^2 / 1e-15 s


def msd_fft(x: np.ndarray) -> np.ndarray:
    """All-time-origins MSD, averaged over atoms and summed over x, y, z.

    ``x``: unwrapped positions, Angstrom, [frames T, atoms N, 3]. Returns MSD(m) for every lag
    m = 0..T-1, A^2, [T]: ``MSD(m) = 1/N sum_i 1/(T-m) sum_t |x_i(t+m) - x_i(t)|^2``.
    """
    x = np.asarray(x, dtype=np.float64)
    t, n = x.shape[0], x.shape[1]
    return msd_fft_columns(x.reshape(t, n * 3).T) / n


def msd_fft_columns(cols: np.ndarray) -> np.ndarray:
    """Sum over rows of the all-origins mean square increment of each row of ``cols`` [M, T].

    ``S1 - 2 S2`` with the autocorrelation S2 from one real FFT per row, whose power spectra are
    summed before a single inverse FFT (so the cost is M forward FFTs and one inverse).
    """
    cols = np.ascontiguousarray(cols, dtype=np.float64)
    t = cols.shape[1]
    n_fft = next_fast_len(2 * t, real=True)
    f = rfft(cols, n=n_fft, axis=1).view(np.float64)  # [M, 2 (n_fft // 2 + 1)]
    power = np.einsum("ij,ij->j", f, f).reshape(-1, 2).sum(axis=1)
    s2 = irfft(power, n=n_fft)[:t]
    q = np.einsum("ij,ij->j", cols, cols)  # [T]
    prefix = np.concatenate([[0.0], np.cumsum(q)])
    m = np.arange(t)
    s1 = prefix[t - m] + (prefix[t] - prefix[m])
    return (s1 - 2.0 * s2) / (t - m)


def msd_direct(x: np.ndarray, max_lag: int | None = None) -> np.ndarray:
    """The same quantity as :func:`msd_fft` by explicit differences (O(T^2); for tests)."""
    x = np.asarray(x, dtype=np.float64)
    t = x.shape[0]
    max_lag = t if max_lag is None else min(max_lag, t)
    out = np.zeros(max_lag)
    for m in range(1, max_lag):
        d = x[m:] - x[:-m]
        out[m] = (d**2).sum(axis=2).mean()
    return out


@dataclass
class MSDResult:
    """MSD of one species: ``t_ps`` [lags], ``msd_A2`` [lags], with the atoms it averages."""

    t_ps: np.ndarray
    msd_A2: np.ndarray
    species: str | None
    n_atoms: int
    frame_interval_fs: float
    source: str = "<frames>"
    volume_A3: float = 0.0  # of the first analysed frame


@dataclass
class DiffusionResult:
    """Self-diffusivity (and Nernst-Einstein conductivity when a temperature is known)."""

    species: str
    diffusivity_cm2_s: float
    diffusivity_err_cm2_s: float
    method: str
    fit_start_ps: float
    fit_end_ps: float
    msd: MSDResult
    temperature_K: float | None = None
    conductivity_mS_cm: float | None = None
    conductivity_err_mS_cm: float | None = None
    haven_ratio: float = 1.0
    charge: float | None = None
    n_ions: int = 0
    volume_A3: float = 0.0
    skip_ps: float = 0.0
    fit_t_ps: np.ndarray | None = None

    def as_dict(self, with_msd: bool = False) -> dict:
        out = {
            "species": self.species,
            "method": self.method,
            "temperature_K": self.temperature_K,
            "diffusivity_cm2_s": self.diffusivity_cm2_s,
            "diffusivity_err_cm2_s": self.diffusivity_err_cm2_s,
            "conductivity_mS_cm": self.conductivity_mS_cm,
            "conductivity_err_mS_cm": self.conductivity_err_mS_cm,
            "haven_ratio": self.haven_ratio,
            "charge": self.charge,
            "n_ions": self.n_ions,
            "volume_A3": self.volume_A3,
            "skip_ps": self.skip_ps,
            "fit_start_ps": self.fit_start_ps,
            "fit_end_ps": self.fit_end_ps,
        }
        if with_msd:
            out["t_ps"] = self.msd.t_ps.tolist()
            out["msd_A2"] = self.msd.msd_A2.tolist()
        return out


def _drift_corrected(traj: Trajectory, species: str, drift: str, skip_frames: int
                     ) -> np.ndarray:
    """Unwrapped, drift-corrected coordinates of ``species`` as rows [3 n_species, T]."""
    pos = traj.positions[skip_frames:]
    x = pos if traj.unwrapped else unwrap_positions(pos, traj.cells[skip_frames:], traj.pbc)
    t, n = x.shape[0], x.shape[1]
    flat = x.reshape(t, n * 3)
    idx = traj.indices(species)
    col = (idx[:, None] * 3 + np.arange(3)).ravel()
    rows = flat.T[col]  # [3 n_species, T], a gather of rows of the transposed view
    if drift == "none":
        return rows
    if drift == "framework":
        w = np.ones(n)
        w[idx] = 0.0
    elif drift == "com":
        w = np.asarray(traj.masses, dtype=float).copy()
    else:
        raise ValueError(f"drift must be 'framework', 'com' or 'none', got {drift!r}")
    if w.sum() == 0:
        return rows
    weights = np.kron(w / w.sum(), np.eye(3))  # [3, 3N]: weighted mean of each coordinate
    centre = weights @ flat.T  # [3, T] via BLAS
    centre -= centre[:, :1]
    rows = rows.reshape(len(idx), 3, t) - centre[None]
    return rows.reshape(len(idx) * 3, t)


def compute_msd(traj: Trajectory, species: str, skip_ps: float = 0.0,
                drift: str = "framework") -> MSDResult:
    """All-origins MSD of ``species`` after discarding the first ``skip_ps`` ps (equilibration)."""
    dt = traj.frame_interval_fs()
    skip = round(skip_ps * 1000.0 / dt)
    if traj.n_frames - skip < 3:
        raise DataError(traj.source, f"skip_ps={skip_ps} leaves {traj.n_frames - skip} frames")
    rows = _drift_corrected(traj, species, drift, skip)
    n_atoms = rows.shape[0] // 3
    msd = msd_fft_columns(rows) / n_atoms
    return MSDResult(t_ps=np.arange(len(msd)) * dt / 1000.0, msd_A2=msd, species=species,
                     n_atoms=n_atoms, frame_interval_fs=dt, source=traj.source,
                     volume_A3=float(abs(np.linalg.det(traj.cells[skip]))))


def fit_slope(t_fs: np.ndarray, msd: np.ndarray, weights: np.ndarray | None = None
              ) -> tuple[float, float, float]:
    """Least-squares line msd = m t + c (optionally weighted). Returns (m, err_m, c) with the
    slope in A^2/fs and its standard error from the residuals."""
    t_fs = np.asarray(t_fs, dtype=float)
    msd = np.asarray(msd, dtype=float)
    if t_fs.size < 3:
        raise ValueError(f"need at least 3 lags in the fit window, got {t_fs.size}")
    a = np.stack([t_fs, np.ones_like(t_fs)], axis=1)
    w = np.ones_like(t_fs) if weights is None else np.sqrt(weights)
    (m, c), res, _, _ = np.linalg.lstsq(a * w[:, None], msd * w, rcond=None)
    n = t_fs.size
    rss = float(res[0]) if res.size else float(((a @ [m, c] - msd) ** 2 * w**2).sum())
    denom = (n * np.sum((t_fs / 1000) ** 2) - np.sum(t_fs / 1000) ** 2) * (n - 2)
    err = np.sqrt(n * rss / denom) / 1000 if denom > 0 else float("nan")
    return float(m), float(err), float(c)


def _pymatgen_lags(n_frames: int, n_species: int, dt_fs: float, min_obs: int, source: str
                   ) -> np.ndarray:
    min_dt = int(1000 / dt_fs)
    max_dt = min(n_species * n_frames // min_obs, n_frames)
    if min_dt >= max_dt:
        raise DataError(source, f"too short for the pymatgen fit (lags from 1 ps = {min_dt} "
                        f"frames to {max_dt} frames): use a longer run or --method potlab "
                        f"with --fit-start/--fit-end")
    return np.arange(min_dt, max_dt, max(int((max_dt - min_dt) / 200), 1))


def diffusivity(traj: Trajectory, species: str, temperature_K: float | None = None, *,
                skip_ps: float = 0.0, method: str = "pymatgen", fit_start_ps: float | None = None,
                fit_end_ps: float | None = None, drift: str = "framework",
                haven_ratio: float = 1.0, charge: float | None = None,
                min_obs: int = 30) -> DiffusionResult:
    """Self-diffusivity of ``species`` (cm^2/s) and, with ``temperature_K``, its Nernst-Einstein
    conductivity (mS/cm, see :mod:`potlab.analysis.conductivity`).

    ``skip_ps``: equilibration discarded from the start (seed 000: 15 ps). ``method``:
    "pymatgen" (default: its smoothed="max" fit; ``min_obs`` as there) or "potlab" (OLS over
    the lag window ``fit_start_ps``..``fit_end_ps``).
    """
    msd = compute_msd(traj, species, skip_ps=skip_ps, drift=drift)
    return fit_diffusivity(msd, temperature_K, method=method, fit_start_ps=fit_start_ps,
                           fit_end_ps=fit_end_ps, haven_ratio=haven_ratio, charge=charge,
                           min_obs=min_obs, skip_ps=skip_ps)


def fit_diffusivity(msd: MSDResult, temperature_K: float | None = None, *,
                    method: str = "pymatgen", fit_start_ps: float | None = None,
                    fit_end_ps: float | None = None, haven_ratio: float = 1.0,
                    charge: float | None = None, min_obs: int = 30, skip_ps: float = 0.0
                    ) -> DiffusionResult:
    """:func:`diffusivity` from an MSD already computed (so both methods can fit one MSD)."""
    from potlab.analysis.conductivity import ion_charge, nernst_einstein

    t_fs = msd.t_ps * 1000.0
    if method == "pymatgen":
        lags = _pymatgen_lags(len(t_fs), msd.n_atoms, msd.frame_interval_fs, min_obs, msd.source)
        m, err, _ = fit_slope(t_fs[lags], msd.msd_A2[lags], weights=1.0 / t_fs[lags])
    elif method == "potlab":
        span = t_fs[-1]
        lo = 0.1 * span if fit_start_ps is None else fit_start_ps * 1000.0
        hi = 0.5 * span if fit_end_ps is None else fit_end_ps * 1000.0
        lags = np.flatnonzero((t_fs >= lo) & (t_fs <= hi))
        if lags.size < 3:
            raise DataError(msd.source, f"fit window {lo / 1000:g}-{hi / 1000:g} ps holds "
                            f"{lags.size} lags (trajectory span {span / 1000:g} ps after skip)")
        m, err, _ = fit_slope(t_fs[lags], msd.msd_A2[lags])
    else:
        raise ValueError(f"method must be 'potlab' or 'pymatgen', got {method!r}")
    m = max(m, 1e-15)  # as pymatgen: a negative slope means no measurable diffusion
    d = m / 6.0 * A2_PER_FS_TO_CM2_PER_S
    d_err = err / 6.0 * A2_PER_FS_TO_CM2_PER_S
    volume = msd.volume_A3
    res = DiffusionResult(species=msd.species, diffusivity_cm2_s=d, diffusivity_err_cm2_s=d_err,
                          method=method, fit_start_ps=float(t_fs[lags[0]] / 1000),
                          fit_end_ps=float(t_fs[lags[-1]] / 1000), msd=msd,
                          temperature_K=temperature_K, haven_ratio=haven_ratio,
                          n_ions=msd.n_atoms, volume_A3=volume, skip_ps=skip_ps,
                          fit_t_ps=t_fs[lags] / 1000)
    if temperature_K is not None:
        z = ion_charge(msd.species) if charge is None else float(charge)
        res.charge = z
        res.conductivity_mS_cm = nernst_einstein(d, msd.n_atoms, volume, temperature_K, z,
                                                 haven_ratio)
        res.conductivity_err_mS_cm = nernst_einstein(d_err, msd.n_atoms, volume, temperature_K,
                                                     z, haven_ratio)
    return res
