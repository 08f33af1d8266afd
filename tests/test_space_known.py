"""Known lists, formula parsing and the four categories (Table 1) on the bundled snapshot."""

from __future__ import annotations

import json

import numpy as np
import pytest

from potlab.cli.space import main
from potlab.space.counting import build_index
from potlab.space.enumeration import formulas, sample
from potlab.space.known import label_counts, parse_formula, read_known
from potlab.space.species import SpaceError


def test_formula_parsing():
    assert parse_formula("NaN") == {"Na": 1, "N": 1}  # sodium nitride, not a missing value
    assert parse_formula("Fe2O3") == {"Fe": 2, "O": 3}
    assert parse_formula("Ca(OH)2") == {"Ca": 1, "O": 2, "H": 2}
    assert parse_formula("(NH4)2SO4") == {"N": 2, "H": 8, "S": 1, "O": 4}
    for bad in ("", "Fe2O3)", "Na-Cl"):
        with pytest.raises(SpaceError):
            parse_formula(bad)


def test_bundled_snapshot_categories():
    r = label_counts(2)
    assert (r["standard"], r["missing"], r["interesting"], r["unlikely"]) == (3675, 9789, 6505, 205910)
    assert r["known"] == 10180 and r["total"] == 225879 and r["allowed"] == 13464
    assert "Feb 2025" in r["snapshot"]


def test_sodium_nitride_is_read_as_a_formula(tmp_path):
    known = read_known()
    sp = known.species
    els, fac = known.of_order(2)
    assert "NaN" in set(formulas(sp, els, fac))
    path = tmp_path / "known.csv"
    path.write_text("formula,note\nNaN,sodium nitride\nNA,not a formula?\nMgO,\nMg2O2,same as MgO\n")
    with pytest.raises(SpaceError, match="line 3: unknown element 'A'"):
        read_known(path)
    path.write_text("formula\nNaN\nMgO\nMg2O2\nFe2O3\nLiFeO2\n")
    k = read_known(path)
    assert len(k.of_order(2)[0]) == 3 and k.n_duplicates == 1 and len(k.of_order(3)[0]) == 1


def test_unknown_element_error_names_file_and_line(tmp_path):
    path = tmp_path / "known.txt"
    path.write_text("NaCl\n# comment\nQq2O3\n")
    with pytest.raises(SpaceError, match=r"known.txt, line 3: unknown element 'Qq'"):
        read_known(path)


def test_user_known_list_categories(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("ZnO\nZnO2\nNaCl\nFe3Al\nCuZn\nMg9O\n")  # Mg9O: factor past 8
    r = label_counts(2, read_known(path))
    assert r["known"] == 5 and r["known_outside"] == 1
    # ZnO, ZnO2, NaCl pass; so does Fe3Al, through smact14's Fe(-2) (smact_filter agrees);
    # the alloy CuZn does not (Cu and Zn have no negative state)
    assert (r["standard"], r["interesting"]) == (4, 1)
    assert r["missing"] == 13464 - 4 and r["unlikely"] == 225879 - 13464 - 1


def test_table1_zn_o_examples():
    index = build_index(2)
    idx = index.species.index()
    zn, o = sorted([idx["Zn"], idx["O"]])
    pos = {zn: 0, o: 1}
    def verdict(nzn, no):
        f = [0, 0]
        f[pos[zn]], f[pos[o]] = nzn, no
        return bool(index.is_allowed(np.array([[zn, o]]), np.array([f]))[0])
    assert verdict(1, 1) and verdict(1, 2) and verdict(2, 1)  # ZnO, ZnO2, Zn2O allowed
    assert not verdict(1, 3)  # ZnO3 forbidden


def test_samples_are_in_their_category_and_seeded():
    known = read_known()
    index = build_index(2)
    k_els, k_fac = known.of_order(2)
    known_keys = {(tuple(e), tuple(f)) for e, f in zip(k_els.tolist(), k_fac.tolist())}
    for cat, allowed, is_known in (("standard", True, True), ("missing", True, False),
                                   ("interesting", False, True), ("unlikely", False, False)):
        els, fac = sample(2, cat, 200, seed=5, known=known)
        assert len(els) == 200
        assert len({(tuple(e), tuple(f)) for e, f in zip(els.tolist(), fac.tolist())}) == 200
        assert index.is_allowed(els, fac).tolist() == [allowed] * 200
        assert [(tuple(e), tuple(f)) in known_keys for e, f in zip(els.tolist(), fac.tolist())] == [is_known] * 200
        again = sample(2, cat, 200, seed=5, known=known)
        assert np.array_equal(again[0], els) and np.array_equal(again[1], fac)


def test_quaternary_sample_without_enumerating():
    els, fac = sample(4, "allowed", 50, seed=1)
    assert els.shape == (50, 4) and (np.diff(els, axis=1) > 0).all()
    assert build_index(4).is_allowed(els, fac).all()


def test_cli_label_and_count_json(capsys, tmp_path):
    assert main(["label", "--order", "2", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert {c: r[c] for c in ("standard", "missing", "interesting", "unlikely")} == {
        "standard": 3675, "missing": 9789, "interesting": 6505, "unlikely": 205910}
    assert main(["space", "count", "--order", "3", "--max-factor", "8", "--oxidation-states", "smact14", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["total"], r["allowed"]) == (77_637_589, 10_779_441)
    assert main(["count", "--order", "5"]) == 2
    assert "order must be 2, 3 or 4" in capsys.readouterr().err
    assert main(["count", "--order", "2", "--oxidation-states", "nope"]) == 2
    assert "unknown oxidation-state set 'nope'" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("formula\nNaCl\nXy\n")
    assert main(["label", "--known", str(bad)]) == 2
    assert "unknown element 'Xy'" in capsys.readouterr().err


def test_label_order_3_with_the_binary_snapshot_says_so(capsys, tmp_path):
    """The bundled snapshot holds binaries only: a ternary label run is refused, naming
    the list and how to give one, instead of reporting known = 0."""
    assert main(["label", "--order", "3"]) == 2
    err = capsys.readouterr().err
    assert "bundled snapshot has no compositions of 3 elements" in err
    assert "--known FILE" in err and "--materials-project" in err
    (tmp_path / "ternary.txt").write_text("Li3PS4\nLiCoO2\n")
    assert main(["label", "--order", "3", "--known", str(tmp_path / "ternary.txt"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["known"] == 2


def test_a_missing_optional_package_names_the_extra(monkeypatch, capsys):
    """Without SMACT (``pip install potlab`` alone) the space tools say which extra to
    install; the command line turns any missing optional package into that one line."""
    import sys

    from potlab.cli import main as potlab_main
    from potlab.errors import MissingExtra
    from potlab.space.species import load_species

    monkeypatch.setitem(sys.modules, "smact", None)  # import smact now fails
    with pytest.raises(MissingExtra, match=r"pip install 'potlab\[space\]'"):
        load_species.__wrapped__("smact14")

    def needs_pandas(args):
        raise ModuleNotFoundError("No module named 'pandas'", name="pandas")

    monkeypatch.setattr("potlab.cli._cmd_models", needs_pandas)
    assert potlab_main(["models"]) == 2
    assert "pip install 'potlab[space]'" in capsys.readouterr().err
