"""E0 fit, outlier screening, splits, subsets and their weights/sampling."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms

from potlab.data import (
    CONFIG_TYPE_KEY,
    REF_ENERGY_KEY,
    REF_FORCES_KEY,
    DataError,
    E0Fit,
    Split,
    apply_e0,
    drop_outliers,
    e0_from_dict,
    fit_e0,
    frame_weights,
    random_split,
    sampling_probabilities,
    screen_outliers,
    split_from_file,
    subset_split,
    subsets,
)

TRUE_E0 = {1: -13.6, 6: -1029.8, 8: -2041.3}  # eV


def molecule(numbers, energy, *, config_type=None, forces=None, pbc=False) -> Atoms:
    rng = np.random.default_rng(len(numbers))
    atoms = Atoms(numbers=numbers, positions=rng.uniform(0, 5, (len(numbers), 3)), pbc=pbc)
    if pbc:
        atoms.cell = np.eye(3) * 10
    atoms.info[REF_ENERGY_KEY] = float(energy)
    atoms.arrays[REF_FORCES_KEY] = np.zeros((len(numbers), 3)) if forces is None else forces
    if config_type is not None:
        atoms.info[CONFIG_TYPE_KEY] = config_type
    return atoms


def random_compositions(n_frames: int, seed: int = 0, noise: float = 1e-4) -> list[Atoms]:
    """Frames of random H/C/O counts with E = sum of E0 + small noise, periodic."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        counts = rng.integers(1, 8, size=3)
        numbers = np.repeat([1, 6, 8], counts)
        energy = sum(TRUE_E0[int(z)] for z in numbers) + rng.normal(0, noise)
        frames.append(molecule(numbers, energy, pbc=True))
    return frames


# --- E0 ---------------------------------------------------------------------------------


def test_e0_least_squares_recovers_known_energies():
    fit = fit_e0(random_compositions(40))
    assert fit.method == "least_squares"
    assert not fit.rank_deficient
    assert fit.n_frames == 40
    for z, e in TRUE_E0.items():
        assert fit.energies[z] == pytest.approx(e, abs=1e-3)
    assert fit.rmse_per_atom < 1e-4


def test_e0_from_isolated_atoms():
    frames = random_compositions(10)
    # config_type marks isolated atoms; a single non-periodic atom counts too
    frames.append(molecule([1], -13.0, config_type="IsolatedAtom", pbc=True))
    frames.append(molecule([6], -1030.0, config_type="isolated_atom"))
    frames.append(molecule([8], -2041.0))
    fit = fit_e0(frames)
    assert fit.method == "isolated"
    assert fit.energies == {1: -13.0, 6: -1030.0, 8: -2041.0}
    # the residual over the molecules is what the model must learn (here 0.3 eV/H etc.)
    assert fit.rmse_per_atom > 0.05


def test_e0_isolated_plus_least_squares():
    frames = random_compositions(30, seed=3)
    frames.insert(5, molecule([1], TRUE_E0[1], config_type="IsolatedAtom"))
    fit = fit_e0(frames)
    assert fit.method == "isolated+least_squares"
    assert fit.energies[1] == TRUE_E0[1]
    assert fit.energies[6] == pytest.approx(TRUE_E0[6], abs=1e-3)
    assert fit.energies[8] == pytest.approx(TRUE_E0[8], abs=1e-3)


def test_e0_single_composition_is_flagged_rank_deficient():
    rng = np.random.default_rng(5)
    water_energy = 2 * TRUE_E0[1] + TRUE_E0[8] - 10.0
    frames = [molecule([8, 1, 1], water_energy + rng.normal(0, 0.01)) for _ in range(6)]
    fit = fit_e0(frames)
    assert fit.rank_deficient
    assert fit.warnings and "rank" in fit.warnings[0]
    assert "RANK DEFICIENT" in fit.table()
    # minimum-norm solution still reproduces the mean energy of that composition
    mean_energy = np.mean([a.info[REF_ENERGY_KEY] for a in frames])
    assert apply_e0(frames[:1], fit)[0] == pytest.approx(mean_energy, abs=1e-9)


