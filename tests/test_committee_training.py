"""`potlab train` with `committee: N`: members with their own seeds and splits (fresh,
same, inherited from an earlier committee), one committee file that loads and equals
its members."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml
from conftest import tiny_params

import potlab
from potlab.data import Split, write_extxyz
from potlab.potential import Committee
from potlab.train import ConfigError, parse_config, train, train_committee


def config(tmp_path, data, out, committee, epochs=2):
    return {
        "data": {"train": str(data), "valid_fraction": 0.25},
        "model": {"name": "schnet", **tiny_params("schnet")},
        "training": {"max_epochs": epochs, "batch_size": 4, "seed": 3, "ema_decay": None},
        "committee": committee,
        "out": str(tmp_path / out),
    }


@pytest.fixture
def data(tmp_path, li3ps4_frames):
    write_extxyz(tmp_path / "old.xyz", li3ps4_frames[:12])
    write_extxyz(tmp_path / "new.xyz", li3ps4_frames[:20])  # 8 frames appended
    return tmp_path


def splits(run, n):
    return [Split.load(run / f"member_{m}" / "split.json") for m in range(n)]


def test_committee_cli_fresh_splits(data, li3ps4_frames):
    cfg = config(data, data / "old.xyz", "c1", 3)
    (data / "c.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "POTLAB_QUIET": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "potlab.cli", "train", "c.yaml"], cwd=data, env=env,
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert "best member" in r.stdout
    run = data / "c1"
    s = splits(run, 3)
    assert len({tuple(x.valid) for x in s}) == 3  # a fresh split per member
    assert all(len(x.train) == 9 and len(x.valid) == 3 for x in s)
    info = json.loads((run / "committee.json").read_text())
    assert [m["seed"] for m in info["members"]] == [3, 4, 5]
    com = potlab.load(run / "committee.pt", dtype="float64")
    assert isinstance(com, Committee) and com.size == 3
    atoms = li3ps4_frames[15]
    out = com(com.graph([atoms]))
    for m in range(3):
        one = potlab.load(run / f"member_{m}" / "model.pt", dtype="float64")
        ref = one(one.graph([atoms]))
        np.testing.assert_allclose(out["forces"][m].detach(), ref["forces"].detach(), atol=1e-9)


def test_same_and_inherited_splits(data):
    same = train_committee(parse_config(config(data, data / "old.xyz", "same", {"size": 2, "split": "same"})))
    s = splits(same.out, 2)
    assert s[0].valid == s[1].valid and s[0].train == s[1].train

    first = train_committee(parse_config(config(data, data / "old.xyz", "first", 2)))
    best = splits(first.out, 2)[first.best_member]
    nxt = train_committee(parse_config(config(
        data, data / "new.xyz", "next", {"size": 3, "split": "inherited", "inherit_from": str(first.out)})))
    for x in splits(nxt.out, 3):
        assert [i for i in x.train if i < 12] == best.train  # the best member's split carried over
        assert [i for i in x.valid if i < 12] == best.valid
        assert sorted(i for i in x.train + x.valid if i >= 12) == list(range(12, 20))  # new frames spread
        assert len([i for i in x.valid if i >= 12]) == 2
    assert len({tuple(x.valid) for x in splits(nxt.out, 3)}) > 1


def test_inherited_refuses_changed_data(data, li3ps4_frames):
    first = train_committee(parse_config(config(data, data / "old.xyz", "first", 2, epochs=1)))
    write_extxyz(data / "other.xyz", li3ps4_frames[5:25])  # old frames not first
    cfg = config(data, data / "other.xyz", "bad", {"size": 2, "split": "inherited", "inherit_from": str(first.out)})
    with pytest.raises(ConfigError, match="not the first frames"):
        train_committee(parse_config(cfg))


def test_committee_config_errors(data):
    with pytest.raises(ConfigError, match="committee.size"):
        parse_config(config(data, data / "old.xyz", "x", 1))
    with pytest.raises(ConfigError, match="committee.splits"):
        parse_config(config(data, data / "old.xyz", "x", {"size": 2, "splits": "fresh"}))
    with pytest.raises(ConfigError, match="committee"):
        train(parse_config(config(data, data / "old.xyz", "x", 2)))


@pytest.mark.parametrize("split", ["same", "fresh"])
def test_outlier_drop_with_a_committee_trains_on_the_frames_its_split_names(tmp_path, li3ps4_frames, split):
    """Splits index the frames as read; the dropped outlier is left out of every member's
    split, and each member's training set is exactly the frames its split names."""
    from potlab.train.committee import member_config
    from potlab.train.trainer import Trainer

    frames = [a.copy() for a in li3ps4_frames[:16]]
    frames[5].arrays["REF_forces"] = frames[5].arrays["REF_forces"] * 200  # a unit slip
    write_extxyz(tmp_path / "bad.xyz", frames)
    raw = config(tmp_path, tmp_path / "bad.xyz", "c", {"size": 2, "split": split}, epochs=1)
    raw["data"]["outliers"] = {"threshold": 8, "drop": True}
    cfg = parse_config(raw)
    res = train_committee(cfg)
    outliers = json.loads((res.out / "member_0" / "outliers.json").read_text())
    assert outliers["indices"] == [5]
    for m, s in enumerate(splits(res.out, 2)):
        assert s.n_frames == 16
        assert sorted(s.train + s.valid) == [i for i in range(16) if i != 5]
        trainer = Trainer(member_config(cfg, m, res.out))
        trainer._setup_data()  # what a resumed member trains on
        assert [a.info["source_index"] for a in trainer.train_data.frames] == s.train
        assert res.members[m]["n_train"] == len(s.train)


def test_a_split_made_for_other_data_is_refused(tmp_path, li3ps4_frames):
    from potlab.data import DataError

    write_extxyz(tmp_path / "t.xyz", li3ps4_frames[:12])
    raw = config(tmp_path, tmp_path / "t.xyz", "run", None, epochs=1)
    del raw["committee"]
    train(parse_config(raw))
    write_extxyz(tmp_path / "t.xyz", li3ps4_frames[:16])  # frames appended to the same file
    with pytest.raises(DataError, match=r"split.json.*made for 12 frames, the data has 16"):
        train(parse_config(raw))
    write_extxyz(tmp_path / "t.xyz", li3ps4_frames[4:16])  # as many frames, other ones
    with pytest.raises(DataError, match=r"split.json.*fingerprint"):
        train(parse_config(raw))
