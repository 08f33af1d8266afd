"""Export: a potential saved with torch.export runs without potlab's model code and gives
the same energies, forces and stress as the potential itself, on frames of another size."""

import numpy as np
import pytest
import torch
from ase.build import molecule
from conftest import tiny_params

from potlab.models import available
from potlab.potential import Potential
from potlab.potential.export import ExportedCalculator, ExportError, export_potential, load_exported

EXPORTABLE = [n for n in sorted(available()) if n != "mace"]


@pytest.mark.parametrize("name", EXPORTABLE)
def test_exported_equals_potential(name, tmp_path, li3ps4_frames):
    mol = molecule("SH2")
    mol.rattle(0.05, seed=2)
    crystal = li3ps4_frames[2]
    elements = sorted({int(z) for z in crystal.numbers} | {1})
    torch.manual_seed(0)
    pot = Potential(name, tiny_params(name), elements, e0={z: -float(z) for z in elements},
                    shift=0.3, scale=1.7).double().eval()
    path = export_potential(pot, tmp_path / "model.pt2")
    _, meta = load_exported(path)
    assert meta["cutoff"] == pot.cutoff and meta["elements"] == elements
    calc = ExportedCalculator(path)
    for atoms in (crystal, mol):
        ref = pot.calculator()
        a, b = atoms.copy(), atoms.copy()
        a.calc, b.calc = calc, ref
        assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-9)
        if atoms.pbc.any():
            np.testing.assert_allclose(a.get_stress(), b.get_stress(), atol=1e-10)


def test_mace_export_says_why(tmp_path):
    pot = Potential("mace", tiny_params("mace"), [1, 8]).double()
    with pytest.raises(ExportError, match="mace"):
        export_potential(pot, tmp_path / "m.pt2")
    assert not (tmp_path / "m.pt2").exists()


def test_export_cli(tmp_path):
    import subprocess
    import sys

    pot = Potential("schnet", tiny_params("schnet"), [1, 8], e0={1: -13.6, 8: -2000.0})
    pot.save(tmp_path / "model.pt")
    r = subprocess.run([sys.executable, "-m", "potlab.cli", "export", "model.pt", "model.pt2", "--dtype", "float64"],
                       cwd=tmp_path, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    mol = molecule("H2O")
    mol.calc = ExportedCalculator(tmp_path / "model.pt2")
    ref = mol.copy()
    ref.calc = pot.double().calculator()
    assert mol.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-9)
