"""Reference MD sampling on potlab.md: ramp, temperatures, repeats, every k-th frame, labels."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from potlab.reference import get_method
from potlab.reference.generate.md_sampling import MDSamplingParams, md_sampling


def test_md_sampling_protocol_and_labels(tmp_path):
    cu = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    params = MDSamplingParams(temperatures=[300, 1200], repeats=2, ramp_fs=20, steps=40,
                              every=10, timestep=2.0)
    method = get_method("ase.calculators.emt:EMT")
    frames = md_sampling(cu, method, params, tmp_path / "md", workers=1)
    assert len(frames) == 2 * 2 * 4  # temperatures x repeats x (40 / 10) production frames
    assert [f.info["md_step"] for f in frames[:4]] == [20, 30, 40, 50]  # ramp = 10 steps
    assert {f.info["config_type"] for f in frames} == {"md_300K", "md_1200K"}
    for f in frames[::5]:  # labels are the method's values at the stored positions
        ref = f.copy()
        ref.calc = EMT()
        assert f.info["REF_energy"] == pytest.approx(ref.get_potential_energy(), abs=1e-6)
        np.testing.assert_allclose(f.arrays["REF_forces"], ref.get_forces(), atol=1e-6)
        np.testing.assert_allclose(f.info["REF_stress"], ref.get_stress(), atol=1e-6)
    r0, r1 = frames[0], frames[4]  # two repeats at 300 K differ (own seeds)
    assert not np.allclose(r0.positions, r1.positions)
    hot = np.mean([f.get_temperature() for f in frames if f.info["md_temperature_K"] == 1200])
    cold = np.mean([f.get_temperature() for f in frames if f.info["md_temperature_K"] == 300])
    assert hot > 2 * cold
    again = md_sampling(cu, method, params, tmp_path / "md", workers=1)  # finished runs resume
    np.testing.assert_array_equal(again[-1].positions, frames[-1].positions)
