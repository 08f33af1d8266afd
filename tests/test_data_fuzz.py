"""Fuzzing every reader (hypothesis): a valid small file of each format is truncated, has
bytes flipped, numbers replaced by NaN/inf/garbage, lines dropped or repeated, arrays
reshaped or retyped. Whatever comes out, a reader either returns frames that pass
validation or raises DataError naming the file: never another exception.

Examples are derandomised (the same inputs on every run) and few per reader, so the suite
stays fast and cannot flake; run with ``HYPOTHESIS_PROFILE=deep`` locally for more.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import ase.db
import h5py
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from potlab.data import DataError, Split, read_frames, validate_frames, write_extxyz

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow], database=None)
settings.register_profile("deep", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

BAD_NUMBERS = ["nan", "inf", "-inf", "1e999", "", "x", "1 2", "[", "0x1p3", "True"]


def _frames(n=3, periodic=True):
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        a = Atoms("LiPS2" if k % 2 else "Li2S", positions=rng.uniform(0, 4, (4 if k % 2 else 3, 3)),
                  cell=[5.0, 5.0, 5.0] if periodic else None, pbc=periodic)
        a.info["REF_energy"] = float(-3.0 * len(a) + rng.normal())
        a.arrays["REF_forces"] = rng.normal(size=(len(a), 3))
        if periodic:
            a.info["REF_stress"] = rng.normal(scale=0.01, size=6)
        a.info["config_type"] = "bulk"
        out.append(a)
    return out


# --- mutations --------------------------------------------------------------------------


@st.composite
def byte_mutation(draw, data: bytes) -> bytes:
    """Truncate, flip bytes in, or cut a slice out of ``data``."""
    kind = draw(st.sampled_from(["truncate", "flip", "cut"]))
    n = len(data)
    if kind == "truncate":
        return data[: draw(st.integers(0, n - 1))]
    if kind == "flip":
        out = bytearray(data)
        for pos in draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=8)):
            out[pos] ^= draw(st.integers(1, 255))
        return bytes(out)
    a = draw(st.integers(0, n - 1))
    return data[:a] + data[a + draw(st.integers(1, max(1, n // 4))):]


_NUMBER = re.compile(rb"-?\d+\.\d+(?:[eE][-+]?\d+)?|-?\d+")


@st.composite
def text_mutation(draw, data: bytes) -> bytes:
    """Bytes mutations, or a number replaced by NaN/inf/garbage, or a line dropped or
    repeated (a shape change)."""
    kind = draw(st.sampled_from(["bytes", "number", "number", "line"]))
    if kind == "bytes":
        return draw(byte_mutation(data))
    if kind == "number":
        spans = [m.span() for m in _NUMBER.finditer(data)]
        a, b = spans[draw(st.integers(0, len(spans) - 1))]
        return data[:a] + draw(st.sampled_from(BAD_NUMBERS)).encode() + data[b:]
    lines = data.split(b"\n")
    k = draw(st.integers(0, len(lines) - 1))
    if draw(st.booleans()):
        return b"\n".join(lines[:k] + lines[k + 1:])
    return b"\n".join(lines[: k + 1] + [lines[k]] + lines[k + 1:])


def _array_mutation(draw, value: np.ndarray, text_dtype: str = "U") -> np.ndarray:
    """NaN/inf, a shape change, a dtype change (to text), or an empty array."""
    kind = draw(st.sampled_from(["nan", "inf", "reshape", "drop", "strings", "empty", "scalar"]))
    v = np.array(value)
    if kind in ("nan", "inf") and v.size and np.issubdtype(v.dtype, np.floating):
        v.flat[draw(st.integers(0, v.size - 1))] = np.nan if kind == "nan" else np.inf
        return v
    if kind == "reshape" and v.size:
        return v.reshape(-1)
    if kind == "drop" and v.ndim and v.shape[-1] > 1:
        return v[..., :-1]
    if kind == "strings":
        return v.astype(text_dtype)
    if kind == "scalar":
        return np.asarray(v.flat[0] if v.size else 0)
    return np.zeros((0,) + v.shape[1:], dtype=v.dtype)


# --- the check --------------------------------------------------------------------------


def _read_or_data_error(reader: Callable[[Path], object], path: Path, check=None) -> None:
    try:
        result = reader(path)
    except DataError as err:
        assert str(path) in str(err) or path.name in str(err), f"{err!r} does not name {path}"
        return
    if check is not None:
        check(result, path)


def _valid_frames(frames, path):
    validate_frames(frames, file=path, require_energy=False, require_forces=False)


def _in_tmp(name: str, data: bytes) -> Path:
    d = Path(tempfile.mkdtemp(prefix="potlab-fuzz-"))
    p = d / name
    p.write_bytes(data)
    return p


# --- one test per format ----------------------------------------------------------------

_tmp = Path(tempfile.mkdtemp(prefix="potlab-fuzz-seed-"))


def _seed_extxyz() -> bytes:
    write_extxyz(_tmp / "seed.xyz", _frames())
    return (_tmp / "seed.xyz").read_bytes()


@given(st.data())
def test_extxyz_reader(data):
    mutated = data.draw(text_mutation(_seed_extxyz()))
    _read_or_data_error(read_frames, _in_tmp("train.xyz", mutated), _valid_frames)


def _seed_cif() -> bytes:
    import ase.io

    ase.io.write(_tmp / "seed.cif", _frames(1)[0])
    return (_tmp / "seed.cif").read_bytes()


@given(st.data())
def test_generic_ase_reader_on_cif(data):
    mutated = data.draw(text_mutation(_seed_cif()))
    _read_or_data_error(lambda p: read_frames(p, require_energy=False, require_forces=False),
                        _in_tmp("cell.cif", mutated), _valid_frames)


def _seed_db() -> bytes:
    path = _tmp / "seed.db"
    path.unlink(missing_ok=True)
    with ase.db.connect(str(path)) as db:
        for a in _frames():
            b = Atoms(a.numbers, a.positions, cell=a.cell, pbc=a.pbc)
            b.calc = SinglePointCalculator(b, energy=a.info["REF_energy"],
                                           forces=a.arrays["REF_forces"])
            db.write(b, config_type="bulk")
    return path.read_bytes()


@given(st.data())
def test_ase_db_reader(data):
    mutated = data.draw(byte_mutation(_seed_db()))
    _read_or_data_error(read_frames, _in_tmp("frames.db", mutated), _valid_frames)


def _npz_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {"nuclear_charges": np.array([6, 1, 1, 8]), "coords": rng.normal(size=(3, 4, 3)),
            "energies": rng.normal(size=3), "forces": rng.normal(size=(3, 4, 3))}


@given(st.data())
def test_md17_npz_reader(data):
    arrays = _npz_arrays()
    d = Path(tempfile.mkdtemp(prefix="potlab-fuzz-"))
    path = d / "md17.npz"
    if data.draw(st.booleans()):  # semantic: one array changed
        key = data.draw(st.sampled_from(sorted(arrays)))
        if data.draw(st.booleans()):
            arrays[key] = _array_mutation(data.draw, arrays[key])
        else:
            del arrays[key]
        np.savez(path, **arrays)
    else:  # bytes of a valid file
        np.savez(_tmp / "seed.npz", **arrays)
        path.write_bytes(data.draw(byte_mutation((_tmp / "seed.npz").read_bytes())))
    _read_or_data_error(read_frames, path, _valid_frames)


def _write_h5(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with h5py.File(path, "w") as f:
        g = f.create_group("mol1")
        for k, v in arrays.items():
            g.create_dataset(k, data=v)


@given(st.data())
def test_spice_hdf5_reader(data):
    rng = np.random.default_rng(2)
    arrays = {"atomic_numbers": np.array([8, 1, 1]), "conformations": rng.normal(size=(2, 3, 3)),
              "dft_total_energy": rng.normal(size=2), "dft_total_gradient": rng.normal(size=(2, 3, 3)),
              "subset": np.array([b"water"])}
    d = Path(tempfile.mkdtemp(prefix="potlab-fuzz-"))
    path = d / "spice.h5"
    if data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(arrays)))
        if data.draw(st.booleans()):
            arrays[key] = _array_mutation(data.draw, arrays[key], text_dtype="S")
        else:
            del arrays[key]
        _write_h5(path, arrays)
    else:
        _write_h5(_tmp / "seed.h5", arrays)
        path.write_bytes(data.draw(byte_mutation((_tmp / "seed.h5").read_bytes())))
    _read_or_data_error(read_frames, path, _valid_frames)


def _seed_split() -> bytes:
    return json.dumps({"train": [0, 2, 3], "valid": [1], "test": [], "strategy": "random",
                       "seed": 1, "n_frames": 4, "fingerprint": "0123456789abcdef"}).encode()


@given(st.data())
def test_split_reader(data):
    mutated = data.draw(text_mutation(_seed_split()))
    _read_or_data_error(Split.load, _in_tmp("split.json", mutated))


def _seed_md_log() -> bytes:
    from potlab.md.trajectory import LOG_COLUMNS

    rows = [",".join(LOG_COLUMNS)]
    for k in range(5):
        rows.append(",".join(str(x) for x in (k * 10, k * 0.01, 300.0 + k, -10.0, 0.5, -9.5,
                                                 0.1, 1000.0, 1.2)))
    return ("\n".join(rows) + "\n").encode()


@given(st.data())
def test_md_log_reader(data):
    from potlab.analysis.trajio import read_md_log

    mutated = data.draw(text_mutation(_seed_md_log()))
    _read_or_data_error(read_md_log, _in_tmp("md_log.csv", mutated))


def _seed_pymatgen_json() -> bytes:
    rng = np.random.default_rng(3)
    sites = [{"species": [{"element": el, "occu": 1}], "xyz": list(rng.uniform(0, 5, 3))}
             for el in ("Li", "Li", "S")]
    return json.dumps({
        "structure": {"lattice": {"matrix": np.eye(3).tolist()}, "sites": sites},
        "displacements": rng.normal(scale=0.1, size=(3, 6, 3)).tolist(),
        "time_step": 2, "step_skip": 10, "temperature": 600, "specie": "Li",
    }).encode()


@given(st.data())
def test_pymatgen_diffusion_json_reader(data):
    from potlab.analysis.trajio import read_pymatgen_json

    def check(traj, path):
        assert np.isfinite(traj.positions).all(), "non-finite positions passed the reader"

    mutated = data.draw(text_mutation(_seed_pymatgen_json()))
    _read_or_data_error(read_pymatgen_json, _in_tmp("DiffusionAnalyzer.json", mutated), check)


@pytest.fixture(scope="module")
def potential_bytes():
    from conftest import tiny_params

    from potlab.potential import Potential

    path = _tmp / "model.pt"
    Potential("schnet", tiny_params("schnet"), [1, 8]).save(path)
    return path.read_bytes()


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                  HealthCheck.too_slow])
@given(st.data())
def test_potential_loader(potential_bytes, data):
    import potlab

    mutated = data.draw(byte_mutation(potential_bytes))
    _read_or_data_error(potlab.load, _in_tmp("model.pt", mutated))


def test_the_fuzz_mutations_reach_every_reader_path():
    """The seeds are valid: unmutated, every reader returns frames (so a DataError in the
    tests above comes from the mutation, not from a broken seed)."""
    from potlab.analysis.trajio import read_md_log, read_pymatgen_json

    assert len(read_frames(_in_tmp("a.xyz", _seed_extxyz()))) == 3
    assert len(read_frames(_in_tmp("a.db", _seed_db()))) == 3
    assert len(read_frames(_in_tmp("a.cif", _seed_cif()), require_energy=False,
                           require_forces=False)) == 1
    assert Split.load(_in_tmp("s.json", _seed_split())).n_frames == 4
    assert len(read_md_log(_in_tmp("l.csv", _seed_md_log()))["time_ps"]) == 5
    assert read_pymatgen_json(_in_tmp("p.json", _seed_pymatgen_json())).n_frames == 6
    assert torch.__version__  # the loader test uses torch files
