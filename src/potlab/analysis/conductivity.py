"""Ionic conductivity: Nernst-Einstein from a diffusivity, and Arrhenius fits over temperature.

Nernst-Einstein (Haven ratio H_R = D_tracer / D_sigma, 1 = uncorrelated ions)::

    sigma = n z^2 e^2 D / (V k_B T H_R)

Arrhenius: ``X(T) = A exp(-Ea / (k_B T))`` fitted as ln X against 1/T by least squares. For a
conductivity the fitted quantity is ``sigma T`` (proportional to D at fixed ion density), as in
pymatgen's extrapolation, so a set of conductivities and the corresponding diffusivities give the
same Ea. Seed 000 Table 2 reports ``-log10(sigma)`` at room temperature; its numbers (LGPS AIMD
-1.41, i.e. about 26) match sigma in mS/cm, so both ``neg_log10_sigma_mS_cm`` and
``neg_log10_sigma_S_cm`` are given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import constants as const

K_B_EV = const.k / const.e  # eV / K

# Common ionic charges (units of e); other species need ``charge=``.
_CHARGES = {"H": 1, "Li": 1, "Na": 1, "K": 1, "Rb": 1, "Cs": 1, "Ag": 1, "Cu": 1, "Mg": 2,
            "Ca": 2, "Zn": 2, "Sr": 2, "Ba": 2, "Al": 3, "F": -1, "Cl": -1, "Br": -1, "I": -1,
            "O": -2, "S": -2}


def ion_charge(species: str) -> float:
    """The usual ionic charge of ``species`` (e); error for elements without a table entry."""
    if species not in _CHARGES:
        raise ValueError(f"no default charge for {species!r}: pass charge= (units of e)")
    return float(_CHARGES[species])


def nernst_einstein(diffusivity_cm2_s: float, n_ions: int, volume_A3: float,
                    temperature_K: float, charge: float = 1.0, haven_ratio: float = 1.0) -> float:
    """Conductivity in mS/cm from a tracer diffusivity (cm^2/s) of ``n_ions`` ions in a cell of
    ``volume_A3`` Angstrom^3 at ``temperature_K``."""
    if temperature_K <= 0 or volume_A3 <= 0 or haven_ratio <= 0:
        raise ValueError("temperature, volume and Haven ratio must be positive")
    n_per_m3 = n_ions / (volume_A3 * 1e-30)
    d_m2_s = diffusivity_cm2_s * 1e-4
    sigma_s_m = n_per_m3 * (charge * const.e) ** 2 * d_m2_s / (const.k * temperature_K)
    return float(sigma_s_m / haven_ratio * 1e-2 * 1e3)  # S/m -> S/cm -> mS/cm


@dataclass
class ArrheniusFit:
    """``ln X = ln A - Ea / (k_B T)``; ``quantity`` is "diffusivity" or "conductivity"."""

    ea_eV: float
    ea_err_eV: float | None
    ln_prefactor: float
    cov: np.ndarray  # covariance of (slope in K, intercept)
    quantity: str
    temperatures_K: np.ndarray
    values: np.ndarray

    def predict(self, temperature_K: float | np.ndarray) -> np.ndarray | float:
        """X at ``temperature_K`` (for a conductivity: sigma itself, same unit as the input)."""
        t = np.asarray(temperature_K, dtype=float)
        y = self.ln_prefactor - self.ea_eV / (K_B_EV * t)
        out = np.exp(y) / t if self.quantity == "conductivity" else np.exp(y)
        return float(out) if out.ndim == 0 else out

    def ln_err(self, temperature_K: float) -> float | None:
        """Standard error of ln X at ``temperature_K`` (from the fit covariance)."""
        if not np.isfinite(self.cov).all():
            return None
        g = np.array([1.0 / temperature_K, 1.0])
        return float(np.sqrt(g @ self.cov @ g))


def arrhenius_fit(temperatures_K, values, quantity: str = "conductivity") -> ArrheniusFit:
    """Fit Ea (eV) and its standard error from values at >= 2 temperatures (>= 3 for an error).

    ``quantity="conductivity"`` fits ln(sigma T); ``"diffusivity"`` fits ln D.
    """
    t = np.asarray(temperatures_K, dtype=float)
    v = np.asarray(values, dtype=float)
    if t.shape != v.shape or t.size < 2:
        raise ValueError("arrhenius_fit: need matching temperatures and values, at least 2")
    if np.any(v <= 0) or np.any(t <= 0):
        raise ValueError("arrhenius_fit: temperatures and values must be positive")
    if quantity not in ("conductivity", "diffusivity"):
        raise ValueError(f"quantity must be 'conductivity' or 'diffusivity', got {quantity!r}")
    y = np.log(v * t) if quantity == "conductivity" else np.log(v)
    a = np.stack([1.0 / t, np.ones_like(t)], axis=1)
    coef, _, _, _ = np.linalg.lstsq(a, y, rcond=None)
    n = t.size
    if n > 2:
        s2 = float(((a @ coef - y) ** 2).sum()) / (n - 2)
        cov = s2 * np.linalg.inv(a.T @ a)
        ea_err = float(np.sqrt(cov[0, 0]) * K_B_EV)
    else:
        cov = np.full((2, 2), np.nan)
        ea_err = None
    return ArrheniusFit(ea_eV=float(-coef[0] * K_B_EV), ea_err_eV=ea_err,
                        ln_prefactor=float(coef[1]), cov=cov, quantity=quantity,
                        temperatures_K=t, values=v)


def extrapolate_conductivity(temperatures_K, conductivities_mS_cm,
                             target_K: float = 300.0) -> dict:
    """Arrhenius extrapolation of conductivities (mS/cm) to ``target_K`` (seed 000 Table 2).

    Returns ``ea_eV``, ``ea_err_eV``, ``sigma_mS_cm``, ``sigma_S_cm``, ``neg_log10_sigma_S_cm``,
    ``neg_log10_sigma_mS_cm``, ``log10_sigma_err`` (standard error of log10 sigma at target).
    """
    fit = arrhenius_fit(temperatures_K, conductivities_mS_cm, quantity="conductivity")
    sigma = float(fit.predict(target_K))
    ln_err = fit.ln_err(target_K)
    return {
        "target_K": float(target_K),
        "ea_eV": fit.ea_eV,
        "ea_err_eV": fit.ea_err_eV,
        "sigma_mS_cm": sigma,
        "sigma_S_cm": sigma * 1e-3,
        "neg_log10_sigma_S_cm": float(-np.log10(sigma * 1e-3)),
        "neg_log10_sigma_mS_cm": float(-np.log10(sigma)),
        "log10_sigma_err": None if ln_err is None else ln_err / np.log(10),
    }