def test_e0_serialisation_and_apply():
    fit = fit_e0(random_compositions(20))
    d = json.loads(json.dumps(fit.to_dict()))
    assert set(d["energies_by_symbol"]) == {"H", "C", "O"}
    back = e0_from_dict(d)
    assert isinstance(back, E0Fit)
    assert back.energies == pytest.approx(fit.energies)
    assert back.method == fit.method
    plain = e0_from_dict({"H": -1.0, "8": -2.0, 6: -3.0})
    assert plain.energies == {1: -1.0, 8: -2.0, 6: -3.0} and plain.method == "given"
    water = molecule([8, 1, 1], 0.0)
    assert apply_e0([water], plain)[0] == pytest.approx(-4.0)
    assert apply_e0([water], {8: -2.0, 1: -1.0})[0] == pytest.approx(-4.0)
    with pytest.raises(ValueError, match="Cl"):
        apply_e0([molecule([17], 0.0)], plain)
    table = fit.table()
    assert "H" in table and "least_squares" in table


def test_e0_missing_energy_is_a_data_error():
    frames = random_compositions(3)
    del frames[1].info[REF_ENERGY_KEY]
    with pytest.raises(DataError) as info:
        fit_e0(frames)
    assert info.value.frame == 1 and info.value.field == REF_ENERGY_KEY


# --- outliers ---------------------------------------------------------------------------


def force_frames(n: int = 60, seed: int = 11) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        numbers = np.repeat([1, 6, 8], rng.integers(2, 6, size=3))
        energy = sum(TRUE_E0[int(z)] for z in numbers) - 0.5 * len(numbers)
        energy += rng.normal(0, 0.02 * np.sqrt(len(numbers)))
        frames.append(molecule(numbers, energy, forces=rng.normal(0, 1.0, (len(numbers), 3))))
    return frames


def test_scaled_forces_are_exactly_the_outliers():
    frames = force_frames()
    for i in (7, 31):
        frames[i].arrays[REF_FORCES_KEY] = frames[i].arrays[REF_FORCES_KEY] * 50
    report = screen_outliers(frames)
    assert report.indices == [7, 31]
    assert report.reasons == {7: ["forces"], 31: ["forces"]}
    assert report.fraction == pytest.approx(2 / 60)
    assert report.stats["max_force"][7] > 50
    kept = drop_outliers(frames, report)
    assert len(kept) == 58
    assert all(a is not frames[7] and a is not frames[31] for a in kept)
    json.dumps(report.to_dict())
    assert "forces" in report.table()


def test_energy_per_atom_outlier_and_one_sided_forces():
    frames = force_frames(seed=12)
    frames[20].info[REF_ENERGY_KEY] += 5.0 * len(frames[20])  # +5 eV/atom: a unit slip
    frames[40].arrays[REF_FORCES_KEY] *= 1e-3  # a relaxed structure is not suspicious
    report = screen_outliers(frames, e0=TRUE_E0)
    assert report.indices == [20]
    assert report.reasons[20] == ["energy_per_atom"]
    assert report.stats["energy_per_atom"][20] == pytest.approx(4.5, abs=0.1)


def test_absolute_force_cap_and_isolated_atoms_not_flagged():
    frames = force_frames(seed=13)
    frames += [molecule([z], e, config_type="IsolatedAtom") for z, e in TRUE_E0.items()]
    report = screen_outliers(frames)
    assert report.indices == []
    assert report.e0 is not None and report.e0.method == "isolated"
    capped = screen_outliers(frames, max_force=2.0)
    assert capped.indices == [
        i
        for i, a in enumerate(frames)
        if np.linalg.norm(a.arrays[REF_FORCES_KEY], axis=1).max() > 2
    ]
    with pytest.raises(ValueError):
        drop_outliers(frames[:-1], report)


# --- splits -----------------------------------------------------------------------------


def test_random_split_deterministic_disjoint_complete():
    a = random_split(103, valid_fraction=0.1, test_fraction=0.2, seed=42)
    b = random_split(103, valid_fraction=0.1, test_fraction=0.2, seed=42)
    c = random_split(103, valid_fraction=0.1, test_fraction=0.2, seed=43)
    assert a == b
    assert a.valid != c.valid
    assert (len(a.valid), len(a.test), len(a.train)) == (10, 21, 72)
    parts = [set(a.train), set(a.valid), set(a.test)]
    assert set().union(*parts) == set(range(103))
    assert sum(map(len, parts)) == 103
    assert a.strategy == "random" and a.seed == 42


