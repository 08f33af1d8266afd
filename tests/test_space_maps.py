"""Compositional embeddings (eq. 2), anion classes, seeded 2-D maps and the files written."""

from __future__ import annotations

from pathlib import Path

import elementembeddings  # noqa: F401
import numpy as np
import pytest

from potlab.space.embeddings import _element_vectors, embed
from potlab.space.maps import anion_class, make_maps, periodic_table_heatmap, reduce_2d
from potlab.space.species import SpaceError, load_species


def _comp(sp, pairs):
    idx = sp.index()
    items = sorted((idx[s], n) for s, n in pairs)
    return np.array([[e for e, _ in items]]), np.array([[n for _, n in items]])


def test_weighted_mean_of_a_known_formula():
    sp = load_species("smact14")
    els, fac = _comp(sp, [("Fe", 2), ("O", 3)])
    v = _element_vectors("magpie")
    expected = (2 * np.nan_to_num(v["Fe"]) + 3 * np.nan_to_num(v["O"])) / 5
    got = embed("magpie", sp, els, fac)
    assert got.n_dropped == 0 and got.vectors.shape == (1, 22)
    np.testing.assert_allclose(got.vectors[0], expected, rtol=1e-12)
    from elementembeddings.composition import CompositionalEmbedding

    ref = CompositionalEmbedding("Fe2O3", "magpie").feature_vector("mean")
    np.testing.assert_allclose(got.vectors[0], ref, rtol=1e-10)


def test_missing_elements_are_dropped_and_counted():
    sp = load_species("smact14")
    comps = [_comp(sp, p) for p in ([("Na", 1), ("Cl", 1)], [("Lr", 1), ("O", 1)], [("Cm", 2), ("O", 3)])]
    els = np.concatenate([c[0] for c in comps])
    fac = np.concatenate([c[1] for c in comps])
    got = embed("megnet16", sp, els, fac)  # megnet16 lacks Lr and Cm
    assert got.kept.tolist() == [True, False, False]
    assert got.n_dropped == 2 and set(got.missing_elements) == {"Lr", "Cm"}
    assert got.vectors.shape == (1, 16)
    with pytest.raises(SpaceError, match="unknown embedding"):
        embed("nonsense", sp, els, fac)


def test_anion_classes():
    sp = load_species("smact14")
    rows = [[("Ga", 1), ("N", 1)], [("Na", 1), ("Cl", 1)], [("Zn", 1), ("S", 1)], [("Zn", 1), ("O", 1)],
            [("Cu", 1), ("Zn", 1)]]
    got = [anion_class(sp, _comp(sp, r)[0])[0] for r in rows]
    assert got == ["pnictide", "halide", "chalcogenide", "oxide", "other"]


def test_reductions_are_seeded():
    x = np.random.default_rng(0).normal(size=(60, 8))
    for method in ("pca", "tsne", "umap"):
        a, b = reduce_2d(x, method, seed=3), reduce_2d(x, method, seed=3)
        assert a.shape == (60, 2)
        np.testing.assert_array_equal(a, b)
    with pytest.raises(SpaceError):
        reduce_2d(x, "mds")


def test_maps_write_png_and_html(tmp_path):
    out = tmp_path / "maps"
    r = make_maps(2, out, embeddings=["magpie", "megnet16"], methods=["pca", "umap"], n_per_category=25, seed=1)
    assert r["n_points"] == {"standard": 25, "missing": 25, "interesting": 25, "unlikely": 25}
    assert set(r["dropped"]) == {"magpie", "megnet16"}
    for p in r["png"]:
        assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(r["html"]) == 4
    page = Path(r["html"][0]).read_text()
    assert "plotly" in page and "hovertemplate" in page
    assert (out / "plotly.min.js").exists()  # offline: plotly.js beside the pages
    again = make_maps(2, tmp_path / "again", embeddings=["magpie", "megnet16"], methods=["pca", "umap"],
                      n_per_category=25, seed=1, html=False)
    assert Path(r["csv"]).read_text() == Path(again["csv"]).read_text()  # same seed, same map


def test_periodic_table_png(tmp_path):
    from potlab.space.enumeration import element_frequencies

    freq = element_frequencies(2)
    assert sum(freq.values()) == 2 * 13464 and freq["He"] == 0
    path = periodic_table_heatmap(freq, tmp_path / "pt.png")
    assert Path(path).read_bytes()[:4] == b"\x89PNG"