def test_random_split_small_sets():
    tiny = random_split(2, valid_fraction=0.01, seed=0)
    assert len(tiny.valid) == 1 and len(tiny.train) == 1
    one = random_split(1, valid_fraction=0.5, seed=0)
    assert one.train == [0] and one.valid == []
    three = random_split(3, valid_fraction=0.4, test_fraction=0.4, seed=0)
    assert len(three.train) >= 1 and len(three.valid) == 1 and len(three.test) == 1
    with pytest.raises(ValueError):
        random_split(10, valid_fraction=0.6, test_fraction=0.4, seed=0)


def test_split_save_load_round_trip(tmp_path):
    split = random_split(50, valid_fraction=0.2, seed=1)
    path = split.save(tmp_path / "runs" / "split.json")
    assert [p.name for p in path.parent.iterdir()] == ["split.json"]  # no temp file left
    assert Split.load(path) == split
    assert split_from_file(path, 50) == split


def test_split_from_file_out_of_range(tmp_path):
    path = Split(train=[0, 1, 2], valid=[9]).save(tmp_path / "split.json")
    with pytest.raises(DataError) as info:
        split_from_file(path, 5)
    assert info.value.file == str(path)
    assert info.value.field == "valid"
    assert "9" in str(info.value)


def test_split_rejects_overlap():
    with pytest.raises(ValueError, match="frame 2"):
        Split(train=[0, 1, 2], valid=[2])


def labelled_subsets() -> list[Atoms]:
    types = ["liquid"] * 6 + ["EC"] + ["liquid"] * 3 + ["EMC", "scan", "scan"]
    return [molecule([1, 1], -27.0, config_type=t) for t in types]


def test_subset_split():
    frames = labelled_subsets()
    split = subset_split(frames, valid_subsets=["scan"], test_subsets=["EC", "EMC"])
    assert split.valid == [11, 12]
    assert split.test == [6, 10]
    assert split.train == [0, 1, 2, 3, 4, 5, 7, 8, 9]
    assert split.strategy == "subset"
    with pytest.raises(ValueError, match="'gas'"):
        subset_split(frames, valid_subsets=["gas"])


# --- subsets, weights, sampling -----------------------------------------------------------


def test_subsets_and_weights():
    frames = labelled_subsets()
    frames.append(molecule([1, 1], -27.0))  # no config_type -> Default
    groups = subsets(frames)
    assert list(groups) == ["liquid", "EC", "EMC", "scan", "Default"]
    assert groups["EC"] == [6]
    w = frame_weights(frames, {"EC": 10.0, "scan": 0.5}, default=1.0)
    assert w.shape == (14,)
    assert w[6] == 10.0 and w[11] == w[12] == 0.5 and w[0] == 1.0
    with pytest.raises(ValueError, match="'EC_typo'"):
        frame_weights(frames, {"EC_typo": 2.0})


def test_sampling_probabilities_give_named_subsets_their_share():
    """Seed 003: one isolated EC and one isolated EMC molecule, each in 5% of the draws."""
    frames = [molecule([1, 1], -27.0, config_type="liquid") for _ in range(98)]
    frames.insert(10, molecule([1, 1], -27.0, config_type="EC"))
    frames.insert(50, molecule([1, 1], -27.0, config_type="EMC"))
    p = sampling_probabilities(frames, {"EC": 0.05, "EMC": 0.05})
    assert p.sum() == pytest.approx(1.0)
    assert p[10] == pytest.approx(0.05) and p[50] == pytest.approx(0.05)
    assert p[0] == pytest.approx(0.90 / 98)
    draws = np.random.default_rng(0).choice(len(frames), size=200_000, p=p)
    assert np.mean(draws == 10) == pytest.approx(0.05, abs=0.003)
    with pytest.raises(ValueError, match="sum"):
        sampling_probabilities(frames, {"EC": 0.7, "EMC": 0.5})
    with pytest.raises(ValueError, match="'ECC'"):
        sampling_probabilities(frames, {"ECC": 0.05})
